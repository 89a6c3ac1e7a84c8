"""PromptMediaOOM: expands the file into jobs; outputs only what changes from job to job."""
from __future__ import annotations

import json
from functools import lru_cache

import folder_paths
from comfy_execution.graph_utils import ExecutionBlocker

from ..core.errors import PromptMediaError
from ..core.expand import DEFAULT_MAX_JOBS, MODES, count_jobs, describe, expand
from ..core.lora_names import LoraNameError, resolve_lora_name
from ..core.schema import PromptMedia
from ..core.trigger_words import words_to_add
from .host import CATEGORY, HiddenKeyInputs, lora_trigger_words

RUN_ONE = "one job per run"
RUN_ALL = "all jobs"
RUN_CHOICES = (RUN_ONE, RUN_ALL)
# Set by the LoRA Chain's prompt handler when the file's <lora:...> tags would not be applied.
TAGS_CHECK_KEY = "_lora_tags_error"     # VALIDATE_INPUTS names it as a parameter
# Set by the same handler to the LoRA Chain rows whose trigger words go into this node's prompts
# (the chain's add_trigger_words toggle): a JSON list of installed LoRA names.
CHAIN_WORDS_KEY = "_chain_trigger_loras"

TriggerWordArgs = tuple[tuple[tuple[str, tuple[str, ...]], ...], tuple[str, ...]]


@lru_cache(maxsize=8)
def _jobs(media: PromptMedia, mode: str, variation_seed: int, seed: int, max_jobs: int,
          words: TriggerWordArgs = ((), ())) -> tuple[dict, ...]:
    return tuple(expand(media, mode, variation_seed, seed, max_jobs,
                        trigger_words=words[0], extra_trigger_words=words[1]))


def trigger_word_args(media: PromptMedia, chain_loras: str | None = None) -> TriggerWordArgs:
    """What the prompts get: the words of the file's LoRAs whose add_trigger_words is on, by name
    as written, and the words of the chain rows the handler listed (for every job)."""
    try:
        rows = json.loads(chain_loras) if chain_loras else []
    except ValueError:
        rows = []
    wanted = media.add_trigger_words or any(spec.add_trigger_words for spec in media.loras)
    if not wanted and not rows:
        return (), ()
    available = folder_paths.get_filename_list("loras")

    def resolve(name: str) -> str | None:
        try:
            return resolve_lora_name(name, available)
        except LoraNameError:
            return None                   # the chain refuses it
    by_name = words_to_add(media, resolve, lora_trigger_words) if wanted else {}
    extra = tuple(w for name in rows if isinstance(name, str) for w in lora_trigger_words(name))
    return tuple(sorted(by_name.items())), extra


def select_jobs(media: PromptMedia, mode: str, run: str, job_index: int, variation_seed: int,
                seed: int, max_jobs: int, words: TriggerWordArgs = ((), ())) -> list[dict]:
    """The jobs one queued prompt generates. Raises IndexError past the end (no wrapping)."""
    if run not in RUN_CHOICES:
        raise PromptMediaError(f"run {run!r} is not one of {', '.join(RUN_CHOICES)}",
                               source=media.source_name, field="run")
    jobs = _jobs(media, mode, int(variation_seed), int(seed), int(max_jobs), words)
    if run == RUN_ALL:
        return list(jobs)
    if not 0 <= job_index < len(jobs):
        raise IndexError(f"job_index {job_index} is past the last job of {media.source_name} "
                         f"({len(jobs)} jobs: 0..{len(jobs) - 1}); nothing was generated. Queue "
                         "session queues the jobs not saved yet (or starts a new session when "
                         "all are saved); job_index 0 starts a new one.")
    return [jobs[job_index]]


