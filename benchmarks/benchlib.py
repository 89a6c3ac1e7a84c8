"""Small helpers the benchmarks share: statistics rows, the machine line, the repo as a package,
and timing queued prompts over one open websocket (standard library only).

Timing a run: from just before ``POST /prompt`` to ComfyUI's end-of-run websocket message
(``executing`` with ``node: None`` for that prompt, sent after the history entry is stored).
Every event of the prompt is stamped on arrival, so a node's time is the gap from its
``executing`` event to the next ``executing`` / ``execution_success`` event (loopback latency
is well under a millisecond).
"""
from __future__ import annotations

import importlib.util
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "prompt_media_pkg"


def import_package(nodes_without_init: bool = False) -> None:
    """Register the repo as ``prompt_media_pkg`` without running its ComfyUI ``__init__``; with
    ``nodes_without_init`` also ``prompt_media_pkg.nodes`` (its __init__ registers HTTP routes,
    which needs a running PromptServer), so single node modules import in a plain process."""
    for name, folder in ((PACKAGE, REPO), (f"{PACKAGE}.nodes", os.path.join(REPO, "nodes"))):
        if name not in sys.modules and (name == PACKAGE or nodes_without_init):
            spec = importlib.util.spec_from_file_location(name, os.path.join(folder, "__init__.py"),
                                                          submodule_search_locations=[folder])
            sys.modules[name] = importlib.util.module_from_spec(spec)


# ----------------------------------------------------------------------------- statistics

@dataclass
class Stat:
    values: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def min(self) -> float:
        return min(self.values)

    @property
    def max(self) -> float:
        return max(self.values)

    def fmt(self, scale: float = 1.0, digits: int = 1) -> str:
        """'median (min-max)' of values * scale."""
        return (f"{self.median * scale:.{digits}f} ({self.min * scale:.{digits}f}-"
                f"{self.max * scale:.{digits}f})")


class Table:
    """Rows of (item, ours, core/reference, ratio or figure, target, verdict), printed aligned."""

    HEAD = ("#", "measure", "ours", "reference", "ratio / figure", "target", "met")

    def __init__(self):
        self.rows: list[tuple[str, ...]] = []

    def add(self, num: str, measure: str, ours: str = "", reference: str = "", figure: str = "",
            target: str = "", met: bool | str | None = None) -> None:
        self.rows.append((num, measure, ours, reference, figure, target,
                          met if isinstance(met, str) else "" if met is None else ("yes" if met else "NO")))

    def render(self) -> str:
        rows = [self.HEAD] + self.rows
        widths = [max(len(r[i]) for r in rows) for i in range(len(self.HEAD))]
        line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"
        sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
        return "\n".join([line(rows[0]), sep] + [line(r) for r in rows[1:]])


def ratio_verdict(median: float, spread: Stat, target: float) -> str:
    """'yes' only when every repetition's ratio (or figure) meets ``target``; 'NO' when the
    median misses it; otherwise the spread crosses the target and the runs cannot say."""
    if spread.max <= target:
        return "yes"
    if median > target:
        return "NO"
    return f"unclear (spread to {spread.max:.3f})"


# ----------------------------------------------------------------------------- machine

def load_average() -> str:
    try:
        return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "load average unknown"


def machine_line() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    # the machine is shared: its load when the line is printed is part of what it was
    return f"{cpu}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}, {load_average()}"


def host_versions(python: str, comfyui_path: str) -> str:
    """Python, torch, Pillow, numpy of ComfyUI's python, and the ComfyUI version."""
    code = ("import sys, platform, torch, PIL, numpy; sys.path.insert(0, sys.argv[1]);\n"
            "try:\n import comfyui_version; v = comfyui_version.__version__\n"
            "except Exception: v = '?'\n"
            "print(f'ComfyUI {v}; Python {platform.python_version()}, torch {torch.__version__}, '"
            "f'Pillow {PIL.__version__}, numpy {numpy.__version__}')")
    try:
        return subprocess.run([python, "-c", code, comfyui_path], capture_output=True, text=True,
                              timeout=120).stdout.strip() or "versions unknown"
    except (OSError, subprocess.SubprocessError):
        return "versions unknown"


