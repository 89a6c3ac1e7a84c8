"""PromptMediaLoader: reads and validates a prompt media file; outputs what is fixed for the file."""
from __future__ import annotations

import hashlib
import logging
from functools import lru_cache

import comfy.samplers
import folder_paths

from ..core.api_prompt import LOADER_CLASS, LOADER_OUTPUTS, nodes_of_class
from ..core.errors import PromptMediaError
from ..core.graph_params import wired_model_folders
from ..core.lora_names import duplicate_warnings
from ..core.paths import PathError, relative_parts
from ..core.schema import PromptMedia, load_prompt_media, read_text_file, sha256_text
from .host import CATEGORY, MODEL_FOLDERS, model_file_type, prompt_media_files, prompt_media_path

log = logging.getLogger(__name__)

INLINE_SOURCE = "prompt_media.yaml"   # the name inline yaml_text gets (errors, session copy)
MODEL_FOLDERS_KEY = "_model_folders"   # set by mark_model_folders: where model_name goes


def read_source(file: str, yaml_text: str | None) -> tuple[str, str]:
    """(source name, text) for the loader's inputs; inline text wins when non-empty."""
    if yaml_text and yaml_text.strip():
        return INLINE_SOURCE, yaml_text
    if not file:
        raise PromptMediaError("no file chosen and yaml_text is empty", source=INLINE_SOURCE, field="file")
    try:       # ComfyUI would quietly map '../../x.yaml' to x.yaml in the folder: refuse instead
        relative_parts(file, "file", "input/prompt_media/")
    except PathError as e:
        raise PromptMediaError(str(e), source="input/prompt_media", field="file") from None
    path = prompt_media_path(file)
    if path is None:
        raise PromptMediaError(f"not found in input/prompt_media/ (have: {', '.join(prompt_media_files()[:10]) or 'no files'})",
                               source=file, field="file")
    return file, read_text_file(path, file)


@lru_cache(maxsize=32)
def _load_cached(text_sha: str, text: str, source: str, preset: str) -> PromptMedia:
    return load_prompt_media(text, source, preset, samplers=list(comfy.samplers.KSampler.SAMPLERS),
                             schedulers=list(comfy.samplers.KSampler.SCHEDULERS))


def load(file: str, yaml_text: str | None, preset: str) -> PromptMedia:
    source, text = read_source(file, yaml_text)
    return _load_cached(sha256_text(text), text, source, (preset or "").strip())


