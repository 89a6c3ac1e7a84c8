#!/usr/bin/env python3
"""Regenerate the README pictures from a running ComfyUI that has this extension installed.

    python scripts/make_readme_images.py --url http://127.0.0.1:8188 --checkpoint tiny_sd15.ckpt
    python scripts/make_readme_images.py --url ... --only workflow      # one picture
    python scripts/make_readme_images.py --only icon                    # no server needed

docs/img/workflow.png
    workflows/prompt_media_session.json loaded in the real ComfyUI editor (headless Chromium
    through Playwright, as the browser tests drive it), the view zoomed so the whole graph fits
    the canvas; the LoRA Chain gets one row (``--lora``, default: the first LoRA the server lists).
docs/img/session_sheet.jpg
    a real session of example_prompts/oom_quickstart.yaml (12 jobs), made small (128x128,
    4 steps: a modified copy of the file, see tests/host/shrink.py) and run with
    run_session.py; the Session Saver composes the contact sheet when the last job is saved,
    and it is fetched through ComfyUI's /view route. With the project's tiny test checkpoint
    the images are coloured noise: that model makes nothing else.
docs/img/lora_chain.png
    a checkpoint feeding a LoRA Chain of three rows, one switched off, drawn through the mouse
    as tests/browser/test_lora_chain_ui.py does (the server needs the project's test LoRAs).
docs/img/gallery_tab.png, docs/img/session_page.png
    the "Prompt Media" sidebar tab on a real session (the same small quickstart session as the
    sheet, run into its own root) with one image's parameters, and that session's index.html,
    copied out through /view and opened from disk with no network; both drawn as
    tests/browser/test_gallery_ui.py draws them.
docs/img/icon.png
    the registry icon (pyproject.toml [tool.comfy] Icon), drawn with Pillow.

Needs the ``playwright`` package and Debian's chromium for the screenshot (see docs/testing.md,
browser tier; ``CHROMIUM`` overrides /usr/bin/chromium) and Pillow. Look at each picture
before committing it; each is kept under ~300 KB.
"""
from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
IMG = REPO / "docs" / "img"
UI_WORKFLOW = REPO / "workflows" / "prompt_media_session.json"
QUICKSTART = REPO / "example_prompts" / "oom_quickstart.yaml"
VIEWPORT = (1600, 900)
# front-end settings for a clean picture (no minimap, zoom menu, render stats or source badges);
# the user's values are put back afterwards (these defaults when they had none)
CLEAN_VIEW = {"Comfy.Minimap.Visible": (False, True), "Comfy.Graph.CanvasMenu": (False, True),
              "Comfy.Graph.CanvasInfo": (False, True),
              "Comfy.NodeBadge.NodeSourceBadgeMode": ("None", "Hide built-in")}
MAX_BYTES = 300_000

sys.path.insert(0, str(REPO / "tests" / "browser"))
sys.path.insert(0, str(REPO / "tests" / "host"))


def _register_package() -> None:
    """The repo as ``prompt_media_pkg`` without running its ComfyUI __init__ (as the tests do)."""
    import importlib.util
    if "prompt_media_pkg" not in sys.modules:
        spec = importlib.util.spec_from_file_location("prompt_media_pkg", REPO / "__init__.py",
                                                      submodule_search_locations=[str(REPO)])
        sys.modules["prompt_media_pkg"] = importlib.util.module_from_spec(spec)


def make_workflow_screenshot(url: str, lora: str | None, out: Path) -> None:
    from frontend import SETTINGS, http_json

    if lora is None:
        listed = http_json(url, "/object_info/LoraLoader")["LoraLoader"]["input"]["required"]["lora_name"][0]
        lora = listed[0] if listed else None
    before = http_json(url, "/api/settings") or {}
    http_json(url, "/api/settings", {**SETTINGS, **{k: v for k, (v, _) in CLEAN_VIEW.items()}}, "POST")
    try:
        png, errors = _screenshot(url, lora)
    finally:
        http_json(url, "/api/settings", {k: before.get(k, default) for k, (_, default) in CLEAN_VIEW.items()}, "POST")
    if errors:
        raise SystemExit("the front end reported errors:\n" + "\n".join(errors))
    save_small(png, out)


