"""Composing a session folder: options, the sheet pages and the animation written into it."""
from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from PIL import Image

from ..atomic import replace_bytes
from ..session import folder_title
from .plan import (
    DEFAULT_BORDER,
    DEFAULT_CELL_SIZE,
    DEFAULT_FONT_SIZE,
    DEFAULT_MAX_HEIGHT,
    DEFAULT_MAX_WIDTH,
    DEFAULT_ROW_SPACING,
    Grid,
    dominant_size,
    fit_box,
    plan_sheet,
)
from .render import LazyFrames, letterboxed, render_page
from .scan import ANIMATION_STEM, SHEET_STEM, SessionImage, Skipped, scan_session
from .text import SEPARATOR

SHEET_FORMATS = {"jpg": "JPEG", "png": "PNG", "webp": "WEBP"}
ANIMATION_FORMATS = {"webp": "WEBP", "gif": "GIF"}
DEFAULT_FRAME_MS = 500
DEFAULT_ANIMATION_SIZE = 384


@dataclass
class ComposeResult:
    folder: str
    sheets: list[str] = field(default_factory=list)     # written paths, page order (per format)
    animation: str | None = None                         # written path
    pages: int = 0
    images: int = 0                                      # images with a usable sidecar
    skipped: list[Skipped] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    grids: list[Grid] = field(default_factory=list)

    @property
    def written(self) -> list[str]:
        """Every file this composition wrote: the sheet pages, then the animation."""
        return self.sheets + ([self.animation] if self.animation else [])

    def summary(self) -> str:
        parts = [f"{self.images} images"]
        if self.sheets:
            parts.append(f"sheet: {self.pages} page{'s' if self.pages != 1 else ''} "
                         f"({', '.join(os.path.basename(p) for p in self.sheets)})")
        if self.animation:
            parts.append(f"animation: {os.path.basename(self.animation)}")
        lines = [" · ".join(parts)]
        lines += [f"skipped {s}" for s in self.skipped]
        lines += self.notes
        return "\n".join(lines)


def sheet_names(pages: int, ext: str) -> list[str]:
    if pages == 1:
        return [f"{SHEET_STEM}.{ext}"]
    digits = max(2, len(str(pages)))
    return [f"{SHEET_STEM}_{i:0{digits}d}.{ext}" for i in range(1, pages + 1)]


def _remove_stale_sheets(folder: str, ext: str, keep: Iterable[str]) -> None:
    """Pages of an older, longer composition would be misleading: remove ours, only ours."""
    keep = set(keep)
    pattern = re.compile(rf"^{SHEET_STEM}(?:_\d+)?\.{re.escape(ext)}$")
    for name in os.listdir(folder):
        if pattern.match(name) and name not in keep:
            os.unlink(os.path.join(folder, name))


def _formats(value: str | Sequence[str], known: dict[str, str], what: str) -> list[str]:
    items = value.replace("+", ",").split(",") if isinstance(value, str) else list(value)
    out = []
    for item in items:
        ext = item.strip().lower().lstrip(".")
        ext = "jpg" if ext == "jpeg" else ext
        if ext not in known:
            raise ValueError(f"{what} {item!r} is not one of {', '.join(known)}")
        if ext not in out:
            out.append(ext)
    if not out:
        raise ValueError(f"{what} is empty")
    return out


def session_header(folder: str, images: Sequence[SessionImage]) -> str:
    """'2025-10-12 14:30 · prompt.yaml · 72 images' for a YYYY/MM/DD/HHMM session folder."""
    where = folder_title(os.path.abspath(folder))
    sources = list(dict.fromkeys(im.source_name for im in images if im.source_name))
    return SEPARATOR.join([where] + sources[:3] + [f"{len(images)} images"])


def compose_session(folder: str, *, sheet: bool = True, animation: bool = False,
                    sheet_format: str | Sequence[str] = "jpg", animation_format: str = "webp",
                    cell_size: int = DEFAULT_CELL_SIZE, border: int = DEFAULT_BORDER,
                    row_spacing: int = DEFAULT_ROW_SPACING, max_width: int = DEFAULT_MAX_WIDTH,
                    max_height: int = DEFAULT_MAX_HEIGHT, font_size: int = DEFAULT_FONT_SIZE,
                    frame_ms: int = DEFAULT_FRAME_MS, animation_size: int = DEFAULT_ANIMATION_SIZE,
                    jpeg_quality: int = 88) -> ComposeResult:
    """Writes the contact sheet (pages) and/or the animation of a session folder into it.

    Raises ValueError for bad options or a folder that does not exist; OSError when writing
    fails. A folder without usable images writes nothing and says so in ``notes``.
    """
    if not os.path.isdir(folder):
        raise ValueError(f"session folder {folder!r} does not exist or is not a folder")
    _check_range("cell_size", cell_size, 16, 4096)
    _check_range("border", border, 0, 256)
    _check_range("row_spacing", row_spacing, 0, 1024)
    _check_range("max_width", max_width, 64, 16000)
    _check_range("max_height", max_height, 64, 16000)
    _check_range("font_size", font_size, 6, 128)
    _check_range("frame_ms", frame_ms, 10, 60_000)
    _check_range("animation_size", animation_size, 16, 4096)
    sheet_exts = _formats(sheet_format, SHEET_FORMATS, "sheet_format") if sheet else []
    anim_ext = _formats(animation_format, ANIMATION_FORMATS, "animation_format")[0] if animation else None

    images, skipped = scan_session(folder)
    result = ComposeResult(folder=folder, images=len(images), skipped=skipped)
    if not images:
        result.notes.append("no images with a prompt-media sidecar in this folder: nothing composed")
        return result

    if sheet_exts:
        plan = plan_sheet(images, cell_size=cell_size, border=border, row_spacing=row_spacing,
                          max_width=max_width, max_height=max_height, font_size=font_size,
                          header=session_header(folder, images))
        result.pages, result.grids = len(plan.pages), plan.grids
        result.notes += plan.notes
        for ext in sheet_exts:
            names = sheet_names(len(plan.pages), ext)
            params = {"quality": jpeg_quality} if ext == "jpg" else \
                     {"compress_level": 6} if ext == "png" else {"quality": 90}
            for page, name in zip(plan.pages, names, strict=True):
                result.sheets.append(_save(render_page(page, font_size), os.path.join(folder, name),
                                           format=SHEET_FORMATS[ext], **params))
            _remove_stale_sheets(folder, ext, names)

    if anim_ext:
        box = fit_box(dominant_size(images), animation_size)
        frames = LazyFrames(lambda i: letterboxed(images[i].path, box), len(images), box)
        params = {"save_all": True, "duration": frame_ms, "loop": 0}
        params.update({"quality": 80, "method": 0} if anim_ext == "webp" else {"optimize": False})
        result.animation = _save(frames, os.path.join(folder, f"{ANIMATION_STEM}.{anim_ext}"),
                                 format=ANIMATION_FORMATS[anim_ext], **params)
    return result


def _save(image: Image.Image, path: str, **params) -> str:
    """Pillow encodes straight into a temp file that then replaces ``path``: sheets and
    animations are derived files (images and sidecars are published never replacing)."""
    return replace_bytes(lambda f: image.save(f, **params), path)


def _check_range(name: str, value: int, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name}={value!r}: expected an integer from {low} to {high}")
