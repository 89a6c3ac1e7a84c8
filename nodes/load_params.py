"""PromptMediaLoadParams: reads an image's sidecar and outputs what regenerates it."""
from __future__ import annotations

import hashlib
import logging
import os

import comfy.samplers
import folder_paths

from ..core.generation_params import (MAX_SIDECAR_BYTES, GenerationParamsError, get_params_path,
                                      load_generation_params)
from ..core.paths import PathError, ensure_inside, path_inside, relative_parts
from ..core.session import DEFAULT_ROOT, recent_sidecars
from .host import CATEGORY

log = logging.getLogger(__name__)

RECENT_LIMIT = 500
NONE_CHOICE = "(none: use path)"


class LiveCheckpointCombo(list):
    """The checkpoint list as an output type, so ``model_name`` can feed CheckpointLoaderSimple.

    ComfyUI checks a link by comparing the output's type with the input's, and for combos the
    type is the list itself: a list frozen at import time would stop matching once a checkpoint
    is added. This one compares equal to the *current* checkpoint list (the one the target
    input has at validation), while /object_info shows the list it was created with.
    """

    def __eq__(self, other):
        if isinstance(other, list):
            return list(other) == folder_paths.get_filename_list("checkpoints")
        return NotImplemented

    def __ne__(self, other):
        eq = self.__eq__(other)
        return eq if eq is NotImplemented else not eq

    __hash__ = None


CHECKPOINT_TYPE = LiveCheckpointCombo(folder_paths.get_filename_list("checkpoints"))


def sidecar_choices() -> list[str]:
    """Recent sidecars under output/<default root>, relative to the output directory."""
    output_dir = folder_paths.get_output_directory()
    root = os.path.join(output_dir, *DEFAULT_ROOT.split("/"))
    found = recent_sidecars(root, RECENT_LIMIT)
    return [NONE_CHOICE] + [os.path.relpath(p, output_dir).replace(os.sep, "/") for p in found]


def sidecar_path(image: str | None, path: str | None) -> str:
    """The sidecar file for the chosen entry or typed path; only inside the output directory."""
    text = (path or "").strip() or ("" if image in (None, NONE_CHOICE) else str(image).strip())
    if not text:
        raise PathError("choose a sidecar or type the path of an image / .json under the "
                        "output directory")
    output_dir = folder_paths.get_output_directory()
    full = path_inside(output_dir, text, "path", where=f"the output directory ({output_dir})",
                       absolute_ok=True)
    # checked on the .json itself: "." would otherwise give <output>.json beside the output
    # folder, and a .json symlink pointing out hides behind an ordinary image name
    return ensure_inside(output_dir, get_params_path(full), what=f"path {text!r}")


def read_params(image: str | None, path: str | None) -> tuple[str, dict]:
    json_path = sidecar_path(image, path)
    data = load_generation_params(json_path)
    if data is None:
        raise GenerationParamsError(json_path, "no sidecar here (it is written beside each image "
                                               "by Session Saver)")
    return json_path, data


def _required(params: dict, key: str, kind, json_path: str):
    value = params.get(key)
    ok = isinstance(value, kind) and not isinstance(value, bool)
    if not ok:
        want = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        raise GenerationParamsError(json_path, f"parameters.{key} must be {want}, found {value!r:.60}")
    return value


def _number(container: dict, key: str, default: float, json_path: str, field: str) -> float:
    """An optional number (null/missing -> default); anything else is an error naming the file."""
    value = container.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise GenerationParamsError(json_path, f"{field} must be a number, found {value!r:.60}")
    return float(value)


def _model_name(p: dict, json_path: str) -> str:
    name = p.get("model_name") or ""
    if not isinstance(name, str):
        raise GenerationParamsError(json_path, f"parameters.model_name must be text, found {name!r:.60}")
    try:       # a file name inside models/checkpoints, never a path out of it
        relative_parts(name, "parameters.model_name", "models/checkpoints")
    except PathError as e:
        raise GenerationParamsError(json_path, str(e)) from None
    return name


