#!/usr/bin/env python3
"""Regenerate the UI-format templates (workflows/<name>.json) and their thumbnails
(workflows/<name>.jpg, what the template browser shows) from the API-format workflows in
workflows/api/, through ComfyUI's real front end, so the two never drift apart by hand.

    python scripts/make_ui_workflow.py --url http://127.0.0.1:8188 [NAME ...]

Each template gets its nodes laid out in columns and a Note node saying what to pick (the Note
is a front-end node: it is in the UI workflow, never in the API prompt). The columns leave room
above every node for the toolbox the front end floats over a selected node (so it never covers a
button such as Queue session), and no view is stored: the front end fits the graph to the window
when a template opens. Needs a running ComfyUI
with this extension and the `playwright` package with Debian's chromium (see docs/testing.md).
The browser tests (test_session_workflow_ui.py, test_templates_ui.py) check the result stays in
sync: each UI workflow, loaded in the front end, queues exactly its API workflow.
"""
from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
API_DIR = REPO / "workflows" / "api"
UI_DIR = REPO / "workflows"
# ROW_GAP: a selected node's toolbox floats ~60 px above its title at zoom 1 (more when fitted)
COLUMN_WIDTH, ROW_GAP = 420, 130
THUMBNAIL_SIZE = (800, 520)           # the template browser shows it as a card
# the canvas as the thumbnail shows it: no minimap, stats or zoom menu; node text at any zoom
THUMBNAIL_SETTINGS = {"Comfy.Minimap.Visible": False, "Comfy.Graph.CanvasInfo": False,
                      "Comfy.Graph.CanvasMenu": False, "LiteGraph.Canvas.MinFontSizeForLOD": 1}

LOADER_NOTE = ("Prompt Media Loader: your YAML file from input/prompt_media/ (or paste it into yaml_text) "
               "and a preset of its 'workflows:' section (empty: the top-level settings). Then press "
               "'Queue session' on OOM Variations: one queued prompt per job, each image saved with a "
               "sidecar under output/collections/images/.")
MODEL_NAME_NOTE = ("To let the preset's 'model:' pick the file, connect the loader's model_name output to "
                   "{loader}'s {input}.")
# name -> columns of API node ids (left to right) and the Note's text
TEMPLATES = {
    "prompt_media_session": {
        "title": "Checkpoint (SD1.5 / SDXL)",
        "layout": [["1", "2"], ["3", "4"], ["5", "6", "7"], ["8"], ["9", "10"]],
        "note": ("SD1.5 / SDXL checkpoint.\n\nLoad Checkpoint: your checkpoint (models/checkpoints). "
                 + LOADER_NOTE + " " + MODEL_NAME_NOTE.format(loader="Load Checkpoint", input="ckpt_name")),
    },
    "flux_dev": {
        "title": "Flux dev",
        "layout": [["1", "11", "12"], ["2"], ["3", "4"], ["13", "5", "14"], ["7", "15", "17"],
                   ["16", "18"], ["8", "9"], ["10"]],
        "note": ("Flux dev.\n\nLoad Diffusion Model: flux1-dev (models/diffusion_models). DualCLIPLoader: "
                 "clip_l and t5xxl (models/text_encoders), type flux. Load VAE: ae.safetensors (models/vae). "
                 "The file's 'guidance:' (default 3.5) feeds FluxGuidance; steps, sampler, scheduler and "
                 "size come from the preset (dev in model_presets.yaml). " + LOADER_NOTE + " "
                 + MODEL_NAME_NOTE.format(loader="Load Diffusion Model", input="unet_name")),
    },
    "flux_schnell": {
        "title": "Flux schnell",
        "layout": [["1", "11", "12"], ["2"], ["3", "4"], ["5", "7", "15"], ["16", "17", "18"],
                   ["8", "9"], ["10"]],
        "note": ("Flux schnell: 4 steps, no guidance, no negative prompt (BasicGuider).\n\nLoad Diffusion "
                 "Model: flux1-schnell (models/diffusion_models). DualCLIPLoader: clip_l and t5xxl "
                 "(models/text_encoders), type flux. Load VAE: ae.safetensors (models/vae). Steps, sampler, "
                 "scheduler and size come from the preset (schnell in model_presets.yaml). " + LOADER_NOTE
                 + " " + MODEL_NAME_NOTE.format(loader="Load Diffusion Model", input="unet_name")),
    },
    "sd35": {
        "title": "SD3.5",
        "layout": [["1", "11"], ["2"], ["3", "4"], ["13", "5", "6"], ["7", "8"], ["9", "10"]],
        "note": ("SD3.5.\n\nLoad Checkpoint: sd3.5_large (or medium) from models/checkpoints. "
                 "TripleCLIPLoader: clip_g, clip_l and t5xxl (models/text_encoders). ModelSamplingSD3 shift "
                 "3.0; EmptySD3LatentImage. cfg, steps, sampler, scheduler, size and the negative prompt come "
                 "from the preset (sd35 in model_presets.yaml). " + LOADER_NOTE + " "
                 + MODEL_NAME_NOTE.format(loader="Load Checkpoint", input="ckpt_name")),
    },
}

