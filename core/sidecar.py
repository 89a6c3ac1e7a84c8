"""The sidecar: a JSON file beside each image (``image.png`` -> ``image.json``), both ways.

Writing: the sections the Session Saver assembles from a job, the resolved sampler values and
the session, and :func:`save_generation_params` (atomic, never replacing). Reading: one size
cap, strict JSON (:func:`load_generation_params`, a dict), and :func:`read_sidecar`, the one
typed record (:class:`Sidecar`) that the contact sheet, Load Generation Params and the gallery
use. ``core.generation_params`` is the public (Kino) face of the same functions.
"""
from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from typing import Any

from .atomic import write_json
from .graph_params import GraphParams, Resolved, Stage
from .paths import PathError, relative_parts
from .schema import DEFAULT_SETTINGS

PLUGIN_NAME = "prompt-media"
DEFAULT_GUIDANCE = DEFAULT_SETTINGS["guidance"]
SIDECAR_EXTENSION = ".json"
IMAGE_EXTENSION = ".png"                 # what the Session Saver writes beside each sidecar
MAX_SIDECAR_BYTES = 8 * 1024 * 1024      # a sidecar is a few KiB; refuse anything absurd
MAX_INT_DIGITS = 100       # a seed has 20; Python refuses int() past 4300 digits with a ValueError

# required key -> accepted types (bool is excluded from int explicitly below)
REQUIRED_KEYS: dict[str, tuple[type, ...]] = {
    "plugin": (str,),
    "plugin_version": (str,),
    "timestamp": (str,),
    "task_id": (int, str),
    "parameters": (dict,),
}
OOM_KEYS = ("index", "total", "seed_index", "prompt_index", "variation_index",
            "variations_per_prompt", "base_prompt", "variation_values", "mode", "variation_seed",
            "expansion_id", "preset")


# stage field -> sidecar key, in the order a stage is written
STAGE_KEYS = (("positive", "prompt"), ("negative", "negative_prompt"), ("width", "width"), ("height", "height"),
              ("steps", "steps"), ("cfg", "cfg_scale"), ("sampler_name", "sampler"), ("scheduler", "scheduler"),
              ("denoise", "denoise"), ("seed", "seed"), ("noise", "noise"), ("guidance", "guidance"),
              ("model_name", "model_name"))
# written only when the shape has them
OPTIONAL_STAGE_KEYS = (("positive_2", "prompt_2"), ("start_at_step", "start_at_step"),
                       ("end_at_step", "end_at_step"), ("model_folder", "model_folder"),
                       ("weight_dtype", "weight_dtype"), ("shift", "shift"), ("clip_skip", "clip_skip"),
                       ("clip_type", "clip_type"))
Sha256Of = Callable[[str | None, Any], "str | None"]     # (models folder or None, file name) -> sha256


def stage_parameters(stage: Stage | None, resolved: Resolved, sha256_of: Sha256Of) -> dict:
    """One sampling pass in sidecar form: the values used (None when unknown or not used), the
    model / text encoder files with their sha256, and the shape's own options."""
    v = resolved.values
    out = {key: v.get(name) for name, key in STAGE_KEYS}
    out["model_sha256"] = sha256_of(v.get("model_folder"), v.get("model_name"))
    for name, key in OPTIONAL_STAGE_KEYS:
        if name in v:
            out[key] = v[name]
    out["text_encoders"] = [{"name": name, "sha256": sha256_of("text_encoders", name)}
                            for name in v.get("text_encoders") or ()]
    if stage is not None:
        for key in ("sampler_options", "scheduler_options", "model_sampling", "guider_options"):
            if getattr(stage, key):
                out[key] = getattr(stage, key)
        if stage.guider_class:
            out["guider"] = stage.guider_class
    return out


