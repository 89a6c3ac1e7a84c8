"""OOM expansion semantics: order, modes, random draws, seeds, the cap, the prompt rule."""
import time

import pytest

from prompt_media_pkg.core.errors import PromptMediaError
from prompt_media_pkg.core.expand import compose_prompt, count_jobs, describe, expand
from prompt_media_pkg.core.schema import load_prompt_media

SEED_DOC = """
prompt_settings: {prefix: "masterpiece,", negative: "blurry"}
seeds: [12345]
prompts: [a castle, a forest, a lake]
variations:
  time: {type: sequential, values: [morning, night]}
"""


def media(text, preset=""):
    return load_prompt_media(text, "t.yaml", preset)


def test_seed_doc_three_prompts_two_variations_make_six_jobs_in_order():
    jobs = expand(media(SEED_DOC))
    assert len(jobs) == 6
    assert [(j["prompt_index"], j["variation_index"]) for j in jobs] == \
        [(0, 0), (0, 1), (1, 0), (1, 1), (2, 0), (2, 1)]
    assert [j["index"] for j in jobs] == list(range(6)) and {j["total"] for j in jobs} == {6}
    assert jobs[0]["positive"] == "masterpiece, a castle, morning"
    assert jobs[5]["positive"] == "masterpiece, a lake, night"
    assert jobs[3]["variation_values"] == {"time": "night"}
    assert {j["negative"] for j in jobs} == {"blurry"}


def test_seeds_are_the_outer_loop():
    jobs = expand(media(SEED_DOC.replace("[12345]", "[1, 2]")))
    assert [j["seed"] for j in jobs] == [1] * 6 + [2] * 6
    assert [j["seed_index"] for j in jobs] == [0] * 6 + [1] * 6


def test_product_of_several_sequential_variables_first_varies_slowest():
    m = media("prompts: [p]\nvariations:\n  a: {type: sequential, values: [a1, a2]}\n"
              "  b: {type: sequential, values: [b1, b2, b3]}\n")
    assert [j["positive"] for j in expand(m)] == \
        ["p, a1, b1", "p, a1, b2", "p, a1, b3", "p, a2, b1", "p, a2, b2", "p, a2, b3"]


def test_cycle_mode_oom_doc_four_prompts():
    m = media("prompts: [p0, p1, p2, p3]\nvariations:\n"
              "  time: {type: sequential, values: [morning, afternoon, evening]}\n")
    jobs = expand(m, mode="cycle")
    assert [j["positive"] for j in jobs] == ["p0, morning", "p1, afternoon", "p2, evening", "p3, morning"]
    assert count_jobs(m, "cycle") == 4 and count_jobs(m, "product") == 12


def test_static_values_appear_in_every_job():
    m = media("prompts: [p, q]\nvariations:\n  s: {type: static, values: [fine art, detailed]}\n"
              "  t: {type: sequential, values: [x, y]}\n")
    assert all(j["positive"].endswith(("fine art, detailed, x", "fine art, detailed, y")) for j in expand(m))
    assert len(expand(m)) == 4


def test_empty_static_value_adds_nothing():
    m = media("prefix_prompt: 'pre,'\nprompts: ['a b ,']\nvariations:\n  v: {type: static, values: ['']}\n")
    assert expand(m)[0]["positive"] == "pre, a b"


RANDOM = "prompts: [p, q]\nseeds: [1, 2, 3]\nvariations:\n  r: {type: random, values: [r1, r2, r3, r4]}\n"


def test_random_draws_without_replacement_within_a_prompt_until_exhausted():
    jobs = expand(media(RANDOM), variation_seed=5)
    for p in (0, 1):
        drawn = [j["variation_values"]["r"] for j in jobs if j["prompt_index"] == p]
        assert len(drawn) == 3 and len(set(drawn)) == 3
    m = media("prompts: [p]\nseeds: [1,2,3,4,5,6,7,8]\nvariations:\n  r: {type: random, values: [a, b, c]}\n")
    drawn = [j["variation_values"]["r"] for j in expand(m, variation_seed=9)]
    assert sorted(drawn[:3]) == ["a", "b", "c"] and sorted(drawn[3:6]) == ["a", "b", "c"]