def _screenshot(url: str, lora: str | None) -> tuple[bytes, list[str]]:
    from frontend import FrontEnd, launch_browser
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = launch_browser(pw)
        front = FrontEnd(browser, url, viewport=VIEWPORT)
        front.js("async (wf) => { await app.loadGraphData(wf); }", json.loads(UI_WORKFLOW.read_text(encoding="utf-8")))
        if lora:
            front.js("""(lora) => {
                const chain = app.graph._nodes.find(n => n.type === 'PromptMediaLoraChain');
                chain.addLoraRow({lora, strength_model: 0.8, strength_clip: 0.6});
            }""", lora)
        front.redraw()
        front.page.wait_for_timeout(1500)        # the OOM node asks the server for its status
        # fit every node (title bars included) into the canvas, with a margin; clip to the graph
        clip = front.js("""() => {
            const th = LiteGraph.NODE_TITLE_HEIGHT, pad = 16;
            let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
            for (const n of app.graph._nodes) {
                x0 = Math.min(x0, n.pos[0]); y0 = Math.min(y0, n.pos[1] - th);
                x1 = Math.max(x1, n.pos[0] + n.size[0]); y1 = Math.max(y1, n.pos[1] + n.size[1]);
            }
            const r = app.canvas.canvas.getBoundingClientRect();
            const scale = Math.min((r.width - 2 * pad) / (x1 - x0), (r.height - 2 * pad) / (y1 - y0));
            const ds = app.canvas.ds;
            ds.scale = scale;
            ds.offset = [(r.width / scale - (x1 - x0)) / 2 - x0, (r.height / scale - (y1 - y0)) / 2 - y0];
            app.canvas.deselectAll?.();
            app.canvas.setDirty(true, true);
            const [ax, ay] = ds.convertOffsetToCanvas([x0, y0]), [bx, by] = ds.convertOffsetToCanvas([x1, y1]);
            return {x: r.left + Math.max(0, ax - pad), y: r.top + Math.max(0, ay - pad),
                    width: Math.min(r.width, bx - ax + 2 * pad), height: Math.min(r.height, by - ay + 2 * pad)};
        }""")
        front.redraw()
        png = front.page.screenshot(clip=clip)
        errors = list(front.errors)
        front.close()
        browser.close()
    return png, errors


def make_lora_chain_screenshot(url: str, out: Path) -> None:
    from frontend import SETTINGS, FrontEnd, http_json, launch_browser
    from playwright.sync_api import sync_playwright

    _register_package()
    http_json(url, "/api/settings", SETTINGS, "POST")        # as the browser tests: no template modal
    from test_lora_chain_ui import draw_lora_chain

    with sync_playwright() as pw, tempfile.TemporaryDirectory() as tmp:
        browser = launch_browser(pw)
        front = FrontEnd(browser, url)
        draw_lora_chain(front, Path(tmp) / "lora_chain.png")
        errors = list(front.errors)
        front.close()
        browser.close()
        if errors:
            raise SystemExit("the front end reported errors:\n" + "\n".join(errors))
        save_small((Path(tmp) / "lora_chain.png").read_bytes(), out)


def run_quickstart(url: str, checkpoint: str, root: str) -> tuple[str, list[str]]:
    """The quickstart session, small (128x128, 4 steps), run with run_session.py into ``root``:
    (its folder inside the output directory, its image names)."""
    from shrink import shrink

    with tempfile.TemporaryDirectory() as tmp:
        small = Path(tmp) / "oom_quickstart_128px.yaml"
        small.write_text(shrink(QUICKSTART.read_text(encoding="utf-8"), width=128, height=128, steps=4),
                         encoding="utf-8")
        run = subprocess.run([sys.executable, str(REPO / "run_session.py"), str(small), "--server", url,
                              "--checkpoint", checkpoint, "--root", root, "--compose", "sheet"],
                             capture_output=True, text=True)
    if run.returncode != 0:
        raise SystemExit(f"run_session.py failed (exit {run.returncode}):\n{run.stderr}")
    images = [Path(line.strip()) for line in run.stdout.splitlines() if line.strip().endswith(".png")]
    subfolder = "/".join([root, *images[-1].parent.parts[-4:]])     # the CLI prints full paths
    print(f"{len(images)} images in output/{subfolder}")
    return subfolder, [p.name for p in images]


def view(url: str, subfolder: str, name: str) -> bytes:
    query = urllib.parse.urlencode({"filename": name, "subfolder": subfolder, "type": "output"})
    with urllib.request.urlopen(f"{url}/view?{query}", timeout=60) as r:
        return r.read()


def make_session_sheet(url: str, checkpoint: str, out: Path) -> None:
    subfolder, _names = run_quickstart(url, checkpoint, "readme/images")
    save_small(view(url, subfolder, "contact_sheet.jpg"), out)