def filesystem_of(path: str) -> str:
    try:
        out = subprocess.run(["df", "-T", path], capture_output=True, text=True, timeout=10).stdout
        fields = out.strip().splitlines()[-1].split()
        return f"{fields[1]} ({fields[0]})"
    except (OSError, IndexError, subprocess.SubprocessError):
        return "unknown"


def peak_rss_mib(pid: int) -> float:
    """VmHWM (peak resident set) of a process, MiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM in /proc/{pid}/status")


def process_cpu_s(pid: int) -> float:
    """utime + stime of a process (all its threads), seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ----------------------------------------------------------------------------- timed runs

class RunFailed(RuntimeError):
    pass


@dataclass
class TimedRun:
    prompt_id: str
    wall_s: float
    events: list = field(default_factory=list)      # (seconds since POST, type, data)
    cpu_s: float | None = None                      # server process CPU time (all threads) during the run
    started: float = 0.0                            # time.perf_counter() at the POST
    ended: float = 0.0                              # ... at the end-of-run message
    job: int | None = None                          # the job index, when the caller tracks one
    split: dict[str, float] = field(default_factory=dict)   # CPU seconds by part, when a benchmark splits them

    def executed_nodes(self) -> list[str]:
        return [str(d["node"]) for _, k, d in self.events if k == "executing" and d.get("node") is not None]

    def cached_nodes(self) -> list[str]:
        return [str(n) for _, k, d in self.events if k == "execution_cached" for n in d.get("nodes", [])]

    def phase_times(self) -> dict[str, float]:
        """'queue': POST to execution_start (validation in the POST handler, queueing);
        'nodes': execution_start to execution_success; 'finish': to the end-of-run message."""
        at = {k: t for t, k, _d in self.events if k in ("execution_start", "execution_success")}
        start, done = at.get("execution_start"), at.get("execution_success")
        if start is None or done is None:
            return {}
        return {"queue": start, "nodes": done - start, "finish": self.wall_s - done}

    def node_times(self) -> dict[str, float]:
        """Seconds per executed node id (arrival of its ``executing`` to the next one)."""
        marks = [(t, str(d["node"]) if k == "executing" and d.get("node") is not None else None)
                 for t, k, d in self.events if k in ("executing", "execution_success")]
        out: dict[str, float] = {}
        for (t, node), (t_next, _) in zip(marks, marks[1:]):
            if node is not None:
                out[node] = out.get(node, 0.0) + (t_next - t)
        return out


class TimedClient:
    """Posts prompts and waits on ONE websocket kept open across runs (no connect per run)."""

    def __init__(self, client, timeout: float = 600.0, pid: int | None = None):
        self.client, self.timeout, self.pid = client, timeout, pid
        self.ws = client.websocket()

    def run(self, prompt: dict) -> TimedRun:
        cpu0 = process_cpu_s(self.pid) if self.pid else None
        t0 = time.perf_counter()
        status, resp = self.client.post_prompt(prompt)
        if status != 200 or "prompt_id" not in resp:
            raise RunFailed(f"POST /prompt refused (HTTP {status}): {str(resp)[:2000]}")
        run = TimedRun(resp["prompt_id"], 0.0, started=t0)
        deadline = t0 + self.timeout
        while True:
            left = deadline - time.perf_counter()
            if left <= 0:
                raise RunFailed(f"prompt {run.prompt_id} did not finish in {self.timeout:.0f}s")
            for kind, data in self.client.events(self.ws, timeout=left):
                if data.get("prompt_id") != run.prompt_id:
                    continue
                now = time.perf_counter()
                run.events.append((now - t0, kind, data))
                if kind == "execution_error":
                    if data.get("exception_type") == "ExecutionBlocked":
                        continue
                    raise RunFailed(f"node {data.get('node_id')} ({data.get('node_type')}): "
                                    f"{data.get('exception_type')}: {data.get('exception_message')}")
                if kind == "execution_interrupted":
                    raise RunFailed(f"prompt {run.prompt_id} interrupted")
                if kind == "executing" and data.get("node") is None:
                    run.wall_s, run.ended = now - t0, now
                    if cpu0 is not None:
                        run.cpu_s = process_cpu_s(self.pid) - cpu0
                    return run
            raise RunFailed("websocket closed")

    def close(self) -> None:
        self.ws.close()
