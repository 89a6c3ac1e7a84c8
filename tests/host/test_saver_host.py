"""Issue 3 in real ComfyUI: Session Saver, sidecars, PNG metadata, Load Generation Params.

Graph: CheckpointLoaderSimple(tiny_sd15) -> loader/OOM -> CLIPTextEncode x2 -> EmptyLatentImage
-> KSampler -> VAEDecode -> PromptMediaSessionSaver, 64x64, 1 step.
"""
from __future__ import annotations

import copy
import hashlib
import json
import re
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from prompt_media_pkg.core.expand import expand
from prompt_media_pkg.core.schema import load_prompt_media
from prompt_media_pkg.tests.host.harness import pinned_clock
from prompt_media_pkg.tests.host.workflows import LOADER_OUT, NODE, OOM_OUT, TEST_CHECKPOINT, loader_oom_txt2img

SESSION_YAML = """\
# 3 prompts x 2 variations x 1 seed = 6 jobs
prompt_settings:
  prefix: "tiny test"
  negative: "blurry"
prompts:
  - a red fox
  - a blue bird
  - a green frog
variations:
  light:
    type: sequential
    values: [morning light, at night]
seeds: [31337]
steps: 1
cfg: 5.5
width: 64
height: 64
sampler: euler
scheduler: normal
"""
PINNED = datetime(2001, 2, 3, 4, 5, 6)        # the saver's clock in the two-session test
NAME = re.compile(r"^(\d{3,})_seed_(\d+)\.png$")
WORKFLOW = {"nodes": [], "links": [], "version": 0.4, "extra": {"note": "host test"}}


def saver_workflow(file: str, root: str, **kw) -> dict:
    wf = loader_oom_txt2img(file, prefix=root, previews=False, **kw)
    wf[NODE["save"]] = {"class_type": "PromptMediaSessionSaver", "inputs": {
        "images": [NODE["decode"], 0], "job": [NODE["oom"], OOM_OUT["job"]],
        "prompt_media": [NODE["loader"], LOADER_OUT["prompt_media"]], "root": root,
        "project_id": "7", "compose": "none"}}
    return wf


def expected_jobs(**kw) -> list[dict]:
    return expand(load_prompt_media(SESSION_YAML, "session.yaml"), **kw)


def session_dirs(output: Path, root: str) -> list[Path]:
    base = output / root
    return sorted(p for p in base.glob("[0-9][0-9][0-9][0-9]/[0-9][0-9]/[0-9][0-9]/[0-9][0-9][0-9][0-9]") if p.is_dir())


def numbered(folder: Path) -> list[tuple[int, int, Path]]:
    out = []
    for p in folder.iterdir():
        m = NAME.match(p.name)
        if m:
            out.append((int(m.group(1)), int(m.group(2)), p))
    return sorted(out)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def model_sha(test_models_dir) -> str:
    return sha256(Path(test_models_dir) / "checkpoints" / TEST_CHECKPOINT)


def two_runs_in_one_minute(comfy):
    """Run the 6-job session twice (the second with another variation_seed, so ComfyUI
    re-executes and a new session opens) with the saver's clock pinned to one minute: both
    sessions open that minute's folder, however long the runs take."""
    root = comfy.prefix
    with pinned_clock(comfy.server, PINNED):
        first = comfy.run_ok(saver_workflow("session.yaml", root, run="all jobs"),
                             extra_data={"extra_pnginfo": {"workflow": WORKFLOW}})
        (folder,) = session_dirs(comfy.server.output_dir, root)
        assert folder == comfy.server.output_dir / root / PINNED.strftime("%Y/%m/%d/%H%M")
        # images, sidecars, the prompt file (index.html is the session's page, rewritten whole)
        before = {p: sha256(p) for p in folder.iterdir() if p.name != "index.html"}
        second = comfy.run_ok(saver_workflow("session.yaml", root, run="all jobs", variation_seed=1))
    return root, folder, first, before, second


