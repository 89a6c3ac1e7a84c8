"""Session contact sheets and animations: composites of a session folder's images.

Pure module (Pillow + stdlib). Placement comes from the sidecars (``NNN_seed_S.json``), never from
file names: one grid per seed (and expansion), rows = prompts, columns = variations. The plan
(where every cell and label goes) is computed first from sidecars and image headers only; pages
are then rendered one at a time, thumbnails made one image at a time, so memory stays at one
full-size image plus one page whatever the session size.

Files written into the session folder (derived files: replaced atomically, never an image or a
sidecar): ``contact_sheet.<ext>`` for a one-page sheet, ``contact_sheet_01.<ext>``,
``contact_sheet_02.<ext>``, ... when the sheet needs several pages; ``session.webp`` or
``session.gif`` for the animation.
"""
from __future__ import annotations

import hashlib
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from typing import BinaryIO, Callable, Iterable, Sequence

from PIL import Image, ImageDraw, ImageFont

from .atomic import discard, fsync_dir, open_temp
from .session import NUMBERED_FILE
from .sidecar import GenerationParamsError, Sidecar, read_sidecar

SHEET_STEM = "contact_sheet"
ANIMATION_STEM = "session"
SHEET_FORMATS = {"jpg": "JPEG", "png": "PNG", "webp": "WEBP"}
ANIMATION_FORMATS = {"webp": "WEBP", "gif": "GIF"}

DEFAULT_CELL_SIZE = 256
DEFAULT_BORDER = 6
DEFAULT_ROW_SPACING = 10
DEFAULT_MAX_WIDTH = 2400
DEFAULT_MAX_HEIGHT = 4096
DEFAULT_FONT_SIZE = 14
DEFAULT_FRAME_MS = 500
DEFAULT_ANIMATION_SIZE = 384
MIN_CELL_SIZE = 48            # cells shrink to fit max_width down to this, then columns wrap into bands
MIN_PAGE_WIDTH = 480          # room for the header and prompt labels of narrow grids
MAX_LABEL_LINES = 3           # column labels wrap onto at most this many lines

BACKGROUND = (32, 32, 32)
LETTERBOX = (0, 0, 0)         # fills the cell around an image of another aspect ratio
EMPTY_CELL = (64, 64, 64)     # a grid position with no image (session still running, or missing)
TEXT = (235, 235, 235)
MUTED = (160, 160, 160)
SEPARATOR = " · "

_OWN_OUTPUT = re.compile(rf"^(?:{SHEET_STEM}(?:_\d+)?|{ANIMATION_STEM})\.[a-z]+$", re.IGNORECASE)
_SPACES = re.compile(r"\s+")


# ----------------------------------------------------------------------------- data

@dataclass(frozen=True)
class SessionImage:
    """One image of the session and what its sidecar says about its place."""
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


@dataclass(frozen=True)
class Skipped:
    name: str
    reason: str

    def __str__(self) -> str:
        return f"{self.name}: {self.reason}"


@dataclass(frozen=True)
class TextItem:
    text: str
    x: int
    y: int
    fill: tuple[int, int, int] = TEXT
    title: bool = False                     # drawn with the larger title font


@dataclass(frozen=True)
class Cell:
    """A grid position on a page; ``image`` is None where the session has no image (yet)."""
    box: tuple[int, int, int, int]          # left, top, width, height
    seed_index: int
    prompt_index: int
    variation_index: int
    image: SessionImage | None


@dataclass
class Page:
    width: int
    height: int
    cells: list[Cell] = field(default_factory=list)
    texts: list[TextItem] = field(default_factory=list)


@dataclass(frozen=True)
class Grid:
    """One seed's grid: which prompts are its rows, how many variation columns it has."""
    title: str
    seed_index: int
    seed: int | None
    prompt_indexes: tuple[int, ...]
    columns: int
    column_labels: tuple[str, ...]


@dataclass
class SheetPlan:
    pages: list[Page]
    grids: list[Grid]
    cell_size: tuple[int, int]
    notes: list[str]


@dataclass
class ComposeResult:
    folder: str
    sheets: list[str] = field(default_factory=list)     # written paths, page order (per format)
    animation: str | None = None
    pages: int = 0
    images: int = 0                                      # images with a usable sidecar
    skipped: list[Skipped] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    grids: list[Grid] = field(default_factory=list)

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


