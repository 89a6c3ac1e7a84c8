"""Issue 2 in real ComfyUI: the loader and OOM nodes as the host sees, validates and runs them."""
from __future__ import annotations

import json

import pytest
from PIL import Image

from prompt_media_pkg.tests.host.harness import HostTest
from prompt_media_pkg.tests.host.workflows import NODE, SHOW_SETTING, loader_oom_txt2img

# 3 prompts x 2 sequential values x 1 seed = 6 jobs. 64x48 (not square) so a swapped
# width/height shows; 1 step keeps a job at ~0.2 s on CPU.
SIX_JOBS_YAML = """\
title: host test, 3 x 2 x 1
prompt_settings:
  prefix: "tiny test"
  negative: "blurry, low quality"
prompts:
  - a red fox
  - a blue bird
  - a green frog
variations:
  light:
    type: sequential
    values: [morning light, at night]
  medium:
    type: static
    values: [watercolor]
seeds: [4242]
steps: 1
cfg: 5.5
width: 64
height: 48
sampler: euler_ancestral
scheduler: karras
denoise: 1.0
"""
PROMPTS = ("a red fox", "a blue bird", "a green frog")
LIGHTS = ("morning light", "at night")


def _png_size(path) -> tuple[int, int]:
    with Image.open(path) as im:
        return im.size


def _pixels(path) -> bytes:
    with Image.open(path) as im:
        return im.convert("RGB").tobytes()


@pytest.fixture(scope="module")
def all_jobs_run(comfy_server):
    """The six-job file run once with run="all jobs" (shared by the tests below)."""
    host = HostTest(comfy_server, "all_jobs")
    host.put_yaml("six_jobs.yaml", SIX_JOBS_YAML)
    result = host.run_ok(loader_oom_txt2img("six_jobs.yaml", prefix=host.prefix, run="all jobs"))
    return host, result


# --------------------------------------------------------------------------- /object_info

def test_nodes_are_registered_with_declared_types(comfy):
    comfy.put_yaml("listed.yaml", SIX_JOBS_YAML)
    info = comfy.client.object_info()
    ksampler = info["KSampler"]["input"]["required"]
    samplers, schedulers = ksampler["sampler_name"][0], ksampler["scheduler"][0]

    loader = info["PromptMediaLoader"]
    assert loader["display_name"] == "Prompt Media Loader"
    assert loader["category"] == "Prompt Media"
    model_files = sorted(set(info["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"][0])
                         | set(info["UNETLoader"]["input"]["required"]["unet_name"][0]))
    assert loader["output"] == ["PROMPT_MEDIA", "LORA_STACK", "STRING", "INT", "FLOAT", "INT", "INT",
                                samplers, schedulers, "FLOAT", "STRING", "FLOAT", model_files]
    assert loader["output_name"] == ["prompt_media", "lora_stack", "negative", "steps", "cfg", "width",
                                     "height", "sampler_name", "scheduler", "denoise", "summary",
                                     "guidance", "model_name"]
    assert loader["output_is_list"] == [False] * 13
    req, opt = loader["input"]["required"], loader["input"]["optional"]
    assert "listed.yaml" in req["file"][0]
    assert req["preset"][0] == "STRING"
    assert opt["yaml_text"][0] == "STRING"
    assert opt["yaml_text"][1]["multiline"] is True and opt["yaml_text"][1]["dynamicPrompts"] is False

    oom = info["PromptMediaOOM"]
    assert oom["display_name"] == "OOM Variations"
    assert oom["category"] == "Prompt Media"
    assert oom["output"] == ["STRING", "INT", "JOB", "INT", "LORA_STACK"]
    assert oom["output_name"] == ["positive", "seed", "job", "job_count", "lora_stack"]
    assert oom["output_is_list"] == [True, True, True, False, True]
    assert list(oom["input"].get("optional", {})) == []      # the handler's hidden key is not listed
    oreq = oom["input"]["required"]
    assert oreq["prompt_media"][0] == "PROMPT_MEDIA"
    assert oreq["mode"][0] == ["product", "cycle"]
    assert oreq["run"][0] == ["one job per run", "all jobs"]
    for name in ("job_index", "variation_seed", "seed", "max_jobs"):
        assert oreq[name][0] == "INT", name

    for node in (loader, oom):               # tooltips on every input and output
        for section in ("required", "optional"):
            for name, spec in node["input"].get(section, {}).items():
                assert spec[1].get("tooltip"), f"{node['name']}.{name} has no tooltip"
        assert len(node["output_tooltips"]) == len(node["output"]) and all(node["output_tooltips"])
        assert node["description"]


# --------------------------------------------------------------------------- running

def test_all_jobs_makes_six_images_wired_from_loader_and_oom(all_jobs_run):
    host, result = all_jobs_run
    files = host.image_paths(result)
    assert len(files) == 6, result.images
    assert sorted(files) == host.output_files(pattern="*.png")
    assert all(_png_size(f) == (64, 48) for f in files)          # width/height from the loader
    assert len({_pixels(f) for f in files}) == 6                  # six different prompts

    settings = {name: result.ui_text(node_id) for name, node_id in SHOW_SETTING.items()}
    assert settings == {"steps": ["1"], "cfg": ["5.5"], "width": ["64"], "height": ["48"],
                        "sampler_name": ["euler_ancestral"], "scheduler": ["karras"], "denoise": ["1.0"]}
    assert result.ui_text(NODE["show_count"]) == ["6"]
    assert "six_jobs.yaml" in result.ui_text(NODE["show_summary"])[0]

    jobs = [json.loads(t) for t in result.ui_text(NODE["show_jobs"])]
    assert [j["index"] for j in jobs] == list(range(6))
    assert {j["total"] for j in jobs} == {6} and {j["seed"] for j in jobs} == {4242}
    # order: for each seed, for each prompt, for each variation
    assert [(j["prompt_index"], j["variation_index"]) for j in jobs] == [(p, v) for p in range(3) for v in range(2)]
    for j in jobs:
        assert j["base_prompt"] == PROMPTS[j["prompt_index"]]
        assert j["variation_values"]["light"] == LIGHTS[j["variation_index"]]
        assert j["positive"].startswith("tiny test") and PROMPTS[j["prompt_index"]] in j["positive"]
        assert "watercolor" in j["positive"] and LIGHTS[j["variation_index"]] in j["positive"]
        assert j["negative"] == "blurry, low quality"
        assert (j["steps"], j["width"], j["height"], j["sampler_name"]) == (1, 64, 48, "euler_ancestral")
    assert "Traceback" not in host.log()


