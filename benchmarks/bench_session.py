"""Session benchmark: our nodes against ComfyUI's own, measured in one run, printed as one table.

    python3 benchmarks/bench_session.py [--comfyui /tmp/comfy --python /tmp/comfyenv/bin/python]
                                        [--ports 8250-8259] [--only 1,2,3,4,5] [--quick]

Any python >= 3.10 with aiohttp (ComfyUI's own, or the test venv) runs this driver; the ComfyUI
host is --comfyui / --python or COMFYUI_PATH / COMFYUI_PYTHON. It uses the project's tiny test checkpoint and LoRAs
(tests/fixtures/make_test_models.py) at 64x64, 2 steps, so our overhead is magnified, and starts
real ComfyUI servers with this repository linked in (tests/comfy_host.py, as the host tests do).

1. steady-state session overhead: the project's session API workflow (loader -> OOM "one job per
   run" -> LoRA chain of 3 -> core encode/sample/decode -> session saver) against the core-only
   graph (CheckpointLoaderSimple -> 3 x LoraLoader -> CLIPTextEncode x2 / EmptyLatentImage /
   KSampler / VAEDecode -> SaveImage) with the same positive text per job (both re-encode it),
   the same constant negative, seeds and settings. Blocks of consecutive jobs per side, blocks
   alternating, first job of each block dropped, the whole repeated --repeat times; each job's
   server CPU time (all threads, /proc) and wall time from POST /prompt to the end-of-run
   websocket message. The benchmark-only extension benchmarks/host_probe logs, inside the server,
   ComfyUI's own timed gc.collect() (main.py runs one every 10 s of wall time whichever graph
   runs, ~0.4 s on this heap: it lands on one job in ~15) and the CPU time spent inside the core
   nodes both graphs run on the same inputs (encode, empty latent, KSampler, decode: ~97 % of a
   job, and nearly all of the machine's noise). Row 1, the verdict: a job's CPU time as the
   shared nodes' mean over both sides plus each side's own rest (validation, loader/OOM/chain/
   saver or 3 LoraLoaders/SaveImage, the executor, messages; the timed collection taken off);
   every run's ratio must meet the target. 1s checks the premise (the shared nodes cost the same
   in both graphs); 1c is the whole job's CPU time as measured before, timed collections in.
2. expansion (no server): bench_inprocess.py expansion.
3. LoRA chain: re-queue with nothing changed (from the runs of 1: chain node in ComfyUI's
   execution_cached message, not executed; "LoRA Chain: read" log lines = file reads), and the
   chain vs 3 core LoraLoaders when the strengths change every run (alternating runs).
4. saver at 512x512 (no server): bench_inprocess.py saver.
5. peak RSS (VmHWM) of the ComfyUI process, a fresh server per case: 10 vs 200 jobs, ours one
   prompt per job and all jobs in one prompt, and the core graph one prompt per job (the
   baseline), the cases interleaved and repeated --memory-repeat times.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from bench_inprocess import CHECKPOINT, LORAS, session_yaml  # noqa: E402
from benchlib import (  # noqa: E402
    REPO,
    Stat,
    Table,
    TimedClient,
    filesystem_of,
    host_versions,
    import_package,
    load_average,
    machine_line,
    peak_rss_mib,
    ratio_verdict,
)

import_package()
from prompt_media_pkg.tests import comfy_host  # noqa: E402
from prompt_media_pkg.tests.comfy_host import port_range_from_env  # noqa: E402

INPUT_FOLDER = "prompt_media"
SESSION_FILE = "bench_session.yaml"
READ_LINE = "LoRA Chain: read "
NEGATIVE = "blurry, low quality"
API_WORKFLOW = os.path.join(REPO, "workflows", "api", "prompt_media_session.json")
# node ids of the session API workflow
CKPT, LOADER, OOM, CHAIN, POS, NEG, LATENT, SAMPLER, DECODE, SAVER = (str(i) for i in range(1, 11))
CORE_LORA_IDS = ("41", "42", CHAIN)      # the core graph's LoraLoaders; the last one takes the chain's id
HOST_PROBE = {"prompt_media_host_probe": Path(HERE) / "host_probe"}     # benchmark-only extension


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- graphs

def our_graph(job_index: int, root: str, file: str = SESSION_FILE, run: str = "one job per run") -> dict:
    """The project's session API workflow with the test checkpoint and our prompt file."""
    with open(API_WORKFLOW) as f:
        wf = json.load(f)
    wf[CKPT]["inputs"]["ckpt_name"] = CHECKPOINT
    wf[LOADER]["inputs"].update(file=file, preset="", yaml_text="")
    wf[OOM]["inputs"].update(run=run, job_index=job_index)
    wf[CHAIN]["inputs"].setdefault("strength_mode", "shared")
    wf[SAVER]["inputs"].update(root=root, compose="none")
    return wf


