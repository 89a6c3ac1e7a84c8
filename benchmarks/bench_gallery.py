"""Gallery benchmark: listing a 10,000-image session (what the sidebar tab's GET
/prompt_media/session_view does), cold and warm, after one new image, the session list line, and
writing its index.html.

    python3 benchmarks/bench_gallery.py [--images 10000] [--reps 15] [--work /tmp/pm-gallery-bench]

Needs only the repository (stdlib + Pillow for the package's imports). The session is synthetic:
10 seeds x 100 prompts x 10 variations, sidecars in the saver's schema, each beside a small PNG
(the listing never opens an image). "Cold" is a fresh process-wide index (every sidecar read
once, as after a server start); "warm" is the same index asked again (the folder unchanged: one
stat); "+1 image" adds one image and its sidecar between two listings (the folder is listed and
only the new sidecar is read). Each figure is the median (min-max) of --reps runs.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import import_package, machine_line

TARGET_MS = 200.0
REL = "collections/images/2025/10/12/1430"


def make_session(folder: str, images: int) -> None:
    marker = os.path.join(folder, f".complete-{images}")
    if os.path.exists(marker):
        return
    from prompt_media_pkg.tests.synthetic_session import make_sidecar
    os.makedirs(folder, exist_ok=True)
    png = _tiny_png()
    prompts, variations = 100, 10
    seeds = max(1, images // (prompts * variations))
    count = 0
    for s in range(seeds):
        for p in range(prompts):
            for v in range(variations):
                count += 1
                name = f"{count:03d}_seed_{s}"
                sidecar = make_sidecar(task_id=count, seed=s, seed_index=s, prompt_index=p, variation_index=v,
                                       variations_per_prompt=variations, total=seeds * prompts * variations,
                                       base_prompt=f"prompt {p}: a castle on a hill at dawn, highly detailed",
                                       variation_values={"time": f"hour {v}", "style": "oil painting"},
                                       filename=name + ".png", folder=folder, width=1024, height=1024)
                with open(os.path.join(folder, name + ".json"), "w", encoding="utf-8") as f:
                    json.dump(sidecar, f, indent=2)
                with open(os.path.join(folder, name + ".png"), "wb") as f:
                    f.write(png)
    open(marker, "w").close()


def _tiny_png() -> bytes:
    from io import BytesIO

    from PIL import Image
    out = BytesIO()
    Image.new("RGB", (8, 8), (40, 90, 160)).save(out, format="PNG")
    return out.getvalue()


def listing(gallery, folder: str) -> bytes:
    """What the session_view route computes (nodes/gallery.session_view without ComfyUI)."""
    from prompt_media_pkg.core.gallery import compact_json, read_marks
    view = gallery.index(folder).view(gallery.relative(folder))
    extra = compact_json({"marks": read_marks(folder), "state": gallery.summary(folder)["state"]})
    return b'{"view":' + view + b"," + extra[1:]


def timed(fn, reps: int) -> list[float]:
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def fmt(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} ({min(values):.1f}-{max(values):.1f}) ms"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", type=int, default=10_000)
    p.add_argument("--reps", type=int, default=15)
    p.add_argument("--work", default="/tmp/pm-gallery-bench")
    args = p.parse_args()
    import_package()
    from prompt_media_pkg.core.gallery import Gallery
    from prompt_media_pkg.core.session_page import page_data, render_page

    output = os.path.join(args.work, "output")
    folder = os.path.join(output, *REL.split("/"))
    print(machine_line())
    t0 = time.perf_counter()
    make_session(folder, args.images)
    print(f"session: {args.images:,} images in {folder} (ready in {time.perf_counter() - t0:.1f} s)")
    for name in os.listdir(folder):                 # leftovers of an earlier run's "+1 image"
        if name.startswith("9"):
            os.unlink(os.path.join(folder, name))

    cold, size = [], 0
    for _ in range(max(1, args.reps // 5)):
        gallery = Gallery(output)
        t = time.perf_counter()
        size = len(listing(gallery, folder))
        cold.append((time.perf_counter() - t) * 1000)
    warm = timed(lambda: listing(gallery, folder), args.reps)

    src = os.path.join(folder, "001_seed_0")
    data = json.load(open(src + ".json", encoding="utf-8"))
    added, n = [], 900_000
    for _ in range(args.reps):
        n += 1
        name = os.path.join(folder, f"{n}_seed_0")
        os.link(src + ".png", name + ".png")
        data["task_id"] = n
        with open(name + ".json", "w", encoding="utf-8") as f:
            json.dump(data, f)
        added += timed(lambda: listing(gallery, folder), 1)
    for i in range(900_001, n + 1):
        for ext in (".png", ".json"):
            os.unlink(os.path.join(folder, f"{i}_seed_0{ext}"))

    summary_cold = timed(lambda: Gallery(output).summary(folder), max(1, args.reps // 3))
    t = time.perf_counter()
    page = render_page(page_data(folder, REL))
    page_ms = (time.perf_counter() - t) * 1000

    print(f"\n{'measure':<44} {'median (min-max)':>26}  target")
    rows = [("listing, cold (every sidecar read once)", cold, ""),
            ("listing, warm (folder unchanged)", warm, f"<= {TARGET_MS:.0f} ms"),
            ("listing after one new image", added, f"<= {TARGET_MS:.0f} ms"),
            ("session list line, folder not indexed", summary_cold, "")]
    for label, values, target in rows:
        met = "" if not target else ("  met" if statistics.median(values) <= TARGET_MS else "  MISSED")
        print(f"{label:<44} {fmt(values):>26}  {target}{met}")
    print(f"{'listing size':<44} {size / 1e6:>23.2f} MB")
    print(f"{'index.html (read + render)':<44} {page_ms:>23.0f} ms  ({len(page) / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
