"""Which images a session folder holds and where each goes in the grid, from its sidecar."""
from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from typing import NamedTuple

from PIL import Image

from ..session import NUMBERED_FILE
from ..sidecar import GenerationParamsError, Sidecar, read_sidecar

SHEET_STEM = "contact_sheet"
ANIMATION_STEM = "session"
_OWN_OUTPUT = re.compile(rf"^(?:{SHEET_STEM}(?:_\d+)?|{ANIMATION_STEM})\.[a-z]+$", re.IGNORECASE)


class SessionImage(NamedTuple):
    """One image of the session and what its sidecar says about its place (a named tuple: the
    gallery builds ten thousand of them from its stored index, ~8x faster than a frozen
    dataclass)."""
    path: str
    name: str
    size: tuple[int, int]
    task_id: int
    seed: int | None
    seed_index: int
    prompt_index: int
    variation_index: int
    variations_per_prompt: int
    base_prompt: str
    variation_values: dict
    expansion_id: str
    source_name: str
    job_index: int | None = None        # the job's index and the session's job count (oom)
    total: int | None = None
    loras: tuple[str, ...] = ()         # the LoRA file names applied (the gallery filters on them)


@dataclass(frozen=True)
class Skipped:
    name: str
    reason: str

    def __str__(self) -> str:
        return f"{self.name}: {self.reason}"


def session_image(sidecar: Sidecar, name: str, size: tuple[int, int]) -> SessionImage:
    """The sidecar's place in the grid; GenerationParamsError naming the field when it has none."""
    oom = sidecar.oom
    if oom is None:
        raise GenerationParamsError(sidecar.path, "sidecar has no 'oom' object")
    if sidecar.count is None:
        raise GenerationParamsError(sidecar.path, f"task_id is {sidecar.task_id!r}, expected a number")
    place = {key: getattr(oom, key) for key in ("seed_index", "prompt_index", "variation_index")}
    for key, value in place.items():
        if value is None:
            raise GenerationParamsError(sidecar.path, f"oom.{key} is missing")
    return SessionImage(
        path=sidecar.image_path, name=name, size=size, task_id=sidecar.count, seed=sidecar.seed,
        **place, variations_per_prompt=max(oom.variations_per_prompt or 1, place["variation_index"] + 1),
        base_prompt=oom.base_prompt or sidecar.prompt, variation_values=oom.variation_values,
        expansion_id=oom.expansion_id, source_name=sidecar.source_name, job_index=oom.index,
        total=oom.total, loras=tuple(lora.name for lora in sidecar.loras),
    )


def scan_session(folder: str) -> tuple[list[SessionImage], list[Skipped]]:
    """The folder's PNG images that have a usable sidecar, in count (task_id) order, and the
    files that were skipped with the reason. Our own composites are not images of the session."""
    images: list[SessionImage] = []
    skipped: list[Skipped] = []
    names = sorted(os.listdir(folder))
    present = set(names)
    for name in names:
        stem, ext = os.path.splitext(name)
        path = os.path.join(folder, name)
        if name.startswith(".") or is_own_output(name) or not os.path.isfile(path):
            continue
        if ext.lower() == ".json":
            if NUMBERED_FILE.match(name) and not {stem + ".png", stem + ".PNG"} & present:
                skipped.append(Skipped(name, "sidecar without its image"))
            continue
        if ext.lower() != ".png":
            continue
        try:
            sidecar = read_sidecar(path)
        except (GenerationParamsError, OSError) as e:
            skipped.append(Skipped(name, f"{stem}.json: {getattr(e, 'message', e)}"))
            continue
        if sidecar is None:
            skipped.append(Skipped(name, f"no sidecar {stem}.json (not an image of this session)"))
            continue
        try:
            with Image.open(path) as im:       # header only: size, and proof it is an image
                size = im.size
        except (OSError, ValueError) as e:
            skipped.append(Skipped(name, f"cannot read the image ({e})"))
            continue
        try:
            images.append(session_image(sidecar, name, size))
        except GenerationParamsError as e:
            skipped.append(Skipped(name, f"{stem}.json: {e.message}"))
    images.sort(key=lambda im: (im.task_id, im.name))
    return images, skipped


def is_own_output(name: str) -> bool:
    """A sheet page or animation this module writes (not an image of the session)."""
    return bool(_OWN_OUTPUT.match(name))


def session_fingerprint(folder: str) -> str:
    """Changes when an image or sidecar is added, removed or rewritten (names, sizes, mtimes);
    our own composites do not count, so composing does not change it."""
    h = hashlib.sha256()
    with os.scandir(folder) as entries:
        for e in sorted(entries, key=lambda e: e.name):
            if e.name.lower().endswith((".png", ".json")) and not e.name.startswith(".") \
                    and not is_own_output(e.name):
                st = e.stat()
                h.update(f"{e.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()
