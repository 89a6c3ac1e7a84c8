"""Read and validate a prompt media file (YAML) in any of its real-world dialects.

Every problem raises :class:`PromptMediaError` naming the file, line, column and field path.
Only ``yaml.SafeLoader`` features are accepted; alias bombs and oversized files are refused
before anything walks the data.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field, replace
from typing import Any

import yaml

from .errors import PromptMediaError
from .lora_names import resolve_file_name
from .lora_tags import LoraTag, LoraTagError, find_lora_tags

MAX_FILE_BYTES = 256 * 1024  # real files are under 16 KiB; pure-Python YAML parses ~1 MB/s at best
MAX_NODES = 200_000          # YAML nodes after alias expansion
MAX_COMPOSED_NODES = 10_000  # YAML nodes as written (real files: under 200); bounds parse time
MAX_DEPTH = 64               # nesting depth (mappings/sequences)
MAX_TEXT_CHARS = 20_000      # one prompt, prefix, negative or variation value

VARIATION_TYPES = ("sequential", "random", "static")
TOP_LEVEL_PRESET = ""        # the preset name meaning "the file's top-level settings"

# Core node defaults (KSampler, EmptyLatentImage) for settings a file leaves out.
# guidance: FluxGuidance's default; model: none named (the graph's model loader decides).
DEFAULT_SETTINGS = {"steps": 20, "cfg": 8.0, "width": 512, "height": 512,
                    "sampler_name": "euler", "scheduler": "normal", "denoise": 1.0,
                    "guidance": 3.5, "model": ""}

# file key -> canonical setting name; first match wins when a file has both spellings.
SETTING_ALIASES = {
    "steps": ("steps",), "cfg": ("cfg", "cfg_scale"), "width": ("width",), "height": ("height",),
    "sampler_name": ("sampler", "sampler_name"), "scheduler": ("scheduler",),
    "denoise": ("denoise",), "seeds": ("seeds",), "guidance": ("guidance",), "model": ("model",),
}
KNOWN_KEYS = {"prompt_settings", "prefix_prompt", "negative_prompt", "prompts", "variations",
              "workflows", "loras", "add_trigger_words"} | {k for keys in SETTING_ALIASES.values() for k in keys}


@dataclass(frozen=True)
class Variation:
    name: str
    type: str                # sequential | random | static
    values: tuple[str, ...]


@dataclass(frozen=True)
class Position:
    """Where a value is in the file, for errors and warnings about it."""
    field: str
    line: int | None = None
    column: int | None = None


@dataclass(frozen=True)
class LoraSpec:
    name: str
    strength_model: float = 1.0
    strength_clip: float = 1.0
    add_trigger_words: bool | None = None     # None: the file's add_trigger_words
    position: Position | None = field(default=None, compare=False)

    def as_dict(self) -> dict:
        """The LORA_STACK entry of a ``loras:`` entry."""
        return {"name": self.name, "strength_model": self.strength_model,
                "strength_clip": self.strength_clip}


@dataclass(frozen=True)
class LoraTagRef:
    """A ``<lora:...>`` tag as it occurs in the file (prefix, a prompt or a variation value)."""
    tag: LoraTag
    position: Position


@dataclass(frozen=True)
class Settings:
    steps: int
    cfg: float
    width: int
    height: int
    sampler_name: str
    scheduler: str
    denoise: float
    seeds: tuple[int, ...]   # empty: the OOM node's own seed is used
    guidance: float = DEFAULT_SETTINGS["guidance"]     # Flux guidance (FluxGuidance)
    model: str = ""          # the model file the preset names ("" none), as written or resolved

    def as_dict(self) -> dict:
        return {"steps": self.steps, "cfg": self.cfg, "width": self.width, "height": self.height,
                "sampler_name": self.sampler_name, "scheduler": self.scheduler,
                "denoise": self.denoise, "seeds": list(self.seeds), "guidance": self.guidance,
                "model": self.model}


@dataclass(frozen=True)
class PromptMedia:
    """A validated prompt media file with the settings of one chosen preset."""
    source_name: str
    sha256: str
    text: str
    preset: str
    presets: tuple[str, ...]
    prefix: str
    negative: str
    prompts: tuple[str, ...]
    variations: tuple[Variation, ...]
    loras: tuple[LoraSpec, ...]
    settings: Settings
    extra: dict = field(default_factory=dict, compare=False)   # unknown top-level keys, kept
    # where settings.model was written: (line, column, field), for errors when it is resolved
    model_at: tuple = field(default=(None, None, "model"), compare=False)
    add_trigger_words: bool = False
    lora_tags: tuple[LoraTagRef, ...] = field(default=(), compare=False)   # every tag, in file order

    def error_at(self, position: Position | None, message: str) -> PromptMediaError:
        p = position or Position("")
        return PromptMediaError(message, source=self.source_name, line=p.line, column=p.column,
                                field=p.field)

    def summary(self) -> str:
        s = self.settings
        preset = f" [{self.preset}]" if self.preset else ""
        return (f"{self.source_name}{preset}: {len(self.prompts)} prompts, "
                f"{len(self.variations)} variations, {max(len(s.seeds), 1)} seeds, "
                f"{len(self.loras)} LoRAs, {s.width}x{s.height}, {s.steps} steps, cfg {s.cfg}, "
                f"{s.sampler_name}/{s.scheduler}" + (f", model {s.model}" if s.model else ""))

    def with_model(self, available: list[str], folder: str) -> PromptMedia:
        """This file with ``model:`` resolved against ``available`` (the files of ``folder``, e.g.
        models/diffusion_models) like LoRA names: exact, without extension, a unique
        case-insensitive match; else a PromptMediaError at the line that names it, listing the
        closest names."""
        line, column, where = self.model_at
        name = resolve_file_name(self.settings.model, available, kind="model", folder=folder, field=where,
                                 source=self.source_name, line=line, column=column)
        return replace(self, settings=replace(self.settings, model=name))


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------- YAML with positions

class _Loader(yaml.SafeLoader):
    """SafeLoader; a subclass so nothing we do leaks into PyYAML's global resolvers.

    A scalar PyYAML cannot construct (``!!int abc``, ``2024-02-30``, ``!!bool maybe``) becomes a
    positioned YAML error instead of a bare ValueError/KeyError/AttributeError.

    It also bounds what a hostile file can cost: nesting is refused while scanning (before the
    recursive composer sees it, and before the scanner's per-level bookkeeping goes quadratic)
    and the node count while composing, so the time spent stays linear in the file size.
    """

    def __init__(self, stream):
        super().__init__(stream)
        self.composed_nodes = 0

    def _too_deep(self) -> yaml.scanner.ScannerError:
        return yaml.scanner.ScannerError(None, None, f"nesting deeper than {MAX_DEPTH} levels",
                                         self.get_mark())

    def fetch_flow_collection_start(self, TokenClass):
        if self.flow_level >= MAX_DEPTH:
            raise self._too_deep()
        super().fetch_flow_collection_start(TokenClass)

    def add_indent(self, column):
        if len(self.indents) >= MAX_DEPTH:
            raise self._too_deep()
        return super().add_indent(column)

    def compose_node(self, parent, index):
        self.composed_nodes += 1
        if self.composed_nodes > MAX_COMPOSED_NODES:
            raise yaml.composer.ComposerError(
                None, None, f"the file has more than {MAX_COMPOSED_NODES:,} YAML nodes",
                self.peek_event().start_mark)
        return super().compose_node(parent, index)

    def construct_object(self, node, deep=False):
        try:
            return super().construct_object(node, deep)
        except (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError) as e:
            kind = node.tag.rsplit(":", 1)[-1]
            why = " (more than 4,300 digits)" if "digits" in str(e) else ""
            raise yaml.constructor.ConstructorError(
                None, None, f"{_short(node.value)} is not a valid {kind}{why}", node.start_mark) from None


def _check_graph(node: yaml.Node, source: str) -> None:
    """Refuse alias bombs, alias cycles and deep nesting in time linear in the distinct nodes.

    Size (after alias expansion) and height are memoised per node, so a node shared through
    aliases is measured once yet counted at every place it appears.
    """
    measured: dict[int, tuple[int, int] | None] = {}   # id -> (size, height); None while visiting
    stack: list[tuple[yaml.Node, bool]] = [(node, False)]

    def error(n: yaml.Node, message: str) -> PromptMediaError:
        return PromptMediaError(message, source=source, line=n.start_mark.line + 1,
                                column=n.start_mark.column + 1, field="(yaml)")

    while stack:
        n, done = stack.pop()
        children = _children(n)
        if not done:
            if id(n) in measured:
                if measured[id(n)] is None:     # reached again from inside itself
                    raise error(n, "an alias refers to a collection that contains it (a cycle)")
                continue
            measured[id(n)] = None
            if isinstance(n, yaml.MappingNode):
                _check_duplicate_keys(n, error)
            stack.append((n, True))
            stack.extend((c, False) for c in children)
            continue
        size = 1 + sum(measured[id(c)][0] for c in children)
        height = 1 + max((measured[id(c)][1] for c in children), default=0)
        if height > MAX_DEPTH:
            raise error(n, f"nesting deeper than {MAX_DEPTH} levels")
        if size > MAX_NODES:
            raise error(n, f"the document expands to more than {MAX_NODES:,} YAML nodes "
                           "(anchors/aliases repeated too often?)")
        measured[id(n)] = (size, height)


def _check_duplicate_keys(mapping: yaml.MappingNode, error) -> None:
    """PyYAML keeps the last of two equal keys silently; a second `prompts:` would drop the
    first list without a word."""
    seen: dict[tuple[str, str], yaml.Node] = {}
    for key, _value in mapping.value:
        if isinstance(key, yaml.ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
            if (key.tag, key.value) in seen:
                first = seen[(key.tag, key.value)].start_mark.line + 1
                raise error(key, f"duplicate key {key.value!r} (first at line {first}); "
                                 "the second would silently replace the first")
            seen[(key.tag, key.value)] = key


def _children(n: yaml.Node) -> list[yaml.Node]:
    if isinstance(n, yaml.SequenceNode):
        return list(n.value)
    if isinstance(n, yaml.MappingNode):
        return [x for pair in n.value for x in pair]
    return []


def parse_yaml(text: str, source: str) -> tuple[Any, yaml.Node | None]:
    """safe_load ``text``; also return the node tree for error positions."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_FILE_BYTES:
        raise PromptMediaError(f"file is larger than {MAX_FILE_BYTES // 1024} KiB", source=source,
                               field="(file)")
    loader = None
    try:
        loader = _Loader(text)
        node = loader.get_single_node()
        if node is None:
            return None, None
        _check_graph(node, source)
        return loader.construct_document(node), node
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        msg = " ".join(p for p in (e.context, e.problem) if p) or "invalid YAML"
        raise PromptMediaError(msg, source=source, line=mark.line + 1 if mark else None,
                               column=mark.column + 1 if mark else None, field="(yaml)") from None
    except yaml.reader.ReaderError as e:  # control characters such as NUL
        line = text.count("\n", 0, e.position) + 1
        column = e.position - (text.rfind("\n", 0, e.position) + 1) + 1
        raise PromptMediaError(f"character {e.character:#06x} is not allowed in YAML", source=source,
                               line=line, column=column, field="(yaml)") from None
    except yaml.YAMLError as e:
        raise PromptMediaError(f"invalid YAML: {e}", source=source, field="(yaml)") from None
    except (ValueError, OverflowError) as e:  # PyYAML's scanner: an escape past U+10FFFF ("\U12345678", "\UFFFFFFFF")
        if isinstance(e, PromptMediaError):      # ours (alias bombs, nesting): already positioned
            raise
        mark = loader.get_mark() if loader is not None else None
        raise PromptMediaError(f"invalid escape in a quoted string ({e})", source=source,
                               line=mark.line + 1 if mark else None, column=mark.column + 1 if mark else None,
                               field="(yaml)") from None
    except RecursionError:   # a safety net: the scanner refuses deep nesting first
        raise PromptMediaError(f"nesting deeper than {MAX_DEPTH} levels", source=source,
                               field="(yaml)") from None
    finally:
        if loader is not None:
            loader.dispose()


class _Ctx:
    """Raises errors at the YAML position of a field path."""

    def __init__(self, source: str, root: yaml.Node | None):
        self.source, self.root = source, root

    def _mark(self, path: tuple) -> tuple[int | None, int | None]:
        node, best = self.root, self.root
        for key in path:
            if isinstance(node, yaml.MappingNode):
                node = next((v for k, v in node.value if getattr(k, "value", None) == str(key)), None)
            elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
                node = node.value[key]
            else:
                node = None
            if node is None:
                break
            best = node
        if best is None:
            return None, None
        return best.start_mark.line + 1, best.start_mark.column + 1

    def error(self, path: tuple, message: str) -> PromptMediaError:
        line, col = self._mark(path)
        return PromptMediaError(message, source=self.source, line=line, column=col,
                                field=_path_str(path) or "(document)")

    def position(self, path: tuple) -> Position:
        line, col = self._mark(path)
        return Position(_path_str(path) or "(document)", line, col)


def _path_str(path: tuple) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _type_name(v: Any) -> str:
    return {type(None): "empty (null)", bool: "a boolean", int: "a number", float: "a number",
            str: "a string", list: "a list", dict: "a mapping"}.get(type(v), type(v).__name__)


def _short(v: Any) -> str:
    try:
        r = repr(v)
    except ValueError:       # an int past Python's 4,300-digit int-to-text limit (hex/octal/binary)
        r = f"a {v.bit_length():,}-bit number"
    return r if len(r) <= 60 else r[:57] + "..."


# --------------------------------------------------------------------------- field readers

def _text(ctx: _Ctx, path: tuple, v: Any, *, allow_empty: bool = True) -> str:
    if v is None and allow_empty:
        return ""
    if isinstance(v, bool) or not isinstance(v, (str, int, float)):
        raise ctx.error(path, f"expected a string, got {_type_name(v)}")
    try:
        s = str(v)
    except ValueError:       # an int past Python's 4,300-digit int-to-text limit
        raise ctx.error(path, f"expected a string, got {_short(v)}") from None
    if "\x00" in s:
        raise ctx.error(path, "contains a NUL character")
    try:
        s.encode("utf-8")
    except UnicodeEncodeError as e:    # e.g. "\ud800" written as an escape
        raise ctx.error(path, f"contains {s[e.start]!r}, a lone surrogate that is not valid text") from None
    if len(s) > MAX_TEXT_CHARS:
        raise ctx.error(path, f"text is longer than {MAX_TEXT_CHARS:,} characters")
    if not allow_empty and not s.strip():
        raise ctx.error(path, "must not be empty")
    return s


def _number(ctx: _Ctx, path: tuple, v: Any, *, integer: bool, lo: float, hi: float):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or (isinstance(v, float) and not math.isfinite(v)):
        raise ctx.error(path, f"expected {'a whole number' if integer else 'a number'}, got {_type_name(v)} {_short(v)}")
    if integer and isinstance(v, float):
        if not v.is_integer():
            raise ctx.error(path, f"expected a whole number, got {v}")
        v = int(v)
    if not lo <= v <= hi:
        raise ctx.error(path, f"{_short(v)} is out of range {lo:g}..{hi:g}")
    return int(v) if integer else float(v)


def _seeds(ctx: _Ctx, path: tuple, v: Any) -> tuple[int, ...]:
    if v is None:
        return ()
    if not isinstance(v, list):
        return (_number(ctx, path, v, integer=True, lo=0, hi=2**64 - 1),)
    return tuple(_number(ctx, path + (i,), s, integer=True, lo=0, hi=2**64 - 1) for i, s in enumerate(v))


def _settings_from(ctx: _Ctx, path: tuple, mapping: dict) -> dict:
    """Canonical settings present (and non-null) in ``mapping``."""
    out: dict = {}
    for canon, keys in SETTING_ALIASES.items():
        key = next((k for k in keys if mapping.get(k) is not None), None)
        if key is None:
            continue
        v, p = mapping[key], path + (key,)
        if canon == "steps":
            out[canon] = _number(ctx, p, v, integer=True, lo=1, hi=10000)
        elif canon == "cfg":
            out[canon] = _number(ctx, p, v, integer=False, lo=0.0, hi=100.0)
        elif canon in ("width", "height"):
            n = _number(ctx, p, v, integer=True, lo=16, hi=16384)
            if n % 8:
                raise ctx.error(p, f"{n} is not a multiple of 8 (latents are 1/8 of the image size)")
            out[canon] = n
        elif canon == "denoise":
            out[canon] = _number(ctx, p, v, integer=False, lo=0.0, hi=1.0)
        elif canon == "seeds":
            out[canon] = _seeds(ctx, p, v)
        elif canon == "guidance":
            out[canon] = _number(ctx, p, v, integer=False, lo=0.0, hi=100.0)
        else:
            out[canon] = _text(ctx, p, v, allow_empty=False).strip()
    return out


def _loras(ctx: _Ctx, v: Any) -> tuple[LoraSpec, ...]:
    path: tuple = ("loras",)
    if v is None:
        return ()
    if isinstance(v, dict) and "lora" in v:            # {lora: [{name, strength}]}
        path, v = path + ("lora",), v["lora"]
        if v is None:
            return ()
    if isinstance(v, dict):                             # a single {name, strength_model, ...}
        return (_lora(ctx, path, v),)
    if not isinstance(v, list):
        raise ctx.error(path, f"expected a list of LoRAs, got {_type_name(v)}")
    return tuple(_lora(ctx, path + (i,), item) for i, item in enumerate(v))


def _lora(ctx: _Ctx, path: tuple, v: Any) -> LoraSpec:
    if not isinstance(v, dict):
        raise ctx.error(path, f"expected a mapping with 'name' and strengths, got {_type_name(v)}")
    if v.get("name") is None:
        raise ctx.error(path, "missing 'name'")
    name = _text(ctx, path + ("name",), v["name"], allow_empty=False).strip()
    def strength(key: str) -> float | None:
        return None if v.get(key) is None else _number(ctx, path + (key,), v[key], integer=False, lo=-10, hi=10)
    both = strength("strength")
    sm, sc = strength("strength_model"), strength("strength_clip")
    default = 1.0 if both is None else both
    add = _flag(ctx, path + ("add_trigger_words",), v.get("add_trigger_words"))
    return LoraSpec(name, default if sm is None else sm, default if sc is None else sc, add,
                    ctx.position(path))


def _flag(ctx: _Ctx, path: tuple, v: Any) -> bool | None:
    if v is None or isinstance(v, bool):
        return v
    raise ctx.error(path, f"expected true or false, got {_type_name(v)} {_short(v)}")


def _tags(ctx: _Ctx, path: tuple, text: str) -> list[LoraTagRef]:
    """The LoRA tags of one prompt text; a malformed tag is an error at the text's position."""
    if "<" not in text:                  # the common case, without a regex pass
        return []
    try:
        return [LoraTagRef(tag, ctx.position(path)) for tag in find_lora_tags(text)]
    except LoraTagError as e:
        raise ctx.error(path, str(e)) from None


def _names(ctx: _Ctx, section: str, mapping: dict) -> dict[str, Any]:
    """``mapping`` keyed by text: variation and preset names are keys, and a YAML key may be a
    number, boolean, date or null; two keys must not become the same name (``1`` and ``'1'``)."""
    out: dict[str, Any] = {}
    for key, value in mapping.items():
        label = key if isinstance(key, str) else _short(key)
        label = label.encode("utf-8", "backslashreplace").decode("utf-8")   # a lone surrogate, shown escaped
        if isinstance(key, bool) or not isinstance(key, (str, int, float)):
            raise ctx.error((section, label), f"a name must be text, got {_type_name(key)} (quote it)")
        name = _text(ctx, (section, label), key, allow_empty=False)
        if name in out:
            raise ctx.error((section, label), f"the name {name!r} is used twice")
        out[name] = value
    return out


def _variations(ctx: _Ctx, v: Any) -> tuple[Variation, ...]:
    if v is None:
        return ()
    if not isinstance(v, dict):
        raise ctx.error(("variations",), f"expected a mapping of name: {{type, values}}, got {_type_name(v)}")
    out = []
    for name, spec in _names(ctx, "variations", v).items():
        path = ("variations", name)
        if not isinstance(spec, dict):
            raise ctx.error(path, f"expected a mapping with 'type' and 'values', got {_type_name(spec)}")
        vtype = spec.get("type")
        if vtype not in VARIATION_TYPES:
            got = "missing" if vtype is None else f"{_short(vtype)} is"
            raise ctx.error(path + ("type",), f"{got} not one of {', '.join(VARIATION_TYPES)}")
        values = spec.get("values")
        if not isinstance(values, list) or not values:
            raise ctx.error(path + ("values",), f"expected a non-empty list, got {_type_name(values)}")
        out.append(Variation(name, vtype, tuple(
            _text(ctx, path + ("values", i), x).strip() for i, x in enumerate(values))))
    return tuple(out)


# --------------------------------------------------------------------------- entry points

def load_prompt_media(text: str, source: str = "prompt_media.yaml", preset: str = TOP_LEVEL_PRESET,
                      *, samplers: list[str] | None = None,
                      schedulers: list[str] | None = None) -> PromptMedia:
    """Validate ``text`` and resolve the settings of ``preset``.

    ``samplers``/``schedulers``, when given (the host's lists), are checked too.
    """
    data, root = parse_yaml(text, source)
    ctx = _Ctx(source, root)
    if not isinstance(data, dict):
        raise ctx.error((), f"expected a mapping with 'prompts', got {_type_name(data)}")

    prompts = data.get("prompts")
    if not isinstance(prompts, list) or not prompts:
        raise ctx.error(("prompts",), f"expected a non-empty list of strings, got {_type_name(prompts)}"
                        if "prompts" in data else "missing: a file needs a 'prompts' list")
    prompts_t = tuple(_text(ctx, ("prompts", i), p, allow_empty=False).strip()
                      for i, p in enumerate(prompts))

    ps = data.get("prompt_settings")
    if ps is not None and not isinstance(ps, dict):
        raise ctx.error(("prompt_settings",), f"expected a mapping with prefix/negative, got {_type_name(ps)}")
    ps = ps or {}
    prefix_path = ("prompt_settings", "prefix") if ps.get("prefix") is not None else ("prefix_prompt",)
    negative_path = ("prompt_settings", "negative") if ps.get("negative") is not None else ("negative_prompt",)
    prefix = _text(ctx, prefix_path, (ps if ps.get("prefix") is not None else data).get(prefix_path[-1]))
    negative = _text(ctx, negative_path, (ps if ps.get("negative") is not None else data).get(negative_path[-1]))
    variations = _variations(ctx, data.get("variations"))
    tags = _tags(ctx, prefix_path, prefix)
    for i, p in enumerate(prompts_t):
        tags += _tags(ctx, ("prompts", i), p)
    for v in variations:
        for i, value in enumerate(v.values):
            tags += _tags(ctx, ("variations", v.name, "values", i), value)
    if _tags(ctx, negative_path, negative):
        raise ctx.error(negative_path, "a <lora:...> tag in the negative prompt would not be applied "
                                       "(A1111 does not apply them there either): move it to the prefix or a prompt")

    workflows = data.get("workflows")
    if workflows is not None and not isinstance(workflows, dict):
        raise ctx.error(("workflows",), f"expected a mapping of preset name: settings, got {_type_name(workflows)}")
    workflows = _names(ctx, "workflows", workflows or {})
    presets = tuple(workflows)
    settings = dict(DEFAULT_SETTINGS, seeds=())
    settings.update(_settings_from(ctx, (), data))
    preset = (preset or "").strip()
    if preset:
        if preset not in presets:
            avail = ", ".join(presets) if presets else "none (the file has no 'workflows:' section)"
            raise ctx.error(("workflows",), f"preset {preset!r} not found; the file's presets: {avail}")
        body = workflows[preset]
        if body is not None and not isinstance(body, dict):
            raise ctx.error(("workflows", preset), f"expected a mapping of settings, got {_type_name(body)}")
        settings.update(_settings_from(ctx, ("workflows", preset), body or {}))

    for key, known in (("sampler_name", samplers), ("scheduler", schedulers)):
        if known is not None and settings[key] not in known:
            path = _where_setting(data, workflows.get(preset) if preset else None, key, preset)
            raise ctx.error(path, f"{settings[key]!r} is not a {key.split('_')[0]} this ComfyUI knows "
                                  f"({', '.join(known[:12])}{', ...' if len(known) > 12 else ''})")

    model_path = _where_setting(data, workflows.get(preset) if preset else None, "model", preset)
    model_line, model_column = ctx._mark(model_path)
    return PromptMedia(
        model_at=(model_line, model_column, _path_str(model_path)),
        source_name=source, sha256=sha256_text(text), text=text, preset=preset, presets=presets,
        prefix=prefix, negative=negative, prompts=prompts_t,
        variations=variations,
        loras=_loras(ctx, data.get("loras")),
        settings=Settings(**settings),
        extra={k: v for k, v in data.items() if k not in KNOWN_KEYS},
        add_trigger_words=bool(_flag(ctx, ("add_trigger_words",), data.get("add_trigger_words"))),
        lora_tags=tuple(tags),
    )


def _where_setting(data: dict, preset_body: Any, canon: str, preset: str) -> tuple:
    keys = SETTING_ALIASES[canon]
    if isinstance(preset_body, dict):
        for k in keys:
            if preset_body.get(k) is not None:
                return ("workflows", preset, k)
    return (next((k for k in keys if data.get(k) is not None), keys[0]),)


def read_text_file(path: str, source: str) -> str:
    """The UTF-8 text of a prompt media file, size-checked before it is read."""
    import os
    try:
        if os.path.getsize(path) > MAX_FILE_BYTES:
            raise PromptMediaError(f"file is larger than {MAX_FILE_BYTES // 1024} KiB", source=source)
        with open(path, "rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)
    except OSError as e:
        raise PromptMediaError(f"cannot read file: {e.strerror or e}", source=source) from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise PromptMediaError(f"not UTF-8 text (byte {e.start})", source=source) from None


def load_prompt_media_file(path: str, preset: str = TOP_LEVEL_PRESET, *, source: str | None = None,
                           **kw) -> PromptMedia:
    """Read ``path`` and validate it; errors are named after ``source`` or the file name."""
    import os
    name = source or os.path.basename(path)
    return load_prompt_media(read_text_file(path, name), name, preset, **kw)
