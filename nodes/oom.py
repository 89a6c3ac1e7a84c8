"""PromptMediaOOM: expands the file into jobs; outputs only what changes from job to job."""
from __future__ import annotations

from functools import lru_cache

from comfy_execution.graph_utils import ExecutionBlocker

from ..core.errors import PromptMediaError
from ..core.expand import DEFAULT_MAX_JOBS, MODES, count_jobs, describe, expand
from ..core.schema import PromptMedia
from .host import CATEGORY

RUN_ONE = "one job per run"
RUN_ALL = "all jobs"
RUN_CHOICES = (RUN_ONE, RUN_ALL)


@lru_cache(maxsize=8)
def _jobs(media: PromptMedia, mode: str, variation_seed: int, seed: int, max_jobs: int) -> tuple[dict, ...]:
    return tuple(expand(media, mode, variation_seed, seed, max_jobs))


def select_jobs(media: PromptMedia, mode: str, run: str, job_index: int, variation_seed: int,
                seed: int, max_jobs: int) -> list[dict]:
    """The jobs one queued prompt generates. Raises IndexError past the end (no wrapping)."""
    if run not in RUN_CHOICES:
        raise PromptMediaError(f"run {run!r} is not one of {', '.join(RUN_CHOICES)}",
                               source=media.source_name, field="run")
    jobs = _jobs(media, mode, int(variation_seed), int(seed), int(max_jobs))
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
    RETURN_TYPES = ("STRING", "INT", "JOB", "INT")
    RETURN_NAMES = ("positive", "seed", "job", "job_count")
    OUTPUT_IS_LIST = (True, True, True, False)
    OUTPUT_TOOLTIPS = (
        "The full positive prompt of each job (prefix, prompt, variation values).",
        "The seed of each job: connect to KSampler's seed.",
        "Per-job metadata (indices, variation values, settings): connect to Session Saver.",
        "How many jobs the file expands to.",
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
        }

    def expand(self, prompt_media, mode, run, job_index, variation_seed, seed, max_jobs):
        total = count_jobs(prompt_media, mode, seed)
        try:
            jobs = select_jobs(prompt_media, mode, run, job_index, variation_seed, seed, max_jobs)
        except IndexError as e:
            # A clean stop, not an error: nothing downstream runs. A blocker's message would be
            # reported by the node receiving it (a CLIPTextEncode), so the outputs block
            # silently and the message goes to this node's own status (the editor also toasts it).
            silent = ExecutionBlocker(None)
            return {"ui": {"text": [str(e)], "stopped": [True]},
                    "result": ([silent], [silent], [silent], total)}
        shape = describe(prompt_media, mode, seed).split(" · ", 1)[1]
        where = f"job {jobs[0]['index'] + 1} of {total}" if run == RUN_ONE else f"{total} jobs"
        text = f"{where} · {shape}"
        return {"ui": {"text": [text]},
                "result": ([j["positive"] for j in jobs], [j["seed"] for j in jobs], jobs, total)}


NODE_CLASS_MAPPINGS = {"PromptMediaOOM": PromptMediaOOM}
NODE_DISPLAY_NAME_MAPPINGS = {"PromptMediaOOM": "OOM Variations"}