class PromptMediaLoader:
    DESCRIPTION = ("Reads a prompt media YAML file (prompts, prefix, negative, OOM variations, seeds, "
                   "sampler settings, LoRAs) and outputs what stays fixed for the whole file.")
    CATEGORY = CATEGORY
    FUNCTION = "load"
    RETURN_TYPES = ("PROMPT_MEDIA", "LORA_STACK", "STRING", "INT", "FLOAT", "INT", "INT",
                    comfy.samplers.KSampler.SAMPLERS, comfy.samplers.KSampler.SCHEDULERS, "FLOAT", "STRING",
                    "FLOAT", model_file_type())
    RETURN_NAMES = LOADER_OUTPUTS
    OUTPUT_TOOLTIPS = (
        "The validated file with its resolved settings: connect to OOM Variations and Session Saver.",
        "The file's LoRAs in order (name, strength_model, strength_clip): connect to LoRA Chain.",
        "The negative prompt (fixed for the file, so its encoding stays cached).",
        "Sampling steps of the chosen preset.", "CFG scale of the chosen preset.",
        "Image width.", "Image height.", "Sampler name (connects to KSampler).",
        "Scheduler (connects to KSampler).", "Denoise strength.",
        "One line describing the file: prompts, variations, seeds, settings.",
        "Flux guidance of the chosen preset (connects to FluxGuidance).",
        "The model file the preset names ('model:'), resolved in the folder of the loader it is "
        "connected to (Load Checkpoint, Load Diffusion Model). Leave unconnected to pick the model "
        "in the loader itself.",
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "file": (prompt_media_files(), {
                    "tooltip": "A .yaml/.yml file in ComfyUI's input/prompt_media/ folder."}),
                "preset": ("STRING", {
                    "default": "",
                    "tooltip": "Empty: the file's top-level settings. Otherwise the name of a preset "
                               "under 'workflows:' (dev, schnell, default, ...), which overrides them."}),
            },
            "optional": WiringInputs({
                "yaml_text": ("STRING", {
                    "multiline": True, "dynamicPrompts": False, "default": "",
                    "tooltip": "Inline prompt media YAML. When not empty it is used instead of 'file'."}),
            }),
        }

    @classmethod
    def IS_CHANGED(cls, file, preset, yaml_text="", **_wiring):
        try:
            source, text = read_source(file, yaml_text)
        except PromptMediaError as e:
            return str(e)          # changes with the problem, so a fixed file re-runs
        return hashlib.sha256(f"{source}\0{preset}\0{text}".encode()).hexdigest()

    @classmethod
    def VALIDATE_INPUTS(cls, file, preset, yaml_text="", _model_folders=""):
        if file is None or preset is None or yaml_text is None:   # linked: checked when it runs
            return True
        try:
            with_wired_model(load(file, yaml_text, preset), _model_folders)
        except PromptMediaError as e:
            return str(e)
        return True

    def load(self, file, preset, yaml_text="", _model_folders=""):
        media = with_wired_model(load(file, yaml_text, preset), _model_folders)
        if media.lora_tags:      # a LoRA named twice (tag and loras:) is applied once: say which
            for warning in duplicate_warnings(media, folder_paths.get_filename_list("loras")):
                log.warning("[Prompt Media] %s", warning)
        s = media.settings
        return (media, [spec.as_dict() for spec in media.loras], media.negative, s.steps, s.cfg,
                s.width, s.height, s.sampler_name, s.scheduler, s.denoise, media.summary(),
                s.guidance, s.model)


class WiringInputs(dict):
    """The optional inputs, plus MODEL_FOLDERS_KEY: the prompt handler below sets it from the graph,
    and being an input it is part of the cache key (rewiring model_name re-runs the loader) and
    reaches VALIDATE_INPUTS (a model name that does not resolve is refused before the queue).
    /object_info, which serialises the dict, shows only the real inputs."""

    def __contains__(self, key):
        return key == MODEL_FOLDERS_KEY or dict.__contains__(self, key)

    def __getitem__(self, key):
        return ("STRING", {}) if key == MODEL_FOLDERS_KEY and not dict.__contains__(self, key) \
            else super().__getitem__(key)


def mark_model_folders(json_data: dict) -> dict:
    """POST /prompt handler (registered by server_hooks): tell each loader which models folders
    its model_name output feeds (none: the key is removed)."""
    prompt = json_data.get("prompt") if isinstance(json_data, dict) else None
    for node_id, node in nodes_of_class(prompt, LOADER_CLASS):
        folders = wired_model_folders(prompt, node_id)
        if folders:
            node["inputs"][MODEL_FOLDERS_KEY] = ",".join(folders)
        else:
            node["inputs"].pop(MODEL_FOLDERS_KEY, None)
    return json_data


def with_wired_model(media: PromptMedia, model_folders: str | None) -> PromptMedia:
    """The file with its ``model:`` resolved in the folders model_name feeds (``model_folders``,
    comma-separated, from mark_model_folders); as written when that output is not connected."""
    folders = [f for f in (model_folders or "").split(",") if f in MODEL_FOLDERS]
    if not folders:
        return media
    where = " or ".join(f"models/{f}" for f in folders)
    if not media.settings.model:
        raise PromptMediaError(f"model_name is connected to a model loader but the file names no model "
                               f"(add 'model: <file in {where}>' at the top level or in the preset)",
                               source=media.source_name, field=media.model_at[2])
    available = sorted({name for f in folders for name in folder_paths.get_filename_list(f)})
    return media.with_model(available, where)


NODE_CLASS_MAPPINGS = {"PromptMediaLoader": PromptMediaLoader}
NODE_DISPLAY_NAME_MAPPINGS = {"PromptMediaLoader": "Prompt Media Loader"}
