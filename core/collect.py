"""``run_session.py --collect DIR``: one folder holding a whole session made on one server or
many (the CLI fetches each image and sidecar through ComfyUI's ``/view`` as the jobs finish):
every image with its sidecar, the image checked against the sidecar's ``image_sha256``, the
prompt file copy, and at the end the contact sheet made from all of it.

Every file is published atomically under a name that must not exist (core/atomic.py): a file
already there with the same bytes is this session's (a resumed run, a job run twice) and is
kept; one with other bytes is never overwritten (the image is reported, not collected). The
folder may hold only this session: its sidecars say which jobs are collected, which is what
``--resume`` with several servers continues from.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .atomic import publish_bytes
from .hashing import sha256_bytes
from .session import NUMBERED_FILE, copy_prompt_file
from .sidecar import SIDECAR_EXTENSION, GenerationParamsError, load_generation_params, parse_generation_params


class CollectError(Exception):
    """A file could not be collected (the message says which and why); nothing was overwritten."""


@dataclass
class CollectedSession:
    """What the folder holds of a session: job index -> image names."""
    jobs: dict[int, list[str]] = field(default_factory=dict)

    def done(self, batch_size: int = 1) -> set[int]:
        return {index for index, names in self.jobs.items() if len(names) >= batch_size}


class CollectFolder:
    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder).resolve()

    def open(self, expansion_id: str, first: int | None = None) -> CollectedSession:
        """Make the folder; refuse one that holds another session's images (CollectError);
        return what it already holds of this one."""
        if self.folder.exists() and not self.folder.is_dir():
            raise CollectError(f"--collect {self.folder}: not a folder")
        self.folder.mkdir(parents=True, exist_ok=True)
        held = CollectedSession()
        for name in sorted(os.listdir(self.folder)):
            if not (NUMBERED_FILE.match(name) and name.endswith(SIDECAR_EXTENSION)):
                continue
            try:
                sidecar = load_generation_params(self.folder / name) or {}
            except GenerationParamsError as e:
                raise CollectError(f"--collect {self.folder}: {e}; collect into an empty folder") from None
            oom, session = sidecar.get("oom") or {}, sidecar.get("session") or {}
            theirs = session.get("first")
            if oom.get("expansion_id") != expansion_id or (first is not None and theirs not in (None, first)):
                raise CollectError(
                    f"--collect {self.folder}: it holds {name} of another session (expansion "
                    f"{oom.get('expansion_id')}); collect into an empty folder or this session's own")
            if isinstance(oom.get("index"), int) and (self.folder / (name[:-len(SIDECAR_EXTENSION)] + ".png")).is_file():
                held.jobs.setdefault(oom["index"], []).append(name)
        return held

    def open_empty(self) -> None:
        """Make the folder for a set of its own (``--regenerate``: nothing to resume); refuse one
        that holds session images already (CollectError)."""
        if self.folder.exists() and not self.folder.is_dir():
            raise CollectError(f"--collect {self.folder}: not a folder")
        self.folder.mkdir(parents=True, exist_ok=True)
        held = sorted(name for name in os.listdir(self.folder) if NUMBERED_FILE.match(name))
        if held:
            raise CollectError(f"--collect {self.folder}: it holds {held[0]} of an earlier session; collect "
                               "into an empty folder")

    def add(self, name: str, png: bytes, sidecar: bytes, where: str) -> Path:
        """Collect image ``name`` and its sidecar (``where``: the server and path they came from,
        for messages); returns the image's path. Raises CollectError for a sidecar that is not
        one or does not match its image, or a name held here by other bytes."""
        stem = os.path.splitext(name)[0]
        try:
            record = parse_generation_params(sidecar, f"{where}: {stem}{SIDECAR_EXTENSION}")
        except GenerationParamsError as e:
            raise CollectError(str(e)) from None
        if record.get("image_sha256") != sha256_bytes(png):
            raise CollectError(f"{where}: {name} does not match its sidecar's image_sha256 (changed or damaged "
                               "after it was saved); not collected")
        path = self._publish(png, name)             # the image first: a sidecar here always has its image
        self._publish(sidecar, stem + SIDECAR_EXTENSION)
        return path

    def _publish(self, data: bytes, name: str) -> Path:
        path = self.folder / name
        try:
            publish_bytes(data, str(path))
        except FileExistsError:
            if path.read_bytes() != data:
                raise CollectError(f"{path} exists with other content; not overwritten") from None
        return path

    def add_prompt_file(self, source: Path) -> Path:
        """The prompt file, copied once as the saver does (core/session.copy_prompt_file)."""
        return Path(copy_prompt_file(str(self.folder), source.name, source.read_text(encoding="utf-8")))
