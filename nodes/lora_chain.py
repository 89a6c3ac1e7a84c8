"""PromptMediaLoraChain: the loader's LoRAs, then the editor's rows, applied in order by ComfyUI's patcher."""
from __future__ import annotations

import hashlib
import logging
import os

import comfy.sd
import comfy.utils
import folder_paths

from ..core.api_prompt import CHAIN_CLASS, LOADER_CLASS, class_of, loader_source, nodes_of_class, source_of
from ..core.errors import PromptMediaError
from ..core.hashing import sha256_file
from ..core.lora_names import STRENGTH_MODES, parse_rows, plan_chain, resolve_lora_name, stack_entry
from .host import CATEGORY
from .loader import PromptMediaLoader, load  # the loader's own parser and cache

log = logging.getLogger(__name__)

CLASS_NAME = CHAIN_CLASS
# Set on a chain's inputs by the prompt handler below when the linked loader's YAML names a LoRA
# that does not resolve; VALIDATE_INPUTS turns it into the refusal. Only failing prompts carry it.
YAML_CHECK_KEY = "_yaml_lora_error"
LOADER_STACK_OUTPUT = PromptMediaLoader.RETURN_NAMES.index("lora_stack")
ROW_SPEC = ("LORA_ROW", {"tooltip": "One editor row: {on, lora, strength, strength_model, strength_clip}."})


class RowInputs(dict):
    """The optional inputs: the real ones, plus any ``lora_N`` row the editor adds.

    ComfyUI drops inputs its INPUT_TYPES does not claim; claiming every key keeps the rows, while
    /object_info (which serialises the dict) still shows only the real keys."""

    def __contains__(self, key):
        return True

    def __getitem__(self, key):
        return super().__getitem__(key) if dict.__contains__(self, key) else ROW_SPEC


def available_loras() -> list[str]:
    return folder_paths.get_filename_list("loras")


def _file_state(name: str) -> tuple[str, int, int]:
    path = folder_paths.get_full_path_or_raise("loras", name)
    st = os.stat(path)
    return path, st.st_size, st.st_mtime_ns


