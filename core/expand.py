"""OOM expansion: prompts x variations x seeds -> jobs (one job = one image).

Order: for each seed, for each prompt, for each variation (README "Job order").
A job is a plain JSON-able dict so it can travel through ComfyUI links and into sidecars.
"""
from __future__ import annotations

import hashlib
import itertools
import re
from typing import Iterator

from .errors import PromptMediaError
from .schema import PromptMedia, Variation

MODES = ("product", "cycle")
DEFAULT_MAX_JOBS = 10_000

_SPACES = re.compile(r"\s+")


def compose_prompt(*parts: str) -> str:
    """Join parts with ", ", then split on commas, normalise whitespace and drop empty and
    repeated parts (first occurrence wins, exact match)."""
    seen: dict[str, None] = {}
    for chunk in ", ".join(parts).split(","):
        piece = _SPACES.sub(" ", chunk).strip()
        if piece and piece not in seen:
            seen[piece] = None
    return ", ".join(seen)


def _sequential(media: PromptMedia) -> list[Variation]:
    return [v for v in media.variations if v.type == "sequential"]


def variations_per_prompt(media: PromptMedia, mode: str) -> int:
    if mode not in MODES:
        raise PromptMediaError(f"mode {mode!r} is not one of {', '.join(MODES)}",
                               source=media.source_name, field="mode")
    if mode == "cycle":
        return 1
    n = 1
    for v in _sequential(media):
        n *= len(v.values)
    return n


def seeds_for(media: PromptMedia, fallback_seed: int) -> tuple[int, ...]:
    return media.settings.seeds or (int(fallback_seed),)


def count_jobs(media: PromptMedia, mode: str = "product", fallback_seed: int = 0) -> int:
    """The number of jobs, computed without building any (bombs are refused in O(1))."""
    return len(seeds_for(media, fallback_seed)) * len(media.prompts) * variations_per_prompt(media, mode)


def expansion_id(media: PromptMedia, mode: str, variation_seed: int, fallback_seed: int) -> str:
    """Identifies one expansion: same file content, preset and OOM inputs -> same jobs."""
    key = f"{media.sha256}|{media.preset}|{mode}|{variation_seed}|{seeds_for(media, fallback_seed)}"
    return hashlib.sha256(key.encode()).hexdigest()[:16]


class _Bag:
    """Draws a variable's values without replacement, refilling when empty.

    The order of each refill is a pure function of (variation_seed, prompt, variable, refill)
    hashed with SHA-256, so it is the same on every machine and Python version.
    """

    def __init__(self, variation_seed: int, prompt_index: int, var: Variation):
        self.key = f"{variation_seed}|{prompt_index}|{var.name}"
        self.values = var.values
        self.refill = 0
        self.queue: list[str] = []

    def draw(self) -> str:
        if not self.queue:
            order = sorted(range(len(self.values)), key=lambda i: hashlib.sha256(
                f"{self.key}|{self.refill}|{i}".encode()).digest())
            self.queue = [self.values[i] for i in reversed(order)]
            self.refill += 1
        return self.queue.pop()


def iter_jobs(media: PromptMedia, mode: str = "product", variation_seed: int = 0,
              fallback_seed: int = 0, max_jobs: int = DEFAULT_MAX_JOBS) -> Iterator[dict]:
    total = count_jobs(media, mode, fallback_seed)
    if total > max_jobs:
        raise PromptMediaError(
            f"expands to {describe(media, mode, fallback_seed)}, more than max_jobs={max_jobs:,}; "
            "raise max_jobs or split the file",
            source=media.source_name, field="max_jobs")
    seeds = seeds_for(media, fallback_seed)
    sequential = _sequential(media)
    static = [v for v in media.variations if v.type == "static"]
    randoms = [v for v in media.variations if v.type == "random"]
    per_prompt = variations_per_prompt(media, mode)
    combos = list(itertools.product(*(v.values for v in sequential))) if mode == "product" else None
    bags = {(p, v.name): _Bag(variation_seed, p, v) for p in range(len(media.prompts)) for v in randoms}
    exp_id = expansion_id(media, mode, variation_seed, fallback_seed)
    s = media.settings
    index = 0
    for seed_index, seed in enumerate(seeds):
        for prompt_index, base in enumerate(media.prompts):
            for variation_index in range(per_prompt):
                if combos is not None:
                    chosen = dict(zip((v.name for v in sequential), combos[variation_index]))
                else:
                    chosen = {v.name: v.values[prompt_index % len(v.values)] for v in sequential}
                for v in randoms:
                    chosen[v.name] = bags[(prompt_index, v.name)].draw()
                for v in static:
                    chosen[v.name] = ", ".join(x for x in v.values if x)
                # parts follow the file's declaration order of variations
                parts = [chosen[v.name] for v in media.variations]
                yield {
                    "index": index, "total": total,
                    "seed_index": seed_index, "prompt_index": prompt_index,
                    "variation_index": variation_index, "variations_per_prompt": per_prompt,
                    "seed": seed, "base_prompt": base,
                    "positive": compose_prompt(media.prefix, base, *parts),
                    "negative": media.negative,
                    "variation_values": chosen,
                    "steps": s.steps, "cfg": s.cfg, "width": s.width, "height": s.height,
                    "sampler_name": s.sampler_name, "scheduler": s.scheduler, "denoise": s.denoise,
                    "mode": mode, "variation_seed": variation_seed,
                    "source_name": media.source_name, "source_sha256": media.sha256,
                    "preset": media.preset, "expansion_id": exp_id,
                }
                index += 1


def expand(media: PromptMedia, mode: str = "product", variation_seed: int = 0,
           fallback_seed: int = 0, max_jobs: int = DEFAULT_MAX_JOBS) -> list[dict]:
    return list(iter_jobs(media, mode, variation_seed, fallback_seed, max_jobs))


def _count_text(n: int) -> str:
    return f"{n:,}" if n < 10**15 else f"about 10^{len(str(n)) - 1}"


def describe(media: PromptMedia, mode: str, fallback_seed: int = 0) -> str:
    """e.g. '12 jobs · 3 prompts × 2 variations × 2 seeds'."""
    return (f"{_count_text(count_jobs(media, mode, fallback_seed))} jobs · {len(media.prompts)} prompts × "
            f"{_count_text(variations_per_prompt(media, mode))} variations × "
            f"{len(seeds_for(media, fallback_seed))} seeds")