def test_all_jobs_session_then_second_run_continues(comfy, model_sha):
    comfy.put_yaml("session.yaml", SESSION_YAML)
    root, folder, result, before, result2 = two_runs_in_one_minute(comfy)
    files = [f for f in numbered(folder) if f[0] <= 6]
    jobs = expected_jobs()
    assert [c for c, _s, _p in files] == [1, 2, 3, 4, 5, 6]
    assert [s for _c, s, _p in files] == [j["seed"] for j in jobs] == [31337] * 6
    # ui.images point at the files
    assert [(i["subfolder"], i["filename"]) for i in result.images] == \
        [(str(folder.relative_to(comfy.server.output_dir)), p.name) for _c, _s, p in files]

    for (count, seed, png), job in zip(files, jobs):
        side = json.loads(png.with_suffix(".json").read_text())
        p = side["parameters"]
        assert side["plugin"] == "prompt-media" and side["task_id"] == count and side["project_id"] == 7
        assert side["timestamp"] == PINNED.strftime("%Y%m%d_%H%M%S")
        # what the KSampler actually got (through links from the loader / OOM)
        assert p == {"prompt": job["positive"], "negative_prompt": "blurry", "width": 64, "height": 64,
                     "steps": 1, "cfg_scale": 5.5, "sampler": "euler", "scheduler": "normal",
                     "denoise": 1.0, "seed": seed, "model_name": TEST_CHECKPOINT,
                     "model_sha256": model_sha, "loras": [], "batch_index": 0, "batch_size": 1,
                     # the checkpoint's own text encoder and VAE; no FluxGuidance in this graph
                     "noise": "enabled", "guidance": None, "model_folder": "checkpoints", "text_encoders": [],
                     "vae_name": None, "vae_sha256": None}
        assert side["parameters_source"]["sampler_node"] == NODE["sampler"]
        assert side["parameters_source"]["overrides"] == {}
        assert side["output"]["filename"] == png.name and Path(side["output"]["path"]) == png
        assert side["oom"]["index"] == count - 1 and side["oom"]["total"] == 6
        assert side["oom"]["variation_values"] == job["variation_values"]
        assert side["session"]["folder"] == str(folder) and side["session"]["source_name"] == "session.yaml"
        assert side["image_sha256"] == sha256(png)
        assert side["system"]["comfyui_version"] and side["system"]["torch_version"]
        assert side["system"]["device"] == "cpu"
        # PNG chunks: ComfyUI's prompt + workflow, and A1111 parameters
        with Image.open(png) as im:
            text = dict(im.text)
        assert json.loads(text["prompt"])[NODE["save"]]["class_type"] == "PromptMediaSessionSaver"
        assert json.loads(text["workflow"]) == WORKFLOW
        assert text["parameters"].startswith(f"{job['positive']}\nNegative prompt: blurry\nSteps: 1, Sampler: Euler,")
        assert f"Seed: {seed}, Size: 64x64, Model hash: {model_sha[:10]}, Model: tiny_sd15" in text["parameters"]

    copy_path = folder / "session.yaml"
    assert copy_path.read_text() == SESSION_YAML          # same text: the second session reuses it

    # same minute, a different expansion (variation_seed): a new session in the same folder
    files2 = numbered(folder)
    assert [c for c, _s, _p in files2] == list(range(1, 13))
    assert [i["filename"] for i in result2.images] == [p.name for c, _s, p in files2 if c > 6]
    assert all(sha256(p) == h for p, h in before.items())          # nothing overwritten
    assert json.loads((folder / files2[6][2].name).with_suffix(".json").read_text())["task_id"] == 7
    assert not list(folder.glob(".pm-tmp-*"))


