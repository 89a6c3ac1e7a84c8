"""Gallery benchmark: listing a 10,000-image session (what the sidebar tab's GET
/prompt_media/session_view does), cold and warm, after one new image, the session list line, and
writing its index.html.

    python3 benchmarks/bench_gallery.py [--images 10000] [--reps 15] [--work /tmp/pm-gallery-bench]

Needs only the repository (stdlib + Pillow for the package's imports). The session is synthetic:
10 seeds x 100 prompts x 10 variations, sidecars in the saver's schema, each beside a small PNG
(the listing never opens an image). "Cold" is a fresh process-wide gallery, as after a server
start: without the index file every sidecar is read once; with it every sidecar is stat'ed and
the file answers; "index one image behind" adds an image the file does not hold (its records are
taken from the file, the new sidecar is read, the grid is built). "Warm" is the same gallery
asked again (the folder unchanged: one stat); "+1 image" adds one image and its sidecar between
two listings (the folder is listed and only the new sidecar is read), on a warm gallery and on
one that has only answered from the file so far. Each figure is the median (min-max) of --reps
runs (cold without the file: --reps / 5).
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
EXTRA = 900_000             # counts of the images the benchmark adds (and removes again)
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
    from prompt_media_pkg.core.session import gallery_index_path
    from prompt_media_pkg.core.session_page import page_data, render_page

    output = os.path.join(args.work, "output")
    folder = os.path.join(output, *REL.split("/"))
    print(machine_line(), f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    t0 = time.perf_counter()
    make_session(folder, args.images)
    print(f"session: {args.images:,} images in {folder} (ready in {time.perf_counter() - t0:.1f} s)")
    for name in os.listdir(folder):                 # leftovers of an earlier run's "+1 image"
        count = name.split("_", 1)[0]
        if count.isdigit() and int(count) > EXTRA:
            os.unlink(os.path.join(folder, name))
    os.makedirs(os.path.join(output, *REL.split("/")[:2], ".prompt_media"), exist_ok=True)   # a saver's root
    index_file = gallery_index_path(folder)
    if os.path.exists(index_file):
        os.unlink(index_file)
    src = os.path.join(folder, "001_seed_0")
    data = json.load(open(src + ".json", encoding="utf-8"))
    extra = [EXTRA]

    def add_image() -> str:
        extra[0] += 1
        name = os.path.join(folder, f"{extra[0]}_seed_0")
        os.link(src + ".png", name + ".png")
        data["task_id"] = extra[0]
        with open(name + ".json", "w", encoding="utf-8") as f:
            json.dump(data, f)
        return name

    def remove(name: str) -> None:
        for ext in (".png", ".json"):
            os.unlink(name + ext)

    def fresh() -> Gallery:                         # never writes the index by itself here
        return Gallery(output, save_delay=1e9)

    cold, size = [], 0
    for _ in range(max(1, args.reps // 5)):
        gallery = Gallery(output, stored=False)
        t = time.perf_counter()
        size = len(listing(gallery, folder))
        cold.append((time.perf_counter() - t) * 1000)
    warm = timed(lambda: listing(gallery, folder), args.reps)
    added = []
    for _ in range(args.reps):
        name = add_image()
        added += timed(lambda: listing(gallery, folder), 1)
    for i in range(EXTRA + 1, extra[0] + 1):
        remove(os.path.join(folder, f"{i}_seed_0"))

    stored = fresh().index(folder)                 # no file yet: every sidecar read, then written
    t = time.perf_counter()
    assert stored.save()
    save_ms = (time.perf_counter() - t) * 1000
    cold_stored = timed(lambda: listing(fresh(), folder), args.reps)
    assert listing(fresh(), folder) == listing(Gallery(output, stored=False), folder), "the file's answer differs"
    behind, added_after_file = [], []
    for _ in range(args.reps):
        name = add_image()
        behind += timed(lambda: listing(fresh(), folder), 1)
        remove(name)
        opened = fresh()
        listing(opened, folder)
        name = add_image()
        added_after_file += timed(lambda g=opened: listing(g, folder), 1)
        remove(name)

    summary_cold = timed(lambda: Gallery(output).summary(folder), max(1, args.reps // 3))
    t = time.perf_counter()
    page = render_page(page_data(folder, REL))
    page_ms = (time.perf_counter() - t) * 1000
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")

    print(f"\n{'measure':<44} {'median (min-max)':>26}  target")
    target = f"<= {TARGET_MS:.0f} ms"
    rows = [("listing, cold, no index file (reads all)", cold, target),
            ("listing, cold, index file", cold_stored, target),
            ("listing, cold, index file one image behind", behind, target),
            ("listing, warm (folder unchanged)", warm, target),
            ("listing after one new image", added, target),
            ("  ... right after a cold open from the file", added_after_file, target),
            ("session list line, folder not indexed", summary_cold, "")]
    for label, values, target in rows:
        met = "" if not target else ("  met" if statistics.median(values) <= TARGET_MS else "  MISSED")
        print(f"{label:<44} {fmt(values):>26}  {target}{met}")
    print(f"{'listing size':<44} {size / 1e6:>23.2f} MB")
    print(f"{'index file (written in the background)':<44} {save_ms:>23.0f} ms  "
          f"({os.path.getsize(index_file) / 1e6:.1f} MB)")
    print(f"{'index.html (read + render)':<44} {page_ms:>23.0f} ms  ({len(page) / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
