"""Where every cell and label of a contact sheet goes, page by page (no pixels yet)."""
from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from .scan import SessionImage
from .text import SEPARATOR, line_height, load_font, shorten, title_size, wrap_parts

DEFAULT_CELL_SIZE = 256
DEFAULT_BORDER = 6
DEFAULT_ROW_SPACING = 10
DEFAULT_MAX_WIDTH = 2400
DEFAULT_MAX_HEIGHT = 4096
DEFAULT_FONT_SIZE = 14
MIN_CELL_SIZE = 48            # cells shrink to fit max_width down to this, then columns wrap into bands
MIN_PAGE_WIDTH = 480          # room for the header and prompt labels of narrow grids
MAX_LABEL_LINES = 3           # column labels wrap onto at most this many lines

TEXT = (235, 235, 235)
MUTED = (160, 160, 160)


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


def grid_groups(images: Sequence[SessionImage], notes: list[str]) -> list[_Group]:
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


def column_labels(g: _Group) -> tuple[list[str], list[str]]:
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
    groups = grid_groups(images, notes)
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
        labels, in_cell = column_labels(g)
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
