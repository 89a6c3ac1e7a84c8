"""PromptMediaContactSheet: composes a session folder's contact sheet (and animation) and outputs
the sheet pages as an IMAGE batch. The composing itself is core.contact_sheet."""
from __future__ import annotations

import logging
import os
from itertools import islice

import numpy as np
import torch
from PIL import Image

import folder_paths

from ..core.contact_sheet import (
    BACKGROUND,
    DEFAULT_BORDER,
    DEFAULT_CELL_SIZE,
    DEFAULT_FONT_SIZE,
    DEFAULT_FRAME_MS,
    DEFAULT_MAX_HEIGHT,
    DEFAULT_MAX_WIDTH,
    DEFAULT_ROW_SPACING,
    compose_session,
    session_fingerprint,
)
from ..core.paths import PathError
from ..core.session import DEFAULT_ROOT, session_folder_path, session_folders
from .host import CATEGORY

log = logging.getLogger(__name__)

NO_SESSIONS = "(no sessions yet)"
SHEET_FORMATS = ("jpg", "png", "jpg+png")
ANIMATIONS = ("none", "webp", "gif")
RECENT_LIMIT = 100


def _recent_sessions() -> list[str]:
    """Recent sessions under output/<default root>, relative to the output directory."""
    output_dir = folder_paths.get_output_directory()
    folders = islice(session_folders(os.path.join(output_dir, *DEFAULT_ROOT.split("/"))), RECENT_LIMIT)
    return [os.path.relpath(f, output_dir).replace(os.sep, "/") for f in folders] or [NO_SESSIONS]


def _folder(session: str, folder: str | None) -> str:
    """The chosen session folder (absolute); ``folder`` text wins over the combo."""
    text = (folder or "").strip() or ("" if session == NO_SESSIONS else session)
    if not text:
        raise PathError("no session chosen: pick one in 'session' or give 'folder' "
                        "(a folder inside ComfyUI's output directory)")
    return session_folder_path(folder_paths.get_output_directory(), text)


def _load_pages(paths: list[str]) -> torch.Tensor:
    """Pages as one [B,H,W,3] float batch; shorter/narrower pages are padded with the sheet's
    background colour so they stack (pages are loaded one at a time)."""
    sizes = []
    for p in paths:
        with Image.open(p) as im:
            sizes.append(im.size)
    width, height = max(w for w, _ in sizes), max(h for _, h in sizes)
    batch = torch.empty((len(paths), height, width, 3), dtype=torch.float32)
    background = torch.tensor(BACKGROUND, dtype=torch.float32) / 255.0
    for i, p in enumerate(paths):
        with Image.open(p) as im:
            pixels = torch.from_numpy(np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0)
        batch[i] = background
        batch[i, :pixels.shape[0], :pixels.shape[1]] = pixels
    return batch


