"""Issue 5 in real ComfyUI: whole sessions queued one job per prompt through the shipped
workflow (workflows/api/prompt_media_session.json), resumed across a restart, and run end to end
by the command-line runner."""
from __future__ import annotations

import copy
import hashlib
import json
import re
import subprocess
import sys
import time
from pathlib import Path

from prompt_media_pkg.tests.host.workflows import TEST_CHECKPOINT, oom_id, session_prompt

REPO = Path(__file__).resolve().parents[2]
NAME = re.compile(r"^(\d{3,})_seed_(\d+)\.png$")

# 3 prompts x 2 variations x 2 seeds = 12 jobs
SESSION_YAML = """\
prompts: [a red fox, a blue bird, a green frog]
variations:
  light: {type: sequential, values: [morning, night]}
  style: {type: random, values: [ink, oil, chalk]}
seeds: [11, 22]
steps: 1
cfg: 5.0
width: 64
height: 64
"""


def run_jobs(comfy, prompt: dict, indexes) -> list:
    results = []
    for index in indexes:
        prompt[oom_id(prompt)]["inputs"]["job_index"] = index
        results.append(comfy.run_ok(copy.deepcopy(prompt)))
    return results


def session_images(output_dir: Path, root: str) -> list[Path]:
    return sorted((output_dir / root).rglob("*.png"), key=lambda p: p.name)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_twelve_jobs_queued_one_per_prompt_make_one_numbered_session(comfy):
    file = comfy.put_yaml("session12.yaml", SESSION_YAML)
    root = f"{comfy.prefix}/images"
    prompt = session_prompt(file, root)
    results = run_jobs(comfy, prompt, range(12))

    images = session_images(comfy.server.output_dir, root)
    assert [NAME.match(p.name).group(1) for p in images] == [f"{i:03d}" for i in range(1, 13)]
    assert len({p.parent for p in images}) == 1                       # one dated folder
    assert re.search(r"/\d{4}/\d{2}/\d{2}/\d{4}$", str(images[0].parent))
    assert [int(NAME.match(p.name).group(2)) for p in images] == [11] * 6 + [22] * 6
    sidecars = [json.loads(p.with_suffix(".json").read_text()) for p in images]
    assert [s["oom"]["index"] for s in sidecars] == list(range(12))
    assert (images[0].parent / "session12.yaml").read_text() == SESSION_YAML
    # each run generated exactly its own job; the node reports where the session stands
    assert all(len(r.images) == 1 for r in results)
    assert results[3].ui_text(oom_id(prompt)) == ["job 4 of 12 · 3 prompts × 2 variations × 2 seeds"]


def test_index_past_the_end_stops_cleanly_without_images(comfy):
    file = comfy.put_yaml("past_end.yaml", SESSION_YAML)
    root = f"{comfy.prefix}/images"
    result = comfy.run(session_prompt(file, root, job_index=12))
    assert result.status == "success" and result.error is None
    assert result.blocked == []
    (stopped,) = result.ui_text(oom_id(session_prompt(file, root)))
    assert "job_index 12 is past the last job" in stopped and "12 jobs" in stopped
    assert session_images(comfy.server.output_dir, root) == []


def test_session_resumes_after_a_restart_in_the_same_folder(make_comfy_server):
    server = make_comfy_server()
    (server.input_dir / "prompt_media").mkdir(parents=True, exist_ok=True)
    (server.input_dir / "prompt_media" / "resume.yaml").write_text(SESSION_YAML, encoding="utf-8")
    root = "resume_test/images"
    prompt = session_prompt("resume.yaml", root)
    client = server.client
    for index in range(5):
        prompt[oom_id(prompt)]["inputs"]["job_index"] = index
        assert client.run(copy.deepcopy(prompt)).status == "success"
    first = session_images(server.output_dir, root)
    before = {p.name: digest(p) for p in first}
    assert sorted(before) == [p.name for p in first] and len(first) == 5

    server.restart()                                         # a ComfyUI restart mid-session
    client = server.client
    status, info = client.request("POST", "/prompt_media/session", {"prompt": prompt, "node_id": oom_id(prompt)})
    assert status == 200, info
    assert (info["total"], info["last_index"], info["next_index"], info["remaining"]) == (12, 4, 5, 7)
    for index in range(info["next_index"], info["total"]):
        prompt[oom_id(prompt)]["inputs"]["job_index"] = index
        assert client.run(copy.deepcopy(prompt)).status == "success"

    images = session_images(server.output_dir, root)
    assert [p.name[:3] for p in images] == [f"{i:03d}" for i in range(1, 13)]
    assert len({p.parent for p in images}) == 1
    assert {p.name: digest(p) for p in images if p.name in before} == before   # nothing overwritten
    status, info = client.request("POST", "/prompt_media/session", {"prompt": prompt, "node_id": oom_id(prompt)})
    assert (info["last_index"], info["next_index"]) == (11, 0)              # complete: next is new


def run_cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "run_session.py"), *args],
                          capture_output=True, text=True, timeout=timeout)