def test_random_is_reproducible_and_depends_on_variation_seed():
    first = [j["positive"] for j in expand(media(RANDOM), variation_seed=5)]
    assert first == [j["positive"] for j in expand(media(RANDOM), variation_seed=5)]
    others = {tuple(j["positive"] for j in expand(media(RANDOM), variation_seed=s)) for s in range(10)}
    assert len(others) > 1


def test_random_draw_order_is_pinned():
    # The draw is a pure function of (variation_seed, prompt, variable, refill): the same on every
    # machine and Python version. A change here changes users' sessions: keep it deliberate.
    m = media("prompts: [p]\nseeds: [1, 2, 3]\nvariations:\n  r: {type: random, values: [a, b, c]}\n")
    assert [j["variation_values"]["r"] for j in expand(m, variation_seed=0)] == ["c", "b", "a"]


def test_missing_seeds_use_the_fallback_seed():
    jobs = expand(media("prompts: [a, b]\n"), fallback_seed=777)
    assert [j["seed"] for j in jobs] == [777, 777]


def test_job_carries_the_settings_and_identity():
    j = expand(media("prompts: [a]\nsteps: 3\ncfg: 2.5\nwidth: 64\nheight: 128\n"))[0]
    assert (j["steps"], j["cfg"], j["width"], j["height"], j["sampler_name"], j["scheduler"]) == \
        (3, 2.5, 64, 128, "euler", "normal")
    assert j["source_name"] == "t.yaml" and len(j["expansion_id"]) == 16
    other = expand(media("prompts: [a]\nsteps: 3\ncfg: 2.5\nwidth: 64\nheight: 128\n"), variation_seed=1)[0]
    assert other["expansion_id"] != j["expansion_id"]


def test_cap_is_refused_before_building_in_constant_time():
    values = "[" + ", ".join(f"v{i}" for i in range(100)) + "]"
    text = "prompts: [a]\nvariations:\n" + "".join(
        f"  x{i}: {{type: sequential, values: {values}}}\n" for i in range(50))   # 100**50 jobs
    m = media(text)
    t0 = time.thread_time()
    with pytest.raises(PromptMediaError, match=r"expands to about 10\^100 jobs · 1 prompt × about 10\^100 variations × 1 seed, more than max_jobs=10,000"):
        expand(m)
    assert time.thread_time() - t0 < 0.1
    assert len(expand(media(SEED_DOC), max_jobs=6)) == 6
    with pytest.raises(PromptMediaError, match="max_jobs=5"):
        expand(media(SEED_DOC), max_jobs=5)


def test_unknown_mode_is_an_error():
    with pytest.raises(PromptMediaError, match="mode 'zip' is not one of product, cycle"):
        expand(media(SEED_DOC), mode="zip")


@pytest.mark.parametrize("parts, expected", [
    (("high quality, detailed", "A serene landscape,", "morning"), "high quality, detailed, A serene landscape, morning"),
    (("a,  b", " a ", "c\n d"), "a, b, c d"),
    (("", "x", ""), "x"),
    (("x, X", "x"), "x, X"),
])
def test_compose_prompt_rule(parts, expected):
    assert compose_prompt(*parts) == expected


def test_variation_values_follow_the_files_order():
    m = media("prompts: [p]\nvariations:\n  r: {type: random, values: [r1]}\n"
              "  s: {type: sequential, values: [s1]}\n  t: {type: static, values: [t1]}\n")
    job = expand(m)[0]
    assert list(job["variation_values"]) == ["r", "s", "t"] and job["positive"] == "p, r1, s1, t1"


def test_describe_says_one_of_each_in_the_singular():
    assert describe(media("prompts: [a]\nseeds: [1]\n"), "product") == "1 job · 1 prompt × 1 variation × 1 seed"
    assert describe(media(SEED_DOC.replace("[12345]", "[1, 2]")), "product") == \
        "12 jobs · 3 prompts × 2 variations × 2 seeds"
