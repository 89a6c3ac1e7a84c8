"""core/plan.py: every job numbered and named before the run, the totals, the CLIP length warning."""
from __future__ import annotations

import json

from prompt_media_pkg.core.expand import expand
from prompt_media_pkg.core.plan import (
    CLIP_TOKENS,
    estimate_clip_tokens,
    plan_session,
    plan_table,
    planned_count,
    planned_image_name,
)
from prompt_media_pkg.core.schema import load_prompt_media

DOC = """
prompt_settings: {prefix: "soft light", negative: "blurry"}
prompts: [a fox, a lighthouse]
variations:
  time: {type: sequential, values: [morning, night]}
  style: {type: random, values: [ink, oil]}
seeds: [7, 8]
loras: [{name: detail, strength_model: 0.5, strength_clip: 0.25}]
"""


def test_numbers_follow_job_and_batch_order():
    assert [planned_count(j, b, 2) for j in range(3) for b in range(2)] == [1, 2, 3, 4, 5, 6]
    assert planned_image_name(0, 42) == "001_seed_42.png"
    assert planned_image_name(999, 5) == "1000_seed_5.png"
    assert planned_image_name(2, 9, batch_index=1, batch_size=4, first=101) == "110_seed_9.png"


def test_the_plan_lists_every_job_as_the_expansion_makes_it():
    media = load_prompt_media(DOC, "doc.yaml")
    plan = plan_session(media, "product", variation_seed=3)
    jobs = expand(media, "product", 3)
    assert [j.number for j in plan.jobs] == list(range(1, 9))
    assert [j.filename for j in plan.jobs] == [f"{i + 1:03d}_seed_{job['seed']}.png" for i, job in enumerate(jobs)]
    assert [(j.prompt, j.seed, j.variation_values) for j in plan.jobs] == \
        [(job["positive"], job["seed"], job["variation_values"]) for job in jobs]
    assert plan.jobs[0].loras == [{"name": "detail", "strength_model": 0.5, "strength_clip": 0.25}]
    data = json.loads(json.dumps(plan.as_dict()))
    assert data["totals"] == {"jobs": 8, "images": 8, "long_prompts": 0, "clip_token_limit": CLIP_TOKENS}
    assert data["description"] == "8 jobs · 2 prompts × 2 variations × 2 seeds"
    assert data["jobs"][5]["filename"] == "006_seed_8.png" and data["warnings"] == []


def test_the_table_has_a_row_per_job_and_totals():
    plan = plan_session(load_prompt_media(DOC, "doc.yaml"))
    lines = plan_table(plan, width=100).splitlines()
    assert lines[0] == ("doc.yaml: 8 jobs · 2 prompts × 2 variations × 2 seeds · 512x512, 20 steps, cfg 8.0, "
                        "euler/normal")
    assert lines[1].split() == ["#", "file", "seed", "time", "style", "tokens", "prompt"]
    assert lines[2].split()[:4] == ["1", "001_seed_7.png", "7", "morning"]
    assert len(lines) == 2 + 8 + 1
    assert lines[-1] == "8 jobs, 8 images; LoRAs: detail (0.5/0.25); negative: blurry"
    assert all(len(line) <= 100 for line in lines[1:-1])


def test_clip_token_estimate():
    assert estimate_clip_tokens("") == 2                                  # start and end tokens
    assert estimate_clip_tokens("a cat") == 4
    assert estimate_clip_tokens("highly-detailed, 8k") == 8              # highly - detailed , 8 k
    assert estimate_clip_tokens("supercalifragilistic") == 5             # 20 letters: 3 pieces


def test_prompts_longer_than_clip_reads_are_warned_once():
    long = ", ".join(f"word{i}" for i in range(40))                      # 40 x (word, digit(s), comma)
    media = load_prompt_media(f"prompts: [short, '{long}']\nseeds: [1]\n", "long.yaml")
    plan = plan_session(media)
    assert [j.tokens > CLIP_TOKENS for j in plan.jobs] == [False, True]
    (warning,) = plan.warnings()
    assert warning.startswith(f"1 of 2 prompts are longer than CLIP's 77 tokens (the longest: job 2, "
                              f"{plan.jobs[1].tokens}); ComfyUI splits them")
    counted = plan_session(media, count_tokens=len, token_counter="counted with a test counter")
    assert counted.jobs[0].tokens == len("short") and "(counted with a test counter)" in \
        counted.warnings()[0]