def outputs_from(data: dict, json_path: str) -> tuple:
    p = data["parameters"]
    sampler = _required(p, "sampler", str, json_path)
    scheduler = _required(p, "scheduler", str, json_path)
    if sampler not in comfy.samplers.KSampler.SAMPLERS:
        raise GenerationParamsError(json_path, f"sampler {sampler!r} is not available in this ComfyUI")
    if scheduler not in comfy.samplers.KSampler.SCHEDULERS:
        raise GenerationParamsError(json_path, f"scheduler {scheduler!r} is not available in this ComfyUI")
    denoise = _number(p, "denoise", 1.0, json_path, "parameters.denoise")
    model_name = _model_name(p, json_path)
    if model_name and model_name not in folder_paths.get_filename_list("checkpoints"):
        log.warning("[Prompt Media] %s: model %r is not in models/checkpoints", json_path, model_name)
    loras = p.get("loras") or []
    if not isinstance(loras, list):
        raise GenerationParamsError(json_path, f"parameters.loras must be a list, found {type(loras).__name__}")
    stack = []
    for i, lora in enumerate(loras):
        if not isinstance(lora, dict) or not isinstance(lora.get("lora_name"), str):
            raise GenerationParamsError(json_path, f"parameters.loras[{i}] has no lora_name")
        stack.append({"name": lora["lora_name"],
                      "strength_model": _number(lora, "strength_model", 1.0, json_path,
                                                f"parameters.loras[{i}].strength_model"),
                      "strength_clip": _number(lora, "strength_clip", 1.0, json_path,
                                               f"parameters.loras[{i}].strength_clip")})
    return (str(p.get("prompt") or ""), str(p.get("negative_prompt") or ""),
            _required(p, "seed", int, json_path), _required(p, "steps", int, json_path),
            float(_required(p, "cfg_scale", (int, float), json_path)), sampler, scheduler,
            denoise, _required(p, "width", int, json_path), _required(p, "height", int, json_path),
            model_name, stack)


class PromptMediaLoadParams:
    DESCRIPTION = ("Reads the JSON sidecar of an image saved by Session Saver and outputs what "
                   "regenerates it: prompts, seed, sampler settings, size, checkpoint and LoRAs.")
    CATEGORY = CATEGORY
    FUNCTION = "load"
    RETURN_TYPES = ("STRING", "STRING", "INT", "INT", "FLOAT", comfy.samplers.KSampler.SAMPLERS,
                    comfy.samplers.KSampler.SCHEDULERS, "FLOAT", "INT", "INT", CHECKPOINT_TYPE,
                    "LORA_STACK")
    RETURN_NAMES = ("positive", "negative", "seed", "steps", "cfg", "sampler_name", "scheduler",
                    "denoise", "width", "height", "model_name", "lora_stack")
    OUTPUT_TOOLTIPS = (
        "The positive prompt used.", "The negative prompt used.", "The seed used.", "Sampling steps.",
        "CFG scale.", "Sampler name (connects to KSampler).", "Scheduler (connects to KSampler).",
        "Denoise strength.", "Image width.", "Image height.",
        "Checkpoint file name (connects to Load Checkpoint).",
        "The LoRAs applied, in order (connects to LoRA Chain).",
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "image": (sidecar_choices(), {
                    "tooltip": f"A recent sidecar under output/{DEFAULT_ROOT}/ (newest first)."}),
            },
            "optional": {
                "path": ("STRING", {
                    "default": "",
                    "tooltip": "Instead of the list: an image or .json path inside the output "
                               "directory (relative to it, or absolute)."}),
            },
        }

    @classmethod
    def VALIDATE_INPUTS(cls, image, path=""):
        # naming 'image' here lets older sidecars (not in the recent list) be used
        if image is None or path is None:
            return True
        try:
            json_path, data = read_params(image, path)
            outputs_from(data, json_path)
        except (GenerationParamsError, PathError) as e:
            return str(e)
        return True

    @classmethod
    def IS_CHANGED(cls, image, path=""):
        try:
            with open(sidecar_path(image, path), "rb") as f:     # bounded like the load itself
                return hashlib.sha256(f.read(MAX_SIDECAR_BYTES + 1)).hexdigest()
        except (OSError, ValueError) as e:
            return f"error: {e}"

    def load(self, image, path=""):
        json_path, data = read_params(image, path)
        return outputs_from(data, json_path)


NODE_CLASS_MAPPINGS = {"PromptMediaLoadParams": PromptMediaLoadParams}
NODE_DISPLAY_NAME_MAPPINGS = {"PromptMediaLoadParams": "Load Generation Params"}
