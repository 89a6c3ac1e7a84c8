"""Contact sheet / animation benchmark: time and peak RSS for 100 and 1,000 images of 512x512.

    python3 benchmarks/bench_contact_sheet.py [--reps 5] [--work /tmp/pm-sheet-bench]

Every measurement runs in a fresh subprocess so its peak RSS (VmHWM / ru_maxrss) belongs to that
one composition; a child that only imports the module gives the baseline. Flat memory means the
1,000-image peak is about the 100-image peak (one full-size image + one page, not the session).
Synthetic sessions are written once into --work (20 distinct noisy PNGs reused under 1,000 names:
every image is still decoded from its own file).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import import_package, machine_line


def peak_rss_mib() -> float:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024   # KiB on Linux


def child(folder: str, what: str) -> None:
    import_package()
    from prompt_media_pkg.core.contact_sheet import compose_session
    result = {"pages": 0, "seconds": 0.0}
    if what != "baseline":
        start, cpu = time.perf_counter(), time.process_time()
        made = compose_session(folder, sheet=what in ("sheet", "both"), animation=what in ("animation", "both"))
        result = {"pages": made.pages, "seconds": time.perf_counter() - start,
                  "cpu_seconds": time.process_time() - cpu, "images": made.images}
    result["peak_rss_mib"] = peak_rss_mib()
    print(json.dumps(result))


def make_session(folder: str, seeds: int, prompts: int, variations: int) -> None:
    marker = os.path.join(folder, ".complete")
    if os.path.exists(marker):
        return
    import_package()
    import numpy as np
    from PIL import Image

    from prompt_media_pkg.tests.synthetic_session import write_session

    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:512, 0:512]
    pool = []
    for k in range(20):   # smooth shapes + noise: decodes like a generated image, not a flat fill
        base = np.stack([(xx * (k + 1)) % 256, (yy * 2 + k * 12) % 256, ((xx + yy) // 2 + k * 30) % 256], -1)
        pool.append(Image.fromarray(np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)))
    write_session(folder, list(range(1, seeds + 1)), [f"prompt number {p}" for p in range(prompts)],
                  [{"style": f"style {v}"} for v in range(variations)], size=(512, 512),
                  image=lambda task_id, size: pool[task_id % len(pool)], compress_level=1)
    open(marker, "w").close()


def measure(folder: str, what: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", folder, what], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def versions() -> str:
    from PIL import Image
    return f"{machine_line()}; Python {platform.python_version()}, Pillow {Image.__version__}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5, help="repetitions of each 100-image case")
    parser.add_argument("--reps-large", type=int, default=2, help="repetitions of each 1,000-image case")
    parser.add_argument("--work", default="/tmp/pm-sheet-bench", help="where the synthetic sessions live")
    parser.add_argument("--sizes", default="100,1000", help="which sessions to measure, e.g. 100")
    parser.add_argument("--cases", default="sheet,animation,both", help="which compositions to measure")
    parser.add_argument("--child", nargs=2, metavar=("FOLDER", "WHAT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return

    sizes = {int(n) for n in args.sizes.split(",")}
    sessions = {n: os.path.join(args.work, f"s{n}") for n in (100, 1000) if n in sizes}
    start = time.perf_counter()
    for n, folder in sessions.items():
        make_session(folder, n // 100, 10, 10)
    print(f"sessions ready in {time.perf_counter() - start:.1f} s ({args.work})", flush=True)
    print(versions())
    base = min(measure(next(iter(sessions.values())), "baseline")["peak_rss_mib"] for _ in range(2))
    print(f"baseline (python + Pillow + module imported): peak RSS {base:.1f} MiB\n")
    print(f"load average before: {os.getloadavg()[0]:.1f} (wall time grows with other processes on the "
          f"machine; CPU time much less)")
    print(f"{'case':<20}{'images':>7}{'pages':>6}{'median s':>10}{'min s':>8}{'max s':>8}"
          f"{'median CPU s':>14}{'peak RSS MiB':>14}")
    labels = {"sheet": "sheet (jpg)", "animation": "animation (webp)", "both": "sheet + animation"}
    for what in args.cases.split(","):
        for n, folder in sessions.items():
            runs = [measure(folder, what) for _ in range(args.reps if n <= 100 else args.reps_large)]
            secs = [r["seconds"] for r in runs]
            print(f"{labels[what]:<20}{n:>7}{runs[0]['pages']:>6}"
                  f"{statistics.median(secs):>10.2f}{min(secs):>8.2f}{max(secs):>8.2f}"
                  f"{statistics.median(r['cpu_seconds'] for r in runs):>14.2f}"
                  f"{max(r['peak_rss_mib'] for r in runs):>14.1f}", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.1f}; image files: "
          f"{os.path.getsize(os.path.join(next(iter(sessions.values())), '001_seed_1.png')) / 1024:.0f} KiB PNG, 512x512")


if __name__ == "__main__":
    main()
