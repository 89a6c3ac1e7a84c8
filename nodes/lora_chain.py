"""PromptMediaLoraChain: the job's LoRAs (or the loader's), then the editor's rows, applied in order
by ComfyUI's patcher; and the POST /prompt handler that prepares per-job LoRA sets."""
from __future__ import annotations

import hashlib
import json
import logging
import os
import weakref

import comfy.sd
import comfy.utils
import folder_paths

from ..core.api_prompt import (
    CHAIN_CLASS,
    LOADER_CLASS,
    OOM_CLASS,
    class_of,
    constant_inputs,
    loader_source,
    nodes_of_class,
    parse_link,
    source_of,
)
from ..core.errors import PromptMediaError
from ..core.lora_names import (
    STRENGTH_MODES,
    check_file_loras,
    parse_rows,
    plan_chain,
    resolve_lora_name,
    stack_entry,
)
from .host import CATEGORY, cached_sha256
from .loader import PromptMediaLoader, load  # the loader's own parser and cache
from .oom import CHAIN_WORDS_KEY, LORA_STACK_OUTPUT, RUN_ONE, TAGS_CHECK_KEY, select_jobs

log = logging.getLogger(__name__)

CLASS_NAME = CHAIN_CLASS
# Set on a chain's inputs by the prompt handler below when the YAML names a LoRA that does not
# resolve (or has tags nothing applies); VALIDATE_INPUTS turns it into the refusal.
YAML_CHECK_KEY = "_yaml_lora_error"
LOADER_STACK_OUTPUT = PromptMediaLoader.RETURN_NAMES.index("lora_stack")
MAX_LOADED = 8          # LoRA files a chain keeps in memory between runs
ROW_SPEC = ("LORA_ROW", {"tooltip": "One editor row: {on, lora, strength, strength_model, strength_clip}."})


class RowInputs(dict):
    """The optional inputs: the real ones, plus any ``lora_N`` row the editor adds.

    ComfyUI drops inputs its INPUT_TYPES does not claim; claiming every key keeps the rows, while
    /object_info (which serialises the dict) still shows only the real keys."""

    def __contains__(self, key):
        return True

    def __getitem__(self, key):
        return super().__getitem__(key) if dict.__contains__(self, key) else ROW_SPEC


NOT_ROWS = ("model", "clip", "lora_stack", "strength_mode", "add_trigger_words", YAML_CHECK_KEY)


def _rows(inputs: dict) -> dict:
    """The editor rows among a chain's inputs (every other key is a row, or a typo to report)."""
    return {k: v for k, v in inputs.items() if k not in NOT_ROWS and v is not None}


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
        # file state (path, size, mtime_ns) -> loaded state dict, most recently used last; kept
        # across queue runs (core LoraLoader keeps one per node) so jobs whose LoRA sets differ
        # do not re-read files; at most MAX_LOADED files, a changed file's old state is dropped
        self._loaded: dict[tuple[str, int, int], dict] = {}
        # the last call's (inputs, plan) and outputs: a list of jobs sharing a set (all jobs in
        # one run) gets the very same patched model, so the sampler does not re-patch per job
        self._last: tuple | None = None

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
                    "tooltip": "LoRAs applied before the rows, in order (e.g. OOM Variations' lora_stack: "
                               "each job's loras: list and <lora:...> tags)."}),
                "add_trigger_words": ("BOOLEAN", {
                    "default": False,
                    "tooltip": "Put the rows' trigger words (from NAME.civitai.info / NAME.metadata.json "
                               "beside the LoRA, or its safetensors metadata) into the OOM Variations "
                               "prompts encoded with this chain's CLIP, once each."}),
            }),
        }

    @classmethod
    def VALIDATE_INPUTS(cls, strength_mode="shared", **inputs):
        # runs before the queue starts; linked inputs (model, clip, lora_stack) arrive as None
        if inputs.get(YAML_CHECK_KEY):
            return str(inputs[YAML_CHECK_KEY])
        rows = _rows(inputs)
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
    def IS_CHANGED(cls, strength_mode="shared", lora_stack=None, **inputs):
        """Changes when a LoRA file of a row or of a constant lora_stack (a job's set written by
        the prompt handler) is replaced; the names and strengths are in the cache key already."""
        rows = _rows(inputs)
        try:
            steps = plan_chain(lora_stack if isinstance(lora_stack, list) else None, rows, strength_mode,
                               available_loras())
            states = [_file_state(step.name) for step in steps]
        except (PromptMediaError, FileNotFoundError, OSError) as e:
            return f"error: {e}"         # stable per problem; never NaN (that would re-run every time)
        return hashlib.sha256(repr(states).encode()).hexdigest()

    def _load(self, state: tuple[str, int, int]) -> dict:
        sd = self._loaded.pop(state, None)
        if sd is None:
            for old in [s for s in self._loaded if s[0] == state[0]]:
                del self._loaded[old]                              # the file changed
            sd = comfy.utils.load_torch_file(state[0], safe_load=True)
            log.info("LoRA Chain: read %s from disk", state[0])   # once per file and change
        self._loaded[state] = sd
        while len(self._loaded) > MAX_LOADED:
            del self._loaded[next(iter(self._loaded))]
        return sd

    def apply(self, model, strength_mode="shared", clip=None, lora_stack=None, add_trigger_words=False,
              **inputs):
        steps = plan_chain(lora_stack, _rows(inputs), strength_mode, available_loras(), has_clip=clip is not None)
        states = [_file_state(step.name) for step in steps]
        plan = ([(s.name, s.strength_model, s.strength_clip, s.notes) for s in steps], states)
        reused = self._reuse(model, clip, plan)
        if reused is not None:
            return reused
        out_model, out_clip, applied = model, clip, []
        for step, state in zip(steps, states):
            out_model, out_clip = comfy.sd.load_lora_for_models(out_model, out_clip, self._load(state),
                                                                step.strength_model, step.strength_clip)
            applied.append(stack_entry(step, cached_sha256(state[0])))
        # weak references: the memo must not keep a model alive that ComfyUI has let go of
        self._last = (_ref(model), _ref(clip), plan, _ref(out_model), _ref(out_clip), applied)
        return (out_model, out_clip, applied)

    def _reuse(self, model, clip, plan):
        if self._last is None:
            return None
        model_ref, clip_ref, last_plan, out_model, out_clip, applied = self._last
        outputs = (out_model(), out_clip())
        if model_ref() is model and clip_ref() is clip and last_plan == plan \
                and outputs[0] is not None and (outputs[1] is not None or clip is None):
            return (*outputs, applied)
        return None


