"""Issue 17.2 in real ComfyUI: an image's number is its place in the session, fixed when the
session opens: the names --dry-run plans are the names saved, in any order, on any server, with
retries; a job run again is not saved twice; a taken name is an error, never a renumbering."""
from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from prompt_media_pkg.tests.host.test_crash_host import sha
from prompt_media_pkg.tests.host.workflows import oom_id, session_prompt

REPO = Path(__file__).resolve().parents[2]
# 3 prompts x 2 seeds = 6 jobs
PLAN_YAML = """\
prompts: [a red fox, a blue bird, a green frog]
seeds: [5, 9]
steps: 1
cfg: 5.0
width: 64
height: 64
"""


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def saver_of(prompt: dict) -> str:
    return next(k for k, v in prompt.items() if v["class_type"] == "PromptMediaSessionSaver")


def open_planned(client, prompt: dict) -> dict:
    """What run_session.py does before its first job: open the session on the server."""
    status, info = client.request("POST", "/prompt_media/session",
                                  {"prompt": prompt, "node_id": oom_id(prompt), "open": True})
    assert status == 200, info
    return info


def job_prompt(prompt: dict, index: int, info: dict | None = None) -> dict:
    p = copy.deepcopy(prompt)
    p[oom_id(p)]["inputs"]["job_index"] = index
    if info is not None:
        p[saver_of(p)]["inputs"].update(session_folder=info["session_folder"], first_number=info["first_number"])
    return p


def dry_run_names(yaml_path: Path) -> list[str]:
    out = subprocess.run([sys.executable, str(REPO / "run_session.py"), str(yaml_path), "--dry-run", "--json"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return [job["filename"] for job in json.loads(out.stdout)["jobs"]]


def test_plan_names_are_the_saved_names_in_any_order_with_retries(comfy, tmp_path):
    local = tmp_path / "plan.yaml"
    local.write_text(PLAN_YAML, encoding="utf-8")
    planned = dry_run_names(local)
    assert planned == ["001_seed_5.png", "002_seed_5.png", "003_seed_5.png",
                       "004_seed_9.png", "005_seed_9.png", "006_seed_9.png"]
    prompt = session_prompt(comfy.put_yaml("plan.yaml", PLAN_YAML), f"{comfy.prefix}/images")
    info = open_planned(comfy.client, prompt)
    assert info["first_number"] == 1 and info["next_index"] == 0 and info["total"] == 6
    folder = Path(info["folder"])

    saved: dict[int, str] = {}
    for index in (3, 0, 5, 1, 4, 2):                    # out of order, as several servers deliver them
        result = comfy.run_ok(job_prompt(prompt, index, info))
        assert [i["filename"] for i in result.images] == [planned[index]]
        saved[index] = sha(folder / planned[index])
    assert sorted(p.name for p in folder.glob("*.png")) == planned
    for index, name in enumerate(planned):
        side = json.loads((folder / name).with_suffix(".json").read_text())
        assert (side["oom"]["index"], side["task_id"], side["session"]["first"]) == (index, index + 1, 1)

    # jobs run again (a retry on another server, a resume after a lost state update): nothing new
    for index in (0, 4):
        result = comfy.run_ok(job_prompt(prompt, index, info))
        output = result.outputs[saver_of(prompt)]
        assert [i["filename"] for i in output["images"]] == [planned[index]]
        assert output["already_saved"] == [planned[index]]
    assert sorted(p.name for p in folder.iterdir() if p.suffix in (".png", ".json")) == \
        sorted(planned + [n[:-4] + ".json" for n in planned])
    assert {i: sha(folder / planned[i]) for i in saved} == saved
    assert "already saved (job run again)" in comfy.log()


def test_two_servers_with_their_own_output_folders_give_the_same_names_and_pixels(make_comfy_server):
    a, b = make_comfy_server(), make_comfy_server()
    root = "planned/images"
    prompt = session_prompt("plan.yaml", root)
    for server in (a, b):
        (server.input_dir / "prompt_media").mkdir(parents=True, exist_ok=True)
        (server.input_dir / "prompt_media" / "plan.yaml").write_text(PLAN_YAML, encoding="utf-8")
    info = open_planned(a.client, prompt)
    for index in range(6):
        assert a.client.run(job_prompt(prompt, index, info)).status == "success"
    for index in (5, 2):
        result = b.client.run(job_prompt(prompt, index, info))
        assert result.status == "success", result.error_summary()
    on_a = {p.name: p for p in (a.output_dir / root / info["session_folder"]).glob("*.png")}
    on_b = {p.name: p for p in (b.output_dir / root / info["session_folder"]).glob("*.png")}
    assert sorted(on_b) == ["003_seed_5.png", "006_seed_9.png"] and set(on_b) <= set(on_a)
    for name, path in on_b.items():
        assert np.array_equal(pixels(path), pixels(on_a[name]))
    # b reserved the same numbers in its own log: a session opening there later goes after them
    log = b.output_dir / root / ".prompt_media" / "numbers" / info["session_folder"].replace("/", "-")
    assert [json.loads(p.read_text())["first"] for p in sorted(log.glob("*.json"))] == [1]
    assert json.loads((log / "0001.json").read_text())["images"] == 6


def test_a_planned_name_held_by_another_file_fails_and_nothing_is_overwritten(comfy):
    prompt = session_prompt(comfy.put_yaml("held.yaml", PLAN_YAML), f"{comfy.prefix}/images")
    first = comfy.run_ok(job_prompt(prompt, 0))
    folder = comfy.image_paths(first)[0].parent
    planted = folder / "002_seed_5.png"
    planted.write_bytes(b"someone else's file")
    result = comfy.run(job_prompt(prompt, 1))
    assert result.status == "error" and result.error["node_type"] == "PromptMediaSessionSaver"
    message = result.error["exception_message"]
    assert "002_seed_5.png" in message and str(folder) in message and "nothing was overwritten" in message
    assert planted.read_bytes() == b"someone else's file"
    assert not (folder / "002_seed_5.json").exists() and not list(folder.glob(".pm-tmp-*"))
    planted.unlink()                                    # moved away: the job runs
    assert [i["filename"] for i in comfy.run_ok(job_prompt(prompt, 1)).images] == ["002_seed_5.png"]


def test_an_image_left_without_its_sidecar_is_completed_when_the_job_runs_again(comfy):
    prompt = session_prompt(comfy.put_yaml("orphan.yaml", PLAN_YAML), f"{comfy.prefix}/images")
    for index in (0, 1, 2):                             # (in the editor, job 0 would open a new session)
        comfy.run_ok(job_prompt(prompt, index))
    image = comfy.output_files(pattern="002_seed_5.png")[0]
    before = sha(image)
    image.with_suffix(".json").unlink()                 # as if killed between the two files
    comfy.run_ok(job_prompt(prompt, 1))
    side = json.loads(image.with_suffix(".json").read_text())
    assert sha(image) == before and side["image_sha256"] == before and side["oom"]["index"] == 1
    assert sorted(p.name for p in image.parent.glob("*.png")) == ["001_seed_5.png", "002_seed_5.png",
                                                                 "003_seed_5.png"]
    assert "completing an earlier attempt's image with its sidecar" in comfy.log()
