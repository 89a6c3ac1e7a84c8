"""Pixels: thumbnails, rendered pages and animation frames (one full-size image alive at a time)."""
from __future__ import annotations

from collections.abc import Callable

from PIL import Image, ImageDraw

from .plan import DEFAULT_FONT_SIZE, Page
from .text import load_font, title_size

BACKGROUND = (32, 32, 32)
LETTERBOX = (0, 0, 0)         # fills the cell around an image of another aspect ratio
EMPTY_CELL = (64, 64, 64)     # a grid position with no image (session still running, or missing)


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


class LazyFrames(Image.Image):
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