def _ref(obj):
    """A weak reference, or a callable returning None for None."""
    return weakref.ref(obj) if obj is not None else (lambda: None)


def _file_of(prompt: dict, loader: dict | None):
    """The loader's validated file, when its inputs are constants and it loads (else None: the
    loader's own validation reports it, or it is known only when it runs)."""
    source = loader_source(prompt, loader) if class_of(loader) == LOADER_CLASS else None
    if source is None:
        return None
    try:
        return load(*source)
    except (PromptMediaError, OSError):
        return None


def _job_loras(prompt: dict, oom: dict, media) -> list[dict] | None:
    """The one job's LoRA set a one-job-per-run OOM node with constant inputs will emit."""
    names = ("mode", "run", "job_index", "variation_seed", "seed", "max_jobs")
    found = constant_inputs(prompt, oom, names)
    if found is None or any(found[n] is None for n in names) or found["run"] != RUN_ONE:
        return None
    try:
        [job] = select_jobs(media, found["mode"], RUN_ONE, int(found["job_index"]), int(found["variation_seed"]),
                            int(found["seed"]), int(found["max_jobs"]))
    except (PromptMediaError, IndexError, TypeError, ValueError):
        return None                       # the OOM node reports it (or stops cleanly past the end)
    return job["loras"]