# ----------------------------------------------------------------------------- reading

def _session_image(sidecar: Sidecar, name: str, size: tuple[int, int]) -> SessionImage:
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
        expansion_id=oom.expansion_id, source_name=sidecar.source_name,
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
            images.append(_session_image(sidecar, name, size))
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


# ----------------------------------------------------------------------------- text

@lru_cache(maxsize=8)
def load_font(size: int):
    """DejaVu Sans when the system has it (wide Unicode coverage), else Pillow's built-in font
    (Aileron, Latin only) at that size, else Pillow's fixed bitmap font. Nothing is downloaded."""
    try:
        return ImageFont.truetype("DejaVuSans.ttf", size)   # Pillow also searches system font dirs
    except (OSError, ImportError):
        pass
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, ImportError, OSError):               # Pillow < 10.1 or no FreeType
        return ImageFont.load_default()


def title_size(font_size: int) -> int:
    return round(font_size * 1.3)


def line_height(font) -> int:
    top_bottom = font.getbbox("Ag|")
    return int(top_bottom[3]) + 3


def _clean(text: str) -> str:
    return _SPACES.sub(" ", text).strip()


def shorten(text: str, font, max_px: int) -> str:
    """``text`` on one line, cut with an ellipsis to fit ``max_px`` pixels."""
    text = _clean(text)
    if max_px <= 0:
        return ""
    if font.getlength(text) <= max_px:
        return text
    lo, hi = 0, len(text)
    while lo < hi:                                   # longest prefix that fits with the ellipsis
        mid = (lo + hi + 1) // 2
        if font.getlength(text[:mid].rstrip() + "…") <= max_px:
            lo = mid
        else:
            hi = mid - 1
    return text[:lo].rstrip() + "…" if lo else ""


def wrap(text: str, font, max_px: int, max_lines: int) -> list[str]:
    """Greedy word wrap; the last line is shortened with an ellipsis when text is left over."""
    words = _clean(text).split(" ")
    lines: list[str] = []
    current = ""
    for i, word in enumerate(words):
        candidate = f"{current} {word}".strip()
        if font.getlength(candidate) <= max_px or not current:
            current = candidate
            continue
        lines.append(current)
        current = word
        if len(lines) == max_lines - 1:
            current = " ".join(words[i:])
            break
    if current:
        lines.append(current)
    return [shorten(line, font, max_px) for line in lines[:max_lines]] if text.strip() else []


def wrap_parts(parts: Sequence[str], font, max_px: int, max_lines: int) -> list[str]:
    """Lines of ``parts`` joined by the separator, breaking between parts first (a value stays
    on one line when it fits) and inside a part only when it is wider than a line."""
    lines: list[str] = []
    for part in (_clean(p) for p in parts):
        if not part:
            continue
        joined = f"{lines[-1]}{SEPARATOR}{part}" if lines else part
        if lines and font.getlength(joined) <= max_px:
            lines[-1] = joined
        elif font.getlength(part) <= max_px:
            if lines:
                lines[-1] += SEPARATOR.rstrip()
            lines.append(part)
        else:
            if lines:
                lines[-1] += SEPARATOR.rstrip()
            lines += wrap(part, font, max_px, max_lines)
    if len(lines) > max_lines:
        lines = lines[:max_lines - 1] + [shorten(" ".join(lines[max_lines - 1:]) + " …", font, max_px)]
    return [shorten(line, font, max_px) for line in lines]


# ----------------------------------------------------------------------------- planning

def dominant_size(images: Sequence[SessionImage]) -> tuple[int, int]:
    """The most common image size (first seen wins a tie): it decides the cell's aspect ratio."""
    counts = Counter(im.size for im in images)
    best = max(counts.values())
    return next(im.size for im in images if counts[im.size] == best)


def fit_box(size: tuple[int, int], longest: int) -> tuple[int, int]:
    w, h = size
    scale = longest / max(w, h)
    return max(1, round(w * scale)), max(1, round(h * scale))


@dataclass
class _Group:
    key: tuple[str, int]
    images: dict[tuple[int, int], SessionImage]
    columns: int
    seed: int | None
    source_name: str


