"""Issue 14 on the real host: every core sampling shape, with widgets that differ from the YAML,
records in its sidecar exactly what ran, and Load Generation Params regenerates each image
pixel for pixel from that sidecar.

Each shape is built twice from one function: for the session run its sampling inputs are either
links from our loader / OOM node (the job's values) or widget constants that differ from the
file; for the regeneration *every* one of them is a link from Load Generation Params, so an
identical image proves the sidecar's values are the ones the sampler used. The Flux-like shapes
load the tiny model split (diffusion_models/ UNet, text_encoders/ CLIP-L .pt, vae/) and use
EmptyLatentImage: EmptySD3LatentImage's 16 channels cannot feed the tiny SD1.5 UNet.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from prompt_media_pkg.core.api_prompt import LOADER_OUTPUTS, OOM_OUTPUTS
from prompt_media_pkg.core.expand import expand
from prompt_media_pkg.core.schema import load_prompt_media

YAML = """\
prompt_settings:
  prefix: "tiny test"
  negative: "blurry"
prompts: ["a red fox"]
seeds: [1234]
steps: 1
cfg: 5.0
width: 64
height: 64
sampler: euler
scheduler: normal
guidance: 2.0
loras:
  - {name: tiny_lora_attn, strength_model: 0.5, strength_clip: 0.25}
