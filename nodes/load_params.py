"""PromptMediaLoadParams: reads an image's sidecar and outputs what regenerates it."""
from __future__ import annotations

import hashlib
import logging
import os

import comfy.samplers
import folder_paths

from ..core.graph_params import SCHEDULER_NODES
from ..core.paths import PathError, ensure_inside, path_inside
from ..core.session import DEFAULT_ROOT, recent_sidecars
from ..core.sidecar import (
    MAX_SIDECAR_BYTES,
    GenerationParamsError,
    Sidecar,
    get_params_path,
    read_sidecar,
    regeneration,
)
from .host import CATEGORY, model_file_type

log = logging.getLogger(__name__)

RECENT_LIMIT = 500
NONE_CHOICE = "(none: use path)"


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


def read_params(image: str | None, path: str | None) -> Sidecar:
    json_path = sidecar_path(image, path)
    sidecar = read_sidecar(json_path)
    if sidecar is None:
        raise GenerationParamsError(json_path, "no sidecar here (it is written beside each image "
                                               "by Session Saver)")
    return sidecar


# schedules computed by a sigmas node (KarrasScheduler, SDTurboScheduler, ...) under its own name
SIGMAS_SCHEDULERS = frozenset(name for name in SCHEDULER_NODES.values() if name)


def outputs_from(sidecar: Sidecar) -> tuple:
    """The node's outputs; what only this ComfyUI knows (its samplers, schedulers, models) is
    checked here, the sidecar's own values by core.sidecar.regeneration."""
    values = regeneration(sidecar)
    for what, value, available in (
            ("sampler", values.sampler, comfy.samplers.KSampler.SAMPLERS),
            ("scheduler", values.scheduler, [*comfy.samplers.KSampler.SCHEDULERS, *SIGMAS_SCHEDULERS])):
        if value not in available:
            raise GenerationParamsError(sidecar.path, f"{what} {value!r} is not available in this ComfyUI")
    folder = sidecar.model_folder or "checkpoints"
    if values.model_name and values.model_name not in folder_paths.get_filename_list(folder):
        log.warning("[Prompt Media] %s: model %r is not in models/%s", sidecar.path, values.model_name, folder)
    return values.outputs()


class PromptMediaLoadParams:
    DESCRIPTION = ("Reads the JSON sidecar of an image saved by Session Saver and outputs what "
                   "regenerates it: prompts, seed, sampler settings, size, model, LoRAs and Flux "
                   "guidance (of the first sampling pass when the graph had several).")
    CATEGORY = CATEGORY
    FUNCTION = "load"
    RETURN_TYPES = ("STRING", "STRING", "INT", "INT", "FLOAT", comfy.samplers.KSampler.SAMPLERS,
                    comfy.samplers.KSampler.SCHEDULERS, "FLOAT", "INT", "INT", model_file_type(),
                    "LORA_STACK", "FLOAT")
    RETURN_NAMES = ("positive", "negative", "seed", "steps", "cfg", "sampler_name", "scheduler",
                    "denoise", "width", "height", "model_name", "lora_stack", "guidance")
    OUTPUT_TOOLTIPS = (
        "The positive prompt used.", "The negative prompt used.", "The seed used.", "Sampling steps.",
        "CFG scale.", "Sampler name (connects to KSampler).", "Scheduler (connects to KSampler).",
        "Denoise strength.", "Image width.", "Image height.",
        "Model file name (connects to Load Checkpoint or Load Diffusion Model).",
        "The LoRAs applied, in order (connects to LoRA Chain).",
        "Flux guidance (connects to FluxGuidance); 3.5 when the image had none.",
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
            outputs_from(read_params(image, path))
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
        return outputs_from(read_params(image, path))


NODE_CLASS_MAPPINGS = {"PromptMediaLoadParams": PromptMediaLoadParams}
NODE_DISPLAY_NAME_MAPPINGS = {"PromptMediaLoadParams": "Load Generation Params"}
