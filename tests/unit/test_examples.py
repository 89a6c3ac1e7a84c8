"""example_prompts/ without a host: every shipped file has a run in RUNS (the host tier's
tests/host/test_examples_host.py runs each one's first job through the shipped workflow), and
each file loads with its preset and expands to the job count its comments promise."""
from __future__ import annotations

from pathlib import Path

import pytest

from prompt_media_pkg.core.expand import count_jobs, iter_jobs
from prompt_media_pkg.core.schema import load_prompt_media_file

EXAMPLES = Path(__file__).resolve().parents[2] / "example_prompts"

# How each example is meant to be run (its comments say so) and what it expands to.
RUNS = {
    "oom_quickstart.yaml": {"preset": "", "mode": "product", "jobs": 12},
    "cycle_orders_of_magnitude.yaml": {"preset": "", "mode": "cycle", "jobs": 4},
    "presets_and_loras.yaml": {"preset": "draft", "mode": "product", "jobs": 2},
    # the Flux / SD3.5 templates' presets; its model names matter only where model_name is wired
    "model_presets.yaml": {"preset": "schnell", "mode": "product", "jobs": 8},
}


def test_every_example_file_has_a_run():
    assert sorted(p.name for p in EXAMPLES.glob("*.y*ml")) == sorted(RUNS)


@pytest.mark.parametrize("name", sorted(RUNS))
def test_example_expands_to_its_job_count(name):
    run = RUNS[name]
    media = load_prompt_media_file(str(EXAMPLES / name), run["preset"])
    assert count_jobs(media, run["mode"]) == run["jobs"]
    assert len(list(iter_jobs(media, run["mode"]))) == run["jobs"]