def parameters_section(graph: GraphParams, resolved: list[Resolved], loras: list[dict],
                       sha256_of: Sha256Of, batch_index: int, batch_size: int,
                       stage_loras: list[list[dict]] | None = None) -> dict:
    """The ``parameters`` section: the first sampling pass at the top level (the one whose noise
    starts the image), the VAE, LoRAs and batch place; with several passes, every pass in
    ``stages`` (first first, each with its own LoRAs)."""
    stages = graph.stages or [None]
    out = stage_parameters(stages[0], resolved[0], sha256_of)
    out["vae_name"] = graph.vae_name if isinstance(graph.vae_name, str) else None
    out["vae_sha256"] = sha256_of("vae", out["vae_name"])
    out.update(loras=loras, batch_index=batch_index, batch_size=batch_size)
    if len(stages) > 1:
        out["stages"] = []
        for i, (stage, r) in enumerate(zip(stages, resolved)):
            entry = {"sampler_node": stage.sampler_id, "sampler_class": stage.sampler_class,
                     **stage_parameters(stage, r, sha256_of)}
            entry["loras"] = (stage_loras or [])[i] if stage_loras and i < len(stage_loras) else []
            out["stages"].append(entry)
    return out


def parameters_source_section(graph: GraphParams, resolved: list[Resolved], *notes: str | None) -> dict:
    """Where each parameter came from (``widget``, ``job``, ``image``, ``unknown: ...``, ``not
    used: ...``), the node each was read from, and ``overrides``: widget values that differ from
    what the prompt file / job said (e.g. steps typed into the KSampler)."""
    first = graph.first
    out = {"sampler_node": graph.sampler_id, "sampler_class": graph.sampler_class,
           "fields": _with_vae(graph, resolved[0].sources), "read_from": dict(first.read_from) if first else {},
           "overrides": resolved[0].overrides,
           "notes": [*(graph.notes or ()), *(first.notes if first else ()), *(n for n in notes if n)]}
    if len(graph.stages) > 1:
        out["stages"] = [{"sampler_node": s.sampler_id, "sampler_class": s.sampler_class, "fields": r.sources,
                          "read_from": dict(s.read_from), "overrides": r.overrides, "notes": list(s.notes)}
                         for s, r in zip(graph.stages, resolved)]
    return out


def _with_vae(graph: GraphParams, sources: dict) -> dict:
    out = dict(sources)
    if graph.vae_name is not None or graph.vae_absent:
        out["vae_name"] = "widget" if isinstance(graph.vae_name, str) else (
            graph.vae_absent or f"unknown: {graph.vae_name}")
    return out


def oom_section(job: dict) -> dict:
    return {k: job.get(k) for k in OOM_KEYS}


def session_section(started: str, folder: str, job: dict, first: int = 1) -> dict:
    """``first``: the session's base number (job j's batch image b is first + j * batch_size + b)."""
    return {"started": started, "folder": folder, "first": first, "source_name": job.get("source_name"),
            "source_sha256": job.get("source_sha256")}


def lora_entry(name: Any, strength_model: Any, strength_clip: Any, sha256: str | None,
               trigger_words: Iterable[str] | None = None) -> dict:
    entry = {"lora_name": name, "strength_model": strength_model, "strength_clip": strength_clip,
             "sha256": sha256}
    if trigger_words is not None:
        entry["trigger_words"] = list(trigger_words)
    return entry


def stack_entries(stack: Iterable[dict], sha256_of: Callable[[str], str | None],
                  trigger_words_of: Callable[[str], Iterable[str]] | None = None) -> list[dict]:
    """LORA_STACK items ({name, strength_model, strength_clip[, sha256]}) as sidecar entries."""
    out = []
    for item in stack or ():
        name = item.get("name", item.get("lora_name"))
        out.append(lora_entry(name, item.get("strength_model"), item.get("strength_clip"),
                              item.get("sha256") or sha256_of(name),
                              trigger_words_of(name) if trigger_words_of else None))
    return out