def _groups(images: Sequence[SessionImage], notes: list[str]) -> list[_Group]:
    """One group per (expansion, seed_index) in order of first appearance; within a group the
    newest image (highest task_id) wins a grid position that was generated twice."""
    groups: dict[tuple[str, int], _Group] = {}
    for im in images:
        key = (im.expansion_id, im.seed_index)
        g = groups.get(key)
        if g is None:
            g = groups[key] = _Group(key, {}, 0, im.seed, im.source_name)
        pos = (im.prompt_index, im.variation_index)
        if pos in g.images:
            notes.append(f"{g.images[pos].name} and {im.name} share seed {im.seed_index + 1}, prompt "
                         f"{im.prompt_index + 1}, variation {im.variation_index + 1}: the sheet shows "
                         f"the newer {im.name}")
        g.images[pos] = im
        g.columns = max(g.columns, im.variations_per_prompt)
    return list(groups.values())


def _column_labels(g: _Group) -> tuple[list[str], list[str]]:
    """(label per column, names whose value changes inside a column). Columns are labelled with
    the values that are constant down a column and differ between columns; values that change
    within a column (random draws, cycle mode) go under each cell instead."""
    names: list[str] = []
    for im in g.images.values():
        names += [n for n in im.variation_values if n not in names]
    per_column: list[dict[str, set]] = [{n: set() for n in names} for _ in range(g.columns)]
    for (_, col), im in g.images.items():
        for n in names:
            per_column[col][n].add(im.variation_values.get(n, ""))
    in_cell = [n for n in names if any(len(c[n]) > 1 for c in per_column)]
    across = [n for n in names if n not in in_cell
              and len({next(iter(c[n])) for c in per_column if c[n]}) > 1]
    labels = []
    for col, c in enumerate(per_column):
        text = SEPARATOR.join(next(iter(c[n])) for n in across if c[n] and next(iter(c[n])))
        labels.append(text or (f"#{col + 1}" if g.columns > 1 else ""))
    return labels, in_cell


