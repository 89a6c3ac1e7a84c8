"""Path confinement: text from a user, a workflow, a YAML file or a sidecar -> a path that stays
inside a base folder (the output directory, input/prompt_media, models/...).

Every such text goes through :func:`relative_parts` (NUL bytes, absolute paths, drive letters,
UNC paths, '..'; '/' and '\\' both separate) and the joined path through :func:`ensure_inside`
on its real location (symlinks resolved). Nothing here creates or reads a file.
"""
from __future__ import annotations

import os
import re

_DRIVE = re.compile(r"^[A-Za-z]:")
_SEPARATORS = re.compile(r"[\\/]+")


class PathError(ValueError):
    """Text naming a path that would leave its base folder, or is malformed; the message names
    the field."""


def relative_parts(text: str, what: str, where: str) -> list[str]:
    """The folder parts of ``text``, which must name something inside ``where``; refuses NUL
    bytes, absolute paths, drive letters (``C:\\x``, ``C:x``), UNC paths and '..' with a
    message naming ``what``. '/' and '\\' are both separators; '.' and empty parts drop out."""
    if not isinstance(text, str):
        raise PathError(f"{what} must be text, got {type(text).__name__}")
    if "\0" in text:
        raise PathError(f"{what} {text!r} contains a NUL byte")
    text = text.strip()
    if text.startswith(("/", "\\")) or _DRIVE.match(text) or os.path.isabs(text):
        raise PathError(f"{what} {text!r} is absolute; it must be relative to {where}")
    parts = [p for p in _SEPARATORS.split(text) if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise PathError(f"{what} {text!r} contains '..'; it must stay inside {where}")
    return parts


def ensure_inside(base: str, path: str, what: str = "path") -> str:
    """``path`` (absolute) if its real location (symlinks resolved) is inside ``base``; else
    an error naming ``what``."""
    real_base = os.path.realpath(base)
    real = os.path.realpath(path)
    if os.path.commonpath([real_base, real]) != real_base:
        raise PathError(f"{what} resolves to {real}, outside {real_base} "
                        "(a symlink pointing out?)")
    return os.path.abspath(path)


def path_inside(base: str, text: str, what: str, *, where: str | None = None,
                absolute_ok: bool = False, folder: bool = False) -> str:
    """The absolute path ``text`` names inside ``base``: relative to it, or (``absolute_ok``)
    an absolute path inside it. ``folder``: the text must name a folder below ``base``, not
    ``base`` itself. ``where`` describes ``base`` in messages (default: its path). The path
    need not exist."""
    where = where or base
    stripped = text.strip() if isinstance(text, str) else text
    if absolute_ok and isinstance(stripped, str) and os.path.isabs(stripped):
        if "\0" in stripped:
            raise PathError(f"{what} {text!r} contains a NUL byte")
        if ".." in _SEPARATORS.split(stripped):
            raise PathError(f"{what} {stripped!r} contains '..'; it must stay inside {where}")
        path = stripped
    else:
        parts = relative_parts(text, what, where)
        if folder and not parts:
            raise PathError(f"{what} {text!r} names no folder")
        path = os.path.join(base, *parts)
    return ensure_inside(base, path, what=f"{what} {stripped!r}")