def make_gallery_pictures(url: str, checkpoint: str, tab_out: Path, page_out: Path) -> None:
    from frontend import SETTINGS, FrontEnd, http_json, launch_browser
    from playwright.sync_api import sync_playwright

    _register_package()
    from test_gallery_ui import draw_gallery_tab, draw_session_page

    subfolder, names = run_quickstart(url, checkpoint, "readme/gallery")
    http_json(url, "/api/settings", SETTINGS, "POST")
    with sync_playwright() as pw, tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "session"                   # the folder as a user would unpack it
        copy.mkdir()
        for name in ["index.html", *names]:
            (copy / name).write_bytes(view(url, subfolder, name))
        browser = launch_browser(pw)
        front = FrontEnd(browser, url)
        draw_gallery_tab(front, subfolder, names[1], Path(tmp) / "tab.png")
        errors = list(front.errors)
        front.close()
        draw_session_page(browser, copy / "index.html", names[1], Path(tmp) / "page.png")
        browser.close()
        if errors:
            raise SystemExit("the front end reported errors:\n" + "\n".join(errors))
        save_small((Path(tmp) / "tab.png").read_bytes(), tab_out)
        save_small((Path(tmp) / "page.png").read_bytes(), page_out)


def make_icon(out: Path) -> None:
    """A contact sheet in miniature: a 3x3 grid of tiles, hue across, light down."""
    import colorsys

    from PIL import Image, ImageDraw

    size, scale = 400, 4                        # drawn 4x and scaled down: smooth edges
    big = size * scale
    im = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    draw = ImageDraw.Draw(im)
    draw.rounded_rectangle((0, 0, big - 1, big - 1), radius=84 * scale, fill=(28, 30, 44, 255))
    margin, gap = 64 * scale, 20 * scale
    tile = (big - 2 * margin - 2 * gap) // 3
    for row in range(3):
        for col in range(3):
            r, g, b = colorsys.hls_to_rgb(0.58 - col * 0.2, 0.42 + row * 0.14, 0.75)
            x, y = margin + col * (tile + gap), margin + row * (tile + gap)
            draw.rounded_rectangle((x, y, x + tile, y + tile), radius=22 * scale,
                                   fill=(int(r * 255), int(g * 255), int(b * 255), 255))
    buf = io.BytesIO()
    im.resize((size, size), Image.LANCZOS).save(buf, "PNG", optimize=True)
    save_small(buf.getvalue(), out)


def save_small(data: bytes, out: Path) -> None:
    """Write ``data``; a PNG over MAX_BYTES is reduced to 256 colours, a JPEG re-encoded smaller."""
    from PIL import Image

    if len(data) > MAX_BYTES:
        with Image.open(io.BytesIO(data)) as im:
            buf = io.BytesIO()
            if out.suffix == ".png":
                im.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT).save(buf, "PNG", optimize=True)
            else:
                for quality in (85, 75, 65, 55):
                    buf = io.BytesIO()
                    im.convert("RGB").save(buf, "JPEG", quality=quality, optimize=True, progressive=True)
                    if buf.tell() <= MAX_BYTES:
                        break
            data = buf.getvalue()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    print(f"wrote {out.relative_to(REPO)} ({len(data) // 1000} KB)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="a running ComfyUI with this extension (workflow, sheet)")
    parser.add_argument("--checkpoint", default="tiny_sd15.ckpt", help="checkpoint for the session (sheet)")
    parser.add_argument("--lora", help="LoRA for the chain row in the screenshot (default: the first listed)")
    parser.add_argument("--only", nargs="+", choices=("workflow", "lora_chain", "sheet", "gallery", "icon"),
                        default=["workflow", "lora_chain", "sheet", "gallery", "icon"])
    args = parser.parse_args()
    if {"workflow", "lora_chain", "sheet", "gallery"} & set(args.only) and not args.url:
        parser.error("--url is needed for the screenshots and the session sheet")
    url = (args.url or "").rstrip("/")
    if "icon" in args.only:
        make_icon(IMG / "icon.png")
    if "workflow" in args.only:
        make_workflow_screenshot(url, args.lora, IMG / "workflow.png")
    if "lora_chain" in args.only:
        make_lora_chain_screenshot(url, IMG / "lora_chain.png")
    if "sheet" in args.only:
        make_session_sheet(url, args.checkpoint, IMG / "session_sheet.jpg")
    if "gallery" in args.only:
        make_gallery_pictures(url, args.checkpoint, IMG / "gallery_tab.png", IMG / "session_page.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