def plan_sheet(images: Sequence[SessionImage], *, cell_size: int = DEFAULT_CELL_SIZE,
               border: int = DEFAULT_BORDER, row_spacing: int = DEFAULT_ROW_SPACING,
               max_width: int = DEFAULT_MAX_WIDTH, max_height: int = DEFAULT_MAX_HEIGHT,
               font_size: int = DEFAULT_FONT_SIZE, header: str = "") -> SheetPlan:
    """Where every cell and label goes, page by page. Needs sidecars and image sizes only."""
    notes: list[str] = []
    font = load_font(font_size)
    lh = line_height(font)
    title_font = load_font(title_size(font_size))
    title_lh = line_height(title_font)
    groups = _groups(images, notes)
    several_sources = len({g.key[0] for g in groups}) > 1

    cell_w, cell_h = fit_box(dominant_size(images), cell_size)
    widest = max(g.columns for g in groups)
    usable = max_width - border
    if border + widest * (cell_w + border) > max_width:
        longest = max(MIN_CELL_SIZE, min(cell_size, int(cell_size * (usable / widest - border) / cell_w)))
        cell_w, cell_h = fit_box((cell_w, cell_h), longest)
        notes.append(f"{widest} columns do not fit {max_width} px at cell size {cell_size}: "
                     f"cells are {cell_w}x{cell_h}")
    per_band = max(1, usable // (cell_w + border))
    page_width = max(border + min(widest, per_band) * (cell_w + border), min(max_width, MIN_PAGE_WIDTH))
    text_width = page_width - 2 * border

    pages: list[Page] = []
    grids: list[Grid] = []
    page = Page(page_width, 0)
    y = 0
    rows_on_page = 0                          # rows of the current block on the current page

    def new_page() -> None:
        nonlocal page, y, rows_on_page
        page = Page(page_width, 0)
        pages.append(page)
        y = border + (lh + border if header else 0)
        rows_on_page = 0

    def block_head(title: str, wrapped: list[list[str]], label_h: int) -> None:
        nonlocal y
        page.texts.append(TextItem(shorten(title, title_font, text_width), border, y, TEXT, True))
        y += title_lh
        for i, lines in enumerate(wrapped):
            for k, line in enumerate(lines):
                page.texts.append(TextItem(line, border + i * (cell_w + border), y + k * lh, MUTED))
        y += label_h + border

    for g in groups:
        labels, in_cell = _column_labels(g)
        rows = sorted({p for p, _ in g.images})
        base_prompts = {p: im.base_prompt for (p, _), im in sorted(g.images.items(), reverse=True)}
        seed_text = f"seed {g.seed}" if g.seed is not None else f"seed #{g.key[1] + 1}"
        title = seed_text + (f"{SEPARATOR}{g.source_name}" if several_sources and g.source_name else "")
        grids.append(Grid(title, g.key[1], g.seed, tuple(rows), g.columns, tuple(labels)))
        caption_h = lh if in_cell else 0
        row_h = lh + cell_h + caption_h + row_spacing
        for band_start in range(0, g.columns, per_band):
            cols = range(band_start, min(g.columns, band_start + per_band))
            band_title = title + (f"{SEPARATOR}variations {cols[0] + 1}-{cols[-1] + 1}"
                                  if len(cols) < g.columns else "")
            wrapped = [wrap_parts(labels[c].split(SEPARATOR), font, cell_w, MAX_LABEL_LINES) for c in cols]
            label_h = max(len(w) for w in wrapped) * lh
            head_h = title_lh + label_h + border
            if not pages or (page.cells and y + head_h + row_h > max_height):
                new_page()
            block_head(band_title, wrapped, label_h)
            rows_on_page = 0
            for p in rows:
                if rows_on_page and y + row_h > max_height:
                    new_page()
                    block_head(band_title + " (continued)", wrapped, label_h)
                page.texts.append(TextItem(shorten(f"{p + 1}. {base_prompts[p]}", font, text_width),
                                           border, y))
                y += lh
                for i, c in enumerate(cols):
                    im = g.images.get((p, c))
                    box = (border + i * (cell_w + border), y, cell_w, cell_h)
                    page.cells.append(Cell(box, g.key[1], p, c, im))
                    if im is not None and in_cell:
                        caption = SEPARATOR.join(im.variation_values.get(n, "") for n in in_cell)
                        page.texts.append(TextItem(shorten(caption, font, cell_w), box[0],
                                                   y + cell_h + 1, MUTED))
                y += cell_h + caption_h + row_spacing
                rows_on_page += 1
                page.height = max(page.height, y - row_spacing + border)
            y += border                               # space between blocks
    if any(p.height > max_height for p in pages):
        notes.append(f"a single row is taller than max_height={max_height}: its page is taller")
    if header:
        for i, p in enumerate(pages):
            suffix = f"page {i + 1}/{len(pages)}{SEPARATOR}" if len(pages) > 1 else ""
            p.texts.insert(0, TextItem(suffix + shorten(header, font, text_width - int(font.getlength(suffix))),
                                       border, border))
    return SheetPlan(pages, grids, (cell_w, cell_h), notes)


# ----------------------------------------------------------------------------- rendering

def fit_inside(size: tuple[int, int], box: tuple[int, int]) -> tuple[int, int]:
    """The largest size with ``size``'s aspect ratio inside ``box`` (never distorted)."""
    scale = min(box[0] / size[0], box[1] / size[1])
    return max(1, min(box[0], round(size[0] * scale))), max(1, min(box[1], round(size[1] * scale)))


def thumbnail(path: str, box: tuple[int, int]) -> Image.Image:
    """The image scaled to fit inside ``box`` (aspect kept), RGB, transparency flattened onto the
    letterbox colour. Only this one full-size decode is alive at a time."""
    with Image.open(path) as im:
        target = fit_inside(im.size, box)
        im.draft("RGB", target)                   # JPEG decodes at reduced scale; no-op for PNG
        if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
            rgba = im.convert("RGBA")
            im = Image.new("RGB", rgba.size, LETTERBOX)
            im.paste(rgba, mask=rgba.getchannel("A"))
            del rgba
        elif im.mode != "RGB":
            im = im.convert("RGB")
        if im.size == target:
            return im.copy()
        shrinking = target[0] < im.width
        # reducing_gap=1: an integer box reduction first, then Lanczos on the small image (4x
        # faster than Lanczos on the full image, no visible difference at thumbnail size)
        return im.resize(target, Image.Resampling.LANCZOS if shrinking else Image.Resampling.BICUBIC,
                         reducing_gap=1.0 if shrinking else None)


def letterboxed(path: str, box: tuple[int, int]) -> Image.Image:
    """A ``box``-sized frame with the image centred in it, letterbox colour around."""
    thumb = thumbnail(path, box)
    if thumb.size == box:
        return thumb
    frame = Image.new("RGB", box, LETTERBOX)
    frame.paste(thumb, ((box[0] - thumb.width) // 2, (box[1] - thumb.height) // 2))
    return frame


def render_page(page: Page, font_size: int = DEFAULT_FONT_SIZE) -> Image.Image:
    sheet = Image.new("RGB", (page.width, page.height), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    fonts = {False: load_font(font_size), True: load_font(title_size(font_size))}
    for cell in page.cells:
        x, y, w, h = cell.box
        if cell.image is None:
            draw.rectangle((x, y, x + w - 1, y + h - 1), fill=EMPTY_CELL)
            continue
        sheet.paste(letterboxed(cell.image.path, (w, h)), (x, y))
    for t in page.texts:
        draw.text((t.x, t.y), t.text, font=fonts[t.title], fill=t.fill)
    return sheet


class _LazyFrames(Image.Image):
    """An 'animated image' whose frames are rendered on seek: lets Pillow's animation writers
    pull frames one at a time instead of getting a list of every frame up front."""

    def __init__(self, render: Callable[[int], Image.Image], count: int, size: tuple[int, int]):
        super().__init__()
        self._render = render
        self._mode = "RGB"
        self._size = size
        self.n_frames = count
        self.is_animated = count > 1
        self._frame = -1
        self.seek(0)

    def seek(self, frame: int) -> None:
        if not 0 <= frame < self.n_frames:
            raise EOFError("no more frames")          # how Pillow's frame iterators stop
        if frame != self._frame:
            self.im = self._render(frame).im
            self._frame = frame

    def tell(self) -> int:
        return self._frame


# ----------------------------------------------------------------------------- writing

def atomic_save(folder: str, final_name: str, write: Callable[[BinaryIO], None]) -> str:
    """Runs ``write(file)`` on a hidden temp file in ``folder``, fsyncs it and renames it over
    ``final_name``. Replacing is right here and only here: sheets and animations are derived
    files; images and sidecars are published by the saver with no-replace links."""
    fd, tmp = open_temp(folder)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        final = os.path.join(folder, final_name)
        os.replace(tmp, final)
    except BaseException:
        discard(tmp)
        raise
    fsync_dir(folder)
    return final


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


def _session_header(folder: str, images: Sequence[SessionImage]) -> str:
    """'2025-10-12 14:30 · prompt.yaml · 72 images' for a YYYY/MM/DD/HHMM session folder."""
    parts = os.path.normpath(os.path.abspath(folder)).split(os.sep)[-4:]
    if len(parts) == 4 and re.fullmatch(r"\d{4}/\d{2}/\d{2}/\d{4}", "/".join(parts)):
        where = f"{parts[0]}-{parts[1]}-{parts[2]} {parts[3][:2]}:{parts[3][2:]}"
    else:
        where = parts[-1]
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
                          header=_session_header(folder, images))
        result.pages, result.grids = len(plan.pages), plan.grids
        result.notes += plan.notes
        for ext in sheet_exts:
            names = sheet_names(len(plan.pages), ext)
            for page, name in zip(plan.pages, names):
                rendered = render_page(page, font_size)
                params = {"quality": jpeg_quality} if ext == "jpg" else \
                         {"compress_level": 6} if ext == "png" else {"quality": 90}
                result.sheets.append(atomic_save(
                    folder, name, lambda f: rendered.save(f, format=SHEET_FORMATS[ext], **params)))
                del rendered
            _remove_stale_sheets(folder, ext, names)

    if anim_ext:
        box = fit_box(dominant_size(images), animation_size)
        frames = _LazyFrames(lambda i: letterboxed(images[i].path, box), len(images), box)
        params = {"save_all": True, "duration": frame_ms, "loop": 0}
        params.update({"quality": 80, "method": 0} if anim_ext == "webp" else {"optimize": False})
        result.animation = atomic_save(folder, f"{ANIMATION_STEM}.{anim_ext}",
                                       lambda f: frames.save(f, format=ANIMATION_FORMATS[anim_ext], **params))
    return result


def _check_range(name: str, value: int, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name}={value!r}: expected an integer from {low} to {high}")
