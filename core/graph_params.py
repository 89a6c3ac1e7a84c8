"""Which values did the sampler actually use? Read them from the executing graph.

Given ComfyUI's PROMPT (the API-format graph as posted: ``{node_id: {class_type, inputs}}``,
links as ``[node_id, output_index]``) and the saver's node id, find the KSampler /
KSamplerAdvanced upstream of the saver's ``images`` and report, per parameter, either the
widget constant it was given or a :class:`Linked` marker naming the node output it came from.
The saver resolves: widget constant > the job's value (the OOM node / loader produced the
linked values). Pure Python, robust to graphs it does not know: what it cannot find is absent.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

SAMPLER_CLASSES = {"KSampler": "seed", "KSamplerAdvanced": "noise_seed"}   # class -> seed input
TEXT_ENCODERS = {"CLIPTextEncode": "text", "CLIPTextEncodeSDXL": "text_g",
                 "CLIPTextEncodeSDXLRefiner": "text", "CLIPTextEncodeFlux": "t5xxl"}
MODEL_LOADERS = {"CheckpointLoaderSimple": "ckpt_name", "CheckpointLoader": "ckpt_name",
                 "ImageOnlyCheckpointLoader": "ckpt_name", "UNETLoader": "unet_name",
                 "unCLIPCheckpointLoader": "ckpt_name"}
LORA_LOADERS = {"LoraLoader", "LoraLoaderModelOnly"}
STACK_APPLIERS = {"PromptMediaLoraChain"}     # apply a LORA_STACK (+ rows); report it as an output
# Core primitive nodes: a link from one of them is as good as a widget constant.
PRIMITIVE_CLASSES = {"PrimitiveInt", "PrimitiveFloat", "PrimitiveString", "PrimitiveStringMultiline",
                     "PrimitiveBoolean"}
MAX_HOPS = 256            # upstream search bound (graphs are small; cycles are impossible but cheap to guard)

# parameter -> KSampler input it is read from ("seed" depends on the class)
SAMPLER_INPUTS = ("steps", "cfg", "sampler_name", "scheduler", "denoise")


@dataclass(frozen=True)
class Linked:
    """The value arrives through a link: node ``node_id``'s output ``output_index``."""
    node_id: str
    output_index: int
    class_type: str | None

    def __str__(self) -> str:
        return f"linked from node {self.node_id} ({self.class_type}) output {self.output_index}"


@dataclass
class GraphParams:
    sampler_id: str | None = None
    sampler_class: str | None = None
    values: dict[str, Any] | None = None        # name -> constant | Linked
    loras: list[dict] | None = None             # LoRA nodes on the model path, in application order
    notes: list[str] | None = None

    @property
    def found(self) -> bool:
        return self.sampler_id is not None


def _link(value: Any) -> tuple[str, int] | None:
    if (isinstance(value, (list, tuple)) and len(value) == 2 and isinstance(value[0], (str, int))
            and isinstance(value[1], int) and not isinstance(value[1], bool)):
        return str(value[0]), value[1]
    return None


def _node(prompt: dict, node_id: str) -> dict | None:
    node = prompt.get(node_id)
    return node if isinstance(node, dict) and isinstance(node.get("inputs", {}), dict) else None


def _inputs(node: dict) -> dict:
    return node.get("inputs") or {}


def _value(prompt: dict, raw: Any) -> Any:
    """A constant, a constant read through a core primitive node, or a Linked marker."""
    link = _link(raw)
    if link is None:
        return raw
    node = _node(prompt, link[0])
    class_type = node.get("class_type") if node else None
    if node and class_type in PRIMITIVE_CLASSES and _link(_inputs(node).get("value")) is None \
            and "value" in _inputs(node):
        return _inputs(node)["value"]
    return Linked(link[0], link[1], class_type)


def _upstream(prompt: dict, start: Any, match: Callable[[dict], bool],
              follow: tuple[str, ...] | None = None):
    """Breadth-first from link ``start`` to the nearest node for which ``match(node)`` holds;
    ``follow`` limits which inputs are walked (None: all linked inputs). (id, node) or None."""
    first = _link(start)
    if first is None:
        return None
    queue, seen = deque([first[0]]), set()
    while queue and len(seen) < MAX_HOPS:
        node_id = queue.popleft()
        if node_id in seen:
            continue
        seen.add(node_id)
        node = _node(prompt, node_id)
        if node is None:
            continue
        if match(node):
            return node_id, node
        for name, raw in _inputs(node).items():
            if follow is not None and name not in follow:
                continue
            link = _link(raw)
            if link is not None:
                queue.append(link[0])
    return None


def _of_class(classes) -> Callable[[dict], bool]:
    return lambda node: node.get("class_type") in classes