def prepare_prompt(prompt: dict) -> dict[str, tuple[str, str]]:
    """Before the queue starts, for every LoRA Chain fed by a Prompt Media Loader or by OOM
    Variations (their file and settings being widget values): refuse a ``loras:`` entry or a
    ``<lora:...>`` tag naming a LoRA that is not installed (file:line, closest names), and a
    file whose tags nothing would apply. In one-job-per-run mode the OOM -> chain link is
    replaced by the job's LoRA set itself: ComfyUI caches a node by its inputs, so the chain
    (and every encoding after it) stays cached while consecutive jobs share a set, instead of
    re-running with every new job_index. Then the chains' row trigger words are routed (see
    :func:`_route_row_trigger_words`). Changes ``prompt`` in place; returns the refusals as
    {node id: (input key, message)}."""
    errors: dict[str, tuple[str, str]] = {}
    # OOM nodes whose per-job LoRA sets something takes (before any link becomes a constant)
    consumed = {link[0] for node in prompt.values() if isinstance(node, dict)
                for raw in (node.get("inputs") or {}).values()
                if (link := parse_link(raw)) and link[1] == LORA_STACK_OUTPUT}
    available = None
    for node_id, node in nodes_of_class(prompt, CLASS_NAME):
        feeding = source_of(prompt, node, "lora_stack")
        from_loader = feeding is not None and feeding[1] == LOADER_STACK_OUTPUT and class_of(feeding[2]) == LOADER_CLASS
        from_oom = feeding is not None and feeding[1] == LORA_STACK_OUTPUT and class_of(feeding[2]) == OOM_CLASS
        if from_oom:
            loader = source_of(prompt, feeding[2], "prompt_media")
            media = _file_of(prompt, loader[2] if loader and loader[1] == 0 else None)
        else:
            media = _file_of(prompt, feeding[2]) if from_loader else None
        if media is None:
            continue
        available = available_loras() if available is None else available
        try:
            check_file_loras(media, available)
        except PromptMediaError as e:
            errors[node_id] = (YAML_CHECK_KEY, str(e))
            continue
        if from_loader and media.lora_tags:
            first = media.lora_tags[0]
            errors[node_id] = (YAML_CHECK_KEY, str(media.error_at(first.position, (
                f"{first.tag.text}: the file's <lora:...> tags differ per job, so this chain must take "
                "OOM Variations' lora_stack output (each job's loras: list and tags), not the "
                "loader's (the loras: list alone)"))))
            continue
        if from_oom:
            loras = _job_loras(prompt, feeding[2], media)
            if loras is not None:           # names and strengths only: a set is a set, wherever named
                node["inputs"]["lora_stack"] = {"__value__": [
                    {k: lora[k] for k in ("name", "strength_model", "strength_clip")} for lora in loras]}
    for node_id, node in nodes_of_class(prompt, OOM_CLASS):
        if node_id in consumed:
            continue
        loader = source_of(prompt, node, "prompt_media")
        media = _file_of(prompt, loader[2] if loader and loader[1] == 0 else None)
        if media is not None and media.lora_tags:
            first = media.lora_tags[0]
            errors[node_id] = (TAGS_CHECK_KEY, str(media.error_at(first.position, (
                f"{first.tag.text}: no LoRA Chain takes this node's lora_stack output, so the "
                "file's <lora:...> tags would be dropped: connect lora_stack to a LoRA Chain "
                "(model and clip from the checkpoint, then on to the sampler and text encoders)"))))
    _route_row_trigger_words(prompt, available_loras() if available is None else available)
    for node_id, (key, message) in errors.items():
        prompt[node_id]["inputs"][key] = message
    return errors


def _route_row_trigger_words(prompt: dict, available: list[str]) -> None:
    """For each chain whose add_trigger_words is on, tell the OOM nodes whose prompts are encoded
    with the chain's CLIP (a node taking clip from the chain and text from the OOM's positive)
    which row LoRAs to take trigger words from. An input of their own: the OOM node re-runs
    when the rows change, and the chain's cache is not touched."""
    names_for: dict[str, list[str]] = {}
    for chain_id, chain in nodes_of_class(prompt, CLASS_NAME):
        inputs = chain["inputs"]
        if inputs.get("add_trigger_words") is not True:
            continue
        try:
            steps = plan_chain(None, _rows(inputs), inputs.get("strength_mode", "shared"), available)
        except PromptMediaError:
            continue                      # VALIDATE_INPUTS reports the row
        targets = {link[0] for node in prompt.values() if isinstance(node, dict)
                   and parse_link((node.get("inputs") or {}).get("clip")) == (chain_id, 1)
                   for raw in node["inputs"].values()
                   if (link := parse_link(raw)) and link[1] == 0 and class_of(prompt.get(link[0])) == OOM_CLASS}
        if not targets and steps:
            log.warning("LoRA Chain %s: add_trigger_words is on, but no OOM Variations prompt is "
                        "encoded with its CLIP: the rows' trigger words go nowhere", chain_id)
        for target in targets:
            names_for.setdefault(target, []).extend(s.name for s in steps)
    for oom_id, names in names_for.items():
        prompt[oom_id]["inputs"][CHAIN_WORDS_KEY] = json.dumps(list(dict.fromkeys(names)))


def check_yaml_loras(json_data: dict) -> dict:
    """POST /prompt handler (registered by server_hooks): :func:`prepare_prompt` on the posted
    prompt. Never raises: a bug here must not block queueing (the chain still checks every name
    when it runs)."""
    prompt = json_data.get("prompt") if isinstance(json_data, dict) else None
    if isinstance(prompt, dict):
        try:
            prepare_prompt(prompt)
        except Exception:
            log.exception("LoRA Chain: preparing the posted prompt failed")
    return json_data


NODE_CLASS_MAPPINGS = {CLASS_NAME: PromptMediaLoraChain}
NODE_DISPLAY_NAME_MAPPINGS = {CLASS_NAME: "LoRA Chain"}