def applied_loras(graph_loras: list[dict] | None, lora_stack: list[dict] | None,
                  declared: list[dict] | None, sha256_of: Callable[[str], str | None],
                  trigger_words_of: Callable[[str], Iterable[str]] | None = None) -> list[dict]:
    """LoRAs in application order: core LoraLoader nodes on the model path, and the LoRA
    chain's applied stack at the chain's place in it. Without a connected stack the chain's
    place gets the file's ``declared`` list; a connected stack with no chain found on the path
    (an unknown graph) goes first. With ``trigger_words_of`` each entry lists its trigger words."""
    stack = stack_entries(lora_stack, sha256_of, trigger_words_of) if lora_stack is not None else None
    out: list[dict] = []
    placed = False
    for item in graph_loras or ():
        if "stack_node" in item:
            if stack is None and declared is not None:
                stack = stack_entries(declared, sha256_of, trigger_words_of)
            out.extend(stack or ())
            placed = True
            continue
        name, sm, sc = item.get("lora_name"), item.get("strength_model"), item.get("strength_clip")
        if not isinstance(name, str):
            continue                 # a linked name: not knowable from the graph
        if sm == 0 and sc == 0:
            continue                 # core LoraLoader skips it as well
        out.append(lora_entry(name, sm, sc, sha256_of(name),
                              trigger_words_of(name) if trigger_words_of else None))
    if not placed and stack:
        out = stack + out
    return out


def parse_project_id(value: Any) -> int | str | None:
    """'' -> None, '12' -> 12, anything else kept as text (ids from other tools)."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if not text:
        return None
    if text.lstrip("-").isdigit() and text.lstrip("-").isascii():
        return int(text)
    return text


# --------------------------------------------------------------------------- the file

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
                           durable: bool = True, **extra: Any) -> str:
    """Write the sidecar of ``output_path`` and return its path.

    Extra keyword arguments become top-level keys (``oom``, ``session``, ``image_sha256``,
    ``system``; an ``output`` dict replaces the default ``{filename, path}``). Raises
    FileExistsError when the sidecar exists and ``overwrite`` is false. ``durable=False`` leaves
    the fsyncs to the caller (core.atomic: complete under its name all the same).
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
        write_json(json_path, data, replace=overwrite, durable=durable)
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
    return parse_generation_params(raw, path)


def parse_generation_params(raw: bytes, path: str) -> dict:
    """A sidecar's bytes (read from ``path``, or fetched from a server) as a dict; raises
    GenerationParamsError like :func:`load_generation_params`."""
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


# --------------------------------------------------------------------------- the typed record

TEXT, INT, NUMBER, OBJECT = (str,), (int,), (int, float), (dict,)
_KIND_NAMES = {TEXT: "text", INT: "int", NUMBER: "a number", OBJECT: "an object",
               (int, str): "int or text"}


def _typed(section: dict, key: str, kinds: tuple[type, ...], where: str, path: str) -> Any:
    """``section[key]`` if it is one of ``kinds`` (a bool is never a number), None when missing
    or null; any other value is an error naming the file and ``where + key``."""
    value = section.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, kinds):
        raise GenerationParamsError(path, f"{where}{key} must be {_KIND_NAMES[kinds]}, "
                                          f"found {value!r:.60}")
    return float(value) if kinds == NUMBER else value


@dataclass(frozen=True)
class LoraUse:
    """A LoRA as ``parameters.loras`` lists it (strengths None when the file has none)."""
    name: str
    strength_model: float | None = None
    strength_clip: float | None = None
    sha256: str | None = None


@dataclass(frozen=True)
class OomPlace:
    """The ``oom`` section: where the image's job sits in its expansion."""
    index: int | None = None
    total: int | None = None
    seed_index: int | None = None
    prompt_index: int | None = None
    variation_index: int | None = None
    variations_per_prompt: int | None = None
    base_prompt: str = ""
    variation_values: dict[str, str] = field(default_factory=dict)
    mode: str | None = None
    variation_seed: int | None = None
    expansion_id: str = ""
    preset: str | None = None


