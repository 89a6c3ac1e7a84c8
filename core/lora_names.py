"""LoRA chain planning, pure: name resolution, editor-row parsing, order, skipping, LORA_STACK shapes.

Names (of LoRAs, and of the model files a prompt file's ``model:`` names) are resolved against
the host's list of available files (relative paths as
``folder_paths.get_filename_list("loras")`` returns them; '/' and '\\' are treated alike):

1. the exact relative path;
2. the name with a supported extension added (``.safetensors`` first): ``Bonafida.Studio``
   finds ``Bonafida.Studio.safetensors`` although the name already contains a dot;
3. a unique case-insensitive match of the name, with or without extension, against the end of
   a path at a folder boundary (so ``foo`` finds ``styles/Foo.safetensors``).

Missing or ambiguous names raise :class:`LoraNameError` listing the closest available names.
"""
from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from .errors import PromptMediaError

if TYPE_CHECKING:
    from .schema import PromptMedia

# preference order for step 2; the host's own list (folder_paths.supported_pt_extensions) has no order
LORA_EXTENSIONS = (".safetensors", ".sft", ".ckpt", ".pt", ".pt2", ".pth", ".bin", ".pkl")
STRENGTH_MIN, STRENGTH_MAX = -10.0, 10.0
ROW_KEY = re.compile(r"^lora_([1-9][0-9]*)$")
ROW_FIELDS = {"on", "lora", "strength", "strength_model", "strength_clip"}
STRENGTH_MODES = ("shared", "separate")
CHAIN_SOURCE = "LoRA Chain"
MAX_SUGGESTIONS = 5


class FileNameError(PromptMediaError):
    """A file name that resolves to no file, or to several. ``name`` and ``candidates`` for programs."""

    def __init__(self, message: str, *, name: str, candidates: Sequence[str] = (), field: str = "",
                 source: str = CHAIN_SOURCE, line: int | None = None, column: int | None = None):
        self.name = name
        self.candidates = tuple(candidates)
        super().__init__(message, source=source, field=field, line=line, column=column)


class LoraNameError(FileNameError):
    """A LoRA name that does not resolve."""


@dataclass(frozen=True)
class LoraStep:
    """One LoRA to apply: the name as written, and its strengths."""
    name: str
    strength_model: float
    strength_clip: float
    origin: str            # where it came from, for errors: "lora_stack[0]", "lora_2"
    source: str = ""       # what named it, for notes: "loras: entry", "tag <lora:x:1>", "row lora_2"
    notes: tuple[str, ...] = ()   # later mentions of the same file, skipped


def _norm(name: str) -> str:
    return name.replace("\\", "/").strip().strip("/")


def _strip_extension(path: str) -> str:
    lower = path.lower()
    for ext in LORA_EXTENSIONS:
        if lower.endswith(ext) and len(path) > len(ext):
            return path[: -len(ext)]
    return path


def _suffixes(path: str) -> set[str]:
    """Lower-case tails of a path at folder boundaries, each with and without its extension."""
    parts = path.lower().split("/")
    tails = {"/".join(parts[i:]) for i in range(len(parts))}
    return tails | {_strip_extension(t) for t in tails}


def same_lora_key(name: str) -> str:
    """A key equal for names that surely mean the same file before resolving them against the
    installed list: '\\' or '/', case and a LoRA extension do not matter."""
    return _strip_extension(_norm(name)).lower()


def job_lora_set(file_loras: Sequence[dict], tags: Iterable) -> tuple[list[dict], list[str]]:
    """A job's LoRA set and notes: the file's ``loras:`` entries, then its tags (LoraTag) in order
    of appearance, each LoRA once, at its first mention with the strengths given there (so a
    ``loras:`` entry wins over a tag for the same LoRA, as the original tool applied the list).
    Entries are LORA_STACK dicts; a note says what each skipped tag asked for."""
    out = list(file_loras)
    first: dict[str, dict] = {}
    for entry in out:                    # a file naming one LoRA twice: the chain applies it once
        first.setdefault(same_lora_key(entry["name"]), entry)
    notes = []
    for tag in tags:
        key = same_lora_key(tag.name)
        kept = first.get(key)
        if kept is None:
            first[key] = tag.stack_entry()
            out.append(first[key])
            continue
        by = "the file's loras: entry" if kept.get("source") == "file" else f"the tag {kept.get('tag')}"
        notes.append(f"{tag.text} names {tag.name}, which {by} applies already: applied once, with "
                     f"{kept['strength_model']:g}/{kept['strength_clip']:g}")
    return out, notes