def test_one_job_per_run_continues_and_widget_override_is_recorded(comfy):
    comfy.put_yaml("session.yaml", SESSION_YAML)
    root = comfy.prefix
    names = []
    for index in range(3):
        wf = saver_workflow("session.yaml", root, run="one job per run", job_index=index, variation_seed=5)
        wf[NODE["sampler"]]["inputs"]["steps"] = 2           # a widget value instead of the file's 1
        result = comfy.run_ok(wf)
        names += [i["filename"] for i in result.images]   # later jobs may run in a later minute
    dirs = session_dirs(comfy.server.output_dir, root)
    assert len(dirs) == 1                                  # continued, not re-opened per minute
    assert names == ["001_seed_31337.png", "002_seed_31337.png", "003_seed_31337.png"]
    jobs = expected_jobs(variation_seed=5)
    for index, name in enumerate(names):
        side = json.loads((dirs[0] / name).with_suffix(".json").read_text())
        assert side["parameters"]["steps"] == 2
        assert side["parameters"]["prompt"] == jobs[index]["positive"]
        src = side["parameters_source"]
        assert src["fields"]["steps"] == "widget" and src["fields"]["seed"] == "job"
        assert src["overrides"] == {"steps": {"used": 2, "file": 1}}
        assert "Steps: 2," in Image.open(dirs[0] / name).text["parameters"]
    state = json.loads(next((comfy.server.output_dir / root / ".prompt_media" / "sessions").glob("*.json")).read_text())
    assert (state["first"], state["batch_size"], state["jobs"]) == (1, 1, 6)     # written once, when it opened
    assert (comfy.server.output_dir / root / state["folder"]) == dirs[0]


def test_root_escape_is_refused_before_running(comfy):
    comfy.put_yaml("session.yaml", SESSION_YAML)
    for bad in ("../outside", "/tmp/abs"):
        result = comfy.run(saver_workflow("session.yaml", bad, run="one job per run"))
        assert result.rejected, result.status
        errors = result.node_errors[NODE["save"]]["errors"]
        assert any("root" in (e.get("details") or "") + e.get("message", "") for e in errors), errors


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def test_regenerate_from_sidecar_is_pixel_identical(comfy):
    comfy.put_yaml("session.yaml", SESSION_YAML)
    root = comfy.prefix
    result = comfy.run_ok(saver_workflow("session.yaml", root, run="one job per run", job_index=3,
                                         variation_seed=9))
    original = comfy.image_paths(result)[0]
    rel = original.relative_to(comfy.server.output_dir).as_posix()

    P = "1"
    regen = {
        P: {"class_type": "PromptMediaLoadParams", "inputs": {"image": "(none: use path)", "path": rel}},
        "2": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": [P, 10]}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["2", 1], "text": [P, 0]}},
        "4": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["2", 1], "text": [P, 1]}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": [P, 8], "height": [P, 9], "batch_size": 1}},
        "6": {"class_type": "KSampler", "inputs": {
            "model": ["2", 0], "positive": ["3", 0], "negative": ["4", 0], "latent_image": ["5", 0],
            "seed": [P, 2], "steps": [P, 3], "cfg": [P, 4], "sampler_name": [P, 5], "scheduler": [P, 6],
            "denoise": [P, 7]}},
        "7": {"class_type": "VAEDecode", "inputs": {"samples": ["6", 0], "vae": ["2", 2]}},
        "8": {"class_type": "SaveImage", "inputs": {"images": ["7", 0], "filename_prefix": f"{root}/regen"}},
    }
    again = comfy.run_ok(regen)
    regenerated = comfy.image_paths(again)[0]
    assert np.array_equal(_pixels(regenerated), _pixels(original))

    # the recent-sidecar list offers it, and a missing sidecar is a clear error naming the file
    # model_name is typed as the model files (checkpoints and diffusion models), so it connects to
    # Load Checkpoint and Load Diffusion Model (test_sampling_shapes_host.py links both)
    info = comfy.client.object_info("PromptMediaLoadParams")["PromptMediaLoadParams"]
    files = {file for loader, input_name in (("CheckpointLoaderSimple", "ckpt_name"), ("UNETLoader", "unet_name"))
             for file in comfy.client.object_info(loader)[loader]["input"]["required"][input_name][0]}
    assert info["output"][10] == sorted(files) and TEST_CHECKPOINT in files
    original.with_suffix(".json").rename(original.with_suffix(".moved"))
    try:
        bad = copy.deepcopy(regen)
        bad[P]["inputs"]["path"] = rel
        rejected = comfy.run(bad)
        assert rejected.rejected
        text = json.dumps(rejected.node_errors)
        assert original.with_suffix(".json").name in text and "no sidecar" in text
    finally:
        original.with_suffix(".moved").rename(original.with_suffix(".json"))
    outside = copy.deepcopy(regen)
    outside[P]["inputs"]["path"] = "../../etc/passwd"
    assert comfy.run(outside).rejected


