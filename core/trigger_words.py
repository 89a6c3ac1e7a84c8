"""A LoRA's trigger words: from the files a LoRA manager keeps beside it, else from the
safetensors header (read with a bounded read; the tensors are never loaded).

Sources, first one with words wins:

1. ``NAME.civitai.info`` (A1111's Civitai Helper; Civitai's model-version JSON): ``trainedWords``;
2. ``NAME.metadata.json`` (ComfyUI-Lora-Manager): ``civitai.trainedWords``;
3. the header's ``modelspec.trigger_phrase`` (comma-separated);
4. kohya's ``ss_tag_frequency``: the tag(s) found in the most captions (at most
   :data:`MAX_TAGS`); a LoRA is usually captioned with its trigger word on every image.
"""
from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

MAX_HEADER_BYTES = 100 * 1024 * 1024     # the safetensors format's own header limit
MAX_INFO_BYTES = 8 * 1024 * 1024         # a .civitai.info / .metadata.json larger than this is not one
MAX_TAGS = 3
SIDE_FILES = ((".civitai.info", ("trainedWords",)), (".metadata.json", ("civitai", "trainedWords")))


@dataclass(frozen=True)
class TriggerWords:
    words: tuple[str, ...] = ()
    source: str | None = None            # the file name or header key they came from


def safetensors_metadata(path: str) -> dict[str, str]:
    """The ``__metadata__`` of a .safetensors file: its 8-byte length and JSON header only. Any
    other file, or a damaged header, gives {}."""
    try:
        with open(path, "rb") as f:
            size = int.from_bytes(f.read(8), "little")
            if not 2 <= size <= MAX_HEADER_BYTES:
                return {}
            raw = f.read(size)
        header = json.loads(raw) if len(raw) == size else None
    except (OSError, ValueError):         # ValueError covers bad JSON and bad UTF-8
        return {}
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    if not isinstance(meta, dict):
        return {}
    return {k: v for k, v in meta.items() if isinstance(k, str) and isinstance(v, str)}


def _phrases(values: Iterable) -> tuple[str, ...]:
    out: dict[str, None] = {}
    for value in values:
        if isinstance(value, str) and value.strip():
            out.setdefault(" ".join(value.split()))
    return tuple(out)


def _from_side_file(path: str, keys: tuple[str, ...]) -> tuple[str, ...]:
    try:
        if os.path.getsize(path) > MAX_INFO_BYTES:
            return ()
        with open(path, "rb") as f:
            value = json.loads(f.read())
    except (OSError, ValueError):
        return ()
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return _phrases(value) if isinstance(value, list) else ()


def _top_tags(tag_frequency: str) -> tuple[str, ...]:
    """The most frequent tag(s) of kohya's ``{folder: {tag: count}}`` JSON, summed over folders."""
    try:
        folders = json.loads(tag_frequency)
    except ValueError:
        return ()
    counts: dict[str, int] = {}
    for tags in folders.values() if isinstance(folders, dict) else ():
        for tag, n in tags.items() if isinstance(tags, dict) else ():
            if isinstance(n, int) and not isinstance(n, bool) and isinstance(tag, str) and tag.strip():
                counts[tag.strip()] = counts.get(tag.strip(), 0) + n
    if not counts:
        return ()
    top = max(counts.values())
    return _phrases([tag for tag, n in counts.items() if n == top][:MAX_TAGS])


def read_trigger_words(path: str) -> TriggerWords:
    """The trigger words of the LoRA file at ``path`` (see the module docstring)."""
    stem = os.path.splitext(path)[0]
    for suffix, keys in SIDE_FILES:
        words = _from_side_file(stem + suffix, keys)
        if words:
            return TriggerWords(words, os.path.basename(stem + suffix))
    if path.lower().endswith((".safetensors", ".sft")):
        meta = safetensors_metadata(path)
        phrase = meta.get("modelspec.trigger_phrase", "")
        words = _phrases(phrase.split(","))
        if words:
            return TriggerWords(words, "modelspec.trigger_phrase")
        words = _top_tags(meta.get("ss_tag_frequency", ""))
        if words:
            return TriggerWords(words, "ss_tag_frequency")
    return TriggerWords()


_cache: dict[tuple, TriggerWords] = {}
_lock = threading.Lock()


def _state(path: str) -> tuple | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


def trigger_words(path: str) -> TriggerWords:
    """:func:`read_trigger_words`, cached until the LoRA or a file beside it changes."""
    real = os.path.realpath(path)
    stem = os.path.splitext(real)[0]
    key = (real, _state(real), *(_state(stem + suffix) for suffix, _ in SIDE_FILES))
    with _lock:
        hit = _cache.get(key)
    if hit is None:
        hit = read_trigger_words(real)
        with _lock:
            for old in [k for k in _cache if k[0] == real]:
                del _cache[old]
            _cache[key] = hit
    return hit


def words_to_add(media, resolve: Callable[[str], str | None],
                 words_of: Callable[[str], tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
    """{LoRA name as written in ``media``: its trigger words} for every ``loras:`` entry and tag
    whose ``add_trigger_words`` is on: the entry's own flag, else the file's; a tag takes the
    flag of a ``loras:`` entry for the same file, else the file's. ``resolve`` maps a written
    name to the installed file (None when it is not installed), ``words_of`` that file to words."""
    flags: dict[str, bool] = {}
    for spec in media.loras:
        resolved = resolve(spec.name)
        if resolved is not None:
            flag = media.add_trigger_words if spec.add_trigger_words is None else spec.add_trigger_words
            flags.setdefault(resolved, flag)
    out = {}
    for name in [spec.name for spec in media.loras] + [ref.tag.name for ref in media.lora_tags]:
        resolved = resolve(name)
        if resolved is not None and name not in out and flags.get(resolved, media.add_trigger_words):
            words = words_of(resolved)
            if words:
                out[name] = words
    return out