def closest_names(name: str, available: Iterable[str], n: int = MAX_SUGGESTIONS) -> list[str]:
    """Available names most like ``name``, compared by whole path and by file name."""
    available = list(available)
    target = _strip_extension(_norm(name)).lower()
    scored = []
    for original in available:
        path = _strip_extension(_norm(original)).lower()
        base = path.rsplit("/", 1)[-1]
        score = max(difflib.SequenceMatcher(None, target, path).ratio(),
                    difflib.SequenceMatcher(None, target.rsplit("/", 1)[-1], base).ratio())
        scored.append((score, original))
    scored.sort(key=lambda s: (-s[0], s[1]))
    return [original for score, original in scored[:n] if score >= 0.4]


def resolve_file_name(name: str, available: Sequence[str], *, kind: str = "LoRA", folder: str = "the loras folder",
                      field: str = "", source: str = CHAIN_SOURCE, error: type[FileNameError] = FileNameError,
                      line: int | None = None, column: int | None = None) -> str:
    """The entry of ``available`` that ``name`` means (see the module docstring), or ``error``
    naming the ``kind`` of file, the ``folder`` searched and the closest names."""
    where = {"field": field, "source": source, "line": line, "column": column}
    if not isinstance(name, str) or not _norm(name):
        hint = " (choose one or switch the row off)" if kind == "LoRA" else ""
        raise error(f"no {kind} chosen{hint}", name="", **where)
    wanted = _norm(name)
    by_norm = {}
    for original in available:
        by_norm.setdefault(_norm(original), original)
    if wanted in by_norm:
        return by_norm[wanted]
    for ext in LORA_EXTENSIONS:
        if wanted + ext in by_norm:
            return by_norm[wanted + ext]
    key = wanted.lower()
    matches = sorted({original for norm, original in by_norm.items() if key in _suffixes(norm)})
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise error(f"{kind} '{name}' is ambiguous, it matches {', '.join(matches[:10])}: "
                    f"write the folder too", name=name, candidates=matches, **where)
    close = closest_names(name, available)
    hint = f"closest: {', '.join(close)}" if close else (
        f"{len(available)} {kind}{'s' if len(available) > 1 else ''} available" if available else f"{folder} is empty")
    raise error(f"{kind} '{name}' not found in {folder} ({hint})", name=name, candidates=close, **where)


def resolve_lora_name(name: str, available: Sequence[str], *, field: str = "",
                      source: str = CHAIN_SOURCE) -> str:
    """A LoRA name against the loras folder's list (see :func:`resolve_file_name`)."""
    return resolve_file_name(name, available, field=field, source=source, error=LoraNameError)


