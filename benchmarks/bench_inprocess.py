"""In-process parts of the session benchmark, run with ComfyUI's python (bench_session.py starts
it; it also runs alone and prints one JSON object):

    COMFYUI_PATH=/tmp/comfy /tmp/comfyenv/bin/python benchmarks/bench_inprocess.py expansion
    COMFYUI_PATH=/tmp/comfy /tmp/comfyenv/bin/python benchmarks/bench_inprocess.py saver \
        --work /tmp/pm-bench-saver --models <test models dir>

expansion: parse + validate + expand a generated 10,000-job file (median of --reps), and parse +
    validate every YAML file of tests/data/corpus (total per pass, median of --reps passes).
saver: our Session Saver vs core SaveImage on the same 512x512 image tensor, the same prompt graph
    and workflow (PNG metadata) and compress level 4, alternating one image each, called exactly as
    ComfyUI's executor calls them (one fresh prompt dict per call, as every queued run brings its
    own). In process because this isolates the two nodes' own work from sampling and queue noise
    that would swamp a few milliseconds on a loaded 2-core machine, and makes 512x512 possible
    without sampling 512x512 on CPU. Then a cProfile pass over our saver says where the time goes.
"""
from __future__ import annotations

import argparse
import copy
import cProfile
import json
import os
import pstats
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import REPO, import_package

CORPUS = os.path.join(REPO, "tests", "data", "corpus")
CORPUS_FILES = 34           # tests/data/corpus/NOTICE.md: a benchmark over fewer files measures less
LORAS = (("tiny_lora_attn.safetensors", 0.8, 0.7), ("tiny_lora_conv.safetensors", 0.6, 0.6),
         ("tiny_lora_diffusers.safetensors", 0.5, 0.4))
CHECKPOINT = "tiny_sd15.ckpt"


def session_yaml(prompts: int, values: int, seeds: int, *, size: int = 64, steps: int = 2,
                 randoms: int = 0) -> str:
    """A prompt media file of prompts x values x seeds jobs with the 3 test LoRAs (the negative
    is fixed, the positive differs per job). ``randoms`` adds a random variable of that many values."""
    lines = ["prompt_settings:", '  prefix: "benchmark scene"', '  negative: "blurry, low quality"',
             "prompts:"]
    lines += [f'  - "subject number {p}, a small house by a lake"' for p in range(prompts)]
    lines += ["variations:", "  style:", "    type: sequential", "    values:"]
    lines += [f'      - "style {v}"' for v in range(values)]
    if randoms:
        lines += ["  light:", "    type: random", "    values:"]
        lines += [f'      - "light {v}"' for v in range(randoms)]
    lines += ["loras:"]
    for name, sm, sc in LORAS:
        lines += [f'  - name: "{name}"', f"    strength_model: {sm}", f"    strength_clip: {sc}"]
    lines += [f"steps: {steps}", "cfg: 7.0", f"width: {size}", f"height: {size}", "sampler: euler",
              "scheduler: normal", f"seeds: [{', '.join(str(1000 + s) for s in range(seeds))}]"]
    return "\n".join(lines) + "\n"


