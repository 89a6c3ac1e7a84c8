"""Driving ComfyUI's real front end with Python Playwright (sync API) and Debian's chromium.

Helpers used by tests/browser (the fixtures are in conftest.py). Facts behind them, measured
with ComfyUI 0.3.64 / comfyui-frontend-package 1.27.10 (see the comfyhost browser notes):
- a fresh user dir opens a template modal, and 1.27.10 throws on load unless two canvas settings
  already hold the values it would write: SETTINGS are POSTed before the page opens;
- the page is ready when window.app has a graph and an active workflow and no startup mask;
- LiteGraph repaints only when marked dirty; widget positions exist after the first draw;
- keybindings (Ctrl+S, Ctrl+O) are ignored while a text field has focus, and clicking the canvas
  twice at one spot opens the node search: blur instead of clicking.
"""
from __future__ import annotations

import json
import os
import urllib.parse
import urllib.request

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# every host name except loopback fails inside Chromium: no request leaves the machine
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
]
SETTINGS = {
    "Comfy.TutorialCompleted": True,
    "Comfy.Canvas.LeftMouseClickBehavior": "panning",
    "Comfy.Canvas.MouseWheelScroll": "zoom",
}
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}
READY_JS = """() => !!(window.app && window.app.graph && window.LiteGraph
    && window.app.extensionManager?.workflow?.activeWorkflow
    && !document.querySelector('.p-blockui-mask'))"""


def http_json(base: str, path: str, data=None, method: str | None = None):
    body = None if data is None else json.dumps(data).encode()
    req = urllib.request.Request(base + path, data=body, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        raw = r.read()
    return json.loads(raw) if raw.strip() else None


def userdata_path(name: str) -> str:
    return "/api/userdata/" + urllib.parse.quote(name, safe="")


def launch_browser(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)


class FrontEnd:
    """One browser context + page on the front end, with what went wrong in it collected."""

    def __init__(self, browser, base: str, viewport=(1280, 800), timeout_ms: int = 60000):
        self.base = base
        self.errors: list[str] = []
        self.context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
        self.context.route("**/*", self._local_only)    # the front end fetches api.comfy.org on load
        self.page = page = self.context.new_page()
        # Playwright subscribes to these lazily, fire-and-forget: listen before acting
        page.on("filechooser", lambda chooser: None)
        page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e.message}\n{e.stack}"))
        page.on("console", lambda m: m.type == "error" and not m.text.startswith("Failed to load resource")
                and self.errors.append(f"console.error: {m.text}"))
        page.on("response", lambda r: r.status >= 500 and self.errors.append(f"{r.status} {r.url}"))
        self.timeout_ms = timeout_ms
        page.goto(base + "/")
        self.wait_ready()

    def _local_only(self, route):
        if urllib.parse.urlsplit(route.request.url).hostname in LOCAL_HOSTS:
            return route.continue_()
        return route.abort()

    def wait_ready(self):
        self.page.wait_for_function(READY_JS, timeout=self.timeout_ms)

    def reload(self):
        self.page.reload()
        self.wait_ready()

    def close(self):
        self.context.close()

    # --- graph -------------------------------------------------------------------------------

    def js(self, expression: str, arg=None):
        return self.page.evaluate(expression, arg)

    def add_node(self, node_type: str, canvas_xy=(300, 150), clear: bool = True) -> int:
        return self.js("""([type, xy, clear]) => {
            if (clear) app.graph.clear();
            const node = LiteGraph.createNode(type);
            if (!node) throw new Error('unknown node type ' + type);
            node.pos = app.canvas.ds.convertCanvasToOffset(xy);
            app.graph.add(node);
            app.canvas.setDirty(true, true);
            return node.id;
        }""", [node_type, list(canvas_xy), clear])

    def nodes_of(self, node_type: str) -> list[int]:
        return self.js("(t) => app.graph._nodes.filter(n => n.type === t).map(n => n.id)", node_type)

    def widgets(self, node_id) -> list[dict]:
        return self.js("""(id) => app.graph.getNodeById(id).widgets.map(w => ({
            name: w.name, type: w.type, value: w.value}))""", node_id)

    def api_prompt(self) -> dict:
        return self.js("async () => JSON.parse(JSON.stringify((await app.graphToPrompt()).output))")

    def workflow(self) -> dict:
        return self.js("async () => JSON.parse(JSON.stringify((await app.graphToPrompt()).workflow))")

    def redraw(self):
        self.js("""() => new Promise(done => { app.canvas.setDirty(true, true);
            requestAnimationFrame(() => requestAnimationFrame(done)); })""")

    # --- pointer and keys ----------------------------------------------------------------------

    def widget_xy(self, node_id, widget_name: str, node_x: float | None = None) -> tuple[float, float]:
        """Page coordinates of a point on a canvas-drawn widget: ``node_x`` from the node's left
        edge (default: the middle), vertically centred."""
        self.redraw()
        self.page.wait_for_function("""([id, name]) => app.graph.getNodeById(id)?.widgets
            .find(w => w.name === name)?.last_y !== undefined""", arg=[node_id, widget_name])
        return tuple(self.js("""([id, name, x]) => {
            const n = app.graph.getNodeById(id), w = n.widgets.find(w => w.name === name);
            const h = w.computedHeight ?? LiteGraph.NODE_WIDGET_HEIGHT;
            const [cx, cy] = app.canvas.ds.convertOffsetToCanvas(
                [n.pos[0] + (x ?? n.size[0] / 2), n.pos[1] + w.last_y + h / 2]);
            const r = app.canvas.canvas.getBoundingClientRect();
            return [r.left + cx, r.top + cy];
        }""", [node_id, widget_name, node_x]))

    def click_widget(self, node_id, widget_name: str, node_x: float | None = None):
        self.page.mouse.click(*self.widget_xy(node_id, widget_name, node_x))
        self.redraw()

    def shortcut(self, keys: str):
        self.js("() => document.activeElement?.blur()")
        self.page.keyboard.press(keys)

    def node_screenshot(self, node_ids, path: str, pad: int = 24):
        """Screenshot of the page area around the given nodes (title bars included)."""
        self.redraw()
        box = self.js("""([ids, pad]) => {
            const r = app.canvas.canvas.getBoundingClientRect(), th = LiteGraph.NODE_TITLE_HEIGHT;
            let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
            for (const id of ids) {
                const n = app.graph.getNodeById(id);
                const [a, b] = app.canvas.ds.convertOffsetToCanvas([n.pos[0], n.pos[1] - th]);
                const [c, d] = app.canvas.ds.convertOffsetToCanvas([n.pos[0] + n.size[0], n.pos[1] + n.size[1]]);
                x0 = Math.min(x0, a); y0 = Math.min(y0, b); x1 = Math.max(x1, c); y1 = Math.max(y1, d);
            }
            return {x: r.left + x0 - pad, y: r.top + y0 - pad, width: x1 - x0 + 2 * pad, height: y1 - y0 + 2 * pad};
        }""", [list(node_ids), pad])
        self.page.screenshot(path=path, clip=box)