LAYOUT_JS = """async ([api, name, layout, note, colWidth, gap]) => {
    await app.loadApiJson(api, name);
    let x = 40;
    for (const column of layout) {
        let y = 60;
        for (const id of column) {
            const node = app.graph.getNodeById(Number(id));
            node.pos = [x, y];
            y += node.size[1] + gap + LiteGraph.NODE_TITLE_HEIGHT;
        }
        x += colWidth;
    }
    const placed = new Set(layout.flat().map(Number));
    const missing = app.graph._nodes.filter(n => !placed.has(n.id)).map(n => n.id);
    if (missing.length) throw new Error('nodes without a place in the layout: ' + missing.join(', '));
    const memo = LiteGraph.createNode('Note');
    memo.title = 'What to pick';
    memo.widgets[0].value = note;
    memo.size = [colWidth * 2 - gap, 220];
    memo.pos = [40, -280];
    app.graph.add(memo);
    app.canvas.ds.scale = 1;
    app.graph.setDirtyCanvas(true, true);
    const workflow = JSON.parse(JSON.stringify(app.graph.serialize()));
    delete workflow.extra.ds;            // no stored view: the front end fits it when it opens
    return workflow;
}"""

# the whole graph in view, for the thumbnail
FIT_JS = """() => new Promise(done => {
    const nodes = app.graph._nodes, th = LiteGraph.NODE_TITLE_HEIGHT, pad = 30;
    const x0 = Math.min(...nodes.map(n => n.pos[0])) - pad, y0 = Math.min(...nodes.map(n => n.pos[1] - th)) - pad;
    const x1 = Math.max(...nodes.map(n => n.pos[0] + n.size[0])) + pad;
    const y1 = Math.max(...nodes.map(n => n.pos[1] + n.size[1])) + pad;
    const c = app.canvas.canvas, scale = Math.min(c.width / (x1 - x0), c.height / (y1 - y0));
    app.canvas.ds.scale = scale;
    app.canvas.ds.offset = [-x0 + (c.width / scale - (x1 - x0)) / 2, -y0 + (c.height / scale - (y1 - y0)) / 2];
    app.canvas.setDirty(true, true);
    requestAnimationFrame(() => requestAnimationFrame(done));
})"""


def thumbnail(png: bytes, title: str) -> bytes:
    """The graph scaled into the card, under a banner with the template's title."""
    from PIL import Image, ImageDraw, ImageFont
    banner = 64
    card = Image.new("RGB", THUMBNAIL_SIZE, (32, 32, 32))
    with Image.open(io.BytesIO(png)) as im:
        graph = im.convert("RGB")
    graph.thumbnail((THUMBNAIL_SIZE[0], THUMBNAIL_SIZE[1] - banner), Image.LANCZOS)
    card.paste(graph, ((THUMBNAIL_SIZE[0] - graph.width) // 2, banner))
    draw = ImageDraw.Draw(card)
    draw.rectangle((0, 0, THUMBNAIL_SIZE[0], banner), fill=(52, 74, 110))
    try:
        font = ImageFont.truetype("DejaVuSans-Bold.ttf", 30)
    except OSError:
        font = ImageFont.load_default()
    draw.text((20, banner // 2), f"Prompt Media · {title}", fill=(255, 255, 255), font=font, anchor="lm")
    out = io.BytesIO()
    card.save(out, format="JPEG", quality=88, optimize=True)
    return out.getvalue()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="a running ComfyUI with this extension")
    parser.add_argument("names", nargs="*", help=f"templates to make (default: all: {', '.join(TEMPLATES)})")
    args = parser.parse_args()
    unknown = sorted(set(args.names) - set(TEMPLATES))
    if unknown:
        parser.error(f"unknown template(s) {', '.join(unknown)}; known: {', '.join(TEMPLATES)}")
    sys.path.insert(0, str(REPO / "tests" / "browser"))
    from frontend import SETTINGS, FrontEnd, http_json, launch_browser
    from playwright.sync_api import sync_playwright

    http_json(args.url, "/api/settings", {**SETTINGS, **THUMBNAIL_SETTINGS}, "POST")
    failed = False
    with sync_playwright() as pw:
        browser = launch_browser(pw)
        front = FrontEnd(browser, args.url.rstrip("/"), viewport=(2200, 1300))
        for name in args.names or TEMPLATES:
            spec = TEMPLATES[name]
            api = json.loads((API_DIR / f"{name}.json").read_text(encoding="utf-8"))
            workflow = front.js(LAYOUT_JS, [api, name, spec["layout"], spec["note"], COLUMN_WIDTH, ROW_GAP])
            front.js(FIT_JS)
            shot = front.page.locator("canvas#graph-canvas").screenshot()
            (UI_DIR / f"{name}.json").write_text(json.dumps(workflow, indent=1) + "\n", encoding="utf-8")
            (UI_DIR / f"{name}.jpg").write_bytes(thumbnail(shot, spec["title"]))
            print(f"wrote workflows/{name}.json ({len(workflow['nodes'])} nodes, {len(workflow['links'])} links) "
                  f"and workflows/{name}.jpg")
        front.close()
        browser.close()
    if front.errors:
        print("\n".join(front.errors), file=sys.stderr)
        failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