LORA_YAML = SESSION_YAML.replace("seeds: [31337]", """seeds: [777]
loras:
  - name: tiny_lora_attn.safetensors
    strength_model: 0.8
    strength_clip: 0.6""")


def with_lora_chain(wf: dict, stack_link: list) -> dict:
    """Insert PromptMediaLoraChain (node 40) between the checkpoint and encoders / sampler."""
    ckpt = NODE["checkpoint"]
    wf["40"] = {"class_type": "PromptMediaLoraChain", "inputs": {
        "model": [ckpt, 0], "clip": [ckpt, 1], "strength_mode": "separate", "lora_stack": stack_link}}
    wf[NODE["positive"]]["inputs"]["clip"] = ["40", 1]
    wf[NODE["negative"]]["inputs"]["clip"] = ["40", 1]
    wf[NODE["sampler"]]["inputs"]["model"] = ["40", 0]
    return wf


def test_loras_recorded_with_hashes_and_regenerated_identically(comfy, test_models_dir):
    comfy.put_yaml("lora.yaml", LORA_YAML)
    root = comfy.prefix
    wf = with_lora_chain(saver_workflow("lora.yaml", root, run="one job per run", job_index=1),
                         [NODE["loader"], LOADER_OUT["lora_stack"]])
    wf[NODE["save"]]["inputs"]["lora_stack"] = ["40", 2]
    original = comfy.image_paths(comfy.run_ok(wf))[0]
    side = json.loads(original.with_suffix(".json").read_text())
    lora_sha = sha256(Path(test_models_dir) / "loras" / "tiny_lora_attn.safetensors")
    assert side["parameters"]["loras"] == [{"lora_name": "tiny_lora_attn.safetensors", "strength_model": 0.8,
                                            "strength_clip": 0.6, "sha256": lora_sha,
                                            "trigger_words": []}]
    assert f'Lora hashes: "tiny_lora_attn: {lora_sha[:10]}"' in Image.open(original).text["parameters"]

    # regenerate: Load Generation Params -> checkpoint -> LoRA chain (its lora_stack) -> sampler
    P = "1"
    regen = {
        P: {"class_type": "PromptMediaLoadParams", "inputs": {
            "image": "(none: use path)", "path": original.relative_to(comfy.server.output_dir).as_posix()}},
        "2": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": [P, 10]}},
        "40": {"class_type": "PromptMediaLoraChain", "inputs": {
            "model": ["2", 0], "clip": ["2", 1], "strength_mode": "separate", "lora_stack": [P, 11]}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["40", 1], "text": [P, 0]}},
        "4": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["40", 1], "text": [P, 1]}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": [P, 8], "height": [P, 9], "batch_size": 1}},
        "6": {"class_type": "KSampler", "inputs": {
            "model": ["40", 0], "positive": ["3", 0], "negative": ["4", 0], "latent_image": ["5", 0],
            "seed": [P, 2], "steps": [P, 3], "cfg": [P, 4], "sampler_name": [P, 5], "scheduler": [P, 6],
            "denoise": [P, 7]}},
        "7": {"class_type": "VAEDecode", "inputs": {"samples": ["6", 0], "vae": ["2", 2]}},
        "8": {"class_type": "SaveImage", "inputs": {"images": ["7", 0], "filename_prefix": f"{root}/regen"}},
    }
    regenerated = comfy.image_paths(comfy.run_ok(regen))[0]
    assert np.array_equal(_pixels(regenerated), _pixels(original))