def _model_path(prompt: dict, sampler: dict) -> tuple[Any, list[dict]]:
    """Walk the sampler's ``model`` input back to the loader: (model name value, LoRAs in
    application order from core LoraLoader nodes met on the way)."""
    loras: list[dict] = []
    raw = _inputs(sampler).get("model")
    for _ in range(MAX_HOPS):
        link = _link(raw)
        if link is None:
            break
        node = _node(prompt, link[0])
        if node is None:
            break
        cls, inputs = node.get("class_type"), _inputs(node)
        if cls in MODEL_LOADERS:
            loras.reverse()
            return _value(prompt, inputs.get(MODEL_LOADERS[cls])), loras
        if cls in LORA_LOADERS:
            loras.append({"lora_name": _value(prompt, inputs.get("lora_name")),
                          "strength_model": _value(prompt, inputs.get("strength_model")),
                          "strength_clip": _value(prompt, inputs.get("strength_clip", 0.0))})
        elif cls in STACK_APPLIERS or "lora_stack" in inputs:
            # a stack-applying node (our LoRA chain): its place in the order; the saver fills
            # it from the chain's LORA_STACK output
            loras.append({"stack_node": link[0], "class_type": cls})
        if "model" not in inputs:
            break
        raw = inputs["model"]
    loras.reverse()
    return None, loras


def _text(prompt: dict, conditioning: Any) -> Any:
    found = _upstream(prompt, conditioning, _of_class(TEXT_ENCODERS))
    if found is None:
        return None
    _id, node = found
    return _value(prompt, _inputs(node).get(TEXT_ENCODERS[node["class_type"]]))


def _is_empty_latent(node: dict) -> bool:
    inputs = _inputs(node)
    return str(node.get("class_type", "")).startswith("Empty") and "width" in inputs and "height" in inputs


def _size(prompt: dict, latent: Any) -> tuple[Any, Any]:
    found = _upstream(prompt, latent, _is_empty_latent)
    if found is None:
        return None, None
    inputs = _inputs(found[1])
    return _value(prompt, inputs["width"]), _value(prompt, inputs["height"])


def find_sampler_params(prompt: dict | None, saver_id: str | None, images_input: str = "images") -> GraphParams:
    """The values the sampler feeding ``saver_id``'s images used (see the module docstring)."""
    if not isinstance(prompt, dict) or saver_id is None:
        return GraphParams(notes=["no graph available (PROMPT missing)"])
    saver = _node(prompt, str(saver_id))
    if saver is None:
        return GraphParams(notes=[f"saver node {saver_id} not in the graph"])
    found = _upstream(prompt, _inputs(saver).get(images_input), _of_class(SAMPLER_CLASSES))
    if found is None:
        return GraphParams(notes=["no KSampler/KSamplerAdvanced upstream of the images"])
    sampler_id, sampler = found
    cls, inputs = sampler["class_type"], _inputs(sampler)
    values: dict[str, Any] = {"seed": _value(prompt, inputs.get(SAMPLER_CLASSES[cls]))}
    for name in SAMPLER_INPUTS:
        if name in inputs:
            values[name] = _value(prompt, inputs[name])
    notes = []
    if cls == "KSamplerAdvanced":
        start = _value(prompt, inputs.get("start_at_step", 0))
        if start == 0:
            values["denoise"] = 1.0
        else:
            notes.append(f"KSamplerAdvanced starts at step {start}: denoise not applicable")
        if _value(prompt, inputs.get("add_noise", "enable")) == "disable":
            notes.append("KSamplerAdvanced add_noise is disabled")
    values["positive"] = _text(prompt, inputs.get("positive"))
    values["negative"] = _text(prompt, inputs.get("negative"))
    values["width"], values["height"] = _size(prompt, inputs.get("latent_image"))
    model_name, loras = _model_path(prompt, sampler)
    values["model_name"] = model_name
    return GraphParams(sampler_id, cls, {k: v for k, v in values.items() if v is not None},
                       loras, notes)


# job key for each parameter (the OOM node and loader put the per-job values there)
JOB_KEYS = {"seed": "seed", "steps": "steps", "cfg": "cfg", "sampler_name": "sampler_name",
            "scheduler": "scheduler", "denoise": "denoise", "positive": "positive",
            "negative": "negative", "width": "width", "height": "height"}
OUR_PREFIX = "PromptMedia"


@dataclass
class Resolved:
    values: dict[str, Any]          # parameter -> value used (None when unknown)
    sources: dict[str, str]         # parameter -> "widget" | "job" | "job (unverified: ...)" | "image" | "unknown"
    overrides: dict[str, dict]      # parameter -> {"used": widget value, "file": job value}


def resolve(graph: GraphParams, job: dict | None, image_size: tuple[int, int] | None = None) -> Resolved:
    """Widget constant > job value; width/height fall back to the image's own size."""
    job = job or {}
    found = graph.values or {}
    values, sources, overrides = {}, {}, {}
    for name in (*JOB_KEYS, "model_name"):
        raw = found.get(name)
        job_key = JOB_KEYS.get(name)
        has_job = job_key is not None and job.get(job_key) is not None
        if raw is not None and not isinstance(raw, Linked):
            values[name], sources[name] = raw, "widget"
            if has_job and job[job_key] != raw:
                overrides[name] = {"used": raw, "file": job[job_key]}
        elif has_job:
            values[name] = job[job_key]
            if isinstance(raw, Linked) and not str(raw.class_type or "").startswith(OUR_PREFIX):
                sources[name] = f"job (unverified: {raw})"
            else:
                sources[name] = "job"
        else:
            values[name], sources[name] = None, "unknown"
    if image_size is not None:
        for name, size in zip(("width", "height"), image_size):
            if values[name] is None:
                values[name], sources[name] = size, "image"
    return Resolved(values, sources, overrides)