class PromptMediaLoraChain:
    DESCRIPTION = ("Applies LoRAs in order through ComfyUI's own LoRA patcher: first the lora_stack "
                   "(e.g. from the Prompt Media Loader's YAML), then the rows added with 'Add LoRA', top "
                   "to bottom. Rows switched off or with both strengths 0 are skipped. Names are matched "
                   "exactly, then with an extension added, then by file name in any subfolder.")
    CATEGORY = CATEGORY
    FUNCTION = "apply"
    RETURN_TYPES = ("MODEL", "CLIP", "LORA_STACK")
    RETURN_NAMES = ("model", "clip", "lora_stack")
    OUTPUT_TOOLTIPS = (
        "The model with every LoRA applied (connect to KSampler).",
        "The CLIP with every LoRA applied (connect to CLIP Text Encode); empty without a clip input.",
        "What was applied, in order: resolved file name, strengths, sha256 (connect to the Session Saver).",
    )

    def __init__(self):
        # file state (path, size, mtime_ns) -> loaded state dict; kept across queue runs, pruned
        # to the files of the latest run (core LoraLoader keeps one per node the same way)
        self._loaded: dict[tuple[str, int, int], dict] = {}

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": ("MODEL", {"tooltip": "The model to patch (e.g. from Load Checkpoint)."}),
                "strength_mode": (list(STRENGTH_MODES), {
                    "default": "shared",
                    "tooltip": "shared: one strength per row for model and CLIP; "
                               "separate: a model strength and a CLIP strength per row."}),
            },
            "optional": RowInputs({
                "clip": ("CLIP", {"tooltip": "The CLIP to patch. Leave empty for a model-only chain."}),
                "lora_stack": ("LORA_STACK", {
                    "tooltip": "LoRAs applied before the rows, in order (e.g. the loader's lora_stack)."}),
            }),
        }

    @classmethod
    def VALIDATE_INPUTS(cls, strength_mode="shared", **inputs):
        # runs before the queue starts; linked inputs (model, clip, lora_stack) arrive as None
        if inputs.get(YAML_CHECK_KEY):
            return str(inputs[YAML_CHECK_KEY])
        rows = {k: v for k, v in inputs.items() if k not in ("model", "clip", "lora_stack") and v is not None}
        try:
            available = available_loras()
            for step in parse_rows(rows, strength_mode):
                if step.strength_model == 0 and step.strength_clip == 0:
                    continue
                resolve_lora_name(step.name, available, field=step.origin)
        except PromptMediaError as e:
            return str(e)
        return True

    @classmethod
    def IS_CHANGED(cls, strength_mode="shared", **inputs):
        """Changes when a row's LoRA file is replaced (rows themselves are already in the cache key)."""
        rows = {k: v for k, v in inputs.items() if k not in ("model", "clip", "lora_stack") and v is not None}
        try:
            available = available_loras()
            states = [_file_state(resolve_lora_name(s.name, available)) for s in parse_rows(rows, strength_mode)
                      if s.strength_model or s.strength_clip]
        except (PromptMediaError, FileNotFoundError, OSError) as e:
            return f"error: {e}"         # stable per problem; never NaN (that would re-run every time)
        return hashlib.sha256(repr(states).encode()).hexdigest()

    def _load(self, state: tuple[str, int, int]) -> dict:
        sd = self._loaded.get(state)
        if sd is None:
            sd = comfy.utils.load_torch_file(state[0], safe_load=True)
            log.info("LoRA Chain: read %s from disk", state[0])   # once per file and change
            self._loaded[state] = sd
        return sd

    def apply(self, model, strength_mode="shared", clip=None, lora_stack=None, **rows):
        rows.pop(YAML_CHECK_KEY, None)
        steps = plan_chain(lora_stack, rows, strength_mode, available_loras(), has_clip=clip is not None)
        applied, used = [], set()
        for step in steps:
            state = _file_state(step.name)
            model, clip = comfy.sd.load_lora_for_models(model, clip, self._load(state),
                                                        step.strength_model, step.strength_clip)
            used.add(state)
            applied.append(stack_entry(step, sha256_file(state[0])))
        for stale in set(self._loaded) - used:
            del self._loaded[stale]
        return (model, clip, applied)


def yaml_lora_errors(prompt: dict) -> dict[str, str]:
    """{chain node id: message} for chains whose lora_stack comes straight from a loader whose YAML
    names a LoRA that does not resolve. Loader inputs that are links are left to execution time."""
    errors = {}
    available = None
    for node_id, node in nodes_of_class(prompt, CLASS_NAME):
        feeding = source_of(prompt, node, "lora_stack")
        if feeding is None or feeding[1] != LOADER_STACK_OUTPUT or class_of(feeding[2]) != LOADER_CLASS:
            continue
        source = loader_source(prompt, feeding[2])
        if source is None:
            continue
        try:
            media = load(*source)
        except (PromptMediaError, OSError):
            continue                      # the loader's own validation reports that
        available = available_loras() if available is None else available
        try:
            plan_chain([spec.as_dict() for spec in media.loras], {}, "shared", available)
        except PromptMediaError as e:
            errors[node_id] = f"{media.source_name}: {e}"
    return errors


def check_yaml_loras(json_data: dict) -> dict:
    """POST /prompt handler (registered by server_hooks): mark chains whose YAML LoRAs are missing,
    so validation refuses them."""
    prompt = json_data.get("prompt") if isinstance(json_data, dict) else None
    if isinstance(prompt, dict):
        for node_id, message in yaml_lora_errors(prompt).items():
            prompt[node_id]["inputs"][YAML_CHECK_KEY] = message
    return json_data


NODE_CLASS_MAPPINGS = {CLASS_NAME: PromptMediaLoraChain}
NODE_DISPLAY_NAME_MAPPINGS = {CLASS_NAME: "LoRA Chain"}