def test_one_job_per_run_makes_one_image_per_prompt_and_stops_past_the_end(comfy, all_jobs_run):
    all_host, all_result = all_jobs_run
    expected = [_pixels(f) for f in all_host.image_paths(all_result)]
    comfy.put_yaml("six_jobs.yaml", SIX_JOBS_YAML)
    made = []
    for job_index in range(6):
        result = comfy.run_ok(loader_oom_txt2img("six_jobs.yaml", prefix=comfy.prefix, run="one job per run",
                                                 job_index=job_index))
        files = comfy.image_paths(result)
        assert len(files) == 1, (job_index, result.images)
        assert result.ui_text(NODE["show_count"]) == ["6"]
        (job,) = [json.loads(t) for t in result.ui_text(NODE["show_jobs"])]
        assert job["index"] == job_index
        made += files
        # the same job gives the same pixels whichever run mode made it
        assert _pixels(files[0]) == expected[job_index], f"job {job_index} differs from the all-jobs image"
    assert comfy.output_files(pattern="*.png") == sorted(made)

    past = comfy.run(loader_oom_txt2img("six_jobs.yaml", prefix=comfy.prefix, run="one job per run", job_index=6))
    assert past.status == "success", past.error_summary()      # a clean stop, not an execution error
    assert past.error is None
    assert past.images == []
    assert comfy.output_files(pattern="*.png") == sorted(made)  # nothing new written
    # no error dialog attributed to a downstream node: the OOM node itself says why, once
    assert past.blocked == [], past.events
    (stopped,) = past.ui_text(NODE["oom"])
    assert "job_index 6 is past the last job of six_jobs.yaml (6 jobs: 0..5)" in stopped
    assert "Traceback" not in comfy.log()


def test_edited_file_is_picked_up(comfy):
    """IS_CHANGED follows the file's content: an edit re-runs the loader without a restart."""
    text = SIX_JOBS_YAML.replace("  - a blue bird\n  - a green frog\n", "")
    comfy.put_yaml("edited.yaml", text)
    first = comfy.run_ok(loader_oom_txt2img("edited.yaml", prefix=comfy.prefix))
    assert first.ui_text(NODE["show_count"]) == ["2"]
    comfy.put_yaml("edited.yaml", text.replace("  - a red fox\n", "  - a red fox\n  - a grey wolf\n"))
    second = comfy.run_ok(loader_oom_txt2img("edited.yaml", prefix=comfy.prefix))
    assert second.ui_text(NODE["show_count"]) == ["4"]
    assert len(comfy.output_files(pattern="*.png")) == 2 + 4


# --------------------------------------------------------------------------- validation

BAD_VARIATION = SIX_JOBS_YAML.replace("type: sequential", "type: randm")
BAD_VARIATION_LINE = BAD_VARIATION.splitlines().index("    type: randm") + 1
BAD_SAMPLER = SIX_JOBS_YAML.replace("sampler: euler_ancestral", "sampler: not_a_sampler")
BAD_SAMPLER_LINE = BAD_SAMPLER.splitlines().index("sampler: not_a_sampler") + 1


@pytest.mark.parametrize("name, text, line, words", [
    ("bad_variation.yaml", BAD_VARIATION, BAD_VARIATION_LINE, ("variations.light.type", "randm")),
    ("bad_sampler.yaml", BAD_SAMPLER, BAD_SAMPLER_LINE, ("not_a_sampler",)),
], ids=["wrong_variation_type", "unknown_sampler"])
def test_bad_yaml_is_refused_by_post_prompt(comfy, name, text, line, words):
    comfy.put_yaml(name, text)
    result = comfy.run(loader_oom_txt2img(name, prefix=comfy.prefix))
    assert result.rejected and result.http_status == 400, result.error_summary()
    loader_errors = result.node_errors.get(NODE["loader"])
    assert loader_errors and loader_errors["class_type"] == "PromptMediaLoader", result.node_errors
    text_of_errors = " ".join(f"{e.get('message')} {e.get('details')}" for e in loader_errors["errors"])
    assert f"{name}:{line}:" in text_of_errors, text_of_errors
    for word in words:
        assert word in text_of_errors
    assert comfy.output_files() == []


def test_bad_inline_yaml_is_refused_with_its_line(comfy):
    comfy.put_yaml("six_jobs.yaml", SIX_JOBS_YAML)
    result = comfy.run(loader_oom_txt2img("six_jobs.yaml", prefix=comfy.prefix, yaml_text=BAD_VARIATION))
    assert result.rejected, result.error_summary()
    details = json.dumps(result.node_errors[NODE["loader"]])
    assert f"prompt_media.yaml:{BAD_VARIATION_LINE}:" in details