"""
JOB = expand(load_prompt_media(YAML, "shapes.yaml"))[0]
CHECKPOINT, UNET, CLIP_L, VAE = ("tiny_sd15.ckpt", "tiny_unet.safetensors", "tiny_clip_l.pt",
                                 "tiny_vae.safetensors")
L, O, P = "2", "3", "1"            # loader, OOM node (session run); Load Generation Params (regeneration)
LOAD_PARAMS_OUT = {name: i for i, name in enumerate(
    ("positive", "negative", "seed", "steps", "cfg", "sampler_name", "scheduler", "denoise", "width",
     "height", "model_name", "lora_stack", "guidance"))}
# sidecar key of each value a shape sets
SIDECAR_KEY = {"positive": "prompt", "negative": "negative_prompt", "seed": "seed", "steps": "steps",
               "cfg": "cfg_scale", "sampler_name": "sampler", "scheduler": "scheduler", "denoise": "denoise",
               "width": "width", "height": "height", "guidance": "guidance", "model_name": "model_name"}
JOB_LINK = {name: [L, LOADER_OUTPUTS.index(name)] for name in
            ("negative", "steps", "cfg", "width", "height", "sampler_name", "scheduler", "denoise", "guidance")}
JOB_LINK.update(positive=[O, OOM_OUTPUTS.index("positive")], seed=[O, OOM_OUTPUTS.index("seed")])


@dataclass
class Shape:
    """A sampling shape: ``build(v)`` returns its nodes (ids from 20) and the decoded images'
    link; ``v(name)`` gives a sampling input (a widget constant or a link). ``widgets`` are the
    constants of the session run (everything else comes from the job); ``expect`` what the
    sidecar must say besides (values fixed by the shape, e.g. BasicGuider's cfg 1.0)."""
    build: Callable[[Callable[[str], object]], tuple[dict, list]]
    widgets: dict
    expect: dict = field(default_factory=dict)
    model_name: str = CHECKPOINT
    loras: list = field(default_factory=list)
    stages: int = 1


def checkpoint(v, nodes: dict) -> tuple[list, list, list]:
    nodes["20"] = {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": v("model_name")}}
    return ["20", 0], ["20", 1], ["20", 2]


def split(v, nodes: dict) -> tuple[list, list, list]:
    nodes["20"] = {"class_type": "UNETLoader", "inputs": {"unet_name": v("model_name"), "weight_dtype": "default"}}
    nodes["21"] = {"class_type": "CLIPLoader", "inputs": {"clip_name": CLIP_L, "type": "stable_diffusion"}}
    nodes["22"] = {"class_type": "VAELoader", "inputs": {"vae_name": VAE}}
    return ["20", 0], ["21", 0], ["22", 0]


def encode(v, nodes: dict, clip: list, negative: bool = True) -> tuple[list, list | None]:
    nodes["23"] = {"class_type": "CLIPTextEncode", "inputs": {"text": v("positive"), "clip": clip}}
    if negative:
        nodes["24"] = {"class_type": "CLIPTextEncode", "inputs": {"text": v("negative"), "clip": clip}}
    return ["23", 0], ["24", 0] if negative else None


def latent(v, nodes: dict) -> list:
    nodes["25"] = {"class_type": "EmptyLatentImage", "inputs": {"width": v("width"), "height": v("height"),
                                                                "batch_size": 1}}
    return ["25", 0]


def decode(nodes: dict, samples: list, vae: list) -> list:
    nodes["29"] = {"class_type": "VAEDecode", "inputs": {"samples": samples, "vae": vae}}
    return ["29", 0]


def ksampler(v):
    nodes: dict = {}
    model, clip, vae = checkpoint(v, nodes)
    pos, neg = encode(v, nodes, clip)
    nodes["26"] = {"class_type": "KSampler", "inputs": {
        "model": model, "positive": pos, "negative": neg, "latent_image": latent(v, nodes),
        **{k: v(k) for k in ("seed", "steps", "cfg", "sampler_name", "scheduler", "denoise")}}}
    return nodes, decode(nodes, ["26", 0], vae)


def ksampler_advanced(v):
    nodes: dict = {}
    model, clip, vae = checkpoint(v, nodes)
    pos, neg = encode(v, nodes, clip)
    nodes["26"] = {"class_type": "KSamplerAdvanced", "inputs": {
        "model": model, "positive": pos, "negative": neg, "latent_image": latent(v, nodes), "add_noise": "enable",
        "noise_seed": v("seed"), "start_at_step": 0, "end_at_step": 10000, "return_with_leftover_noise": "disable",
        **{k: v(k) for k in ("steps", "cfg", "sampler_name", "scheduler")}}}
    return nodes, decode(nodes, ["26", 0], vae)


def sampler_custom(v):
    nodes: dict = {}
    model, clip, vae = checkpoint(v, nodes)
    pos, neg = encode(v, nodes, clip)
    nodes["27"] = {"class_type": "KSamplerSelect", "inputs": {"sampler_name": v("sampler_name")}}
    nodes["28"] = {"class_type": "BasicScheduler", "inputs": {"model": model, "scheduler": v("scheduler"),
                                                              "steps": v("steps"), "denoise": v("denoise")}}
    nodes["26"] = {"class_type": "SamplerCustom", "inputs": {
        "model": model, "add_noise": True, "noise_seed": v("seed"), "cfg": v("cfg"), "positive": pos,
        "negative": neg, "sampler": ["27", 0], "sigmas": ["28", 0], "latent_image": latent(v, nodes)}}
    return nodes, decode(nodes, ["26", 0], vae)


def custom_advanced(guider: str, noise: str = "RandomNoise", sampler: tuple = ("KSamplerSelect", {}),
                    sigmas: str = "BasicScheduler", model_sampling: bool = False):
    """SamplerCustomAdvanced on the split model, FluxGuidance on the positive path."""
    def build(v):
        nodes: dict = {}
        model, clip, vae = split(v, nodes)
        if model_sampling:
            nodes["36"] = {"class_type": "ModelSamplingSD3", "inputs": {"model": model, "shift": 2.0}}
            model = ["36", 0]
        pos, neg = encode(v, nodes, clip, negative=guider != "BasicGuider")
        nodes["30"] = {"class_type": "FluxGuidance", "inputs": {"conditioning": pos, "guidance": v("guidance")}}
        pos = ["30", 0]
        nodes["31"] = {"class_type": noise, "inputs": {"noise_seed": v("seed")} if noise == "RandomNoise" else {}}
        nodes["32"] = {"class_type": guider, "inputs": {
            "BasicGuider": {"model": model, "conditioning": pos},
            "CFGGuider": {"model": model, "positive": pos, "negative": neg, "cfg": v("cfg")},
            "DualCFGGuider": {"model": model, "cond1": pos, "cond2": ["23", 0], "negative": neg,
                              "cfg_conds": v("cfg"), "cfg_cond2_negative": 1.5, "style": "regular"}}[guider]}
        cls, options = sampler
        nodes["33"] = {"class_type": cls, "inputs": {"sampler_name": v("sampler_name")} if cls == "KSamplerSelect"
                       else dict(options)}
        nodes["34"] = {"class_type": sigmas, "inputs": {
            "BasicScheduler": {"model": model, "scheduler": v("scheduler"), "steps": v("steps"), "denoise": v("denoise")},
            "KarrasScheduler": {"steps": v("steps"), "sigma_max": 14.6, "sigma_min": 0.03, "rho": 7.0},
            "ExponentialScheduler": {"steps": v("steps"), "sigma_max": 14.6, "sigma_min": 0.03},
            "BetaSamplingScheduler": {"model": model, "steps": v("steps"), "alpha": 0.6, "beta": 0.6}}[sigmas]}
        nodes["26"] = {"class_type": "SamplerCustomAdvanced", "inputs": {
            "noise": ["31", 0], "guider": ["32", 0], "sampler": ["33", 0], "sigmas": ["34", 0],
            "latent_image": latent(v, nodes)}}
        return nodes, decode(nodes, ["26", 0], vae)
    return build


def turbo_split(v):
    """Two passes over one SDTurbo schedule cut by SplitSigmas: noise for the high sigmas, none
    for the low ones."""
    nodes: dict = {}
    model, clip, vae = split(v, nodes)
    pos, neg = encode(v, nodes, clip)
    nodes["27"] = {"class_type": "KSamplerSelect", "inputs": {"sampler_name": v("sampler_name")}}
    nodes["28"] = {"class_type": "SDTurboScheduler", "inputs": {"model": model, "steps": v("steps"),
                                                                "denoise": v("denoise")}}
    nodes["35"] = {"class_type": "SplitSigmas", "inputs": {"sigmas": ["28", 0], "step": 1}}
    nodes["26"] = {"class_type": "SamplerCustom", "inputs": {
        "model": model, "add_noise": True, "noise_seed": v("seed"), "cfg": v("cfg"), "positive": pos,
        "negative": neg, "sampler": ["27", 0], "sigmas": ["35", 0], "latent_image": latent(v, nodes)}}
    nodes["37"] = {"class_type": "SamplerCustom", "inputs": {
        "model": model, "add_noise": False, "noise_seed": 0, "cfg": 2.0, "positive": pos, "negative": neg,
        "sampler": ["27", 0], "sigmas": ["35", 1], "latent_image": ["26", 0]}}
    return nodes, decode(nodes, ["37", 0], vae)


def hires(v):
    """KSampler, then LatentUpscale and a KSamplerAdvanced second pass from step 1 of 3."""
    nodes, _images = ksampler(v)
    nodes["38"] = {"class_type": "LatentUpscale", "inputs": {"samples": ["26", 0], "upscale_method": "nearest-exact",
                                                             "width": 96, "height": 96, "crop": "disabled"}}
    nodes["39"] = {"class_type": "KSamplerAdvanced", "inputs": {
        "model": ["20", 0], "positive": ["23", 0], "negative": ["24", 0], "latent_image": ["38", 0],
        "add_noise": "enable", "noise_seed": 4321, "steps": 3, "cfg": 4.0, "sampler_name": "euler",
        "scheduler": "simple", "start_at_step": 1, "end_at_step": 10000, "return_with_leftover_noise": "disable"}}
    return nodes, decode(nodes, ["39", 0], ["20", 2])


def loras(v):
    """Core LoraLoader, our chain (the YAML's LoRA), core LoraLoaderModelOnly, in that order.
    Regenerating, Load Generation Params' lora_stack holds all three in that order: the chain alone."""
    nodes, images = ksampler(v)
    if v("lora_stack")[0] == P:
        nodes["41"] = {"class_type": "PromptMediaLoraChain", "inputs": {
            "model": ["20", 0], "clip": ["20", 1], "lora_stack": v("lora_stack"), "strength_mode": "separate"}}
        nodes["26"]["inputs"]["model"] = ["41", 0]
        for encoder in ("23", "24"):
            nodes[encoder]["inputs"]["clip"] = ["41", 1]
        return nodes, images
    nodes["40"] = {"class_type": "LoraLoader", "inputs": {"model": ["20", 0], "clip": ["20", 1],
                                                          "lora_name": "tiny_lora_conv.safetensors",
                                                          "strength_model": 0.7, "strength_clip": 0.3}}
    nodes["41"] = {"class_type": "PromptMediaLoraChain", "inputs": {
        "model": ["40", 0], "clip": ["40", 1], "lora_stack": v("lora_stack"), "strength_mode": "separate"}}
    nodes["42"] = {"class_type": "LoraLoaderModelOnly", "inputs": {"model": ["41", 0],
                                                                   "lora_name": "tiny_lora_diffusers.safetensors",
                                                                   "strength_model": 0.6}}
    nodes["26"]["inputs"]["model"] = ["42", 0]
    for encoder in ("23", "24"):
        nodes[encoder]["inputs"]["clip"] = ["41", 1]
    return nodes, images


SHAPES = {
    "KSampler": Shape(ksampler, {"steps": 2, "cfg": 6.5, "sampler_name": "euler_ancestral", "scheduler": "karras",
                                 "negative": "ugly, widget"}),
    "KSamplerAdvanced": Shape(ksampler_advanced, {"seed": 99, "steps": 3, "sampler_name": "dpmpp_2m",
                                                  "scheduler": "exponential", "width": 72}, {"denoise": 1.0}),
    "SamplerCustom": Shape(sampler_custom, {"seed": 5, "cfg": 4.0, "sampler_name": "heun", "steps": 2,
                                            "scheduler": "beta", "denoise": 0.9}),
    "Flux (BasicGuider)": Shape(custom_advanced("BasicGuider"),
                                {"steps": 3, "sampler_name": "dpmpp_2m", "scheduler": "simple", "guidance": 3.0},
                                {"cfg": 1.0, "negative": None}, model_name=UNET),
    "CFGGuider + Sampler node + Karras": Shape(
        custom_advanced("CFGGuider", sampler=("SamplerEulerAncestral", {"eta": 0.5, "s_noise": 1.0}),
                        sigmas="KarrasScheduler", model_sampling=True),
        {"seed": 777, "cfg": 3.0, "steps": 2}, {"sampler_name": "euler_ancestral", "scheduler": "karras",
                                                "denoise": None}, model_name=UNET),
    "DualCFGGuider + DisableNoise + Beta": Shape(
        custom_advanced("DualCFGGuider", noise="DisableNoise", sigmas="BetaSamplingScheduler"),
        {"cfg": 2.5, "steps": 2, "sampler_name": "euler_ancestral"},
        {"seed": 0, "scheduler": "beta", "denoise": None}, model_name=UNET),
    "SDTurbo + SplitSigmas (2 passes)": Shape(turbo_split, {"steps": 2, "seed": 11, "sampler_name": "euler"},
                                             {"scheduler": "sd_turbo"}, model_name=UNET, stages=2),
    "hires fix (2 passes)": Shape(hires, {"steps": 2, "width": 56}, stages=2),
    "LoraLoader + chain + LoraLoaderModelOnly": Shape(loras, {"cfg": 7.5}, loras=[
        ("tiny_lora_conv.safetensors", 0.7, 0.3), ("tiny_lora_attn.safetensors", 0.5, 0.25),
        ("tiny_lora_diffusers.safetensors", 0.6, 0.0)]),
}


def session_graph(shape: Shape, file: str, root: str) -> dict:
    def v(name):
        if name in shape.widgets:
            return shape.widgets[name]
        if name == "model_name":
            return shape.model_name
        if name == "lora_stack":
            return [L, LOADER_OUTPUTS.index("lora_stack")]
        return JOB_LINK[name]
    nodes, images = shape.build(v)
    nodes[L] = {"class_type": "PromptMediaLoader", "inputs": {"file": file, "preset": "", "yaml_text": ""}}
    nodes[O] = {"class_type": "PromptMediaOOM", "inputs": {
        "prompt_media": [L, 0], "mode": "product", "run": "one job per run", "job_index": 0, "variation_seed": 0,
        "seed": 0, "max_jobs": 100}}
    nodes["50"] = {"class_type": "PromptMediaSessionSaver", "inputs": {
        "images": images, "job": [O, 2], "prompt_media": [L, 0], "root": root, "project_id": "", "compose": "none",
        **({"lora_stack": ["41", 2]} if "41" in nodes else {})}}
    return nodes


def regeneration_graph(shape: Shape, sidecar_path: str, prefix: str) -> dict:
    nodes, images = shape.build(lambda name: [P, LOAD_PARAMS_OUT[name]])
    nodes[P] = {"class_type": "PromptMediaLoadParams", "inputs": {"image": "(none: use path)", "path": sidecar_path}}
    nodes["50"] = {"class_type": "SaveImage", "inputs": {"images": images, "filename_prefix": prefix}}
    return nodes


def expected(shape: Shape) -> dict:
    """What the sidecar must say: for each value the shape takes, the widget or the job's value;
    for the others what the shape fixes (``expect``), else nothing (not used)."""
    taken: set[str] = set()
    shape.build(lambda name: taken.add(name) or [L, 0])
    values = {name: None for name in SIDECAR_KEY}
    values.update({name: JOB[name] for name in taken if name in JOB})
    values.update({name: value for name, value in shape.widgets.items()}, model_name=shape.model_name)
    values.update(shape.expect)
    return values


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


@pytest.mark.parametrize("name", list(SHAPES))
def test_shape_sidecar_is_what_ran_and_regenerates_pixel_identical(comfy, name):
    shape = SHAPES[name]
    file = comfy.put_yaml("shapes.yaml", YAML)
    root = f"{comfy.prefix}/session"
    result = comfy.run_ok(session_graph(shape, file, root))
    (image,) = comfy.image_paths(result)
    want = expected(shape)
    assert image.name == f"001_seed_{want['seed']}.png"          # the seed the noise used
    side = json.loads(image.with_suffix(".json").read_text(encoding="utf-8"))
    params, source = side["parameters"], side["parameters_source"]
    assert {SIDECAR_KEY[k]: params[SIDECAR_KEY[k]] for k in want} == {SIDECAR_KEY[k]: want[k] for k in want}, \
        json.dumps(source, indent=1)
    for key in want:
        field_source = source["fields"][key]
        if want[key] is None:
            assert field_source.startswith("not used"), (key, field_source)
        elif key in shape.widgets:
            assert field_source == "widget", (key, field_source)
    assert all(not s.startswith("unknown") for s in source["fields"].values()), source["fields"]
    assert [(l["lora_name"], l["strength_model"], l["strength_clip"]) for l in params["loras"]] == shape.loras
    if shape.model_name == UNET:
        assert params["model_folder"] == "diffusion_models" and len(params["model_sha256"]) == 64
        assert [t["name"] for t in params["text_encoders"]] == [CLIP_L] and params["vae_name"] == VAE
        assert len(params["vae_sha256"]) == 64 and len(params["text_encoders"][0]["sha256"]) == 64
    assert len(params.get("stages", [None])) == shape.stages
    text = Image.open(image).text["parameters"]
    assert f"Seed: {want['seed']}," in text and f"Steps: {want['steps']}," in text
    if want.get("guidance") is not None and name.startswith(("Flux", "CFGGuider", "Dual")):
        assert f"Distilled CFG Scale: {want['guidance']}" in text

    rel = image.relative_to(comfy.server.output_dir).as_posix()
    again = comfy.run_ok(regeneration_graph(shape, rel, f"{comfy.prefix}/regen"))
    (regenerated,) = comfy.image_paths(again)
    assert np.array_equal(pixels(regenerated), pixels(image)), f"{name}: regenerated image differs"


def test_a_files_model_feeds_the_model_loader_when_wired(comfy):
    """The loader's model_name connected to Load Diffusion Model: the file's ``model:`` resolves
    in models/diffusion_models like a LoRA name; a name that does not resolve is refused before
    the queue, naming the YAML line and the closest file."""
    shape = SHAPES["Flux (BasicGuider)"]
    root = f"{comfy.prefix}/wired"
    graph = session_graph(shape, comfy.put_yaml("wired.yaml", YAML + "model: Tiny_UNet\n"), root)
    graph["20"]["inputs"]["unet_name"] = [L, LOADER_OUTPUTS.index("model_name")]
    (image,) = comfy.image_paths(comfy.run_ok(graph))
    side = json.loads(image.with_suffix(".json").read_text(encoding="utf-8"))
    assert side["parameters"]["model_name"] == UNET and side["parameters_source"]["fields"]["model_name"] == "job"
    graph[L]["inputs"]["file"] = comfy.put_yaml("wired_bad.yaml", YAML + "model: tiny_unt\n")
    refused = comfy.run(graph)
    assert refused.rejected
    text = json.dumps(refused.node_errors[L])
    assert "wired_bad.yaml:15:8: model: model 'tiny_unt' not found in models/diffusion_models" in text
    assert f"closest: {UNET}" in text