def _median(values):
    values = sorted(values)
    n = len(values)
    return values[n // 2] if n % 2 else (values[n // 2 - 1] + values[n // 2]) / 2


def _stat(values):
    return {"median": _median(values), "min": min(values), "max": max(values), "n": len(values)}


# ----------------------------------------------------------------------------- expansion

def session_jobs(prompts: int, values: int, seeds: int) -> list[dict]:
    """The jobs of session_yaml(...) as the OOM node makes them (positive, seed, ...)."""
    import_package()
    from prompt_media_pkg.core.expand import expand
    from prompt_media_pkg.core.schema import load_prompt_media
    return expand(load_prompt_media(session_yaml(prompts, values, seeds), "bench_session.yaml"))


def bench_expansion(reps: int) -> dict:
    import_package()
    from prompt_media_pkg.core.expand import expand
    from prompt_media_pkg.core.schema import load_prompt_media, read_text_file

    text = session_yaml(100, 10, 10, randoms=5)         # 100 x 10 x 10 = 10,000 jobs
    big, n_jobs = [], 0
    for _ in range(reps):
        t0 = time.perf_counter()
        media = load_prompt_media(text, "bench_10000.yaml")
        jobs = expand(media, max_jobs=10_000)
        big.append(time.perf_counter() - t0)
        n_jobs = len(jobs)
    parse_only = []
    for _ in range(reps):
        t0 = time.perf_counter()
        load_prompt_media(text, "bench_10000.yaml")
        parse_only.append(time.perf_counter() - t0)

    files = sorted(os.path.join(d, f) for d, _, fs in os.walk(CORPUS) for f in fs
                   if f.lower().endswith((".yaml", ".yml")))
    if len(files) != CORPUS_FILES:
        raise SystemExit(f"bench_inprocess: {CORPUS} holds {len(files)} prompt files, expected {CORPUS_FILES}")
    corpus, failed = [], {}
    for _ in range(reps):
        t0 = time.perf_counter()
        for path in files:
            try:
                load_prompt_media(read_text_file(path, os.path.basename(path)), os.path.basename(path))
            except Exception as e:          # a file our schema refuses still counts (time spent)
                failed[os.path.relpath(path, CORPUS)] = str(e)[:200]
        corpus.append(time.perf_counter() - t0)
    return {"jobs": n_jobs, "expand_10000": _stat(big), "parse_10000": _stat(parse_only),
            "corpus_files": len(files), "corpus_bytes": sum(os.path.getsize(p) for p in files),
            "corpus": _stat(corpus), "corpus_refused": failed}


# ----------------------------------------------------------------------------- saver

def _comfy_imports(comfyui: str, work: str, models: str):
    sys.path.insert(0, comfyui)
    from comfy.cli_args import args
    args.cpu = True                        # as the server runs here (--cpu); no CUDA probing
    import utils.install_util  # noqa: F401  bind ComfyUI's utils package first, as main.py does

    import folder_paths
    folder_paths.set_output_directory(os.path.join(work, "output"))
    folder_paths.set_input_directory(os.path.join(work, "input"))
    folder_paths.set_temp_directory(os.path.join(work, "temp"))
    for kind in ("checkpoints", "loras"):
        folder_paths.add_model_folder_path(kind, os.path.join(models, kind), is_default=True)
    import nodes as comfy_nodes  # ComfyUI's own nodes module (SaveImage)
    import_package(nodes_without_init=True)   # no PromptServer here: skip nodes/__init__ (routes)
    from prompt_media_pkg.nodes.saver import PromptMediaSessionSaver
    return comfy_nodes, PromptMediaSessionSaver


def _test_image(size: int):
    """A smooth picture with noise (compresses like a generated image, not like a flat fill)."""
    import numpy as np
    import torch
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[0:size, 0:size]
    base = np.stack([(xx * 3) % 256, (yy * 2 + 40) % 256, ((xx + yy) // 2) % 256], -1).astype(np.float32)
    img = np.clip(base + rng.normal(0, 10, base.shape), 0, 255) / 255.0
    return torch.from_numpy(img.astype(np.float32))[None]     # [1, H, W, 3] like VAEDecode


def _workflow_pair():
    """The project's session API workflow as the prompt, and a UI-format stand-in of similar
    size as extra_pnginfo["workflow"] (both savers embed both)."""
    with open(os.path.join(REPO, "workflows", "api", "prompt_media_session.json")) as f:
        prompt = json.load(f)
    prompt["1"]["inputs"]["ckpt_name"] = CHECKPOINT
    ui = None
    for name in sorted(os.listdir(os.path.join(REPO, "workflows"))):
        if name.endswith(".json") and "api" not in name:
            with open(os.path.join(REPO, "workflows", name)) as f:
                ui = json.load(f)
            break
    if ui is None:
        ui = {"nodes": [{"id": int(k), "type": v["class_type"], "widgets_values": list(v["inputs"].values()),
                         "pos": [0, 0], "size": [300, 100]} for k, v in prompt.items()],
              "links": [], "version": 0.4}
    return prompt, {"workflow": ui}


def bench_saver(comfyui: str, work: str, models: str, reps: int, size: int) -> dict:
    comfy_nodes, SessionSaver = _comfy_imports(comfyui, work, models)
    import folder_paths

    from prompt_media_pkg.core.expand import expand
    from prompt_media_pkg.core.hashing import sha256_file
    from prompt_media_pkg.core.schema import load_prompt_media

    media = load_prompt_media(session_yaml(10, 2, 5, size=size), "bench_saver.yaml")
    jobs = expand(media)
    stack = [{"name": n, "strength_model": sm, "strength_clip": sc,
              "sha256": sha256_file(folder_paths.get_full_path("loras", n))} for n, sm, sc in LORAS]
    image = _test_image(size)
    prompt, extra = _workflow_pair()
    ours, core = SessionSaver(), comfy_nodes.SaveImage()
    root = f"bench_saver_{os.getpid()}"

    def call_ours(i):
        return ours.save(image, jobs[i % len(jobs)], root, prompt_media=media, lora_stack=stack,
                         project_id="", compose="none", prompt=p, extra_pnginfo=e, unique_id="10")

    def call_core(i):
        return core.save_images(image, filename_prefix=f"{root}_core/img", prompt=p, extra_pnginfo=e)

    # warm-up: first job opens the session, hashes the checkpoint once (cached after, as in a server)
    p, e = copy.deepcopy(prompt), copy.deepcopy(extra)
    call_ours(0), call_core(0)
    t_ours, t_core = [], []
    for i in range(1, reps + 1):
        for fn, out in ((call_ours, t_ours), (call_core, t_core)) if i % 2 else \
                ((call_core, t_core), (call_ours, t_ours)):
            p, e = copy.deepcopy(prompt), copy.deepcopy(extra)      # a new prompt per run
            t0 = time.perf_counter()
            fn(i)
            out.append(time.perf_counter() - t0)

    # where the time goes: cProfile over our saver (and core's, for the PNG encoder's share)
    def profile(fn, n):
        prof = cProfile.Profile()
        for i in range(n):
            nonlocal p, e
            p, e = copy.deepcopy(prompt), copy.deepcopy(extra)
            prof.enable()
            fn(reps + 1 + i)
            prof.disable()
        return pstats.Stats(prof)

    n_prof = max(5, reps // 2)
    parts_ours = _breakdown(profile(call_ours, n_prof), n_prof, PARTS_OURS)
    parts_core = _breakdown(profile(call_core, n_prof), n_prof, PARTS_CORE)
    png = os.path.join(work, "output", root)
    sample = next((os.path.join(d, f) for d, _, fs in os.walk(png) for f in fs if f.endswith(".png")), None)
    return {"size": size, "ours": _stat(t_ours), "core": _stat(t_core),
            "ratios": _stat([a / b for a, b in zip(t_ours, t_core)]),
            "breakdown_ours": parts_ours, "breakdown_core": parts_core,
            "png_kib": os.path.getsize(sample) / 1024 if sample else None}


# part -> functions (file base name, function name) whose cumulative time it is; the parts are
# disjoint (no function of one part calls one of another), the rest is "other"
FSYNC = ("~", "<built-in method posix.fsync>")
PARTS_OURS = {
    "PNG encode (Pillow save)": [("Image.py", "save")],
    "fsync on the saver's path (file + folder)": [FSYNC],
    "PNG metadata (json.dumps of prompt/workflow)": [("pngmeta.py", "comfy_chunks")],
    "sha256 of the PNG": [("hashing.py", "sha256_bytes")],
    "sidecar JSON": [("atomic.py", "json_bytes")],
    "tensor -> uint8": [("saver.py", "_pixels")],
    "graph walk + params": [("graph_params.py", "find_sampler_params"), ("graph_params.py", "resolve"),
                            ("sidecar.py", "parameters_section"), ("pngmeta.py", "a1111_parameters"),
                            ("sidecar.py", "applied_loras")],
    "session bookkeeping (which session, numbers)": [("session.py", "for_job"), ("saver.py", "_saved_before")],
    "hand-off to the background fsync": [("atomic.py", "add")],
}
PARTS_CORE = {
    "PNG encode (Pillow save)": [("Image.py", "save")],
    "fsync on the saver's path (file + folder)": [FSYNC],
    "PNG metadata (json.dumps of prompt/workflow)": [("__init__.py", "dumps")],
    "folder scan (numbering)": [("folder_paths.py", "get_save_image_path")],
}


def _breakdown(stats: pstats.Stats, n: int, parts: dict) -> dict:
    """Milliseconds per image of each part, plus the profiled total and the rest."""
    cumulative: dict = {}
    fsyncs = 0
    for (filename, _line, name), (_cc, nc, _tt, ct, _callers) in stats.stats.items():
        key = (os.path.basename(filename), name)
        cumulative[key] = cumulative.get(key, 0.0) + ct
        if key == FSYNC:
            fsyncs += nc
    total = sum(tt for (_cc, _nc, tt, _ct, _c) in stats.stats.values())
    out = {part: sum(cumulative.get(k, 0.0) for k in keys) * 1000 / n for part, keys in parts.items()}
    out["other"] = total * 1000 / n - sum(out.values())
    out["total (profiled)"] = total * 1000 / n
    out["fsync calls per image (count)"] = fsyncs / n
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=("expansion", "saver", "jobs"))
    ap.add_argument("--shape", default="10,2,5", help="jobs: prompts,values,seeds of session_yaml")
    ap.add_argument("--reps", type=int, default=9)
    ap.add_argument("--comfyui", default=os.environ.get("COMFYUI_PATH", ""))
    ap.add_argument("--work", default="/tmp/pm-bench-saver")
    ap.add_argument("--models", default="")
    ap.add_argument("--size", type=int, default=512)
    a = ap.parse_args()
    if a.what == "expansion":
        out = bench_expansion(a.reps)
    elif a.what == "jobs":
        out = {"jobs": session_jobs(*(int(x) for x in a.shape.split(",")))}
    else:
        if not a.comfyui or not a.models:
            ap.error("saver needs --comfyui (or COMFYUI_PATH) and --models")
        os.makedirs(a.work, exist_ok=True)
        out = bench_saver(a.comfyui, a.work, a.models, a.reps, a.size)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
