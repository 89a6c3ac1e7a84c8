"""Which values did the sampler actually use? Read them from the executing graph.

Given ComfyUI's PROMPT (the API-format graph as posted) and the saver's node id, find the
sampling stages that made the saver's images and read, per stage and parameter, the widget
constant it was given, a :class:`Linked` marker naming the node output it came from, or why it
is absent. Every core sampling shape is read:

- ``KSampler``, ``KSamplerAdvanced``, ``SamplerCustom`` and ``SamplerCustomAdvanced``, the
  latter followed to its noise (``RandomNoise`` / ``DisableNoise``: seed), guider
  (``BasicGuider`` / ``CFGGuider`` / ``DualCFGGuider``: cfg and conditionings), sampler
  (``KSamplerSelect``, ``Sampler*``) and sigmas (``BasicScheduler``, ``KarrasScheduler``, ...,
  through ``SplitSigmas``: steps, scheduler, denoise, start/end step);
- ``FluxGuidance`` / ``CLIPTextEncodeFlux`` on the positive conditioning path: guidance;
- the model path (``CheckpointLoaderSimple``, ``UNETLoader`` + weight dtype, ``ModelSampling*``
  shift, ``LoraLoader``, ``LoraLoaderModelOnly``, our LoRA Chain), the text encoders
  (``CLIPLoader`` / ``DualCLIPLoader`` / ``TripleCLIPLoader`` or the checkpoint's own) and the
  VAE (``VAELoader`` or the checkpoint's own).

A graph with several sampling passes (hires fix, refiner) gives one stage per pass, first pass
first. :func:`resolve` then turns each read value into the value used and its source: a widget
constant, the job's value when the link comes from our loader / OOM node output of that name,
otherwise *unknown* (never the job's value as if the sampler had used it). Pure Python, robust
to graphs it does not know.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .api_prompt import (
    CHAIN_CLASS,
    JOB_OUTPUTS,
    LOADER_OUTPUTS,
    MAX_HOPS,
    Linked,
    class_of,
    get_node,
    links_from,
    node_inputs,
    of_class,
    parse_link,
    source_of,
    upstream,
    value,
)

# sampler node class -> its seed input
SAMPLER_CLASSES = {"KSampler": "seed", "KSamplerAdvanced": "noise_seed", "SamplerCustom": "noise_seed",
                   "SamplerCustomAdvanced": None}
TEXT_ENCODERS = {"CLIPTextEncode": "text", "CLIPTextEncodeSDXL": "text_g",
                 "CLIPTextEncodeSDXLRefiner": "text", "CLIPTextEncodeFlux": "t5xxl",
                 "CLIPTextEncodeSD3": "t5xxl"}
# model loader class -> (file input, models folder)
MODEL_LOADERS = {"CheckpointLoaderSimple": ("ckpt_name", "checkpoints"),
                 "CheckpointLoader": ("ckpt_name", "checkpoints"),
                 "ImageOnlyCheckpointLoader": ("ckpt_name", "checkpoints"),
                 "unCLIPCheckpointLoader": ("ckpt_name", "checkpoints"),
                 "UNETLoader": ("unet_name", "diffusion_models")}
CHECKPOINT_LOADERS = {k for k, (_, folder) in MODEL_LOADERS.items() if folder == "checkpoints"}
CLIP_LOADERS = {"CLIPLoader": ("clip_name",), "DualCLIPLoader": ("clip_name1", "clip_name2"),
                "TripleCLIPLoader": ("clip_name1", "clip_name2", "clip_name3")}
LORA_LOADERS = {"LoraLoader", "LoraLoaderModelOnly"}
STACK_APPLIERS = {CHAIN_CLASS}     # apply a LORA_STACK (+ rows); the saver fills in what they applied
MODEL_SAMPLING_PREFIX = "ModelSampling"
# SAMPLER-producing nodes: KSamplerSelect names it; each Sampler* node is one sampler with options
SAMPLER_NODES = {"SamplerEulerAncestral": "euler_ancestral", "SamplerEulerAncestralCFGPP": "euler_ancestral_cfg_pp",
                 "SamplerLMS": "lms", "SamplerDPMPP_3M_SDE": "dpmpp_3m_sde", "SamplerDPMPP_2M_SDE": "dpmpp_2m_sde",
                 "SamplerDPMPP_SDE": "dpmpp_sde", "SamplerDPMPP_2S_Ancestral": "dpmpp_2s_ancestral",
                 "SamplerDPMAdaptative": "dpm_adaptive", "SamplerER_SDE": "er_sde", "SamplerSASolver": "sa_solver"}
GPU_NOISE_SAMPLERS = {"dpmpp_3m_sde", "dpmpp_2m_sde", "dpmpp_sde"}   # noise_device gpu -> name + "_gpu"
# SIGMAS-producing nodes -> the scheduler they compute (BasicScheduler names its own)
SCHEDULER_NODES = {"BasicScheduler": None, "KarrasScheduler": "karras", "ExponentialScheduler": "exponential",
                   "PolyexponentialScheduler": "polyexponential", "LaplaceScheduler": "laplace",
                   "VPScheduler": "vp", "BetaSamplingScheduler": "beta", "SDTurboScheduler": "sd_turbo"}
GUIDERS = {"BasicGuider", "CFGGuider", "DualCFGGuider"}
GUIDANCE_NODES = {"FluxGuidance", "CLIPTextEncodeFlux", "FluxDisableGuidance"}
VAE_DECODERS = {"VAEDecode", "VAEDecodeTiled", "VAEDecodeHunyuan3D"}

# what a stage reports, in sidecar order (model-side fields follow)
STAGE_FIELDS = ("seed", "noise", "steps", "cfg", "sampler_name", "scheduler", "denoise", "start_at_step",
                "end_at_step", "guidance", "positive", "negative", "width", "height")
MODEL_FIELDS = ("model_name", "model_folder", "weight_dtype", "shift", "clip_type", "clip_skip")
# stage field -> job key (the job carries what the prompt file said)
JOB_KEYS = {"seed": "seed", "steps": "steps", "cfg": "cfg", "sampler_name": "sampler_name",
            "scheduler": "scheduler", "denoise": "denoise", "positive": "positive", "negative": "negative",
            "width": "width", "height": "height", "guidance": "guidance", "model_name": "model_name"}


@dataclass
class Stage:
    """One sampling pass: raw values (constant | Linked), why a field is absent, where each
    value was read (node id), sampler/scheduler options, the model side."""
    sampler_id: str
    sampler_class: str
    values: dict[str, Any] = field(default_factory=dict)
    absent: dict[str, str] = field(default_factory=dict)     # field -> "not used: ..." | "unknown: ..."
    read_from: dict[str, str] = field(default_factory=dict)  # field -> node id
    guider_class: str | None = None
    guider_options: dict[str, Any] = field(default_factory=dict)
    sampler_options: dict[str, Any] = field(default_factory=dict)
    scheduler_options: dict[str, Any] = field(default_factory=dict)
    model_sampling: dict[str, Any] = field(default_factory=dict)
    text_encoders: list[Any] = field(default_factory=list)   # names (constant | Linked), loader order
    loras: list[dict] = field(default_factory=list)          # LoRAs on the model path, in application order
    notes: list[str] = field(default_factory=list)

    def set(self, name: str, raw: Any, node_id: str | None) -> None:
        self.values[name] = raw
        self.absent.pop(name, None)
        if node_id is not None:
            self.read_from[name] = node_id

    def miss(self, name: str, why: str) -> None:
        self.values.pop(name, None)
        self.absent[name] = why


@dataclass
class GraphParams:
    stages: list[Stage] = field(default_factory=list)      # first pass first
    vae_name: Any = None
    vae_absent: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def found(self) -> bool:
        return bool(self.stages)

    @property
    def first(self) -> Stage | None:
        return self.stages[0] if self.stages else None

    @property
    def sampler_id(self) -> str | None:
        return self.first.sampler_id if self.first else None

    @property
    def sampler_class(self) -> str | None:
        return self.first.sampler_class if self.first else None

    @property
    def loras(self) -> list[dict]:
        """The LoRAs of the first stage (the one whose model made the image's composition)."""
        return self.first.loras if self.first else []


def _src(prompt: dict, node: dict, name: str) -> tuple[str, dict] | None:
    found = source_of(prompt, node, name)
    return (found[0], found[2]) if found else None


def _described(node_id: str, node: dict | None) -> str:
    return f"node {node_id} ({class_of(node)})"


# --------------------------------------------------------------------------- model side

def _model_path(prompt: dict, stage: Stage, raw: Any) -> None:
    """Walk a MODEL input back to its loader: file, folder, dtype, ModelSampling*, LoRAs."""
    loras: list[dict] = []
    for _ in range(MAX_HOPS):
        link = parse_link(raw)
        if link is None:
            stage.miss("model_name", "unknown: the model input is not connected")
            break
        node = get_node(prompt, link[0])
        if node is None:
            stage.miss("model_name", f"unknown: node {link[0]} is not in the graph")
            break
        cls, inputs = class_of(node), node_inputs(node)
        if cls in MODEL_LOADERS:
            file_input, folder = MODEL_LOADERS[cls]
            stage.set("model_name", value(prompt, inputs.get(file_input)), link[0])
            stage.set("model_folder", folder, link[0])
            if cls == "UNETLoader":
                stage.set("weight_dtype", value(prompt, inputs.get("weight_dtype", "default")), link[0])
            break
        if cls in LORA_LOADERS:
            loras.append({"lora_name": value(prompt, inputs.get("lora_name")),
                          "strength_model": value(prompt, inputs.get("strength_model")),
                          "strength_clip": value(prompt, inputs.get("strength_clip", 0.0))})
        elif cls in STACK_APPLIERS or "lora_stack" in inputs:
            # a stack-applying node (our LoRA chain): its place in the order; the saver fills
            # it from the chain's LORA_STACK output
            loras.append({"stack_node": link[0], "class_type": cls})
        elif cls and cls.startswith(MODEL_SAMPLING_PREFIX) and not stage.model_sampling:
            # the ModelSampling* nearest the sampler is the one in effect
            stage.model_sampling = {"class": cls, **{k: value(prompt, v) for k, v in inputs.items()
                                                     if k != "model"}}
            if "shift" in inputs:
                stage.set("shift", value(prompt, inputs["shift"]), link[0])
        if "model" not in inputs:
            stage.miss("model_name", f"unknown: the model comes from {_described(link[0], node)}")
            break
        raw = inputs["model"]
    loras.reverse()
    stage.loras = loras


def _clip_path(prompt: dict, stage: Stage, encoder: dict | None) -> None:
    """Walk the positive text encoder's CLIP input back to its loader."""
    raw = node_inputs(encoder).get("clip") if encoder else None
    for _ in range(MAX_HOPS):
        link = parse_link(raw)
        node = get_node(prompt, link[0]) if link else None
        if node is None:
            stage.miss("text_encoders", "unknown: the text encoder's CLIP input was not found")
            return
        cls, inputs = class_of(node), node_inputs(node)
        if cls in CLIP_LOADERS:
            stage.text_encoders = [value(prompt, inputs.get(name)) for name in CLIP_LOADERS[cls]]
            stage.set("text_encoders", stage.text_encoders, link[0])
            if "type" in inputs:
                stage.set("clip_type", value(prompt, inputs["type"]), link[0])
            return
        if cls in CHECKPOINT_LOADERS:
            stage.miss("text_encoders", "not used: the checkpoint's own text encoder")
            return
        if cls == "CLIPSetLastLayer" and "clip_skip" not in stage.values:
            layer = value(prompt, inputs.get("stop_at_clip_layer"))
            stage.set("clip_skip", -layer if isinstance(layer, int) else layer, link[0])
        if "clip" not in inputs:
            stage.miss("text_encoders", f"unknown: the CLIP comes from {_described(link[0], node)}")
            return
        raw = inputs["clip"]


def _vae(prompt: dict, graph: GraphParams, images: Any) -> None:
    found = upstream(prompt, images, of_class(*VAE_DECODERS))
    if found is None:
        graph.vae_absent = "unknown: no VAE decode upstream of the images"
        return
    raw = node_inputs(found[1]).get("vae")
    for _ in range(MAX_HOPS):
        link = parse_link(raw)
        node = get_node(prompt, link[0]) if link else None
        cls = class_of(node)
        if cls == "VAELoader":
            graph.vae_name = value(prompt, node_inputs(node).get("vae_name"))
            return
        if cls in CHECKPOINT_LOADERS:
            graph.vae_absent = "not used: the checkpoint's own VAE"
            return
        if node is None or "vae" not in node_inputs(node):
            graph.vae_absent = f"unknown: the VAE comes from {_described(link[0], node) if link else 'nowhere'}"
            return
        raw = node_inputs(node)["vae"]


# --------------------------------------------------------------------------- conditioning

def _text(prompt: dict, conditioning: Any) -> tuple[Any, str | None, dict | None]:
    """(text value, encoder id, encoder node) of the nearest text encoder upstream."""
    found = upstream(prompt, conditioning, of_class(*TEXT_ENCODERS))
    if found is None:
        return None, None, None
    node_id, node = found
    return value(prompt, node_inputs(node).get(TEXT_ENCODERS[node["class_type"]])), node_id, node


def _prompt_field(prompt: dict, stage: Stage, name: str, conditioning: Any) -> dict | None:
    text, node_id, encoder = _text(prompt, conditioning)
    if node_id is None:
        stage.miss(name, "unknown: no text encoder upstream of the conditioning")
    else:
        stage.set(name, text, node_id)
    return encoder


def _guidance(prompt: dict, stage: Stage, conditioning: Any) -> None:
    found = upstream(prompt, conditioning, of_class(*GUIDANCE_NODES, *TEXT_ENCODERS))
    if found is None or class_of(found[1]) in set(TEXT_ENCODERS) - GUIDANCE_NODES:
        stage.miss("guidance", "not used: no FluxGuidance on the positive conditioning")
    elif class_of(found[1]) == "FluxDisableGuidance":
        stage.miss("guidance", f"not used: disabled by FluxDisableGuidance (node {found[0]})")
    else:
        stage.set("guidance", value(prompt, node_inputs(found[1]).get("guidance")), found[0])


# --------------------------------------------------------------------------- sampler parts

def _noise(prompt: dict, stage: Stage, sampler: dict) -> None:
    found = _src(prompt, sampler, "noise")
    cls = class_of(found[1]) if found else None
    if cls == "RandomNoise":
        stage.set("seed", value(prompt, node_inputs(found[1]).get("noise_seed")), found[0])
        stage.set("noise", "enabled", found[0])
    elif cls == "DisableNoise":
        stage.set("seed", 0, found[0])     # Noise_EmptyNoise.seed: what stochastic samplers get
        stage.set("noise", "disabled", found[0])
        stage.notes.append("DisableNoise: no initial noise; seed 0 reaches the sampler")
    else:
        why = f"unknown: noise from {_described(*found)}" if found else "unknown: noise input not connected"
        stage.miss("seed", why)
        stage.miss("noise", why)


def _sampler_object(prompt: dict, stage: Stage, sampler: dict) -> None:
    found = _src(prompt, sampler, "sampler")
    cls = class_of(found[1]) if found else None
    if cls == "KSamplerSelect":
        stage.set("sampler_name", value(prompt, node_inputs(found[1]).get("sampler_name")), found[0])
    elif cls in SAMPLER_NODES:
        options = {k: value(prompt, v) for k, v in node_inputs(found[1]).items()}
        name = SAMPLER_NODES[cls]
        if name in GPU_NOISE_SAMPLERS and options.get("noise_device", "gpu") == "gpu":
            name += "_gpu"
        stage.set("sampler_name", name, found[0])
        stage.sampler_options = {"class": cls, **options}
    else:
        stage.miss("sampler_name", f"unknown: sampler from {_described(*found)}" if found
                   else "unknown: sampler input not connected")


def _sigmas(prompt: dict, stage: Stage, sampler: dict) -> None:
    """steps / scheduler / denoise / start and end step from the SIGMAS input."""
    found = _src(prompt, sampler, "sigmas")
    splits: list[tuple[str, int, dict]] = []         # (node id, output index, node), sampler side first
    link = parse_link(node_inputs(sampler).get("sigmas"))
    for _ in range(MAX_HOPS):
        if found is None or class_of(found[1]) not in ("SplitSigmas", "SplitSigmasDenoise"):
            break
        splits.append((found[0], link[1], found[1]))
        link = parse_link(node_inputs(found[1]).get("sigmas"))
        found = _src(prompt, found[1], "sigmas")
    cls = class_of(found[1]) if found else None
    if cls not in SCHEDULER_NODES:
        why = f"unknown: sigmas from {_described(*found)}" if found else "unknown: sigmas input not connected"
        for name in ("steps", "scheduler", "denoise"):
            stage.miss(name, why)
        return
    node_id, node = found
    inputs = node_inputs(node)
    steps = value(prompt, inputs.get("steps"))
    stage.set("steps", steps, node_id)
    scheduler = SCHEDULER_NODES[cls]
    stage.set("scheduler", value(prompt, inputs.get("scheduler")) if scheduler is None else scheduler, node_id)
    if "denoise" in inputs:
        stage.set("denoise", value(prompt, inputs["denoise"]), node_id)
    else:
        stage.miss("denoise", f"not used: {cls} has no denoise (a full schedule)")
    stage.scheduler_options = {k: value(prompt, v) for k, v in inputs.items()
                               if k not in ("model", "steps", "scheduler", "denoise")}
    if stage.scheduler_options:
        stage.scheduler_options["class"] = cls
    if splits:
        _split_range(prompt, stage, steps, splits)


def _split_range(prompt: dict, stage: Stage, steps: Any, splits: list) -> None:
    """SplitSigmas picks part of the schedule: which steps of it this sampler runs."""
    if not isinstance(steps, int):
        stage.miss("start_at_step", "unknown: the schedule's steps are not known")
        stage.miss("end_at_step", "unknown: the schedule's steps are not known")
        return
    start, end = 0, steps
    for node_id, output, node in reversed(splits):        # scheduler side first
        if class_of(node) == "SplitSigmas":
            step = value(prompt, node_inputs(node).get("step"))
            if not isinstance(step, int):
                stage.miss("start_at_step", f"unknown: SplitSigmas node {node_id} step is linked")
                stage.miss("end_at_step", f"unknown: SplitSigmas node {node_id} step is linked")
                return
            if output == 0:
                end = min(end, start + step)
            else:
                start = min(start + step, end)
        else:                                              # SplitSigmasDenoise
            denoise = value(prompt, node_inputs(node).get("denoise"))
            if not isinstance(denoise, (int, float)) or isinstance(denoise, bool):
                stage.miss("start_at_step", f"unknown: SplitSigmasDenoise node {node_id} denoise is linked")
                stage.miss("end_at_step", f"unknown: SplitSigmasDenoise node {node_id} denoise is linked")
                return
            tail = round((end - start) * denoise)
            if output == 0:
                end = max(start, end - tail)
            else:
                start = max(start, end - tail)
        stage.read_from.setdefault("start_at_step", node_id)
    stage.set("start_at_step", start, None)
    stage.set("end_at_step", end, None)


def _guider(prompt: dict, stage: Stage, sampler: dict) -> tuple[Any, dict | None]:
    """cfg, positive, negative from the GUIDER; (model input, positive encoder)."""
    found = _src(prompt, sampler, "guider")
    cls = class_of(found[1]) if found else None
    if cls not in GUIDERS:
        why = f"unknown: guider {_described(*found)}" if found else "unknown: guider input not connected"
        for name in ("cfg", "positive", "negative", "guidance"):
            stage.miss(name, why)
        stage.miss("model_name", why)
        return None, None
    node_id, guider = found
    inputs = node_inputs(guider)
    stage.guider_class = cls
    positive_input = {"BasicGuider": "conditioning", "CFGGuider": "positive", "DualCFGGuider": "cond1"}[cls]
    encoder = _prompt_field(prompt, stage, "positive", inputs.get(positive_input))
    _guidance(prompt, stage, inputs.get(positive_input))
    if cls == "BasicGuider":
        stage.set("cfg", 1.0, node_id)          # comfy Guider_Basic: the conditional prediction alone
        stage.notes.append("BasicGuider: no negative prompt, no cfg (1.0)")
        stage.miss("negative", "not used: BasicGuider takes no negative prompt")
    elif cls == "CFGGuider":
        stage.set("cfg", value(prompt, inputs.get("cfg")), node_id)
        _prompt_field(prompt, stage, "negative", inputs.get("negative"))
    else:
        stage.set("cfg", value(prompt, inputs.get("cfg_conds")), node_id)
        _prompt_field(prompt, stage, "positive_2", inputs.get("cond2"))
        _prompt_field(prompt, stage, "negative", inputs.get("negative"))
        stage.guider_options = {"cfg_cond2_negative": value(prompt, inputs.get("cfg_cond2_negative")),
                                "style": value(prompt, inputs.get("style"))}
    return inputs.get("model"), encoder


# --------------------------------------------------------------------------- stages

def _is_empty_latent(node: dict) -> bool:
    inputs = node_inputs(node)
    return str(node.get("class_type", "")).startswith("Empty") and "width" in inputs and "height" in inputs


def _size(prompt: dict, stage: Stage, latent: Any) -> None:
    """Width/height of the latent the stage starts from: an Empty* latent (or a LatentUpscale to
    a fixed size) before any earlier sampler."""
    def match(node: dict) -> bool:
        cls = class_of(node)
        return _is_empty_latent(node) or cls in SAMPLER_CLASSES or cls == "LatentUpscale"
    found = upstream(prompt, latent, match)
    if found is None:
        for name in ("width", "height"):
            stage.miss(name, "unknown: no empty latent upstream")
        return
    node_id, node = found
    inputs = node_inputs(node)
    if class_of(node) in SAMPLER_CLASSES or (class_of(node) == "LatentUpscale" and (
            value(prompt, inputs.get("width")) == 0 or value(prompt, inputs.get("height")) == 0)):
        for name in ("width", "height"):
            stage.miss(name, f"unknown: the latent comes from an earlier pass ({_described(node_id, node)})")
        return
    stage.set("width", value(prompt, inputs.get("width")), node_id)
    stage.set("height", value(prompt, inputs.get("height")), node_id)


def _read_stage(prompt: dict, sampler_id: str, sampler: dict) -> Stage:
    cls = class_of(sampler)
    inputs = node_inputs(sampler)
    stage = Stage(sampler_id, cls)
    model_raw, encoder = inputs.get("model"), None
    if cls == "SamplerCustomAdvanced":
        _noise(prompt, stage, sampler)
        model_raw, encoder = _guider(prompt, stage, sampler)
        _sampler_object(prompt, stage, sampler)
        _sigmas(prompt, stage, sampler)
    else:
        stage.set("seed", value(prompt, inputs.get(SAMPLER_CLASSES[cls])), sampler_id)
        stage.set("cfg", value(prompt, inputs.get("cfg")), sampler_id)
        encoder = _prompt_field(prompt, stage, "positive", inputs.get("positive"))
        _prompt_field(prompt, stage, "negative", inputs.get("negative"))
        _guidance(prompt, stage, inputs.get("positive"))
        if cls == "SamplerCustom":
            add_noise = value(prompt, inputs.get("add_noise", True))
            stage.set("noise", "disabled" if add_noise is False else "enabled" if add_noise is True else add_noise,
                      sampler_id)
            _sampler_object(prompt, stage, sampler)
            _sigmas(prompt, stage, sampler)
        else:
            for name in ("steps", "sampler_name", "scheduler"):
                stage.set(name, value(prompt, inputs.get(name)), sampler_id)
            if cls == "KSampler":
                stage.set("noise", "enabled", sampler_id)
                stage.set("denoise", value(prompt, inputs.get("denoise", 1.0)), sampler_id)
            else:
                _advanced(prompt, stage, inputs, sampler_id)
    _size(prompt, stage, inputs.get("latent_image"))
    _model_path(prompt, stage, model_raw)
    _clip_path(prompt, stage, encoder)
    return stage


def _advanced(prompt: dict, stage: Stage, inputs: dict, sampler_id: str) -> None:
    add_noise = value(prompt, inputs.get("add_noise", "enable"))
    stage.set("noise", {"enable": "enabled", "disable": "disabled"}.get(add_noise, add_noise), sampler_id)
    start = value(prompt, inputs.get("start_at_step", 0))
    end = value(prompt, inputs.get("end_at_step", 10000))
    steps = stage.values.get("steps")
    if isinstance(end, int) and isinstance(steps, int):
        end = min(end, steps)
    stage.set("start_at_step", start, sampler_id)
    stage.set("end_at_step", end, sampler_id)
    if start == 0 and (not isinstance(end, int) or not isinstance(steps, int) or end >= steps):
        stage.set("denoise", 1.0, sampler_id)
    else:
        stage.miss("denoise", "not used: KSamplerAdvanced runs steps start_at_step..end_at_step")


def find_sampler_params(prompt: dict | None, saver_id: str | None, images_input: str = "images") -> GraphParams:
    """The sampling stages that made ``saver_id``'s images (see the module docstring)."""
    if not isinstance(prompt, dict) or saver_id is None:
        return GraphParams(notes=["no graph available (PROMPT missing)"])
    saver = get_node(prompt, str(saver_id))
    if saver is None:
        return GraphParams(notes=[f"saver node {saver_id} not in the graph"])
    images = node_inputs(saver).get(images_input)
    found = upstream(prompt, images, of_class(*SAMPLER_CLASSES))
    if found is None:
        return GraphParams(notes=[f"no sampler ({', '.join(SAMPLER_CLASSES)}) upstream of the images"])
    stages, seen = [], set()
    while found is not None and found[0] not in seen and len(stages) < MAX_HOPS:
        seen.add(found[0])
        stages.append(_read_stage(prompt, *found))
        found = upstream(prompt, node_inputs(found[1]).get("latent_image"), of_class(*SAMPLER_CLASSES))
    stages.reverse()
    graph = GraphParams(stages)
    _vae(prompt, graph, images)
    return graph


def wired_model_folders(prompt: dict | None, loader_id: str | None) -> list[str]:
    """The models folders the Prompt Media Loader's ``model_name`` output feeds (checkpoints for
    a checkpoint loader, diffusion_models for UNETLoader; both for any other node); empty when
    that output is not connected."""
    if loader_id is None:
        return []
    folders: list[str] = []
    for _cid, name, node in links_from(prompt, str(loader_id), LOADER_OUTPUTS.index("model_name")):
        spec = MODEL_LOADERS.get(class_of(node) or "")
        for folder in (spec[1],) if spec and spec[0] == name else ("checkpoints", "diffusion_models"):
            if folder not in folders:
                folders.append(folder)
    return folders


# --------------------------------------------------------------------------- resolving

@dataclass
class Resolved:
    values: dict[str, Any]          # field -> value used (None when unknown / not used)
    sources: dict[str, str]         # field -> "widget" | "job" | "unknown: ..." | "not used: ..." | "image"
    overrides: dict[str, dict]      # field -> {"used": widget value, "file": job value}


def _job_key_of(link: Linked) -> str | None:
    """The job key a link from our loader / OOM node output carries (None for any other node)."""
    return JOB_OUTPUTS.get(link.class_type or "", {}).get(link.output_index)


def resolve_value(raw: Any, job: dict) -> tuple[Any, str]:
    """(value, source) of one read value: a constant is a widget value; a link from our
    loader / OOM output carries the job's value of that output; anything else is unknown."""
    if not isinstance(raw, Linked):
        return raw, "widget"
    key = _job_key_of(raw)
    if key is not None and job.get(key) is not None:
        return job[key], "job"
    return None, f"unknown: {raw}"


def resolve_stage(stage: Stage | None, job: dict | None, image_size: tuple[int, int] | None = None) -> Resolved:
    """Every stage field (and the model side) -> value used and its source."""
    job = job or {}
    values, sources, overrides = {}, {}, {}
    names = (*STAGE_FIELDS, *MODEL_FIELDS, "positive_2")
    for name in names:
        if stage is None:
            values[name], sources[name] = None, "unknown: no sampler found in the graph"
            continue
        if name not in stage.values:
            why = stage.absent.get(name)
            if why is None and name in ("positive_2", "start_at_step", "end_at_step", "weight_dtype",
                                        "shift", "clip_type", "clip_skip", "model_folder"):
                continue            # not part of this shape
            values[name], sources[name] = None, why or "unknown: not found in the graph"
            continue
        raw = stage.values[name]
        values[name], sources[name] = resolve_value(raw, job)
        job_key = JOB_KEYS.get(name)
        if (sources[name] == "widget" and job_key and job.get(job_key) is not None
                and job[job_key] != raw):
            overrides[name] = {"used": raw, "file": job[job_key]}
    if stage is not None:
        values["text_encoders"] = [resolve_value(n, job)[0] for n in stage.text_encoders]
        if "text_encoders" in stage.absent:
            sources["text_encoders"] = stage.absent["text_encoders"]
        elif stage.text_encoders:
            sources["text_encoders"] = "widget" if all(v is not None for v in values["text_encoders"]) \
                else "unknown: a text encoder name is linked"
    if image_size is not None:
        for name, size in zip(("width", "height"), image_size):
            if values.get(name) is None and not str(sources.get(name, "")).startswith("widget"):
                values[name], sources[name] = size, "image"
    return Resolved(values, sources, overrides)


def resolve(graph: GraphParams, job: dict | None, image_size: tuple[int, int] | None = None) -> list[Resolved]:
    """One Resolved per stage (first pass first); a graph without a sampler gives one Resolved
    whose every field is unknown (the job's values are never recorded as used). The image's own
    size fills in an unknown size only for a single pass (a later pass may have resized it)."""
    if not graph.stages:
        return [resolve_stage(None, job, image_size)]
    single = len(graph.stages) == 1
    return [resolve_stage(stage, job, image_size if single else None) for stage in graph.stages]


def file_name_seed(graph: GraphParams, resolved: list[Resolved], job: dict | None) -> tuple[int, str | None]:
    """The seed for the image's file name: the one the first pass's noise used. When the graph
    does not say, the job's seed, with a note saying so."""
    seed = resolved[0].values.get("seed") if resolved else None
    if isinstance(seed, int) and not isinstance(seed, bool):
        return seed, None
    fallback = (job or {}).get("seed", 0)
    fallback = fallback if isinstance(fallback, int) else 0
    return fallback, (f"seed: not readable from the graph ({resolved[0].sources.get('seed') if resolved else 'no sampler'}); "
                      f"the file name carries the job's seed {fallback}")
