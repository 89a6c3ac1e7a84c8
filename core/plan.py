"""A session's plan before it runs (pure: needs PyYAML only, no ComfyUI): every job with its
number, the file name its image gets, its prompt, seed, variation values and LoRAs, and totals.

Each image's number is its place in the session: job index and batch index, counted from 1 in
job order (:func:`planned_count`). :func:`planned_image_name` is the one function that turns a
job into its file name; the saver names a session that starts in an empty folder the same way.

Prompt length: CLIP reads 77 tokens (start and end tokens included); ComfyUI splits a longer
prompt into chunks of 75, and words after the first chunk weigh less. Without the host's
tokenizer the count is :func:`estimate_clip_tokens`.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from .expand import describe, iter_jobs
from .schema import PromptMedia
from .session import image_name

CLIP_TOKENS = 77                       # CLIP's context, start and end tokens included
_WORD = re.compile(r"[^\W\d_]+|\d|[^\w\s]|_")
ESTIMATE_NOTE = ("estimated: one token per word of up to 8 letters and one more per further 8, one per "
                 "digit and per punctuation mark, plus the start and end tokens")


def planned_count(job_index: int, batch_index: int = 0, batch_size: int = 1, first: int = 1) -> int:
    """The number of the image ``batch_index`` of job ``job_index`` (both from 0)."""
    return first + job_index * batch_size + batch_index


def planned_image_name(job_index: int, seed: int, batch_index: int = 0, batch_size: int = 1,
                       first: int = 1) -> str:
    """``NNN_seed_S.png`` of that image: the file name the plan promises."""
    return image_name(planned_count(job_index, batch_index, batch_size, first), seed)


def estimate_clip_tokens(text: str) -> int:
    """CLIP tokens of ``text`` by the rule in ESTIMATE_NOTE (start and end tokens included)."""
    count = 2
    for piece in _WORD.findall(text):
        count += 1 + (len(piece) - 1) // 8 if piece[0].isalpha() else 1
    return count


@dataclass(frozen=True)
class PlannedJob:
    number: int                        # 1-based place in the session
    index: int                         # the OOM node's job_index
    filename: str
    prompt: str
    negative: str
    seed: int
    variation_values: dict
    loras: list
    tokens: int

    def as_dict(self) -> dict:
        return {"number": self.number, "index": self.index, "filename": self.filename, "prompt": self.prompt,
                "negative": self.negative, "seed": self.seed, "variation_values": dict(self.variation_values),
                "loras": [dict(lora) for lora in self.loras], "tokens": self.tokens}


@dataclass
class Plan:
    source: str
    preset: str
    mode: str
    description: str
    settings: dict
    jobs: list[PlannedJob] = field(default_factory=list)
    token_counter: str = ESTIMATE_NOTE

    @property
    def long_prompts(self) -> list[PlannedJob]:
        return [job for job in self.jobs if job.tokens > CLIP_TOKENS]

    def warnings(self) -> list[str]:
        long = self.long_prompts
        if not long:
            return []
        worst = max(long, key=lambda job: job.tokens)
        return [f"{len(long)} of {len(self.jobs)} prompts are longer than CLIP's {CLIP_TOKENS} tokens (the longest: "
                f"job {worst.number}, {worst.tokens}); ComfyUI splits them into chunks and the words after the first "
                f"chunk weigh less ({self.token_counter.split(':')[0]})"]

    def as_dict(self) -> dict:
        return {"source": self.source, "preset": self.preset, "mode": self.mode, "description": self.description,
                "settings": dict(self.settings), "jobs": [job.as_dict() for job in self.jobs],
                "totals": {"jobs": len(self.jobs), "images": len(self.jobs),
                           "long_prompts": len(self.long_prompts), "clip_token_limit": CLIP_TOKENS},
                "tokens": self.token_counter, "warnings": self.warnings()}


LORA_KEYS = ("name", "strength_model", "strength_clip")


def plan_session(media: PromptMedia, mode: str = "product", variation_seed: int = 0, fallback_seed: int = 0,
                 max_jobs: int = 10_000, count_tokens: Callable[[str], int] | None = None,
                 token_counter: str = ESTIMATE_NOTE) -> Plan:
    """Every job of the session, numbered and named (raises PromptMediaError past ``max_jobs``)."""
    count = count_tokens or estimate_clip_tokens
    settings = {k: v for k, v in media.settings.as_dict().items() if k != "seeds"}
    plan = Plan(media.source_name, media.preset, mode, describe(media, mode, fallback_seed), settings,
                token_counter=token_counter)
    tokens: dict[str, int] = {}
    for job in iter_jobs(media, mode, variation_seed, fallback_seed, max_jobs):
        positive = job["positive"]
        if positive not in tokens:
            tokens[positive] = count(positive)
        plan.jobs.append(PlannedJob(job["index"] + 1, job["index"], planned_image_name(job["index"], job["seed"]),
                                    positive, job["negative"], job["seed"], job["variation_values"],
                                    [{k: lora[k] for k in LORA_KEYS} for lora in job["loras"]],   # incl. tags
                                    tokens[positive]))
    return plan


def plan_table(plan: Plan, width: int = 120) -> str:
    """The plan as a text table (prompts shortened to fit ``width``) with totals."""
    names = [name for job in plan.jobs[:1] for name in job.variation_values]
    s = plan.settings
    head = (f"{plan.source}{f' [{plan.preset}]' if plan.preset else ''}: {plan.description} · "
            f"{s['width']}x{s['height']}, {s['steps']} steps, cfg {s['cfg']}, {s['sampler_name']}/{s['scheduler']}")
    rows = [["#", "file", "seed", *names, "tokens", "prompt"]]
    for job in plan.jobs:
        rows.append([str(job.number), job.filename, str(job.seed), *[str(job.variation_values[n]) for n in names],
                     str(job.tokens), job.prompt])
    columns = len(rows[0]) - 1
    widths = [max(len(r[i]) for r in rows) for i in range(columns)]
    numeric = [all(r[i].lstrip("-").isdigit() for r in rows[1:]) for i in range(columns)]
    room = max(20, width - sum(w + 2 for w in widths))
    lines = [head]
    for r in rows:
        prompt = r[-1] if len(r[-1]) <= room else r[-1][:room - 1] + "…"
        lines.append("  ".join(c.rjust(w) if num else c.ljust(w) for c, w, num in zip(r[:-1], widths, numeric))
                     + "  " + prompt)
    loras = ", ".join(f"{x['name']} ({x['strength_model']:g}/{x['strength_clip']:g})"
                      for x in (plan.jobs[0].loras if plan.jobs else []))
    lines.append(f"{len(plan.jobs):,} job{'s' if len(plan.jobs) != 1 else ''}, "
                 f"{len(plan.jobs):,} image{'s' if len(plan.jobs) != 1 else ''}; LoRAs: {loras or 'none'}; "
                 f"negative: {plan.jobs[0].negative if plan.jobs and plan.jobs[0].negative else 'none'}")
    return "\n".join(lines)