def _core_loras(wf: dict, model: list, clip: list, strengths) -> None:
    for node_id, (name, _sm, _sc), (sm, sc) in zip(CORE_LORA_IDS, LORAS, strengths):
        wf[node_id] = {"class_type": "LoraLoader", "inputs": {
            "model": model, "clip": clip, "lora_name": name, "strength_model": sm, "strength_clip": sc}}
        model, clip = [node_id, 0], [node_id, 1]


def _sampling(wf: dict, positive: str, seed: int, size: int = 64, steps: int = 2) -> None:
    wf[POS] = {"class_type": "CLIPTextEncode", "inputs": {"text": positive, "clip": [CHAIN, 1]}}
    wf[NEG] = {"class_type": "CLIPTextEncode", "inputs": {"text": NEGATIVE, "clip": [CHAIN, 1]}}
    wf[LATENT] = {"class_type": "EmptyLatentImage", "inputs": {"width": size, "height": size, "batch_size": 1}}
    wf[SAMPLER] = {"class_type": "KSampler", "inputs": {
        "model": [CHAIN, 0], "seed": seed, "steps": steps, "cfg": 7.0, "sampler_name": "euler",
        "scheduler": "normal", "positive": [POS, 0], "negative": [NEG, 0], "latent_image": [LATENT, 0],
        "denoise": 1.0}}
    wf[DECODE] = {"class_type": "VAEDecode", "inputs": {"samples": [SAMPLER, 0], "vae": [CKPT, 2]}}


