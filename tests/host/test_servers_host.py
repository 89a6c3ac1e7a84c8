"""Issue 17.5 in real ComfyUI: one session over several servers (``--server`` repeated), each with
its own output folder, gathered by ``--collect``: the same names and pixels as one server, every
job exactly once even when a server is killed mid-session."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from prompt_media_pkg.runner.comfy_client import ComfyClient
from prompt_media_pkg.tests.host.workflows import TEST_CHECKPOINT

REPO = Path(__file__).resolve().parents[2]
# 4 prompts x 2 seeds = 8 jobs
EIGHT = """\
prompts: [a red fox, a blue bird, a green frog, a grey cat]
seeds: [5, 9]
steps: {steps}
cfg: 5.0
width: 64
height: 64
"""


def cli(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "run_session.py"), *args], capture_output=True, text=True,
                          timeout=timeout)


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def collected(folder: Path) -> dict[str, dict]:
    """Image name -> its sidecar, for every image in a collect folder."""
    return {p.name: json.loads(p.with_suffix(".json").read_text()) for p in sorted(folder.glob("*.png"))
            if not p.name.startswith("contact_sheet")}


def jobs_run_on(client: ComfyClient, since: set[str]) -> int:
    """Prompts that ran to success on that server since ``since`` (its history ids before)."""
    return sum(1 for pid, entry in client.history().items()
               if pid not in since and (entry.get("status") or {}).get("status_str") == "success")


def test_two_servers_with_their_own_outputs_collect_what_one_server_makes(comfy_server, make_comfy_server,
                                                                          tmp_path, request):
    other = make_comfy_server()
    yaml_path = tmp_path / "eight.yaml"
    yaml_path.write_text(EIGHT.format(steps=2), encoding="utf-8")
    root = f"pmtest/{request.node.name}"
    before = {s.url: set(s.client.history()) for s in (comfy_server, other)}
    one, two = tmp_path / "one", tmp_path / "two"

    alone = cli(str(yaml_path), "--server", comfy_server.url, "--checkpoint", TEST_CHECKPOINT, "--root",
                root + "/alone", "--collect", str(one))
    assert alone.returncode == 0, alone.stderr
    both = cli(str(yaml_path), "--server", comfy_server.url, "--server", other.url, "--checkpoint", TEST_CHECKPOINT,
               "--root", root + "/both", "--collect", str(two), "--lookahead", "1")
    assert both.returncode == 0, both.stderr

    plan = json.loads(cli(str(yaml_path), "--dry-run", "--json").stdout)
    names = [job["filename"] for job in plan["jobs"]]
    assert sorted(collected(one)) == sorted(collected(two)) == names
    for name in names:
        assert np.array_equal(pixels(one / name), pixels(two / name)), name
        sidecar = collected(two)[name]
        assert sidecar["output"]["filename"] == name
    # both servers ran jobs, each wrote only its own part into its own output folder
    ran = {s.url: jobs_run_on(s.client, before[s.url]) for s in (comfy_server, other)}
    assert ran[other.url] >= 1 and ran[comfy_server.url] >= 8 + 1, ran
    on_other = sorted(p.name for p in (other.output_dir / root / "both").rglob("*_seed_*.png"))
    on_first = sorted(p.name for p in (comfy_server.output_dir / root / "both").rglob("*_seed_*.png"))
    assert sorted(on_other + on_first) == names
    # the collected folder is whole: the prompt file and a contact sheet of all eight
    assert (two / "eight.yaml").read_text() == yaml_path.read_text()
    assert (two / "contact_sheet.jpg").is_file()
    printed = [Path(line) for line in both.stdout.splitlines()]     # the collected paths, as they arrive
    assert {p.parent for p in printed} == {two.resolve()} and sorted(p.name for p in printed) == names


def test_a_server_killed_mid_session_leaves_every_job_done_exactly_once(comfy_server, make_comfy_server, tmp_path,
                                                                       request):
    victim = make_comfy_server()
    yaml_path = tmp_path / "killed.yaml"
    yaml_path.write_text(EIGHT.format(steps=12), encoding="utf-8")
    folder = tmp_path / "collected"
    run = subprocess.Popen(
        [sys.executable, str(REPO / "run_session.py"), str(yaml_path), "--server", comfy_server.url, "--server",
         victim.url, "--checkpoint", TEST_CHECKPOINT, "--root", f"pmtest/{request.node.name}", "--collect",
         str(folder), "--events", "json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    events = []
    try:
        for line in run.stdout:
            events.append(json.loads(line))
            # the victim has saved one job and runs the next: kill -9 it there
            if events[-1]["event"] == "saved" and events[-1]["server"] == victim.url:
                os.kill(victim.proc.pid, signal.SIGKILL)
                break
        rest, err = run.communicate(timeout=900)
    finally:
        if run.poll() is None:
            run.kill()
    events += [json.loads(line) for line in rest.splitlines()]
    assert run.returncode == 0, err
    saved = [e for e in events if e["event"] == "saved"]
    assert sorted(e["job"] for e in saved) == list(range(1, 9))        # every job once
    retried = {e["job"] for e in events if e["event"] == "retried"}
    assert retried, err                                                # the victim held queued jobs
    assert all(e["server"] == comfy_server.url for e in saved if e["job"] in retried)
    assert "stopped answering" in err
    images = collected(folder)
    assert sorted(s["oom"]["index"] for s in images.values()) == list(range(8))
    assert events[-1]["event"] == "done" and events[-1]["images"] == 8


def test_two_servers_sharing_an_output_folder_make_one_session_folder(make_comfy_server, tmp_path, request):
    """One machine, two GPUs: two ComfyUIs from one installation write into the same output folder."""
    output = tmp_path / "output"
    output.mkdir()
    first, second = (make_comfy_server(extra_args=["--output-directory", str(output)]) for _ in range(2))
    yaml_path = tmp_path / "shared.yaml"
    yaml_path.write_text(EIGHT.format(steps=2), encoding="utf-8")
    run = cli(str(yaml_path), "--server", first.url, "--server", second.url, "--checkpoint", TEST_CHECKPOINT,
              "--root", f"pmtest/{request.node.name}", "--events", "json")
    assert run.returncode == 0, run.stderr
    events = [json.loads(line) for line in run.stdout.splitlines()]
    assert {e["server"] for e in events if e["event"] == "saved"} == {first.url, second.url}, run.stderr
    images = sorted((output / "pmtest").rglob("*_seed_*.png"))
    plan = json.loads(cli(str(yaml_path), "--dry-run", "--json").stdout)
    assert [p.name for p in images] == [job["filename"] for job in plan["jobs"]]     # one folder, each job once
    folder = images[0].parent
    assert {p.parent for p in images} == {folder}
    assert sorted(Path(p) for e in events if e["event"] == "saved" for p in e["paths"]) == images
    assert events[-1]["composed"] == [str(folder / "contact_sheet.jpg")] and (folder / "contact_sheet.jpg").is_file()