def test_cli_runs_a_session_end_to_end_and_resumes(comfy, tmp_path):
    yaml_file = tmp_path / "cli_session.yaml"
    yaml_file.write_text(SESSION_YAML.replace("seeds: [11, 22]", "seeds: [5]"), encoding="utf-8")
    root = f"{comfy.prefix}/cli"
    done = run_cli(str(yaml_file), "--server", comfy.server.url, "--checkpoint", TEST_CHECKPOINT,
                   "--root", root, "--compose", "none")
    assert done.returncode == 0, done.stderr
    printed = [line for line in done.stdout.splitlines() if line.endswith(".png")]
    images = session_images(comfy.server.output_dir, root)
    assert printed == [str(p) for p in images]                        # absolute paths
    assert "6 jobs · 3 prompts × 2 variations × 1 seed" in done.stderr
    plan = run_cli(str(yaml_file), "--dry-run", "--json")                 # the names it planned
    assert [job["filename"] for job in json.loads(plan.stdout)["jobs"]] == [p.name for p in images]

    # --resume after a complete session: nothing to continue, and it says so
    again = run_cli(str(yaml_file), "--server", comfy.server.url, "--checkpoint", TEST_CHECKPOINT,
                    "--root", root, "--compose", "none", "--resume")
    assert again.returncode == 0, again.stderr
    assert f"cli_session.yaml: the session in {images[0].parent} is complete (6 jobs saved); run without " \
           "--resume to start a new one\n" in again.stderr
    assert again.stdout == "" and len(session_images(comfy.server.output_dir, root)) == 6


def test_cli_refuses_a_bad_yaml_with_file_and_line(comfy, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("prompts: [a]\nvariations:\n  v: {type: randm, values: [x]}\n", encoding="utf-8")
    result = run_cli(str(bad), "--server", comfy.server.url, "--checkpoint", TEST_CHECKPOINT)
    assert result.returncode == 2
    assert "bad.yaml:3:" in result.stderr and "'randm' is not one of sequential, random, static" in result.stderr


def test_cli_reports_a_failing_job_with_comfyuis_error(comfy, tmp_path):
    yaml_file = tmp_path / "ok.yaml"
    yaml_file.write_text(SESSION_YAML, encoding="utf-8")
    root = comfy.server.output_dir / comfy.prefix / "images"
    # the saver's copy of the prompt file cannot be made: folders hold both of its names in the
    # session folder of this minute and the next ones (the session opens there before job 1)
    variant = f"ok_{hashlib.sha256(SESSION_YAML.encode()).hexdigest()[:8]}.yaml"
    now = time.time()
    for minute in range(3):
        folder = root / time.strftime("%Y/%m/%d/%H%M", time.localtime(now + 60 * minute))
        for name in ("ok.yaml", variant):
            (folder / name).mkdir(parents=True, exist_ok=True)
    result = run_cli(str(yaml_file), "--server", comfy.server.url, "--checkpoint", TEST_CHECKPOINT,
                     "--root", f"{comfy.prefix}/images")
    assert (result.returncode, result.stdout) == (1, "")
    folder = Path(json.loads(next(root.glob(".prompt_media/sessions/*.json")).read_text())["folder"])
    assert result.stderr.splitlines()[1:] == [
        "error: job 1 of 12 failed: execution error in node 10 (PromptMediaSessionSaver): FileExistsError: "
        f"{root / folder}: ok.yaml and its variant exist with other content; the prompt file was not copied "
        "(the traceback is in ComfyUI's log)",
        "no job of this session was saved"]
    # the look-ahead queued behind the failed job is gone from the queue
    queue = comfy.client.queue()
    assert not [item for item in queue["queue_pending"] + queue["queue_running"]
                if any(n.get("inputs", {}).get("file") == "ok.yaml" for n in item[2].values())]


def test_cli_stops_before_queueing_when_the_session_cannot_open(comfy, tmp_path):
    yaml_file = tmp_path / "ok.yaml"
    yaml_file.write_text(SESSION_YAML, encoding="utf-8")
    blocker = comfy.server.output_dir / comfy.prefix / "blocker"       # a file where the session needs a folder
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("")
    result = run_cli(str(yaml_file), "--server", comfy.server.url, "--checkpoint", TEST_CHECKPOINT,
                     "--root", f"{comfy.prefix}/blocker/images")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr.splitlines()[1:] == [
        f"error: cannot open the session: [Errno 20] Not a directory: '{blocker}/images'"]
    queue = comfy.client.queue()                                        # nothing was queued
    assert not [item for item in queue["queue_pending"] + queue["queue_running"]
                if any(n.get("inputs", {}).get("file") == "ok.yaml" for n in item[2].values())]


def test_workflow_template_is_listed_and_served(comfy):
    templates = comfy.client.get("/workflow_templates")
    assert sorted(templates.get("comfyui-prompt-media")) == [          # the API files are not templates
        "flux_dev", "flux_schnell", "prompt_media_session", "sd35"]
    served = comfy.client.get("/api/workflow_templates/comfyui-prompt-media/prompt_media_session.json")
    assert {n["type"] for n in served["nodes"]} >= {"PromptMediaLoader", "PromptMediaOOM",
                                                   "PromptMediaLoraChain", "PromptMediaSessionSaver"}


def test_a_failing_contact_sheet_is_a_warning_and_loses_nothing(comfy):
    yaml_text = SESSION_YAML.replace("seeds: [11, 22]", "seeds: [9]").replace(
        "[a red fox, a blue bird, a green frog]", "[a red fox]")            # 2 jobs
    file = comfy.put_yaml("compose_fail.yaml", yaml_text)
    root = f"{comfy.prefix}/images"
    prompt = session_prompt(file, root)
    prompt[next(k for k, v in prompt.items() if v["class_type"] == "PromptMediaSessionSaver")]["inputs"]["compose"] = "sheet"
    run_jobs(comfy, prompt, [0])
    folder = session_images(comfy.server.output_dir, root)[0].parent
    (folder / "contact_sheet.jpg").mkdir()          # the sheet cannot be written there
    result = run_jobs(comfy, prompt, [1])[0]
    assert result.status == "success" and result.error is None
    assert [p.name[:3] for p in session_images(comfy.server.output_dir, root)] == ["001", "002"]
    assert "composing the session failed (images are saved)" in comfy.log()
