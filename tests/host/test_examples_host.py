"""Issue 9: every file of example_prompts/ through the shipped API workflow
(workflows/api/prompt_media_session.json) in real ComfyUI.

Issue 16: on a server holding only the tiny checkpoint (no LoRAs), as a fresh install with one
checkpoint has it. For each file: the server's session route validates the file as shipped (job
count and description, the same as the pure expansion says), then the first job of a small copy runs,
one job per run, and its image and sidecar land in a session folder. The small copy exists
because the loader outputs width, height and steps from the YAML (see tests/host/shrink.py):
64x64 at 1 step keeps a job well under a second on CPU.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import tomllib
from PIL import Image

from prompt_media_pkg.core.expand import count_jobs, describe, iter_jobs
from prompt_media_pkg.core.schema import load_prompt_media
from prompt_media_pkg.tests.host.harness import HostTest
from prompt_media_pkg.tests.host.shrink import shrink
from prompt_media_pkg.tests.host.workflows import oom_id, session_prompt
from prompt_media_pkg.tests.unit.test_examples import EXAMPLES, RUNS  # every file has a run: unit tier

REPO = Path(__file__).resolve().parents[2]
VERSION = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]


def set_inputs(prompt: dict, class_type: str, **values) -> None:
    next(n for n in prompt.values() if n["class_type"] == class_type)["inputs"].update(values)


@pytest.fixture
def fresh(request, checkpoint_only_server) -> HostTest:
    return HostTest(checkpoint_only_server, request.node.name)


@pytest.mark.parametrize("name", sorted(RUNS))
def test_example_runs_its_first_job_on_a_fresh_host_with_only_a_checkpoint(fresh, name):
    comfy = fresh
    assert comfy.client.get("/models/loras") == []
    run = RUNS[name]
    text = (EXAMPLES / name).read_text(encoding="utf-8")
    media = load_prompt_media(text, name, run["preset"])
    first = next(iter(iter_jobs(media, run["mode"])))

    # the file as shipped (the first start copied the examples into input/prompt_media/)
    assert (comfy.prompt_media_dir / name).read_text(encoding="utf-8") == text
    root = f"{comfy.prefix}/images"
    prompt = session_prompt(name, root)
    set_inputs(prompt, "PromptMediaLoader", preset=run["preset"])
    set_inputs(prompt, "PromptMediaOOM", mode=run["mode"])
    status, info = comfy.client.request("POST", "/prompt_media/session",
                                        {"prompt": prompt, "node_id": oom_id(prompt)})
    assert status == 200, info
    assert info["total"] == run["jobs"] == count_jobs(media, run["mode"])
    assert info["description"] == describe(media, run["mode"])
    assert (info["next_index"], info["last_index"]) == (0, None)

    # its first job, small: a modified copy of the file (64x64, 1 step)
    small = comfy.put_yaml(f"small_{name}", shrink(text, width=64, height=64, steps=1))
    set_inputs(prompt, "PromptMediaLoader", file=small)
    result = comfy.run_ok(copy.deepcopy(prompt))
    assert result.ui_text(oom_id(prompt)) and result.ui_text(oom_id(prompt))[0].startswith(f"job 1 of {run['jobs']} ")

    images = sorted((comfy.server.output_dir / root).rglob("*.png"))
    assert [p.name for p in images] == [f"001_seed_{first['seed']}.png"]
    with Image.open(images[0]) as im:
        assert im.size == (64, 64)
    sidecar = json.loads(images[0].with_suffix(".json").read_text(encoding="utf-8"))
    params = sidecar["parameters"]
    assert (sidecar["plugin"], sidecar["plugin_version"]) == ("prompt-media", VERSION)
    assert (params["prompt"], params["negative_prompt"], params["seed"]) == (first["positive"], first["negative"], first["seed"])
    assert (params["width"], params["height"], params["steps"]) == (64, 64, 1)
    assert (sidecar["oom"]["index"], sidecar["oom"]["total"], sidecar["oom"]["mode"]) == (0, run["jobs"], run["mode"])
    assert sidecar["session"]["source_name"] == small
    assert (images[0].parent / small).is_file()                     # the session keeps its file
    assert media.loras == () and params["loras"] == []           # runnable without downloads