@dataclass(frozen=True)
class Sidecar:
    """One sidecar, read and type-checked. A value the file lacks (or states as null) is None,
    or "" for text; a value of the wrong type makes :func:`read_sidecar` fail naming the file
    and the field. ``data`` is the whole object, for sections not modelled here. A new field:
    one line here, one in :func:`parse_sidecar`."""
    path: str                       # the .json
    image_path: str                 # the image it describes
    data: dict
    plugin: str
    plugin_version: str
    timestamp: str
    task_id: int | str              # the image's count in its session for Prompt Media
    project_id: int | str | None
    parameters: dict                # the section as written, every key
    prompt: str
    negative: str
    seed: int | None
    steps: int | None
    cfg: float | None
    sampler: str | None
    scheduler: str | None
    denoise: float | None
    width: int | None
    height: int | None
    model_name: str
    model_sha256: str | None
    loras: tuple[LoraUse, ...]
    oom: OomPlace | None            # None: no ``oom`` section (not from an OOM session)
    source_name: str                # the prompt file of the session ("" when not recorded)
    guidance: float | None = None   # Flux guidance (FluxGuidance); None when the graph had none
    model_folder: str | None = None     # checkpoints | diffusion_models (None: older sidecars)
    text_encoders: tuple[str, ...] = ()     # separately loaded text encoders, in loader order
    vae_name: str | None = None     # a separately loaded VAE (None: the checkpoint's own)
    stages: int = 1                 # sampling passes (the top level is the first)

    @property
    def count(self) -> int | None:
        """The image's number in its session; None when ``task_id`` is text (another writer)."""
        return self.task_id if isinstance(self.task_id, int) else None


def read_sidecar(image_path: str | os.PathLike) -> Sidecar | None:
    """The typed sidecar of an image (or of the .json itself); None when there is none.
    Raises GenerationParamsError naming the file (and the field) when it cannot be used."""
    data = load_generation_params(image_path)
    if data is None:
        return None
    path = get_params_path(image_path)
    given = os.fspath(image_path)
    image = given if os.path.splitext(given)[1].lower() != SIDECAR_EXTENSION \
        else os.path.splitext(given)[0] + IMAGE_EXTENSION
    return parse_sidecar(data, path, image)


def parse_sidecar(data: dict, path: str, image_path: str) -> Sidecar:
    """The record of an already loaded (and validated) sidecar object; see :func:`read_sidecar`."""
    p = data["parameters"]

    def param(key: str, kinds: tuple[type, ...]) -> Any:
        return _typed(p, key, kinds, "parameters.", path)

    oom = _typed(data, "oom", OBJECT, "", path)
    session = _typed(data, "session", OBJECT, "", path) or {}
    return Sidecar(
        path=path, image_path=image_path, data=data,
        plugin=data["plugin"], plugin_version=data["plugin_version"],
        timestamp=data["timestamp"], task_id=data["task_id"],
        project_id=_typed(data, "project_id", (int, str), "", path), parameters=p,
        prompt=param("prompt", TEXT) or "", negative=param("negative_prompt", TEXT) or "",
        seed=param("seed", INT), steps=param("steps", INT), cfg=param("cfg_scale", NUMBER),
        sampler=param("sampler", TEXT), scheduler=param("scheduler", TEXT),
        denoise=param("denoise", NUMBER), width=param("width", INT), height=param("height", INT),
        model_name=param("model_name", TEXT) or "", model_sha256=param("model_sha256", TEXT),
        loras=_loras(p, path),
        oom=None if oom is None else _oom_place(oom, path),
        source_name=_typed(session, "source_name", TEXT, "session.", path) or "",
        guidance=param("guidance", NUMBER), model_folder=param("model_folder", TEXT),
        text_encoders=tuple(_typed(t, "name", TEXT, "parameters.text_encoders[].", path) or ""
                            for t in _list(p, "text_encoders", path)),
        vae_name=param("vae_name", TEXT), stages=max(len(_list(p, "stages", path)), 1),
    )


def _list(p: dict, key: str, path: str) -> list:
    value = p.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise GenerationParamsError(path, f"parameters.{key} must be a list of objects, found {value!r:.60}")
    return value


