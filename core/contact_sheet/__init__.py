"""Session contact sheets and animations: composites of a session folder's images.

Pure package (Pillow + stdlib). Placement comes from the sidecars (``NNN_seed_S.json``), never from
file names: one grid per seed (and expansion), rows = prompts, columns = variations. The plan
(where every cell and label goes) is computed first from sidecars and image headers only; pages
are then rendered one at a time, thumbnails made one image at a time, so memory stays at one
full-size image plus one page whatever the session size.

Files written into the session folder (derived files: replaced atomically, never an image or a
sidecar): ``contact_sheet.<ext>`` for a one-page sheet, ``contact_sheet_01.<ext>``,
``contact_sheet_02.<ext>``, ... when the sheet needs several pages; ``session.webp`` or
``session.gif`` for the animation.

Modules, by job: ``scan`` (which images a folder holds and where each goes, from its sidecar),
``text`` (fonts, shortening, wrapping), ``plan`` (pages, cells and labels), ``render`` (pixels:
thumbnails, pages, animation frames), ``compose`` (options, writing the files).
"""
from .compose import (
                      ANIMATION_FORMATS,
                      DEFAULT_ANIMATION_SIZE,
                      DEFAULT_FRAME_MS,
                      SHEET_FORMATS,
                      ComposeResult,
                      compose_session,
                      session_header,
                      sheet_names,
)
from .plan import (
                      DEFAULT_BORDER,
                      DEFAULT_CELL_SIZE,
                      DEFAULT_FONT_SIZE,
                      DEFAULT_MAX_HEIGHT,
                      DEFAULT_MAX_WIDTH,
                      DEFAULT_ROW_SPACING,
                      MIN_CELL_SIZE,
                      Cell,
                      Grid,
                      Page,
                      SheetPlan,
                      TextItem,
                      plan_sheet,
)
from .render import BACKGROUND, EMPTY_CELL, LETTERBOX, LazyFrames, fit_inside, letterboxed, render_page, thumbnail
from .scan import SessionImage, Skipped, is_own_output, scan_session, session_fingerprint
from .text import load_font, shorten, wrap, wrap_parts

__all__ = [
    "ANIMATION_FORMATS", "BACKGROUND", "DEFAULT_ANIMATION_SIZE", "DEFAULT_BORDER", "DEFAULT_CELL_SIZE",
    "DEFAULT_FONT_SIZE", "DEFAULT_FRAME_MS", "DEFAULT_MAX_HEIGHT", "DEFAULT_MAX_WIDTH",
    "DEFAULT_ROW_SPACING", "EMPTY_CELL", "LETTERBOX", "MIN_CELL_SIZE", "SHEET_FORMATS", "Cell", "ComposeResult",
    "Grid", "LazyFrames", "Page", "SessionImage", "SheetPlan", "Skipped", "TextItem", "compose_session",
    "fit_inside", "is_own_output", "letterboxed", "load_font", "plan_sheet", "render_page",
    "scan_session", "session_fingerprint", "session_header", "sheet_names", "shorten", "thumbnail",
    "wrap", "wrap_parts",
]