class PromptMediaOOM:
    DESCRIPTION = ("Orders of Magnitude: expands prompts x variations x seeds into jobs. "
                   "'one job per run' generates job job_index per queued prompt (sessions of any "
                   "size, resumable); 'all jobs' emits every job as lists.")
    CATEGORY = CATEGORY
    FUNCTION = "expand"
    RETURN_TYPES = ("STRING", "INT", "JOB", "INT", "LORA_STACK")
    RETURN_NAMES = ("positive", "seed", "job", "job_count", "lora_stack")
    OUTPUT_IS_LIST = (True, True, True, False, True)
    OUTPUT_TOOLTIPS = (
        "The full positive prompt of each job (prefix, prompt, variation values; <lora:...> tags removed).",
        "The seed of each job: connect to KSampler's seed.",
        "Per-job metadata (indices, variation values, settings): connect to Session Saver.",
        "How many jobs the file expands to.",
        ("Each job's LoRAs: the file's loras: list, then the job's <lora:...> tags (connect to "
         "LoRA Chain's lora_stack; the chain stays cached while consecutive jobs share a set)."),
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "prompt_media": ("PROMPT_MEDIA", {"tooltip": "From Prompt Media Loader."}),
                "mode": (list(MODES), {
                    "default": "product",
                    "tooltip": "product: each prompt x every combination of sequential values. "
                               "cycle: prompt i takes value i mod n of each sequential variable."}),
                "run": (list(RUN_CHOICES), {
                    "default": RUN_ONE,
                    "tooltip": "one job per run: each queued prompt generates job job_index (images "
                               "are saved as they are made). all jobs: everything in one run, as lists."}),
                "job_index": ("INT", {
                    "default": 0, "min": 0, "max": DEFAULT_MAX_JOBS * 100, "control_after_generate": True,
                    "tooltip": "Which job to generate with 'one job per run' (0 starts a new session). "
                               "Set the control to 'increment'."}),
                "variation_seed": ("INT", {
                    "default": 0, "min": 0, "max": 0xffffffffffffffff,
                    "tooltip": "Seeds the draws of 'random' variations: same file and seed, same prompts."}),
                "seed": ("INT", {
                    "default": 0, "min": 0, "max": 0xffffffffffffffff,
                    "tooltip": "Used when the file has no 'seeds' list."}),
                "max_jobs": ("INT", {
                    "default": DEFAULT_MAX_JOBS, "min": 1, "max": 10_000_000,
                    "tooltip": "Refuse files that expand to more jobs than this."}),
            },
            "optional": HiddenKeyInputs({}, {TAGS_CHECK_KEY: ("STRING", {}), CHAIN_WORDS_KEY: ("STRING", {})}),
        }

    @classmethod
    def VALIDATE_INPUTS(cls, _lora_tags_error=None):
        # only the hidden key is named: ComfyUI keeps checking the real inputs itself
        return str(_lora_tags_error) if _lora_tags_error else True

    def expand(self, prompt_media, mode, run, job_index, variation_seed, seed, max_jobs, **hidden):
        total = count_jobs(prompt_media, mode, seed)
        try:
            words = trigger_word_args(prompt_media, hidden.get(CHAIN_WORDS_KEY))
            jobs = select_jobs(prompt_media, mode, run, job_index, variation_seed, seed, max_jobs, words)
        except IndexError as e:
            # A clean stop, not an error: nothing downstream runs. A blocker's message would be
            # reported by the node receiving it (a CLIPTextEncode), so the outputs block
            # silently and the message goes to this node's own status (the editor also toasts it).
            silent = ExecutionBlocker(None)
            return {"ui": {"text": [str(e)], "stopped": [True]},
                    "result": ([silent], [silent], [silent], total, [silent])}
        shape = describe(prompt_media, mode, seed).split(" · ", 1)[1]
        where = f"job {jobs[0]['index'] + 1} of {total}" if run == RUN_ONE else f"{total} jobs"
        text = f"{where} · {shape}"
        return {"ui": {"text": [text]},
                "result": ([j["positive"] for j in jobs], [j["seed"] for j in jobs], jobs, total,
                           [j["loras"] for j in jobs])}


LORA_STACK_OUTPUT = PromptMediaOOM.RETURN_NAMES.index("lora_stack")

NODE_CLASS_MAPPINGS = {"PromptMediaOOM": PromptMediaOOM}
NODE_DISPLAY_NAME_MAPPINGS = {"PromptMediaOOM": "OOM Variations"}