def _loras(p: dict, path: str) -> tuple[LoraUse, ...]:
    loras = p.get("loras")
    if loras is None:
        return ()
    if not isinstance(loras, list):
        raise GenerationParamsError(path, f"parameters.loras must be a list, found {type(loras).__name__}")
    out = []
    for i, lora in enumerate(loras):
        if not isinstance(lora, dict) or not isinstance(lora.get("lora_name"), str):
            raise GenerationParamsError(path, f"parameters.loras[{i}] has no lora_name")
        where = f"parameters.loras[{i}]."
        out.append(LoraUse(lora["lora_name"], _typed(lora, "strength_model", NUMBER, where, path),
                           _typed(lora, "strength_clip", NUMBER, where, path),
                           _typed(lora, "sha256", TEXT, where, path)))
    return tuple(out)


def _oom_place(oom: dict, path: str) -> OomPlace:
    def get(key: str, kinds: tuple[type, ...]) -> Any:
        return _typed(oom, key, kinds, "oom.", path)

    values = get("variation_values", OBJECT) or {}
    return OomPlace(
        index=get("index", INT), total=get("total", INT), seed_index=get("seed_index", INT),
        prompt_index=get("prompt_index", INT), variation_index=get("variation_index", INT),
        variations_per_prompt=get("variations_per_prompt", INT),
        base_prompt=get("base_prompt", TEXT) or "",
        variation_values={str(k): str(v) for k, v in values.items()},
        mode=get("mode", TEXT), variation_seed=get("variation_seed", INT),
        expansion_id=get("expansion_id", TEXT) or "", preset=get("preset", TEXT),
    )


# --------------------------------------------------------------------------- regenerating

@dataclass(frozen=True)
class Regeneration:
    """What regenerates a sidecar's image, in the order Load Generation Params outputs it."""
    positive: str
    negative: str
    seed: int
    steps: int
    cfg: float
    sampler: str
    scheduler: str
    denoise: float
    width: int
    height: int
    model_name: str
    lora_stack: list[dict]          # LORA_STACK items: name, strength_model, strength_clip
    guidance: float                 # FluxGuidance's default 3.5 when the sidecar has none

    def outputs(self) -> tuple:
        return tuple(getattr(self, f.name) for f in fields(self))


def regeneration(sidecar: Sidecar) -> Regeneration:
    """The sampler values of ``sidecar`` (the first sampling pass; denoise and LoRA strengths
    default to 1.0, guidance to 3.5); raises GenerationParamsError naming the file when one the
    sampler needs is missing or the model is not a plain name inside its models folder."""
    def need(name: str, key: str, kinds: tuple[type, ...]) -> Any:
        value = getattr(sidecar, name)
        if value is None:
            raise GenerationParamsError(sidecar.path, f"parameters.{key} must be {_KIND_NAMES[kinds]}, "
                                                      "found None")
        return value

    try:        # a file name inside its models folder, never a path out of it
        relative_parts(sidecar.model_name, "parameters.model_name", f"models/{sidecar.model_folder or 'checkpoints'}")
    except PathError as e:
        raise GenerationParamsError(sidecar.path, str(e)) from None
    return Regeneration(
        sidecar.prompt, sidecar.negative, need("seed", "seed", INT), need("steps", "steps", INT),
        need("cfg", "cfg_scale", NUMBER), need("sampler", "sampler", TEXT),
        need("scheduler", "scheduler", TEXT), 1.0 if sidecar.denoise is None else sidecar.denoise,
        need("width", "width", INT), need("height", "height", INT), sidecar.model_name,
        [{"name": lora.name,
          "strength_model": 1.0 if lora.strength_model is None else lora.strength_model,
          "strength_clip": 1.0 if lora.strength_clip is None else lora.strength_clip}
         for lora in sidecar.loras],
        DEFAULT_GUIDANCE if sidecar.guidance is None else sidecar.guidance)
