"""Issue 17.6 in real ComfyUI on a local Ray instance: two CPU ComfyUIs as Ray actors run one
session into the driver's --collect folder, and an actor killed mid-session is restarted by Ray
while its jobs are run again."""
from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from prompt_media_pkg.tests.host.workflows import TEST_CHECKPOINT

REPO = Path(__file__).resolve().parents[2]
EIGHT = """\
prompts: [a red fox, a blue bird, a green frog, a grey cat]
seeds: [5, 9]
steps: 8
cfg: 5.0
width: 64
height: 64
"""

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("ray") is None,
    reason="Ray is not importable in this python (scripts/test.sh installs scripts/requirements-ray.txt for the "
           "host tier: its pip install failed)")


def comfyui_on_port(port: int) -> int:
    """The pid of the ComfyUI listening on ``port`` (its command line says --port N)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"main.py" in args and b"--port" in args and args[args.index(b"--port") + 1] == str(port).encode():
            return int(entry.name)
    raise AssertionError(f"no ComfyUI on port {port}")


def parent_of(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("PPid:")))


def test_two_cpu_servers_on_ray_finish_a_session_and_a_killed_actor_comes_back(comfy_host, test_models_dir, tmp_path):
    base = tmp_path / "comfy-base"                 # the actors' ComfyUI folder: its models, input, output
    for sub in ("models/checkpoints", "custom_nodes", "user"):
        (base / sub).mkdir(parents=True)
    (base / "models" / "checkpoints" / TEST_CHECKPOINT).symlink_to(
        (test_models_dir / "checkpoints" / TEST_CHECKPOINT).resolve())
    yaml_path = tmp_path / "ray.yaml"
    yaml_path.write_text(EIGHT, encoding="utf-8")
    folder = tmp_path / "collected"
    run = subprocess.Popen(
        [sys.executable, str(REPO / "run_session.py"), str(yaml_path), "--ray", "local", "--ray-cpu-servers", "2",
         "--comfyui", str(comfy_host.comfyui_path), "--python", str(comfy_host.python),
         f"--comfyui-arg=--base-directory={base}", "--checkpoint", TEST_CHECKPOINT, "--collect", str(folder),
         "--events", "json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"})
    events, killed = [], None
    try:
        for line in run.stdout:
            events.append(json.loads(line))
            event = events[-1]
            if event["event"] == "saved" and killed is None:
                # the other actor: kill -9 its worker process (Ray restarts it; its ComfyUI dies with it)
                url = next(s["url"] for s in events[0]["servers"] if s["name"] != event["server"])
                killed = parent_of(comfyui_on_port(urlsplit(url).port))
                os.kill(killed, signal.SIGKILL)
                break
        rest, err = run.communicate(timeout=1200)
    finally:
        if run.poll() is None:
            run.send_signal(signal.SIGINT)
            run.communicate(timeout=120)
    events += [json.loads(line) for line in rest.splitlines()]
    assert run.returncode == 0, err
    assert killed is not None
    saved = sorted(e["job"] for e in events if e["event"] == "saved")
    assert saved == list(range(1, 9)), err                          # every job once
    assert any(e["event"] == "retried" for e in events), err       # the killed actor's jobs ran again
    images = sorted(p.name for p in folder.glob("*_seed_*.png"))
    assert images == [job["filename"] for job in json.loads(subprocess.run(
        [sys.executable, str(REPO / "run_session.py"), str(yaml_path), "--dry-run", "--json"],
        capture_output=True, text=True).stdout)["jobs"]]
    assert (folder / "contact_sheet.jpg").is_file() and (folder / "ray.yaml").is_file()
    assert not [line for line in subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout.splitlines()
                if f"--base-directory={base}" in line or f"--base-directory {base}" in line]   # no ComfyUI left