def _strength(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise PromptMediaError(f"strength must be a number, got {value!r}", source=CHAIN_SOURCE, field=field)
    if not STRENGTH_MIN <= value <= STRENGTH_MAX:
        raise PromptMediaError(f"strength {value} is outside {STRENGTH_MIN:g}..{STRENGTH_MAX:g}",
                               source=CHAIN_SOURCE, field=field)
    return float(value)


def row_number(key: str) -> int | None:
    """N for a row key ``lora_N`` (N >= 1, no leading zeros); None for anything else."""
    m = ROW_KEY.match(key)
    return int(m.group(1)) if m else None


def parse_row(key: str, row: Any, strength_mode: str = "shared") -> LoraStep | None:
    """One editor row -> a LoraStep, or None when the row is switched off.

    ``shared``: both strengths are ``strength``; ``separate``: ``strength_model`` and
    ``strength_clip``. A missing value falls back to the other form, then to 1.0, so hand-written
    API prompts may give just ``{"lora": "x"}`` or ``{"lora": "x", "strength": 0.5}``.
    """
    if strength_mode not in STRENGTH_MODES:
        raise PromptMediaError(f"strength_mode must be one of {', '.join(STRENGTH_MODES)}, got {strength_mode!r}",
                               source=CHAIN_SOURCE, field="strength_mode")
    if not isinstance(row, Mapping):
        raise PromptMediaError(f"a row must be an object like {{\"on\": true, \"lora\": \"name\", \"strength\": 1.0}}, "
                               f"got {type(row).__name__}", source=CHAIN_SOURCE, field=key)
    unknown = sorted(set(row) - ROW_FIELDS)
    if unknown:
        raise PromptMediaError(f"unknown row field(s) {', '.join(map(str, unknown))} "
                               f"(allowed: {', '.join(sorted(ROW_FIELDS))})", source=CHAIN_SOURCE, field=key)
    on = row.get("on", True)
    if not isinstance(on, bool):
        raise PromptMediaError(f"'on' must be true or false, got {on!r}", source=CHAIN_SOURCE, field=key)
    if not on:
        return None
    name = row.get("lora")
    if name is not None and not isinstance(name, str):
        raise PromptMediaError(f"'lora' must be a file name, got {name!r}", source=CHAIN_SOURCE, field=key)

    def pick(*keys: str) -> float:
        for k in keys:
            if row.get(k) is not None:
                return _strength(row[k], f"{key}.{k}")
        return 1.0

    if strength_mode == "shared":
        sm = sc = pick("strength", "strength_model")
    else:
        sm, sc = pick("strength_model", "strength"), pick("strength_clip", "strength")
    return LoraStep(name or "", sm, sc, key, f"row {key}")


def parse_rows(rows: Mapping[str, Any], strength_mode: str = "shared") -> list[LoraStep]:
    """Every ``lora_N`` input in N order (numeric: lora_10 after lora_9), switched-off rows dropped.

    Any other key is an error: the node admits every optional key, so a typo must not vanish."""
    numbered = []
    for key, value in rows.items():
        n = row_number(key)
        if n is None:
            raise PromptMediaError(f"unknown input '{key}' (rows are named lora_1, lora_2, ...)",
                                   source=CHAIN_SOURCE, field=key)
        numbered.append((n, key, value))
    numbered.sort()
    steps = (parse_row(key, value, strength_mode) for _, key, value in numbered)
    return [s for s in steps if s is not None]


def normalize_lora_stack(stack: Any) -> list[LoraStep]:
    """A LORA_STACK input -> steps, in order.

    Accepts our dicts ({name, strength_model, strength_clip[, sha256]} from the loader or a chain,
    ``lora_name`` and a single ``strength`` also understood) and the (name, strength_model,
    strength_clip) tuples other node packs' LORA_STACKs carry. None is an empty stack."""
    if stack is None:
        return []
    if isinstance(stack, (str, bytes, Mapping)) or not isinstance(stack, Iterable):
        raise PromptMediaError(f"lora_stack must be a list of LoRAs, got {type(stack).__name__}",
                               source=CHAIN_SOURCE, field="lora_stack")
    steps = []
    for i, entry in enumerate(stack):
        field = f"lora_stack[{i}]"
        if isinstance(entry, Mapping):
            name = entry.get("name", entry.get("lora_name"))
            both = entry.get("strength")
            sm = entry.get("strength_model", both)
            sc = entry.get("strength_clip", both)
        elif isinstance(entry, (list, tuple)) and len(entry) == 3:
            name, sm, sc = entry
        else:
            raise PromptMediaError(f"expected {{name, strength_model, strength_clip}} or a (name, model, clip) "
                                   f"tuple, got {entry!r}", source=CHAIN_SOURCE, field=field)
        if not isinstance(name, str) or not name.strip():
            raise PromptMediaError(f"missing LoRA name in {entry!r}", source=CHAIN_SOURCE, field=field)
        sm = 1.0 if sm is None else _strength(sm, f"{field}.strength_model")
        sc = 1.0 if sc is None else _strength(sc, f"{field}.strength_clip")
        steps.append(LoraStep(name.strip(), sm, sc, field, _stack_source(entry, field)))
    return steps


def _stack_source(entry: Any, field: str) -> str:
    """How a LORA_STACK entry is described in notes (the job's stack says file or tag)."""
    if isinstance(entry, Mapping):
        if entry.get("source") == "tag" and isinstance(entry.get("tag"), str):
            return f"tag {entry['tag']}"
        if entry.get("source") == "file":
            return "loras: entry"
    return field


def _strengths(step: LoraStep) -> str:
    return f"{step.strength_model:g}/{step.strength_clip:g}"


def plan_chain(lora_stack: Any, rows: Mapping[str, Any], strength_mode: str, available: Sequence[str],
               *, has_clip: bool = True) -> list[LoraStep]:
    """What the chain applies, in order: stack entries, then rows; names resolved; no-op steps dropped.

    A step is a no-op when both strengths are 0 (only the model strength counts without a CLIP;
    the CLIP strength of such a step is reported as 0 since nothing was applied to a CLIP).
    A file is applied once, at its first place with its strengths there (so a ``loras:`` entry
    wins over a ``<lora:...>`` tag for the same file, as the original tool applied the list);
    each later mention is skipped and described in the kept step's ``notes``."""
    planned: dict[str, LoraStep] = {}
    for step in normalize_lora_stack(lora_stack) + parse_rows(rows, strength_mode):
        sc = step.strength_clip if has_clip else 0.0
        if step.strength_model == 0 and sc == 0:
            continue
        name = resolve_lora_name(step.name, available, field=step.origin)
        step = replace(step, name=name, strength_clip=sc)
        first = planned.get(name)
        if first is None:
            planned[name] = step
            continue
        note = (f"{name}: {step.source or step.origin} ({_strengths(step)}) names a LoRA that "
                f"{first.source or first.origin} already applies: applied once, with {_strengths(first)}")
        planned[name] = replace(first, notes=first.notes + (note,))
    return list(planned.values())


def stack_entry(step: LoraStep, sha256: str | None) -> dict:
    """The LORA_STACK dict the chain outputs for an applied step (the contract's chain shape);
    ``notes`` only when later mentions of the file were skipped."""
    entry = {"name": step.name, "strength_model": step.strength_model,
             "strength_clip": step.strength_clip, "sha256": sha256}
    if step.notes:
        entry["notes"] = list(step.notes)
    return entry


def _named_in_file(media: PromptMedia):
    """(what, LoRA name as written, strengths, Position) of every ``loras:`` entry, then every
    ``<lora:...>`` tag, in file order: what the chain may apply for some job."""
    for spec in media.loras:
        yield "loras: entry", spec.name, (spec.strength_model, spec.strength_clip), spec.position
    for ref in media.lora_tags:
        yield ref.tag.text, ref.tag.name, (ref.tag.strength_model, ref.tag.strength_clip), ref.position


def check_file_loras(media: PromptMedia, available: Sequence[str]) -> None:
    """Refuse the first ``loras:`` entry or tag of ``media`` whose LoRA is not installed (or is
    ambiguous), with the file, line and field and the closest names. Before the queue starts."""
    for what, name, strengths, position in _named_in_file(media):
        if strengths == (0, 0):
            continue                    # never applied, so never looked up (as the chain does)
        try:
            resolve_lora_name(name, available)
        except LoraNameError as e:
            label = "" if what == "loras: entry" else f"{what}: "
            raise media.error_at(position, label + e.message) from None


def duplicate_warnings(media: PromptMedia, available: Sequence[str]) -> list[str]:
    """One warning per tag naming a file that a ``loras:`` entry or an earlier tag names too:
    the chain applies it once, with the first mention's strengths."""
    first: dict[str, tuple] = {}
    warnings = []
    for what, name, strengths, position in _named_in_file(media):
        try:
            resolved = resolve_lora_name(name, available)
        except LoraNameError:
            continue                    # check_file_loras reports it
        if resolved not in first:
            first[resolved] = (what, strengths, position)
            continue
        f_what, f_strengths, f_position = first[resolved]
        where = f"line {f_position.line}" if f_position and f_position.line else "the file"
        message = (f"{what} ({strengths[0]:g}/{strengths[1]:g}) names {resolved}, which the "
                   f"{f_what} on {where} applies already: applied once per job, with "
                   f"{f_strengths[0]:g}/{f_strengths[1]:g}")
        warnings.append(str(media.error_at(position, message)))
    return warnings
