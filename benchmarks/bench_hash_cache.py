"""The first image after a restart, with a 2 GB model: how long the Session Saver takes when
the model was never hashed (cold), when its hash is in the persistent cache (warm), and with
hashing switched off (the reference). Run with ComfyUI's python:

    COMFYUI_PATH=/tmp/comfy /tmp/comfyenv/bin/python benchmarks/bench_hash_cache.py \
        [--size-gb 2] [--reps 5] [--work /tmp/pm-bench-hash]

Each measurement is a fresh process (a restart): it imports ComfyUI and the extension, builds the
saver and times its first ``save()`` of a 512x512 image whose graph names the model, exactly as
ComfyUI's executor calls it. Modes run in rotating order; cold deletes the cache file first. The
model is a 2 GB file of incompressible bytes in a checkpoints folder; it sits in the page cache
(written just before), so cold measures hashing at memory speed: from a disk that has to be read
it is slower still. Prints one JSON object; the target is warm <= 1.1 x no-hash.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import Stat, machine_line

MODEL = "bench_2gb.safetensors"
MODES = ("cold", "warm", "no-hash")
BLOCK = 64 * 1024 * 1024


def make_model(path: str, size: int) -> None:
    """``size`` bytes of random 64 MiB blocks (incompressible, like weights), written once."""
    if os.path.exists(path) and os.path.getsize(path) == size:
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".part"
    with open(tmp, "wb") as f:
        left = size
        while left:
            block = os.urandom(min(BLOCK, left))
            f.write(block)
            left -= len(block)
    os.replace(tmp, path)


def child(mode: str, comfyui: str, work: str) -> dict:
    """One restart: import, then time the first save."""
    from bench_inprocess import _comfy_imports, _test_image, _workflow_pair
    _, SessionSaver = _comfy_imports(comfyui, work, os.path.join(work, "models"))
    import folder_paths
    folder_paths.set_user_directory(os.path.join(work, "user"))
    from prompt_media_pkg.core.expand import expand
    from prompt_media_pkg.core.schema import load_prompt_media
    from prompt_media_pkg.nodes import saver as saver_module
    if mode == "no-hash":
        saver_module.model_sha256 = lambda name: None
    saver_module.plugin_version(), saver_module.system_info()     # process-wide look-ups, not hashing
    media = load_prompt_media("prompts: [a lighthouse]\nseeds: [1]\nwidth: 512\nheight: 512\n", "bench_hash.yaml")
    job = expand(media)[0]
    prompt, extra = _workflow_pair()
    prompt["1"]["inputs"]["ckpt_name"] = MODEL
    image = _test_image(512)
    node = SessionSaver()
    t0 = time.perf_counter()
    out = node.save(image, job, f"bench_hash_{mode}", prompt_media=media, lora_stack=[], project_id="",
                    compose="none", prompt=prompt, extra_pnginfo=extra, unique_id="10")
    seconds = time.perf_counter() - t0
    [saved] = out["ui"]["images"]
    png = os.path.join(folder_paths.get_output_directory(), saved["subfolder"], saved["filename"])
    with open(os.path.splitext(png)[0] + ".json", encoding="utf-8") as f:
        sha = json.load(f)["parameters"]["model_sha256"]
    shutil.rmtree(os.path.join(work, "output", f"bench_hash_{mode}"))
    return {"mode": mode, "seconds": seconds, "model_sha256": sha}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-gb", type=float, default=2.0)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--work", default="/tmp/pm-bench-hash")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (and the model)")
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    comfyui = os.environ.get("COMFYUI_PATH", "/tmp/comfy")
    if args.child:
        print(json.dumps(child(args.child, comfyui, args.work)))
        return 0

    model = os.path.join(args.work, "models", "checkpoints", MODEL)
    os.makedirs(os.path.join(args.work, "models", "loras"), exist_ok=True)
    t0 = time.perf_counter()
    make_model(model, int(args.size_gb * 2**30))
    cache = os.path.join(args.work, "user", "prompt_media", "file_hashes.json")
    times: dict[str, list[float]] = {m: [] for m in MODES}
    shas = set()
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    try:
        for rep in range(args.reps):
            for mode in MODES[rep % 3:] + MODES[:rep % 3]:            # rotate the order
                if mode == "cold" and os.path.exists(cache):
                    os.remove(cache)
                if mode == "warm" and not os.path.exists(cache):    # a warm run needs a cache
                    subprocess.run([sys.executable, __file__, "--child", "cold", "--work", args.work],
                                   env=env, check=True, capture_output=True)
                out = subprocess.run([sys.executable, __file__, "--child", mode, "--work", args.work],
                                     env=env, check=True, capture_output=True, text=True)
                result = json.loads(out.stdout.strip().splitlines()[-1])
                times[mode].append(result["seconds"])
                if result["model_sha256"]:
                    shas.add(result["model_sha256"])
    finally:
        if not args.keep:
            shutil.rmtree(args.work, ignore_errors=True)
    assert len(shas) == 1, f"cold and warm disagree on the model's sha256: {shas}"
    stats = {m: Stat(v) for m, v in times.items()}
    ratio = Stat([w / n for w, n in zip(times["warm"], times["no-hash"])])
    report = {"machine": machine_line(), "model_gb": args.size_gb, "reps": args.reps,
              "seconds": {m: {"median": s.median, "min": s.min, "max": s.max} for m, s in stats.items()},
              "warm_over_no_hash": {"median": ratio.median, "min": ratio.min, "max": ratio.max},
              "cold_over_no_hash": stats["cold"].median / stats["no-hash"].median,
              "target_met": ratio.median <= 1.1, "wall_s": time.perf_counter() - t0}
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
