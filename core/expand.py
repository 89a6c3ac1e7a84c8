"""OOM expansion: prompts x variations x seeds -> jobs (one job = one image).

Order: for each seed, for each prompt, for each variation (README "Job order").
A job is a plain JSON-able dict so it can travel through ComfyUI links and into sidecars.
"""
from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence

from .errors import PromptMediaError
from .lora_names import job_lora_set
from .lora_tags import LoraTag, split_lora_tags
from .schema import PromptMedia, Variation

MODES = ("product", "cycle")
DEFAULT_MAX_JOBS = 10_000

_SPACES = re.compile(r"\s+")


def compose_prompt(*parts: str) -> str:
    """Join parts with ", ", then split on commas, normalise whitespace and drop empty and
    repeated parts (first occurrence wins, exact match). ``<lora:...>`` tags are removed (the
    LoRA Chain applies them)."""
    return _compose(parts, {})


def _split(part: str) -> tuple[tuple[str, ...], tuple[LoraTag, ...]]:
    """A part's comma-separated pieces (tags removed, whitespace-normalised, empty ones
    dropped) and its tags. Splitting the joined text equals splitting each part (the ", "
    joiner only adds a space that is stripped)."""
    text, tags = split_lora_tags(part) if "<" in part else (part, ())
    pieces = (_SPACES.sub(" ", chunk).strip() for chunk in text.split(","))
    return tuple(p for p in pieces if p), tags


def _compose(parts, memo: dict) -> str:
    """compose_prompt with each distinct part split once per ``memo`` (one expansion), not per job."""
    seen: dict[str, None] = {}
    for part in parts:
        split = memo.get(part)
        if split is None:
            split = memo[part] = _split(part)
        for piece in split[0]:
            seen.setdefault(piece)
    return ", ".join(seen)


def _tags_of(parts, memo: dict) -> tuple[LoraTag, ...]:
    """The tags of ``parts`` in order of appearance (parts were split by _compose already)."""
    return tuple(tag for part in parts for tag in memo[part][1])


def _missing_words(words, text: str) -> list[str]:
    """``words`` (each once, compared in any case) that ``text`` does not hold yet as whole words."""
    lower = text.lower()
    out, seen = [], set()
    for word in words:
        w = _SPACES.sub(" ", word).strip()
        key = w.lower()
        if not w or key in seen:
            continue
        seen.add(key)
        if not re.search(r"(?<!\w)" + re.escape(key) + r"(?!\w)", lower):
            out.append(w)
    return out


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
            prefix = f"{self.key}|{self.refill}|"
            order = sorted(range(len(self.values)), key=lambda i: hashlib.sha256(
                (prefix + str(i)).encode()).digest())
            self.queue = [self.values[i] for i in reversed(order)]
            self.refill += 1
        return self.queue.pop()


