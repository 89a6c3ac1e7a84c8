"""Which values did the sampler actually use? Read them from the executing graph.

Given ComfyUI's PROMPT (the API-format graph as posted: ``{node_id: {class_type, inputs}}``,
links as ``[node_id, output_index]``) and the saver's node id, find the KSampler /
KSamplerAdvanced upstream of the saver's ``images`` and report, per parameter, either the
widget constant it was given or a :class:`Linked` marker naming the node output it came from.
The saver resolves: widget constant > the job's value (the OOM node / loader produced the
linked values). Pure Python, robust to graphs it does not know: what it cannot find is absent.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .api_prompt import CHAIN_CLASS, MAX_HOPS, Linked, get_node, node_inputs, of_class, parse_link, upstream, value

SAMPLER_CLASSES = {"KSampler": "seed", "KSamplerAdvanced": "noise_seed"}   # class -> seed input
TEXT_ENCODERS = {"CLIPTextEncode": "text", "CLIPTextEncodeSDXL": "text_g",
                 "CLIPTextEncodeSDXLRefiner": "text", "CLIPTextEncodeFlux": "t5xxl"}
MODEL_LOADERS = {"CheckpointLoaderSimple": "ckpt_name", "CheckpointLoader": "ckpt_name",
                 "ImageOnlyCheckpointLoader": "ckpt_name", "UNETLoader": "unet_name",
                 "unCLIPCheckpointLoader": "ckpt_name"}
LORA_LOADERS = {"LoraLoader", "LoraLoaderModelOnly"}
STACK_APPLIERS = {CHAIN_CLASS}     # apply a LORA_STACK (+ rows); report it as an output

# parameter -> KSampler input it is read from ("seed" depends on the class)
SAMPLER_INPUTS = ("steps", "cfg", "sampler_name", "scheduler", "denoise")


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


def _model_path(prompt: dict, sampler: dict) -> tuple[Any, list[dict]]:
    """Walk the sampler's ``model`` input back to the loader: (model name value, LoRAs in
    application order from core LoraLoader nodes met on the way)."""
    loras: list[dict] = []
    raw = node_inputs(sampler).get("model")
    for _ in range(MAX_HOPS):
        link = parse_link(raw)
        if link is None:
            break
        node = get_node(prompt, link[0])
        if node is None:
            break
        cls, inputs = node.get("class_type"), node_inputs(node)
        if cls in MODEL_LOADERS:
            loras.reverse()
            return value(prompt, inputs.get(MODEL_LOADERS[cls])), loras
        if cls in LORA_LOADERS:
            loras.append({"lora_name": value(prompt, inputs.get("lora_name")),
                          "strength_model": value(prompt, inputs.get("strength_model")),
                          "strength_clip": value(prompt, inputs.get("strength_clip", 0.0))})
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
    found = upstream(prompt, conditioning, of_class(*TEXT_ENCODERS))
    if found is None:
        return None
    _id, node = found
    return value(prompt, node_inputs(node).get(TEXT_ENCODERS[node["class_type"]]))


def _is_empty_latent(node: dict) -> bool:
    inputs = node_inputs(node)
    return str(node.get("class_type", "")).startswith("Empty") and "width" in inputs and "height" in inputs


def _size(prompt: dict, latent: Any) -> tuple[Any, Any]:
    found = upstream(prompt, latent, _is_empty_latent)
    if found is None:
        return None, None
    inputs = node_inputs(found[1])
    return value(prompt, inputs["width"]), value(prompt, inputs["height"])


def find_sampler_params(prompt: dict | None, saver_id: str | None, images_input: str = "images") -> GraphParams:
    """The values the sampler feeding ``saver_id``'s images used (see the module docstring)."""
    if not isinstance(prompt, dict) or saver_id is None:
        return GraphParams(notes=["no graph available (PROMPT missing)"])
    saver = get_node(prompt, str(saver_id))
    if saver is None:
        return GraphParams(notes=[f"saver node {saver_id} not in the graph"])
    found = upstream(prompt, node_inputs(saver).get(images_input), of_class(*SAMPLER_CLASSES))
    if found is None:
        return GraphParams(notes=["no KSampler/KSamplerAdvanced upstream of the images"])
    sampler_id, sampler = found
    cls, inputs = sampler["class_type"], node_inputs(sampler)
    values: dict[str, Any] = {"seed": value(prompt, inputs.get(SAMPLER_CLASSES[cls]))}
    for name in SAMPLER_INPUTS:
        if name in inputs:
            values[name] = value(prompt, inputs[name])
    notes = []
    if cls == "KSamplerAdvanced":
        start = value(prompt, inputs.get("start_at_step", 0))
        if start == 0:
            values["denoise"] = 1.0
        else:
            notes.append(f"KSamplerAdvanced starts at step {start}: denoise not applicable")
        if value(prompt, inputs.get("add_noise", "enable")) == "disable":
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