def test_batch_images_get_own_counts_and_disable_metadata(make_comfy_server):
    server = make_comfy_server(extra_args=["--disable-metadata"])
    from prompt_media_pkg.tests.host.harness import HostTest
    host = HostTest(server, "disable_metadata")
    host.put_yaml("session.yaml", SESSION_YAML)
    wf = saver_workflow("session.yaml", host.prefix, run="one job per run", job_index=0)
    wf[NODE["latent"]]["inputs"]["batch_size"] = 3
    result = host.run_ok(wf)
    paths = host.image_paths(result)
    assert [p.name for p in paths] == ["001_seed_31337.png", "002_seed_31337.png", "003_seed_31337.png"]
    for i, png in enumerate(paths):
        with Image.open(png) as im:
            assert not getattr(im, "text", {})                # no prompt/workflow/parameters chunks
        side = json.loads(png.with_suffix(".json").read_text())  # the sidecar is still written
        assert (side["task_id"], side["parameters"]["batch_index"], side["parameters"]["batch_size"]) == (i + 1, i, 3)
    assert len({sha256(p) for p in paths}) == 3              # three different images


def test_session_continues_across_a_restart(comfy):
    """Issue 5's rule inside the saver: jobs after a ComfyUI restart continue the session
    recorded on disk (same folder, count continuing); job 0 again opens a new session."""
    comfy.put_yaml("session.yaml", SESSION_YAML)
    root = comfy.prefix

    def job(index: int, variation_seed: int = 11) -> str:
        wf = saver_workflow("session.yaml", root, run="one job per run", job_index=index, variation_seed=variation_seed)
        return comfy.image_paths(comfy.run_ok(wf))[0].relative_to(comfy.server.output_dir / root).as_posix()

    def last_index() -> int | None:              # where the session stands, as the button asks
        wf = saver_workflow("session.yaml", root, run="one job per run", variation_seed=11)
        status, info = comfy.client.request("POST", "/prompt_media/session", {"prompt": wf, "node_id": NODE["oom"]})
        assert status == 200, info
        return info["last_index"]

    with pinned_clock(comfy.server, PINNED):
        first = [job(0), job(1)]
    comfy.server.restart()
    assert last_index() == 1                         # read from the folder after the restart
    after = [job(2), job(3)]                         # unpinned: continuing needs no clock
    folders = {p.rsplit("/", 1)[0] for p in first + after}
    assert folders == {PINNED.strftime("%Y/%m/%d/%H%M")}
    assert [p.rsplit("/", 1)[1] for p in first + after] == [f"{i:03d}_seed_31337.png" for i in range(1, 5)]
    state_file = next((comfy.server.output_dir / root / ".prompt_media" / "sessions").glob("*.json"))
    old_state = json.loads(state_file.read_text())
    assert last_index() == 3
    with pinned_clock(comfy.server, PINNED + timedelta(seconds=30)):
        again = job(0)                               # job 0 again, same minute: a new session there
    new_state = json.loads(state_file.read_text())
    assert new_state["started"] > old_state["started"] and last_index() == 0
    # after all six numbers the earlier session reserved, the two it has not saved yet included
    assert (new_state["folder"], again) == (old_state["folder"], f"{old_state['folder']}/007_seed_31337.png")
    with pinned_clock(comfy.server, PINNED + timedelta(minutes=1)):
        later = job(0, variation_seed=12)            # (another expansion: ComfyUI would reuse the
                                                     # last output) the next minute: a new folder
    assert later == (PINNED + timedelta(minutes=1)).strftime("%Y/%m/%d/%H%M") + "/001_seed_31337.png"