def core_graph(positive: str, seed: int, prefix: str) -> dict:
    """The same job through core nodes only (same ids where the node has the same role)."""
    wf = {CKPT: {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": CHECKPOINT}}}
    _core_loras(wf, [CKPT, 0], [CKPT, 1], [(sm, sc) for _n, sm, sc in LORAS])
    _sampling(wf, positive, seed)
    wf[SAVER] = {"class_type": "SaveImage", "inputs": {"images": [DECODE, 0], "filename_prefix": prefix}}
    return wf


def strength_graph(chain: bool, strengths, seed: int = 5) -> dict:
    """Checkpoint -> LoRAs (our chain's rows, or 3 core LoraLoaders) -> sampling -> PreviewImage."""
    wf = {CKPT: {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": CHECKPOINT}}}
    if chain:
        rows = {f"lora_{i + 1}": {"on": True, "lora": name, "strength_model": sm, "strength_clip": sc}
                for i, ((name, _a, _b), (sm, sc)) in enumerate(zip(LORAS, strengths))}
        wf[CHAIN] = {"class_type": "PromptMediaLoraChain", "inputs": {
            "model": [CKPT, 0], "clip": [CKPT, 1], "strength_mode": "separate", **rows}}
    else:
        _core_loras(wf, [CKPT, 0], [CKPT, 1], strengths)
    _sampling(wf, "a lighthouse on a cliff", seed)
    wf[SAVER] = {"class_type": "PreviewImage", "inputs": {"images": [DECODE, 0]}}
    return wf


# ----------------------------------------------------------------------------- helpers

def put_yaml(server, name: str, text: str) -> None:
    folder = server.input_dir / INPUT_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / (name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, folder / name)


def child(python: str, *args: str) -> dict:
    proc = subprocess.run([python, os.path.join(HERE, "bench_inprocess.py"), *args], capture_output=True,
                          text=True, env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"))
    if proc.returncode != 0:
        raise RuntimeError(f"bench_inprocess.py {' '.join(args)} failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def jobs_of(python: str, prompts: int, values: int, seeds: int) -> list[dict]:
    return child(python, "jobs", "--shape", f"{prompts},{values},{seeds}")["jobs"]


def ms(stat: Stat) -> str:
    return stat.fmt(1000, 1) + " ms"


def mean_cpu(runs) -> float:
    """Server CPU seconds per job, the mean: /proc counts CPU time in 10 ms ticks, so one job's
    figure is a whole number of ticks (a median of them is too) while their mean is unbiased."""
    return sum(r.cpu_s for r in runs) / len(runs)


def split_cpu(server, runs) -> list[dict]:
    """Each run's CPU seconds split by benchmarks/host_probe: ``timed_gc`` (ComfyUI's timed
    gc.collect() inside the run's window; one straddling its edge counts by the share of its wall
    time inside), ``shared`` (inside the core nodes both graphs run) and ``rest`` (all else), and
    the timed collections."""
    status, body = server.client.request("GET", "/prompt_media_bench/probe")
    if status != 200:
        raise SystemExit(f"benchmarks/host_probe is not loaded in the server (HTTP {status})")
    timed = [c for c in body["collections"] if c["timed"]]
    for r in runs:
        gc_s = sum(c["cpu_s"] * inside / max(c["end"] - c["start"], 1e-9) for c in timed
                   if (inside := min(c["end"], r.ended) - max(c["start"], r.started)) > 0)
        shared = body["shared_cpu_s"].get(r.prompt_id, 0.0)
        r.split = {"timed_gc": gc_s, "shared": shared, "rest": r.cpu_s - gc_s - shared}
    return timed


def mean_part(runs, part: str) -> float:
    return sum(r.split[part] for r in runs) / len(runs)


def job_ratio(ours, core) -> float:
    """A job's CPU time, ours over core's: the shared nodes' mean over both sides (the same work
    on the same inputs) plus each side's own rest."""
    shared = mean_part(ours + core, "shared")
    return (shared + mean_part(ours, "rest")) / (shared + mean_part(core, "rest"))


def node_medians(runs, ids) -> dict[str, Stat]:
    out = {}
    for node_id in ids:
        vals = [r.node_times().get(node_id) for r in runs]
        vals = [v for v in vals if v is not None]
        if vals:
            out[node_id] = Stat(vals)
    return out


# ----------------------------------------------------------------------------- 1 + 3a

def bench_overhead(server, python: str, blocks: int, block_size: int, table: Table, notes: list[str],
                   repeat: int = 1, dump: str | None = None) -> None:
    values, seeds = 2, 5
    needed = blocks * block_size + 1                      # every block its own jobs, + the warm-up
    prompts = max(10, -(-needed // (values * seeds)))
    total = prompts * values * seeds
    put_yaml(server, SESSION_FILE, session_yaml(prompts, values, seeds))
    jobs = jobs_of(python, prompts, values, seeds)
    timed = TimedClient(server.client, pid=server.proc.pid)
    # warm up both sides (model load, LoRA files, first encodes) on the last job
    last = total - 1
    timed.run(our_graph(last, "bench/ours"))
    timed.run(core_graph(jobs[last]["positive"], jobs[last]["seed"], "bench/core/img"))

    blocks_of = []                    # per repetition: [(side, kept runs) for each block of each side]
    steady_reads = steady_chain_runs = steady_chain_cached = 0
    first_reads = 0
    for rep in range(repeat):
        rep_blocks = []
        for b in range(blocks):
            order = ("ours", "core") if b % 2 == 0 else ("core", "ours")
            for side in order:
                kept = []
                for j in range(block_size):
                    index = b * block_size + j
                    if side == "ours":
                        mark = server.log_mark()
                        run = timed.run(our_graph(index, "bench/ours"))
                        reads = server.log_since(mark).count(READ_LINE)
                        if j == 0:
                            first_reads += reads
                        else:
                            steady_reads += reads
                            steady_chain_runs += CHAIN in run.executed_nodes()
                            steady_chain_cached += CHAIN in run.cached_nodes()
                    else:
                        job = jobs[index]
                        run = timed.run(core_graph(job["positive"], job["seed"], "bench/core/img"))
                    run.job = index
                    if j > 0:
                        kept.append(run)
                rep_blocks.append((side, kept))
            block = {side: mean_cpu(runs) for side, runs in rep_blocks[-2:]}
            log(f"run {rep + 1}/{repeat} block {b + 1}/{blocks}: server CPU per job ours "
                f"{block['ours'] * 1000:.0f} ms, core {block['core'] * 1000:.0f} ms ({load_average()})")
        blocks_of.append(rep_blocks)
    timed.close()
    every = [r for rep_blocks in blocks_of for _side, runs in rep_blocks for r in runs]
    timed_gcs = split_cpu(server, every)

    per_run = []          # (job ratio, its block-pair ratios, shared-node ratio, whole-CPU ratio, wall ratio)
    side_runs = {"ours": [], "core": []}
    for rep, rep_blocks in enumerate(blocks_of):
        rep_runs = {"ours": [], "core": []}
        block_pairs = []
        for k in range(0, len(rep_blocks), 2):
            pair = dict(rep_blocks[k:k + 2])
            block_pairs.append(job_ratio(pair["ours"], pair["core"]))
        for side, runs in rep_blocks:
            rep_runs[side] += runs
        o, c = rep_runs["ours"], rep_runs["core"]
        wall = {side: Stat([r.wall_s for r in runs]).median for side, runs in rep_runs.items()}
        per_run.append((job_ratio(o, c), Stat(block_pairs), mean_part(o, "shared") / mean_part(c, "shared"),
                        mean_cpu(o) / mean_cpu(c), wall["ours"] / wall["core"]))
        log(f"run {rep + 1}/{repeat}: job CPU ratio {per_run[-1][0]:.4f} (rest per job ours "
            f"{mean_part(o, 'rest') * 1000:.1f} ms, core {mean_part(c, 'rest') * 1000:.1f} ms); shared nodes "
            f"{per_run[-1][2]:.3f}; whole CPU {per_run[-1][3]:.3f}; wall {per_run[-1][4]:.3f}")
        for side in side_runs:
            side_runs[side] += rep_runs[side]
    if dump:
        with open(dump, "w") as f:
            json.dump([{"run": rep, "side": side, "job": r.job, "cpu_s": r.cpu_s, "wall_s": r.wall_s, **r.split}
                       for rep, rep_blocks in enumerate(blocks_of) for side, runs in rep_blocks for r in runs], f)

    def runs_of(i: int) -> str:
        values = Stat([r[i] for r in per_run])
        return f"runs {', '.join(f'{r[i]:.3f}' for r in per_run)}: spread {values.max - values.min:.3f}"

    so, sc = side_runs["ours"], side_runs["core"]
    ours, core = Stat([r.wall_s for r in so]), Stat([r.wall_s for r in sc])
    ratio = job_ratio(so, sc)
    pairs = Stat([x for r in per_run for x in r[1].values])
    # the verdict: every repetition's ratio meets the target (one run: every block pair's)
    spread = Stat([r[0] for r in per_run]) if repeat > 1 else pairs
    per_side = len(so) // repeat
    shared = mean_part(so + sc, "shared")
    table.add("1", f"session job, 64x64 2 steps: server CPU per job = shared core nodes' mean + own rest "
                   f"({repeat} run{'s' if repeat > 1 else ''} x {per_side} + {per_side} jobs, {blocks} interleaved blocks each)",
              f"{(shared + mean_part(so, 'rest')) * 1000:.1f} ms", f"{(shared + mean_part(sc, 'rest')) * 1000:.1f} ms",
              f"{ratio:.3f}x ({runs_of(0)}; block pairs {pairs.min:.3f}-{pairs.max:.3f})", "<= 1.02x",
              ratio_verdict(ratio, spread, 1.02))
    table.add("1r", "  own rest per job: all CPU but the shared nodes and the timed gc.collect",
              f"{mean_part(so, 'rest') * 1000:.1f} ms", f"{mean_part(sc, 'rest') * 1000:.1f} ms",
              f"{(mean_part(so, 'rest') - mean_part(sc, 'rest')) * 1000:+.1f} ms per job", "", None)
    table.add("1s", "  premise: shared nodes (encode, latent, KSampler, decode), CPU per job",
              f"{mean_part(so, 'shared') * 1000:.1f} ms", f"{mean_part(sc, 'shared') * 1000:.1f} ms",
              f"{mean_part(so, 'shared') / mean_part(sc, 'shared'):.3f}x ({runs_of(2)})", "", None)
    count = {side: sum(r.split["timed_gc"] > 0 for r in runs) for side, runs in side_runs.items()}
    table.add("1c", "  whole job CPU, timed gc.collect in (jobs it landed on), as measured before",
              f"{mean_cpu(so) * 1000:.1f} ms ({count['ours']})", f"{mean_cpu(sc) * 1000:.1f} ms ({count['core']})",
              f"{mean_cpu(so) / mean_cpu(sc):.3f}x ({runs_of(3)})", "", None)
    table.add("1w", "  same jobs, wall clock, median (POST to end; follows the machine's load)", ms(ours), ms(core),
              f"{ours.median / core.median:.3f}x ({runs_of(4)})", "", None)
    if timed_gcs:
        gc_cpu = Stat([c["cpu_s"] for c in timed_gcs])
        notes.append(f"1: ComfyUI's timed gc.collect ran {len(gc_cpu.values)} times in the server's life, "
                     f"{gc_cpu.fmt(1000, 0)} ms CPU each (median, range)")
    # where a job's time goes, per node (median ms); same ids = same role
    names = {CKPT: "checkpoint", LOADER: "loader", OOM: "OOM", CHAIN: "LoRA chain / 3rd LoraLoader",
             "41": "LoraLoader 1", "42": "LoraLoader 2", POS: "encode positive", NEG: "encode negative",
             LATENT: "empty latent", SAMPLER: "KSampler", DECODE: "VAE decode", SAVER: "saver"}
    o, c = node_medians(side_runs["ours"], names), node_medians(side_runs["core"], names)
    phases = {side: {k: Stat([r.phase_times()[k] for r in side_runs[side] if r.phase_times()])
                     for k in ("queue", "nodes", "finish")} for side in side_runs}
    fmt = lambda s: f"{s.median * 1000:8.2f}" if s else "       -"
    lines = ["1: where a job's time goes in steady state, median ms (ours | core; '-' = cached, not run):"]
    lines.append(f"    {'POST -> execution_start (validation)':<38} {fmt(phases['ours']['queue'])} | {fmt(phases['core']['queue'])}")
    for node_id, name in names.items():
        lines.append(f"    {'node: ' + name:<38} {fmt(o.get(node_id))} | {fmt(c.get(node_id))}")
    lines.append(f"    {'execution_success -> end message':<38} {fmt(phases['ours']['finish'])} | {fmt(phases['core']['finish'])}")
    notes.append("\n".join(lines))
    # our own cost per job, from the parts only one side has (robust against the machine's noise)
    mine = [LOADER, OOM, CHAIN, SAVER]
    theirs = ["41", "42", CHAIN, SAVER]
    own = (phases["ours"]["queue"].median + sum(o[k].median for k in mine if k in o)) - \
          (phases["core"]["queue"].median + sum(c[k].median for k in theirs if k in c))
    table.add("1b", "  our added cost per job: validation + loader/OOM/chain/saver nodes minus core's",
              f"{own * 1000:.1f} ms", "", f"{own / core.median * 100:.1f}% of a core job (event arrival times: "
              "indicative)", "", None)
    n = len(side_runs["ours"])
    table.add("3a", f"chain re-queued unchanged ({n} steady runs): file reads / chain executions",
              f"{steady_reads} / {steady_chain_runs}", "",
              f"chain in execution_cached {steady_chain_cached}/{n}", "0 / 0",
              steady_reads == 0 and steady_chain_runs == 0)
    notes.append(f"3a: first job of each of our {blocks} blocks (after a core block): {first_reads} LoRA "
                 "file reads in total (the core block's prompt evicts our nodes from ComfyUI's cache)")


# ----------------------------------------------------------------------------- 3b

def bench_strength_change(server, blocks: int, block_size: int, table: Table, notes: list[str]) -> None:
    """Strengths change on every run, so every run re-applies the LoRAs; blocks per side as in 1
    (a node instance, and its loaded files, lives only while its prompt's graph is the current one)."""
    timed = TimedClient(server.client)
    base = [(sm, sc) for _n, sm, sc in LORAS]
    runs = {True: [], False: []}
    steady_reads = 0
    step = 0
    for b in range(blocks):
        for chain in ((True, False) if b % 2 == 0 else (False, True)):
            for j in range(block_size):
                step += 1
                strengths = [(sm + 0.001 * step, sc - 0.001 * step) for sm, sc in base]
                mark = server.log_mark()
                run = timed.run(strength_graph(chain, strengths))
                if j > 0:
                    runs[chain].append(run)
                    steady_reads += server.log_since(mark).count(READ_LINE)
    timed.close()
    chain_node = Stat([r.node_times()[CHAIN] for r in runs[True]])
    loaders = Stat([sum(r.node_times()[k] for k in CORE_LORA_IDS) for r in runs[False]])
    wall_chain, wall_core = Stat([r.wall_s for r in runs[True]]), Stat([r.wall_s for r in runs[False]])
    n = len(runs[True])
    table.add("3b", f"LoRAs re-applied (strengths change every run, {n} runs each): chain vs 3 LoraLoader nodes",
              ms(chain_node), ms(loaders), f"{chain_node.median / loaders.median:.2f}x", "", None)
    table.add("3c", "  same runs, whole job (POST to end)", ms(wall_chain), ms(wall_core),
              f"{wall_chain.median / wall_core.median:.3f}x", "", None)
    notes.append(f"3b: LoRA file reads by the chain in those {n} runs: {steady_reads} (state dicts are kept "
                 "per file; only the patches are rebuilt)")


# ----------------------------------------------------------------------------- 2, 4

def bench_expansion(python: str, reps: int, table: Table, notes: list[str]) -> None:
    r = child(python, "expansion", "--reps", str(reps))
    big = r["expand_10000"]
    table.add("2a", f"load + expand {r['jobs']:,} jobs (median of {big['n']})",
              f"{big['median'] * 1000:.1f} ({big['min'] * 1000:.1f}-{big['max'] * 1000:.1f}) ms", "",
              f"parse alone {r['parse_10000']['median'] * 1000:.1f} ms", "<= 50 ms",
              ratio_verdict(big["median"], Stat([big["min"], big["max"]]), 0.050))
    c = r["corpus"]
    table.add("2b", f"load all {r['corpus_files']} corpus files ({r['corpus_bytes'] / 1024:.0f} KiB)",
              f"{c['median'] * 1000:.0f} ({c['min'] * 1000:.0f}-{c['max'] * 1000:.0f}) ms", "", "",
              "<= 1 s", ratio_verdict(c["median"], Stat([c["min"], c["max"]]), 1.0))
    if r["corpus_refused"]:
        notes.append("2b: corpus files our schema refuses: " + "; ".join(f"{k}: {v}" for k, v in r["corpus_refused"].items()))


def bench_saver(host, models: Path, work: Path, reps: int, table: Table, notes: list[str]) -> None:
    r = child(str(host.python), "saver", "--comfyui", str(host.comfyui_path), "--models", str(models),
              "--work", str(work), "--reps", str(reps))
    o, c, q = r["ours"], r["core"], r["ratios"]
    fmt = lambda s: f"{s['median'] * 1000:.1f} ({s['min'] * 1000:.1f}-{s['max'] * 1000:.1f}) ms"
    ratio = o["median"] / c["median"]
    table.add("4", f"save one {r['size']}x{r['size']} image ({o['n']} each, alternating; PNG "
                   f"{r['png_kib']:.0f} KiB, level 4)", fmt(o), fmt(c),
              f"{ratio:.3f}x (pairs {q['min']:.2f}-{q['max']:.2f})", "<= 1.1x",
              ratio_verdict(ratio, Stat([q["min"], q["max"]]), 1.1))
    lines = [f"4: where a saver's time goes (cProfile, ms per image; output on {filesystem_of(str(work))}):"]
    parts = list(dict.fromkeys([*r["breakdown_ours"], *r["breakdown_core"]]))
    for part in parts:
        a, b = r["breakdown_ours"].get(part), r["breakdown_core"].get(part)
        lines.append(f"    {part:<46} {a if a is not None else float('nan'):7.2f} | "
                     f"{b if b is not None else float('nan'):7.2f}")
    notes.append("\n".join(lines))


# ----------------------------------------------------------------------------- 5

MEMORY_CASES = (("ours", "one job per run"), ("ours", "all jobs"), ("core", "one job per run"))


def bench_memory(factory, python: str, sizes: tuple[int, int], repeat: int, table: Table, notes: list[str]) -> None:
    """Peak RSS of a fresh server after a small and a large session, ours (one prompt per job,
    and one prompt for all jobs) and the core graph (one prompt per job: the only way core nodes
    run a session's different jobs), the cases interleaved and repeated."""
    shapes = {n: (n // 10, 2, 5) for n in sizes}           # prompts x 2 values x 5 seeds
    jobs = {n: jobs_of(python, *shapes[n]) for n in sizes}
    growth: dict[tuple[str, str], list[float]] = {case: [] for case in MEMORY_CASES}
    peaks: dict[tuple[str, str, int], list[float]] = {}
    for rep in range(repeat):
        for side, run in MEMORY_CASES:
            for n in sizes:
                server = factory()
                try:
                    put_yaml(server, SESSION_FILE, session_yaml(*shapes[n]))
                    idle = peak_rss_mib(server.proc.pid)
                    timed = TimedClient(server.client)
                    t0 = time.perf_counter()
                    if side == "core":
                        for job in jobs[n]:
                            timed.run(core_graph(job["positive"], job["seed"], "bench/mem/img"))
                    elif run == "all jobs":
                        timed.run(our_graph(0, "bench/mem", run=run))
                    else:
                        for i in range(n):
                            timed.run(our_graph(i, "bench/mem", run=run))
                    timed.close()
                    peak = peak_rss_mib(server.proc.pid)
                    images = len(server.output_files("bench/mem", "*.png"))
                    if images != n:
                        raise RuntimeError(f"memory case {side} {run} {n}: {images} images saved, expected {n}")
                    peaks.setdefault((side, run, n), []).append(peak)
                    log(f"memory run {rep + 1}/{repeat}, {side} {run} {n} jobs: peak RSS {peak:.0f} MiB "
                        f"(idle {idle:.0f}), {time.perf_counter() - t0:.0f} s ({load_average()})")
                finally:
                    factory.close(keep=False)
            small_peak, large_peak = peaks[(side, run, sizes[0])][-1], peaks[(side, run, sizes[1])][-1]
            growth[(side, run)].append(large_peak - small_peak)
    small, large = sizes
    fmt = lambda side, run: (f"{Stat(peaks[(side, run, small)]).median:.0f} -> {Stat(peaks[(side, run, large)]).median:.0f} "
                             f"MiB: {Stat(growth[(side, run)]).median:+.1f} "
                             f"(runs {', '.join(f'{g:+.1f}' for g in growth[(side, run)])})")
    core = fmt("core", "one job per run")
    runs = f"{repeat} run{'s' if repeat > 1 else ''}"
    for num, run in (("5", "one job per run"), ("5b", "all jobs")):
        mine = Stat(growth[("ours", run)])
        extra = Stat([g - c for g, c in zip(growth[("ours", run)], growth[("core", "one job per run")])])
        figure = f"ours minus core growth {extra.median:+.1f} MiB ({extra.min:+.1f} to {extra.max:+.1f})"
        if num == "5":                 # 50 MB = 47.7 MiB, on every run's growth
            met = ratio_verdict(mine.median, mine, 50 / 1.048576)
            table.add(num, f"peak RSS (VmHWM), one prompt per job: {small} -> {large} jobs ({runs})",
                      fmt("ours", run), core, figure, "growth within 50 MB", met)
        else:
            table.add(num, f"peak RSS (VmHWM), ours all {large} jobs in one prompt vs core one prompt per job "
                           f"({runs})", fmt("ours", run), core, figure, "(reported)", None)
    notes.append(f"5: a fresh server per case; cases interleaved (ours per job, ours all jobs, core per job; "
                 f"{small} then {large} jobs) and repeated {repeat} times; growth = peak after {large} jobs minus "
                 f"peak after {small}, per run. Core nodes have no one-prompt session, so 5b's reference is "
                 "core's one prompt per job.")


# ----------------------------------------------------------------------------- main

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--comfyui", help="ComfyUI source dir (default: $COMFYUI_PATH)")
    ap.add_argument("--python", help="ComfyUI's python (default: $COMFYUI_PYTHON)")
    ap.add_argument("--ports", default="8250-8259", help="port range for the servers")
    ap.add_argument("--base-prefix", default="/tmp/pm-bench-", help="base dirs of the servers")
    ap.add_argument("--only", default="1,2,3,4,5", help="which items to run, e.g. 1,3")
    ap.add_argument("--blocks", type=int, default=60, help="1: blocks per side in each run")
    ap.add_argument("--repeat", type=int, default=3, help="1: independent runs of the blocks (their ratios must agree)")
    ap.add_argument("--block-size", type=int, default=4,
                    help="1: jobs per block (the first is dropped); short blocks alternate the sides every "
                         "few seconds, so a slow spell of the machine falls on both")
    ap.add_argument("--lora-blocks", type=int, default=4, help="3b: blocks per side of strength-changing runs")
    ap.add_argument("--torch-threads", type=int, default=1,
                    help="OMP_NUM_THREADS for the servers and children (0: leave as is). On a shared, "
                         "loaded machine torch's spinning OpenMP threads make CPU jobs ~30x slower")
    ap.add_argument("--reps", type=int, default=15, help="2 and 4: repetitions")
    ap.add_argument("--memory-jobs", default="10,200", help="5: the two session sizes")
    ap.add_argument("--memory-repeat", type=int, default=3, help="5: runs of every memory case")
    ap.add_argument("--quick", action="store_true", help="fewer repetitions (a smoke run)")
    ap.add_argument("--dump", help="1: write every kept job's CPU and wall time to this JSON file")
    ap.add_argument("--keep", action="store_true", help="keep the servers' base dirs")
    a = ap.parse_args()
    if a.quick:
        a.blocks, a.block_size, a.lora_blocks, a.reps, a.memory_jobs, a.repeat = 2, 4, 2, 5, "10,20", 1
        a.memory_repeat = 1
    only = set(a.only.split(","))
    if a.torch_threads > 0:                 # inherited by the servers and the in-process children
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(a.torch_threads)
    host = comfy_host.host_config(a.comfyui, a.python)
    if host is None:
        raise SystemExit("no ComfyUI host: pass --comfyui DIR --python PYTHON or set COMFYUI_PATH/COMFYUI_PYTHON")
    started = time.time()
    header = [f"machine: {machine_line()}", f"host: {host_versions(str(host.python), str(host.comfyui_path))}",
              f"repo: {subprocess.run(['git', '-C', REPO, 'rev-parse', '--short', 'HEAD'], capture_output=True, text=True).stdout.strip() or '?'}",
              f"start: {time.strftime('%Y-%m-%d %H:%M:%S')}; "
              f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}"]
    log("\n".join(header))
    models = comfy_host.build_test_models(host)
    factory = comfy_host.ServerFactory(host, models, base_prefix=a.base_prefix, ports=port_range_from_env(a.ports),
                                       extensions=HOST_PROBE)
    table, notes = Table(), []
    try:
        if only & {"1", "3"}:
            server = factory()
            log(f"server on {server.url} ({server.startup_s:.0f} s)")
            if "1" in only or "3" in only:
                bench_overhead(server, str(host.python), a.blocks, a.block_size, table, notes, a.repeat, a.dump)
            if "3" in only:
                bench_strength_change(server, a.lora_blocks, a.block_size, table, notes)
            factory.close(keep=a.keep)
        if "2" in only:
            bench_expansion(str(host.python), a.reps, table, notes)
        if "4" in only:
            work = comfy_host.fresh_base_dir(a.base_prefix + "saver-")
            try:
                bench_saver(host, models, work, a.reps, table, notes)
            finally:
                if not a.keep:
                    import shutil
                    shutil.rmtree(work, ignore_errors=True)
        if "5" in only:
            small, large = (int(x) for x in a.memory_jobs.split(","))
            bench_memory(factory, str(host.python), (small, large), a.memory_repeat, table, notes)
    finally:
        factory.close(keep=a.keep)
    print("\n".join(header))
    print(f"end: {time.strftime('%H:%M:%S')} ({time.time() - started:.0f} s), {load_average()}\n")
    print(table.render())
    print()
    for note in notes:
        print(note)


if __name__ == "__main__":
    main()
