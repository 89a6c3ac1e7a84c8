"""Issue 7, crashes and concurrency, in real ComfyUI: kill -9 at random points of a session,
two servers saving into one output folder in the same minute, a full disk and a read-only
output folder. Nothing already saved is lost or changed, nothing half-written gets a final name.

PM_CRASH_KILLS (default 20) and PM_CRASH_SEED (default 7) make the kill run reproducible: the
delays come from random.Random(seed); the server's own timing still varies with machine load.
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest
from PIL import Image

from prompt_media_pkg.tests.host.harness import pinned_clock
from prompt_media_pkg.tests.host.workflows import oom_id, session_prompt

KILLS = int(os.environ.get("PM_CRASH_KILLS", "20"))
SEED = int(os.environ.get("PM_CRASH_SEED", "7"))
JOBS_PER_KILL = 2
NUMBERED = re.compile(r"^(\d{3,})_seed_(-?\d+)\.(png|json)$")
TEMP = re.compile(r"^\.pm-tmp-.*\.part$")

# 8 prompts x 2 variations x 3 seeds = 48 jobs: 20 kills x 2 queued jobs never finish it
CRASH_YAML = """\
prompts: [a red fox, a blue bird, a green frog, a grey cat, an old boat, a tall tree, a small house, a dark cave]
variations:
  light: {type: sequential, values: [morning, night]}
