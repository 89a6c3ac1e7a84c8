"""Label text on a sheet: the font, and text shortened or wrapped to a width in pixels."""
from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

from PIL import ImageFont

SEPARATOR = " · "
_SPACES = re.compile(r"\s+")


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
