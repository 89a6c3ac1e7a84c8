"""PromptMediaLoader: reads and validates a prompt media file; outputs what is fixed for the file."""
from __future__ import annotations

import hashlib
from functools import lru_cache

import comfy.samplers

from ..core.errors import PromptMediaError
from ..core.paths import PathError, relative_parts
from ..core.schema import PromptMedia, load_prompt_media, read_text_file, sha256_text
from .host import CATEGORY, prompt_media_files, prompt_media_path

INLINE_SOURCE = "prompt_media.yaml"   # the name inline yaml_text gets (errors, session copy)


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
                    comfy.samplers.KSampler.SAMPLERS, comfy.samplers.KSampler.SCHEDULERS, "FLOAT", "STRING")
    RETURN_NAMES = ("prompt_media", "lora_stack", "negative", "steps", "cfg", "width", "height",
                    "sampler_name", "scheduler", "denoise", "summary")
    OUTPUT_TOOLTIPS = (
        "The validated file with its resolved settings: connect to OOM Variations and Session Saver.",
        "The file's LoRAs in order (name, strength_model, strength_clip): connect to LoRA Chain.",
        "The negative prompt (fixed for the file, so its encoding stays cached).",
        "Sampling steps of the chosen preset.", "CFG scale of the chosen preset.",
        "Image width.", "Image height.", "Sampler name (connects to KSampler).",
        "Scheduler (connects to KSampler).", "Denoise strength.",
        "One line describing the file: prompts, variations, seeds, settings.",
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
            "optional": {
                "yaml_text": ("STRING", {
                    "multiline": True, "dynamicPrompts": False, "default": "",
                    "tooltip": "Inline prompt media YAML. When not empty it is used instead of 'file'."}),
            },
        }

    @classmethod
    def IS_CHANGED(cls, file, preset, yaml_text=""):
        try:
            source, text = read_source(file, yaml_text)
        except PromptMediaError as e:
            return str(e)          # changes with the problem, so a fixed file re-runs
        return hashlib.sha256(f"{source}\0{preset}\0{text}".encode()).hexdigest()

    @classmethod
    def VALIDATE_INPUTS(cls, file, preset, yaml_text=""):
        if file is None or preset is None or yaml_text is None:   # linked: checked when it runs
            return True
        try:
            load(file, yaml_text, preset)
        except PromptMediaError as e:
            return str(e)
        return True

    def load(self, file, preset, yaml_text=""):
        media = load(file, yaml_text, preset)
        s = media.settings
        return (media, [l.as_dict() for l in media.loras], media.negative, s.steps, s.cfg,
                s.width, s.height, s.sampler_name, s.scheduler, s.denoise, media.summary())


NODE_CLASS_MAPPINGS = {"PromptMediaLoader": PromptMediaLoader}
NODE_DISPLAY_NAME_MAPPINGS = {"PromptMediaLoader": "Prompt Media Loader"}
