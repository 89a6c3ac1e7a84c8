"""``index.html`` in a session folder: the gallery's grid of the session as one self-contained
page (no server, no network: it opens from disk or an unpacked zip), with relative links to the
images, each image's parameters, the filters and compare.

The page is the sidebar's own renderer (js/session_grid.js, inlined) over data embedded as JSON.
Everything from prompts, sidecars and file names is escaped: the JSON cannot close its <script>
element (``<``, ``>``, ``&`` and the two JavaScript line separators are \\u-escaped), the little
HTML outside it goes through html.escape, and the renderer only ever sets text, never markup.
Written atomically (a temp file renamed over the old page); never touches an image or a sidecar.
"""
from __future__ import annotations

import html
import json
import os

from .atomic import replace_bytes
from .gallery import FolderIndex, image_details, read_marks
from .session import gallery_index_path

PAGE_NAME = "index.html"
RENDERER = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "js", "session_grid.js")
_SCRIPT_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}

PAGE_CSS = """
html, body { margin: 0; height: 100%; background: #1b1b1b; }
body { display: grid; grid-template-rows: auto auto 1fr; grid-template-columns: 1fr minmax(280px, 30%);
  height: 100vh; }
header { grid-column: 1 / -1; padding: 8px 12px 0; }
header h1 { font-size: 16px; margin: 0; }
header p { margin: 2px 0 0; color: #999; }
#filters { grid-column: 1 / -1; padding: 6px 12px; }
#grid { min-height: 0; padding-left: 8px; }
#details { min-height: 0; overflow: auto; padding: 0 12px 12px; border-left: 1px solid #333; }
#details a { color: #7ab4ff; }
#details h2 { font-size: 13px; margin: 8px 0; }
"""

# Runs after the renderer in the same module script: builds the page from the embedded data.
BOOTSTRAP = """
const data = JSON.parse(document.getElementById("pm-data").textContent);
const view = data.view, details = data.details, marks = data.marks;
const src = (image) => encodeURIComponent(image.name);
const picked = new Set();
const detailsBox = document.getElementById("details");
const grid = new SessionGrid(document.getElementById("grid"), { thumbUrl: src, size: 160, onSelect(index, event) {
  if (event.ctrlKey || event.metaKey || event.shiftKey) {
    picked.has(index) ? picked.delete(index) : picked.add(index);
    grid.setPicked(picked);
    compare.disabled = picked.size < 2;
    compare.textContent = picked.size ? `Compare ${picked.size}` : "Compare";
    return;
  }
  grid.setCurrent(index);
  const image = view.images[index];
  detailsBox.replaceChildren(
    el("h2", {}, image.name, marks[image.name]?.star ? " ★" : ""),
    el("p", {}, el("a", { href: src(image), target: "_blank" }, "open full size"),
      (marks[image.name]?.tags ?? []).length ? ` · tags: ${marks[image.name].tags.join(", ")}` : ""),
    paramsList(details[image.name]));
} });
const compare = el("button", { disabled: "", onclick: () => showOverlay(compareView([...picked].map((i) => ({
  name: view.images[i].name, src: src(view.images[i]), details: details[view.images[i].name] })))) }, "Compare");
const count = el("span", {});
const bar = filterBar(view, (filter) => { grid.setFilter(filter); count.textContent = `${grid.visibleCount()} shown`; },
  el("input", { type: "range", min: 64, max: 384, step: 16, value: 160, title: "thumbnail size",
    oninput: (e) => grid.setSize(Number(e.target.value)) }), compare, count);
document.getElementById("filters").replaceWith(Object.assign(bar, { id: "filters" }));
ensureStyles();
grid.setView(view, marks);
count.textContent = `${grid.visibleCount()} shown`;
"""


def script_json(value) -> str:
    """JSON that is safe inside a <script> element whatever strings it holds."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return "".join(_SCRIPT_ESCAPES.get(ch, ch) for ch in text) if any(c in text for c in _SCRIPT_ESCAPES) else text


def page_data(folder: str, relative: str) -> dict:
    """What the page embeds: the grid view, each image's details, the stars and tags (every
    sidecar is read once: the details are more than the gallery's index holds). The gallery's
    index file is written as well, so the gallery opens a finished session without reading its
    sidecars again."""
    details = {}
    index = FolderIndex(folder, on_read=lambda name, sidecar: details.__setitem__(
        name, image_details(sidecar, a1111=False)), index_file=gallery_index_path(folder))
    index.refresh()
    view = json.loads(index.view(relative))
    index.save()
    return {"view": view, "details": {im["name"]: details[im["name"]] for im in view["images"]},
            "marks": read_marks(folder)}


def render_page(data: dict) -> str:
    view = data["view"]
    with open(RENDERER, encoding="utf-8") as f:
        renderer = f.read()
    # inside a script element these would end it early or change how the rest is parsed
    if any(bad in renderer.lower() for bad in ("</script", "<script", "<!--")):
        raise ValueError(f"{RENDERER} must not contain '</script', '<script' or '<!--'")
    title = " · ".join([view["title"], *view["sources"]])
    total = view["total"] if view["total"] is not None else "?"
    summary = f"{len(view['images'])} images · {view['done']}/{total} jobs"
    return (
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>{html.escape(title)}</title>\n<style>{PAGE_CSS}</style>\n</head>\n"
        "<body class=\"pmg\">\n"
        f"<header><h1>{html.escape(title)}</h1><p>{html.escape(summary)}</p></header>\n"
        "<div id=\"filters\"></div>\n<main id=\"grid\"></main>\n"
        "<aside id=\"details\"><p>Click an image for its parameters; Ctrl+click two or more to "
        "compare them.</p></aside>\n"
        "<noscript><p>The grid needs JavaScript; the images are the PNG files in this folder, "
        "each with its .json sidecar.</p></noscript>\n"
        f"<script type=\"application/json\" id=\"pm-data\">{script_json(data)}</script>\n"
        f"<script type=\"module\">\n{renderer}\n{BOOTSTRAP}</script>\n</body>\n</html>\n")


def write_session_page(folder: str, relative: str | None = None) -> str:
    """Write (or replace) ``index.html`` in a session folder; returns its path."""
    if relative is None:       # the dated part only: no absolute path of this machine in the page
        parts = os.path.normpath(os.path.abspath(folder)).split(os.sep)
        relative = "/".join(parts[-4:])
    path = os.path.join(folder, PAGE_NAME)
    replace_bytes(render_page(page_data(folder, relative)).encode("utf-8"), path)
    return path