class PromptMediaContactSheet:
    DESCRIPTION = ("Composes a session folder into contact_sheet.jpg (one grid per seed: rows = "
                   "prompts, columns = variations, labelled) and optionally session.webp/.gif, "
                   "written into the folder; outputs the sheet pages as images.")
    CATEGORY = CATEGORY
    FUNCTION = "compose"
    OUTPUT_NODE = True
    RETURN_TYPES = ("IMAGE", "STRING", "STRING")
    RETURN_NAMES = ("sheet", "summary", "folder")
    OUTPUT_TOOLTIPS = (
        "The contact sheet pages (first 'output_pages'), padded to one size: preview or post-process.",
        "What was written, which files were skipped and why.",
        "The session folder that was composed (absolute path).",
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "session": (_recent_sessions(), {
                    "tooltip": "A recent session under output/collections/images (newest first). "
                               "Ignored when 'folder' is given."}),
                "sheet_format": (list(SHEET_FORMATS), {
                    "default": "jpg", "tooltip": "contact_sheet.jpg, .png, or both."}),
                "animation": (list(ANIMATIONS), {
                    "default": "none",
                    "tooltip": "Also write session.webp (animated) or session.gif: every image in count order."}),
                "cell_size": ("INT", {
                    "default": DEFAULT_CELL_SIZE, "min": 32, "max": 1024, "step": 8,
                    "tooltip": "Longest side of a cell in pixels; cells shrink when the columns do not "
                               "fit max_width."}),
                "border": ("INT", {"default": DEFAULT_BORDER, "min": 0, "max": 64,
                                   "tooltip": "Space between cells and around the sheet, pixels."}),
                "row_spacing": ("INT", {"default": DEFAULT_ROW_SPACING, "min": 0, "max": 256,
                                        "tooltip": "Extra space between prompt rows, pixels."}),
                "max_width": ("INT", {"default": DEFAULT_MAX_WIDTH, "min": 256, "max": 16000, "step": 16,
                                      "tooltip": "Widest sheet in pixels; wider grids shrink their cells, "
                                                 "then wrap their columns into bands."}),
                "max_height": ("INT", {"default": DEFAULT_MAX_HEIGHT, "min": 256, "max": 16000, "step": 16,
                                       "tooltip": "Tallest page in pixels; longer sessions are split into "
                                                  "contact_sheet_01, _02, ..."}),
                "font_size": ("INT", {"default": DEFAULT_FONT_SIZE, "min": 8, "max": 64,
                                      "tooltip": "Label font size (seed titles are 1.3x)."}),
                "frame_ms": ("INT", {"default": DEFAULT_FRAME_MS, "min": 20, "max": 10000, "step": 10,
                                     "tooltip": "Duration of each animation frame, milliseconds."}),
                "output_pages": ("INT", {"default": 4, "min": 1, "max": 64,
                                         "tooltip": "How many pages go to the 'sheet' output (all pages "
                                                    "are written to the folder)."}),
            },
            "optional": {
                "folder": ("STRING", {
                    "default": "",
                    "tooltip": "A session folder inside ComfyUI's output directory (relative to it, or "
                               "absolute). When not empty it is used instead of 'session'."}),
            },
        }

    @classmethod
    def VALIDATE_INPUTS(cls, session, folder=""):
        # naming 'session' here turns off the combo check: an older session not in the recent
        # list is fine, and a linked 'folder' makes the combo irrelevant
        if folder is None:                       # linked: checked when it runs
            return True
        try:
            _folder(session, folder)
        except PathError as e:
            return str(e)
        return True

    @classmethod
    def IS_CHANGED(cls, session, folder=None, **_options):
        try:
            return session_fingerprint(_folder(session, folder))
        except (PathError, OSError):
            return ""                            # the run reports the error

    def compose(self, session, sheet_format, animation, cell_size, border, row_spacing, max_width,
                max_height, font_size, frame_ms, output_pages, folder=""):
        path = _folder(session, folder)
        formats = sheet_format.split("+")
        result = compose_session(path, sheet=True, animation=animation != "none",
                                 sheet_format=formats, animation_format=animation if animation != "none" else "webp",
                                 cell_size=cell_size, border=border, row_spacing=row_spacing,
                                 max_width=max_width, max_height=max_height, font_size=font_size,
                                 frame_ms=frame_ms)
        summary = result.summary()
        if not result.sheets:
            raise ValueError(f"{path}: {summary}")
        if result.skipped:
            log.warning("[Prompt Media] contact sheet of %s: %s", path, summary)
        else:
            log.info("[Prompt Media] contact sheet of %s: %s", path, summary)
        preview_ext = "png" if "png" in formats else formats[0]
        pages = [p for p in result.sheets if p.endswith("." + preview_ext)]
        subfolder = os.path.relpath(path, folder_paths.get_output_directory())
        ui = [{"filename": os.path.basename(p), "subfolder": subfolder, "type": "output"}
              for p in pages[:output_pages]]
        return {"ui": {"images": ui}, "result": (_load_pages(pages[:output_pages]), summary, path)}


NODE_CLASS_MAPPINGS = {"PromptMediaContactSheet": PromptMediaContactSheet}
NODE_DISPLAY_NAME_MAPPINGS = {"PromptMediaContactSheet": "Session Contact Sheet"}