def iter_jobs(media: PromptMedia, mode: str = "product", variation_seed: int = 0,
              fallback_seed: int = 0, max_jobs: int = DEFAULT_MAX_JOBS,
              trigger_words: Mapping[str, Sequence[str]] | Iterable = (),
              extra_trigger_words: Sequence[str] = ()) -> Iterator[dict]:
    """The jobs, in order. Each job's ``loras`` is its LoRA set: the file's ``loras:`` list, then
    the ``<lora:...>`` tags of its prefix, prompt and variation values in order of appearance,
    each LoRA once, at its first mention (``lora_notes`` say what was skipped).
    ``trigger_words`` maps a LoRA name as written to the words to put into the prompt of every
    job using it, and
    ``extra_trigger_words`` go into every job; each word once, after the prefix, and only when
    the prompt does not hold it already."""
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
    names = [v.name for v in sequential]
    if mode == "product":
        chosen_of = [dict(zip(names, combo)) for combo in itertools.product(*(v.values for v in sequential))]
    else:
        chosen_of = None
    static_values = {v.name: ", ".join(x for x in v.values if x) for v in static}
    bags = {(p, v.name): _Bag(variation_seed, p, v) for p in range(len(media.prompts)) for v in randoms}
    order = [v.name for v in media.variations]      # parts follow the file's declaration order
    s = media.settings
    steps, cfg, width, height = s.steps, s.cfg, s.width, s.height
    sampler_name, scheduler, denoise = s.sampler_name, s.scheduler, s.denoise
    guidance, model_name = s.guidance, s.model or None
    prefix, negative, source, sha, preset = media.prefix, media.negative, media.source_name, media.sha256, media.preset
    exp_id = expansion_id(media, mode, variation_seed, fallback_seed)
    memo: dict = {}      # part -> (its pieces, its tags), for this expansion only
    file_loras = [dict(spec.as_dict(), source="file") for spec in media.loras]
    sets: dict[tuple, tuple[list[dict], list[str]]] = {(): job_lora_set(file_loras, ())}   # by tags
    has_tags = bool(media.lora_tags)
    loras, lora_notes = sets[()]
    words_of = dict(trigger_words)
    index = 0
    for seed_index, seed in enumerate(seeds):
        for prompt_index, base in enumerate(media.prompts):
            for variation_index in range(per_prompt):
                if chosen_of is not None:
                    chosen = dict(chosen_of[variation_index])
                else:
                    chosen = {v.name: v.values[prompt_index % len(v.values)] for v in sequential}
                for v in randoms:
                    chosen[v.name] = bags[(prompt_index, v.name)].draw()
                if static_values:
                    chosen.update(static_values)
                values = [chosen[n] for n in order]
                parts = (prefix, base, *values)
                positive = _compose(parts, memo)
                if has_tags:
                    tags = _tags_of(parts, memo)
                    lora_set = sets.get(tags)
                    if lora_set is None:
                        lora_set = sets[tags] = job_lora_set(file_loras, tags)
                    loras, lora_notes = lora_set
                if words_of or extra_trigger_words:
                    words = [w for lora in loras for w in words_of.get(lora["name"], ())]
                    added = _missing_words([*words, *extra_trigger_words], positive)
                    if added:
                        positive = _compose((prefix, *added, base, *values), memo)
                yield {
                    "index": index, "total": total,
                    "seed_index": seed_index, "prompt_index": prompt_index,
                    "variation_index": variation_index, "variations_per_prompt": per_prompt,
                    "seed": seed, "base_prompt": base,
                    "positive": positive,
                    "negative": negative,
                    "variation_values": dict(zip(order, values)),
                    "loras": loras, "lora_notes": lora_notes,
                    "steps": steps, "cfg": cfg, "width": width, "height": height,
                    "sampler_name": sampler_name, "scheduler": scheduler, "denoise": denoise,
                    "guidance": guidance, "model_name": model_name, "mode": mode, "variation_seed": variation_seed,
                    "source_name": source, "source_sha256": sha,
                    "preset": preset, "expansion_id": exp_id,
                }
                index += 1


def expand(media: PromptMedia, mode: str = "product", variation_seed: int = 0,
           fallback_seed: int = 0, max_jobs: int = DEFAULT_MAX_JOBS, **trigger_words) -> list[dict]:
    return list(iter_jobs(media, mode, variation_seed, fallback_seed, max_jobs, **trigger_words))


def _count_text(n: int) -> str:
    return f"{n:,}" if n < 10**15 else f"about 10^{len(str(n)) - 1}"


def _counted(n: int, word: str) -> str:
    return f"{_count_text(n)} {word}" + ("" if n == 1 else "s")


def describe(media: PromptMedia, mode: str, fallback_seed: int = 0) -> str:
    """e.g. '12 jobs · 3 prompts × 2 variations × 2 seeds', '1 job · 1 prompt × 1 variation × 1 seed'."""
    return (f"{_counted(count_jobs(media, mode, fallback_seed), 'job')} · {_counted(len(media.prompts), 'prompt')} × "
            f"{_counted(variations_per_prompt(media, mode), 'variation')} × "
            f"{_counted(len(seeds_for(media, fallback_seed)), 'seed')}")