seeds: [101, 202, 303]
steps: 1
cfg: 5.0
width: 64
height: 64
"""
SMALL_YAML = """\
prompts: [a red fox, a blue bird, a green frog, a grey cat, an old boat, a tall tree, a small house]
seeds: [7]
steps: 1
cfg: 5.0
width: 64
height: 64
"""


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check_session_folder(folder: Path, before: dict[str, str] | None = None) -> tuple[dict[str, str], list[str]]:
    """Every file under a final name is complete and valid; nothing saved earlier changed;
    counts are unique and have no gaps. Returns ({name: sha256}, leftover temp names)."""
    files, temps, pngs = {}, [], {}
    for p in sorted(folder.iterdir()):
        if TEMP.match(p.name):
            temps.append(p.name)
            continue
        m = NUMBERED.match(p.name)
        if not m:
            # the prompt file's copy; the session page, rewritten whole at each session's end
            assert p.suffix in (".yaml", ".yml") or p.name == "index.html", f"unexpected file {p}"
            continue
        files[p.name] = sha(p)
        if m.group(3) == "png":
            with Image.open(p) as im:
                im.verify()
            with Image.open(p) as im:
                im.load()
                assert im.size == (64, 64)
            assert int(m.group(1)) not in pngs, f"two images with count {m.group(1)}: {p.name}, {pngs[int(m.group(1))]}"
            pngs[int(m.group(1))] = p.name
        else:
            data = json.loads(p.read_text(encoding="utf-8"))
            png = p.with_suffix(".png")
            assert png.exists(), f"sidecar without its image: {p.name}"
            assert data["image_sha256"] == sha(png), f"{p.name}: image_sha256 does not match {png.name}"
            assert data["task_id"] == int(m.group(1))
    counts = sorted(pngs)
    assert counts == list(range(1, len(counts) + 1)), f"gap in the numbering: {counts}"
    for name, digest in (before or {}).items():
        assert files.get(name) == digest, f"{name} was changed or removed"
    return files, temps


def kill9(server) -> None:
    """SIGKILL the ComfyUI process itself, like a crash or the OOM killer (no cleanup runs)."""
    os.kill(server.proc.pid, signal.SIGKILL)
    server.proc.wait(10)


def file_names(folder: Path) -> set[str]:
    with os.scandir(folder) as entries:
        return {e.name for e in entries}


def kill9_while_writing(server, folder: Path, timeout: float, jobs: int) -> tuple[float | None, bool]:
    """SIGKILL the server the moment the saver is caught writing in ``folder``: a new temp file
    (an image or a sidecar being written) or a new image whose sidecar is not there yet. The
    saver's files are complete under their names at once and fsynced in the background, so a
    write lasts well under a millisecond: the folder is read without pause. Returns (seconds
    waited, caught): when the ``jobs`` queued jobs all finished (their sidecars appeared) before
    a look caught a write, the server is killed then and caught is False; (None, False) when
    nothing was written within ``timeout``."""
    known, t0 = file_names(folder), time.monotonic()
    while time.monotonic() - t0 < timeout:
        now = file_names(folder)
        new = now - known
        if any(TEMP.match(n) or (n.endswith(".png") and n[:-4] + ".json" not in now) for n in new):
            kill9(server)
            return time.monotonic() - t0, True
        if sum(n.endswith(".json") for n in new) >= jobs:
            kill9(server)
            return time.monotonic() - t0, False
    return None, False


def post_jobs(client, prompt: dict, indexes) -> list[str]:
    ids = []
    for index in indexes:
        p = copy.deepcopy(prompt)
        p[oom_id(p)]["inputs"]["job_index"] = index
        status, resp = client.post_prompt(p)
        assert status == 200, resp
        ids.append(resp["prompt_id"])
    return ids


def timed_job(client, prompt: dict, index: int, saver_id: str) -> tuple[float, float]:
    """Run one job; (seconds for the whole job, seconds the saver ran)."""
    t0, saver_start, saver_end = time.monotonic(), None, None
    with client.websocket() as ws:
        (prompt_id,) = post_jobs(client, prompt, [index])
        for kind, data in client.events(ws, timeout=300):
            if kind == "executing" and data.get("prompt_id") == prompt_id:
                now = time.monotonic()
                if str(data.get("node")) == saver_id:
                    saver_start = now
                elif saver_start is not None and saver_end is None:
                    saver_end = now
                if data.get("node") is None:
                    break
            if kind == "execution_error":
                pytest.fail(f"job {index} failed: {data.get('exception_message')}")
    return time.monotonic() - t0, (saver_end or time.monotonic()) - (saver_start or t0)


def session_state(client, prompt: dict) -> dict:
    status, info = client.request("POST", "/prompt_media/session", {"prompt": prompt, "node_id": oom_id(prompt)})
    assert status == 200, info
    return info


def test_kill_9_at_random_points_loses_nothing_and_resumes(make_comfy_server):
    rng = random.Random(SEED)
    server = make_comfy_server()
    (server.input_dir / "prompt_media").mkdir(parents=True, exist_ok=True)
    (server.input_dir / "prompt_media" / "crash.yaml").write_text(CRASH_YAML, encoding="utf-8")
    root = "crash/images"
    prompt = session_prompt("crash.yaml", root)

    # calibrate: the first job after a start (model load included), then a warm one, and how
    # long the saver runs (from its "executing" event to the next node event)
    saver_id = next(k for k, v in prompt.items() if v["class_type"] == "PromptMediaSessionSaver")
    first_job_s, _ = timed_job(server.client, prompt, 0, saver_id)
    warm_job_s, saver_s = timed_job(server.client, prompt, 1, saver_id)
    window = first_job_s + (JOBS_PER_KILL - 1) * warm_job_s
    folder = Path(session_state(server.client, prompt)["folder"])
    saved, _ = check_session_folder(folder)
    assert len(saved) == 4

    log, leftovers, restarts, caught_writing = [], set(), [], 0
    for kill in range(KILLS):
        client = server.client                      # one client id: its websocket sees our events
        info = session_state(client, prompt)
        assert Path(info["folder"]) == folder and info["next_index"] > 0   # continues, never a new session
        orphans_before = {n for n in saved if n.endswith(".png") and n[:-4] + ".json" not in saved}
        post_jobs(client, prompt, range(info["next_index"], info["next_index"] + JOBS_PER_KILL))
        if kill % 2 == 0:                           # anywhere in the queued jobs
            point = "uniform"
            delay = rng.uniform(0, window)
            time.sleep(delay)
            kill9(server)
        else:                                       # while the saver writes (a few ms at 64x64)
            delay, caught = kill9_while_writing(server, folder, window * 3 + 30, JOBS_PER_KILL)
            point = "writing" if caught else "writing (missed)"
            if delay is None:
                pytest.fail(f"kill {kill}: the saver wrote nothing within {window * 3 + 30:.0f}s; "
                            f"server log:\n{server.log_tail()}")
        saved, temps = check_session_folder(folder, saved)
        new_orphans = {n for n in saved if n.endswith(".png") and n[:-4] + ".json" not in saved} - orphans_before
        if point.startswith("writing") and (set(temps) - leftovers or new_orphans):
            caught_writing += 1                     # a temp or an image without its sidecar: mid-write
        leftovers.update(temps)
        log.append((point, round(delay, 4), info["next_index"], len([n for n in saved if n.endswith(".png")]),
                    len(temps)))
        t0 = time.monotonic()
        server.restart()
        restarts.append(time.monotonic() - t0)

    # what a kill left: images without a sidecar (killed between the two), temp files
    pngs = {n for n in saved if n.endswith(".png")}
    orphans = sorted(n for n in pngs if n[:-4] + ".json" not in saved)
    # the next session cleans stale temps: age the real leftovers and one planted like them
    planted = folder / ".pm-tmp-planted-by-test.part"
    planted.write_bytes(b"\x89PNG half")
    for name in leftovers | {planted.name}:
        if (folder / name).exists():
            old = time.time() - 3600
            os.utime(folder / name, (old, old))
    info = session_state(server.client, prompt)
    for job_id in post_jobs(server.client, prompt, [info["next_index"]]):
        assert server.client.wait(job_id).status == "success"
    saved, temps = check_session_folder(folder, saved)
    assert temps == [], f"stale temp files not cleaned: {temps}"
    # the "writing" kills are what this test is for: at least one must have cut a write short
    assert caught_writing >= 1, f"no kill landed inside a write: {log}"

    # resumed without skipping a job: every job up to the last finished one has a sidecar
    done = session_state(server.client, prompt)["last_index"]
    indexes = {json.loads((folder / n).read_text())["oom"]["index"] for n in saved if n.endswith(".json")}
    assert indexes == set(range(done + 1)), f"jobs without a sidecar: {set(range(done + 1)) - indexes}"
    sys.stderr.write(f"\n[crash] {KILLS} kills (seed {SEED}), window {window:.2f}s (first job {first_job_s:.2f}s, "
                     f"warm {warm_job_s:.2f}s, saver {saver_s * 1000:.0f} ms), restart {min(restarts):.1f}-{max(restarts):.1f}s; "
                     f"{len(pngs)} images, {len(orphans)} without sidecar {orphans}, "
                     f"{len(leftovers)} temp leftovers, {caught_writing} of {KILLS // 2} kills cut a write short; "
                     f"(point, delay, next_index, images, temps): {log}\n")


def run_window(client, prompt_id: str) -> tuple[float, float]:
    """(execution_start, end) in ms of a finished prompt, from its /history status messages."""
    messages = dict(client.get(f"/history/{prompt_id}")[prompt_id]["status"]["messages"])
    return messages["execution_start"]["timestamp"], messages["execution_success"]["timestamp"]


def test_two_servers_one_output_folder_same_minute_never_overwrite(make_comfy_server, tmp_path_factory):
    """Two ComfyUIs on one --output-directory, both savers' clocks pinned to one minute: both
    sessions open the same folder while both servers run, and every count is claimed once."""
    shared = Path(os.environ.get("PM_TEST_BASE_PREFIX", "/tmp/pm-host-") + f"shared-{os.getpid()}")
    shared.mkdir(parents=True, exist_ok=True)
    minute = datetime(2001, 2, 3, 4, 5, 6)
    try:
        servers = [make_comfy_server(extra_args=["--output-directory", str(shared)]) for _ in range(2)]
        root = "shared/images"
        prompt = session_prompt("same.yaml", root)
        for server in servers:              # the same file on both: one expansion, one state file
            (server.input_dir / "prompt_media").mkdir(parents=True, exist_ok=True)
            (server.input_dir / "prompt_media" / "same.yaml").write_text(SMALL_YAML, encoding="utf-8")
        jobs = range(7)                     # 7 prompts x 1 seed
        with pinned_clock(servers[0], minute), pinned_clock(servers[1], minute):
            queued = [(s, pid) for s in servers for pid in post_jobs(s.client, prompt, [0])]
            queued += [(s, pid) for s in servers for pid in post_jobs(s.client, prompt, jobs[1:])]
            for server, pid in queued:
                result = server.client.wait(pid)
                assert result.status == "success", result.error_summary()
        images = sorted((shared / root).rglob("*.png"))
        assert {p.parent for p in images} == {shared / root / minute.strftime("%Y/%m/%d/%H%M")}
        assert len(images) == 2 * len(jobs)                     # nothing overwritten, nothing lost
        check_session_folder(images[0].parent)                  # unique gapless counts, sidecars match
        # the race happened: the two servers were running jobs at the same time
        windows = [[run_window(s.client, pid) for s2, pid in queued if s2 is s] for s in servers]
        spans = [(min(a for a, _ in w), max(b for _, b in w)) for w in windows]
        assert spans[0][0] < spans[1][1] and spans[1][0] < spans[0][1], f"the servers never ran together: {spans}"
        sys.stderr.write(f"\n[crash] two servers: {len(images)} images in one folder, "
                         f"runs overlapping {min(spans[0][1], spans[1][1]) - max(spans[0][0], spans[1][0]):.0f} ms\n")
    finally:
        subprocess.run(["rm", "-rf", str(shared)], check=False)


def _mount_tmpfs(path: Path, options: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
                          capture_output=True).returncode == 0


def _umount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True)


def test_full_disk_and_read_only_output_are_clear_errors_with_nothing_half_written(make_comfy_server):
    server = make_comfy_server()
    full, ro = server.output_dir / "full", server.output_dir / "ro"
    if not _mount_tmpfs(full, "size=1m"):
        pytest.skip("cannot mount a tmpfs here (needs root / CAP_SYS_ADMIN); the unit tier "
                    "simulates ENOSPC and EROFS (tests/unit/test_disk_safety.py)")
    try:
        assert _mount_tmpfs(ro, "ro,size=64k")
        (server.input_dir / "prompt_media").mkdir(parents=True, exist_ok=True)
        (server.input_dir / "prompt_media" / "disk.yaml").write_text(SMALL_YAML, encoding="utf-8")

        # read-only: the node fails naming the folder; nothing anywhere
        result = server.client.run(session_prompt("disk.yaml", "ro/images"))
        assert result.status == "error" and result.error["node_type"] == "PromptMediaSessionSaver"
        assert "Read-only file system" in result.error["exception_message"]
        assert str(ro) in result.error["exception_message"]
        assert list(ro.iterdir()) == []

        # full: job 0 fits, then the disk fills up, then job 1 fails, then space again
        prompt = session_prompt("disk.yaml", "full/images")
        assert server.client.run(copy.deepcopy(prompt)).status == "success"
        folder = next((full / "images").rglob("001_seed_7.png")).parent
        before, _ = check_session_folder(folder)
        filler = full / "filler"
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
        try:
            while os.write(fd, b"\0" * 4096):
                pass
        except OSError:
            pass
        finally:
            os.close(fd)
        prompt[oom_id(prompt)]["inputs"]["job_index"] = 1
        result = server.client.run(copy.deepcopy(prompt))
        assert result.status == "error" and result.error["node_type"] == "PromptMediaSessionSaver"
        message = result.error["exception_message"]
        assert "No space left on device" in message and str(folder) in message, message
        after, temps = check_session_folder(folder, before)
        assert after == before and temps == []               # no half-written file, no temp

        filler.unlink()
        assert server.client.run(copy.deepcopy(prompt)).status == "success"
        after, _ = check_session_folder(folder, before)
        assert sorted(n for n in after if n.endswith(".png")) == ["001_seed_7.png", "002_seed_7.png"]
    finally:
        server.stop()
        _umount(full)
        _umount(ro)
