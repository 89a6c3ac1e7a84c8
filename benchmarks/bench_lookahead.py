"""Issue 17.1 benchmark: how long ComfyUI sits idle between two jobs of a run_session.py session,
with the look-ahead (jobs kept waiting in ComfyUI's queue) off and on, from ComfyUI's own history
timestamps (execution_start of job k+1 minus execution_success of job k, milliseconds).

    python benchmarks/bench_lookahead.py [--jobs 24] [--reps 3] [--lookaheads 0,2] [--ports 8260-8269]

Any python >= 3.10 with aiohttp and PyYAML runs it (ComfyUI's own, or the test venv); the ComfyUI
host is COMFYUI_PATH / COMFYUI_PYTHON. One server with the project's tiny test checkpoint; each
repetition runs the same session file (64x64, 1 step: the job is short, so the gap shows) once
per look-ahead setting, alternating, in a new session.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from benchlib import REPO, import_package, machine_line  # noqa: E402

import_package()
from prompt_media_pkg.tests import comfy_host  # noqa: E402
from prompt_media_pkg.tests.comfy_host import port_range_from_env  # noqa: E402

CHECKPOINT = "tiny_sd15.ckpt"


def session_yaml(jobs: int) -> str:
    return (f"prompts: [{', '.join(f'prompt {i}' for i in range(jobs))}]\n"
            "seeds: [1]\nsteps: 1\nwidth: 64\nheight: 64\n")


def run_once(server, yaml_path: str, lookahead: int, root: str) -> list[float]:
    """Gaps (ms) between consecutive jobs of one CLI session."""
    out = subprocess.run([sys.executable, os.path.join(REPO, "run_session.py"), yaml_path, "--server", server.url,
                          "--checkpoint", CHECKPOINT, "--root", root, "--compose", "none", "--events", "json",
                          "--lookahead", str(lookahead)], capture_output=True, text=True, timeout=1800, check=False)
    if out.returncode != 0:
        raise SystemExit(f"run_session.py failed ({out.returncode}):\n{out.stderr[-3000:]}")
    ids = [e["prompt_id"] for e in map(json.loads, out.stdout.splitlines()) if e["event"] == "saved"]
    spans = []
    for pid in ids:
        messages = dict((k, d) for k, d in server.client.history(pid)[pid]["status"]["messages"])
        spans.append((messages["execution_start"]["timestamp"], messages["execution_success"]["timestamp"]))
    return [spans[i + 1][0] - spans[i][1] for i in range(len(spans) - 1)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", type=int, default=24)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--lookaheads", default="0,2")
    ap.add_argument("--ports", default=os.environ.get("PM_BENCH_PORTS", "8260-8269"))
    args = ap.parse_args()
    host = comfy_host.host_config()
    if host is None:
        raise SystemExit("set COMFYUI_PATH and COMFYUI_PYTHON")
    factory = comfy_host.ServerFactory(host, comfy_host.build_test_models(host), base_prefix="/tmp/pm-bench-la-",
                                       ports=port_range_from_env(args.ports))
    lookaheads = [int(x) for x in args.lookaheads.split(",")]
    gaps: dict[int, list[float]] = {n: [] for n in lookaheads}
    try:
        server = factory()
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "bench_lookahead.yaml")
            with open(path, "w", encoding="utf-8") as f:
                f.write(session_yaml(args.jobs))
            run_once(server, path, 0, "bench/warmup")            # loads the model once
            for rep in range(args.reps):
                for n in lookaheads:
                    gaps[n] += run_once(server, path, n, f"bench/la{n}_{rep}")
    finally:
        factory.close(keep=False)
    print(machine_line())
    print(f"{args.reps} sessions x {args.jobs} jobs (64x64, 1 step) per setting")
    print("lookahead | gaps | median ms | p90 ms | max ms")
    for n in lookaheads:
        g = sorted(gaps[n])
        print(f"{n:9d} | {len(g):4d} | {statistics.median(g):9.1f} | {g[int(0.9 * (len(g) - 1))]:6.1f} | {g[-1]:6.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
