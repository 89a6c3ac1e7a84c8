#!/usr/bin/env python3
"""Regenerate workflows/prompt_media_session.json (UI format) from the API-format workflow,
through ComfyUI's real front end, so the two never drift apart by hand.

    python scripts/make_ui_workflow.py --url http://127.0.0.1:8188

Needs a running ComfyUI with this extension and the `playwright` package with Debian's chromium
(see docs/testing.md). The browser test test_session_workflow_ui.py checks the result stays in
sync: the UI workflow, loaded in the front end, queues exactly the API workflow.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
API = REPO / "workflows" / "api" / "prompt_media_session.json"
UI = REPO / "workflows" / "prompt_media_session.json"

# Columns left to right, in API node ids: inputs, expansion and LoRAs, encoding, sampling, output.
LAYOUT = [["1", "2"], ["3", "4"], ["5", "6", "7"], ["8"], ["9", "10"]]
COLUMN_WIDTH, ROW_GAP = 420, 40


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="a running ComfyUI with this extension")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO / "tests" / "browser"))
    from frontend import SETTINGS, FrontEnd, http_json, launch_browser
    from playwright.sync_api import sync_playwright

    api = json.loads(API.read_text(encoding="utf-8"))
    http_json(args.url, "/api/settings", SETTINGS, "POST")
    with sync_playwright() as pw:
        browser = launch_browser(pw)
        front = FrontEnd(browser, args.url.rstrip("/"))
        workflow = front.js("""async ([api, layout, colWidth, gap]) => {
            await app.loadApiJson(api, "prompt_media_session");
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
            app.graph.setDirtyCanvas(true, true);
            return JSON.parse(JSON.stringify(app.graph.serialize()));
        }""", [api, LAYOUT, COLUMN_WIDTH, ROW_GAP])
        front.close()
        browser.close()
    if front.errors:
        print("\n".join(front.errors), file=sys.stderr)
        return 1
    UI.write_text(json.dumps(workflow, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {UI.relative_to(REPO)} ({len(workflow['nodes'])} nodes, {len(workflow['links'])} links)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
