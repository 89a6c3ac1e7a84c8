"""Issue 17.5 benchmark: a session's throughput on one ComfyUI server against two
(``run_session.py --server A --server B``), where each job's time is sampling (many steps).

    python benchmarks/bench_servers.py [--jobs 12] [--steps 24] [--size 128] [--reps 3] [--ports 8270-8279]

Any python >= 3.10 with aiohttp and PyYAML runs it; the host is COMFYUI_PATH / COMFYUI_PYTHON. Two
servers with their own output folders (the project's tiny test checkpoint), each pinned to one
CPU core (every thread of its process) with one torch thread, as one GPU each would be. Each
repetition runs the same session on server A alone and on A + B, alternating, and times the
CLI's own run (first job queued to last image saved, its ``done`` event). The ratio is one
server's time over two servers' time: the speed-up (2.0 is perfect).
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


def session_yaml(jobs: int, steps: int, size: int) -> str:
    return (f"prompts: [{', '.join(f'prompt {i}' for i in range(jobs))}]\n"
            f"seeds: [1]\nsteps: {steps}\nwidth: {size}\nheight: {size}\n")


def pin(pid: int, cpu: int) -> None:
    """Every thread of process ``pid`` on CPU ``cpu`` (threads made later inherit it)."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        os.sched_setaffinity(int(tid), {cpu})


def run_once(servers, yaml_path: str, root: str) -> tuple[float, dict[str, int]]:
    """(seconds of the session, jobs per server) of one CLI run."""
    cmd = [sys.executable, os.path.join(REPO, "run_session.py"), yaml_path, "--checkpoint", CHECKPOINT,
           "--root", root, "--compose", "none", "--events", "json"]
    for server in servers:
        cmd += ["--server", server.url]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=3600, check=False)
    if out.returncode != 0:
        raise SystemExit(f"run_session.py failed ({out.returncode}):\n{out.stderr[-3000:]}")
    events = [json.loads(line) for line in out.stdout.splitlines()]
    per_server: dict[str, int] = {}
    for e in events:
        if e["event"] == "saved":
            per_server[e.get("server", servers[0].url)] = per_server.get(e.get("server", servers[0].url), 0) + 1
    return events[-1]["seconds"], per_server


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", type=int, default=12)
    ap.add_argument("--steps", type=int, default=24)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--ports", default=os.environ.get("PM_BENCH_PORTS", "8270-8279"))
    args = ap.parse_args()
    host = comfy_host.host_config()
    if host is None:
        raise SystemExit("set COMFYUI_PATH and COMFYUI_PYTHON")
    cpus = sorted(os.sched_getaffinity(0))
    factory = comfy_host.ServerFactory(host, comfy_host.build_test_models(host), base_prefix="/tmp/pm-bench-sv-",
                                       ports=port_range_from_env(args.ports))
    one, two, spread = [], [], []
    try:
        servers = [factory(), factory()]
        for i, server in enumerate(servers):
            pin(server.proc.pid, cpus[i % len(cpus)])
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "bench_servers.yaml")
            with open(path, "w", encoding="utf-8") as f:
                f.write(session_yaml(args.jobs, args.steps, args.size))
            for server in servers:                                  # loads the model on each
                run_once([server], path, "bench/warmup")
            for rep in range(args.reps):
                one.append(run_once(servers[:1], path, f"bench/one_{rep}")[0])
                seconds, per_server = run_once(servers, path, f"bench/two_{rep}")
                two.append(seconds)
                spread.append(per_server)
    finally:
        factory.close(keep=False)
    print(machine_line())
    print(f"{args.reps} sessions of {args.jobs} jobs ({args.size}x{args.size}, {args.steps} steps) "
          f"per setting; each server pinned to one of CPUs {cpus[:2]}, one torch thread")
    print("servers | seconds per session (each rep) | median s | images/s")
    for label, times in (("1", one), ("2", two)):
        print(f"{label:>7} | {', '.join(f'{t:.1f}' for t in times):>30} | {statistics.median(times):8.1f} | "
              f"{args.jobs / statistics.median(times):8.2f}")
    ratios = [a / b for a, b in zip(one, two)]
    print(f"speed-up (1 server's time / 2 servers'): median {statistics.median(ratios):.2f} "
          f"(each rep: {', '.join(f'{r:.2f}' for r in ratios)}); jobs per server with two: "
          + "; ".join(", ".join(f"{n}" for n in s.values()) for s in spread))
    return 0


if __name__ == "__main__":
    sys.exit(main())
