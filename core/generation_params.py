"""The generation-params API: a JSON sidecar beside each image, with the same base name.

``image.png`` -> ``image.json``. Pure Python (no ComfyUI), so any tool can read and write
sidecars::

    json_path = save_generation_params("/out/001_seed_7.png", "prompt-media", "0.2.0",
                                       task_id=1, timestamp="20251013_150530",
                                       parameters={"prompt": "a lake", "seed": 7})
    params = load_generation_params("/out/001_seed_7.png")   # None when there is no sidecar

Sidecars are written atomically and never replace an existing file unless ``overwrite=True``.
"""
from __future__ import annotations

import json
import math
import os
from typing import Any

from .atomic import write_json

SIDECAR_EXTENSION = ".json"
MAX_SIDECAR_BYTES = 8 * 1024 * 1024      # a sidecar is a few KiB; refuse anything absurd

# required key -> accepted types (bool is excluded from int explicitly below)
REQUIRED_KEYS: dict[str, tuple[type, ...]] = {
    "plugin": (str,),
    "plugin_version": (str,),
    "timestamp": (str,),
    "task_id": (int, str),
    "parameters": (dict,),
}


class GenerationParamsError(ValueError):
    """A sidecar exists but cannot be used; ``str()`` names the file and the problem."""

    def __init__(self, path: str, message: str):
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}")


def get_params_path(image_path: str | os.PathLike) -> str:
    """The sidecar path of an image: same folder and base name, ``.json`` extension."""
    root, _ext = os.path.splitext(os.fspath(image_path))
    return root + SIDECAR_EXTENSION


def params_exist(image_path: str | os.PathLike) -> bool:
    return os.path.isfile(get_params_path(image_path))


def save_generation_params(output_path: str | os.PathLike, plugin_name: str, plugin_version: str,
                           task_id: int | str, timestamp: str, parameters: dict,
                           project_id: int | str | None = None, *, overwrite: bool = False,
                           **extra: Any) -> str:
    """Write the sidecar of ``output_path`` and return its path.

    Extra keyword arguments become top-level keys (``oom``, ``session``, ``image_sha256``,
    ``system``; an ``output`` dict replaces the default ``{filename, path}``). Raises
    FileExistsError when the sidecar exists and ``overwrite`` is false.
    """
    output_path = os.fspath(output_path)
    if not isinstance(parameters, dict):
        raise TypeError(f"parameters must be a dict, got {type(parameters).__name__}")
    data: dict[str, Any] = {
        "plugin": plugin_name,
        "plugin_version": plugin_version,
        "timestamp": timestamp,
        "task_id": task_id,
        "project_id": project_id,
        "parameters": parameters,
        "output": {"filename": os.path.basename(output_path), "path": os.path.abspath(output_path)},
    }
    data.update(extra)
    json_path = get_params_path(output_path)
    try:
        write_json(json_path, data, replace=overwrite)
    except FileExistsError:
        raise FileExistsError(f"{json_path}: a sidecar already exists (not replaced)") from None
    return json_path


def load_generation_params(image_path: str | os.PathLike) -> dict | None:
    """The sidecar of ``image_path`` (an image or the .json itself) as a dict.

    Returns None when there is no sidecar; raises GenerationParamsError when it is truncated,
    not JSON, not an object, too large, or a required key has the wrong type.
    """
    path = get_params_path(image_path)
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_SIDECAR_BYTES + 1)
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise GenerationParamsError(path, "is a directory, not a sidecar file") from None
    if len(raw) > MAX_SIDECAR_BYTES:
        raise GenerationParamsError(path, f"larger than {MAX_SIDECAR_BYTES // (1024 * 1024)} MiB; "
                                          "not a generation-params sidecar")
    try:
        data = json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant,
                          parse_float=_finite_float, parse_int=_bounded_int)
    except RecursionError:
        raise GenerationParamsError(path, "nested too deeply; not a generation-params sidecar") from None
    except _BadNumber as e:
        raise GenerationParamsError(path, f"contains {e}: not a usable number") from None
    except UnicodeDecodeError as e:
        raise GenerationParamsError(path, f"not UTF-8 text (byte {e.start})") from None
    except json.JSONDecodeError as e:
        body = raw.strip()
        truncated = not body or (body[:1] in (b"{", b"[") and body[-1:] not in (b"}", b"]"))
        what = "truncated or empty" if truncated else "not valid JSON"
        raise GenerationParamsError(path, f"{what} (line {e.lineno}, column {e.colno}: {e.msg})") from None
    validate_params(data, path)
    return data


class _BadNumber(ValueError):
    pass


MAX_INT_DIGITS = 100       # a seed has 20; Python refuses int() past 4300 digits with a ValueError


def _refuse_constant(name: str) -> Any:
    # json accepts NaN/Infinity, which no sidecar we write contains and no sampler accepts
    raise _BadNumber(name)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):               # 1e999 parses as inf
        raise _BadNumber(f"{text[:20]}{'...' if len(text) > 20 else ''} (out of range)")
    return value


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise _BadNumber(f"a {len(text)}-digit integer")
    return int(text)


def validate_params(data: Any, path: str = "<sidecar>") -> dict:
    """Check the shape every sidecar shares; raises GenerationParamsError naming ``path``."""
    if not isinstance(data, dict):
        raise GenerationParamsError(path, f"expected a JSON object, found {type(data).__name__}")
    for key, types in REQUIRED_KEYS.items():
        if key not in data:
            raise GenerationParamsError(path, f"missing required key {key!r}")
        value = data[key]
        if isinstance(value, bool) or not isinstance(value, types):
            names = " or ".join(t.__name__ for t in types)
            raise GenerationParamsError(path, f"{key!r} must be {names}, found {type(value).__name__}")
    return data
