"""LoRA Chain rows in the real front end: add, pick, switch off, reorder; the API prompt carries
exactly the rows by name; rows come back after save + reload, from the saved file, from API JSON,
from a PNG's embedded workflow and after copy/paste."""
from __future__ import annotations

import json
import re
import time
from pathlib import Path

from PIL import Image

from prompt_media_pkg.tests.browser.frontend import http_json, userdata_path

NODE = "PromptMediaLoraChain"
LORAS = ["tiny_lora_attn.safetensors", "tiny_lora_conv.safetensors", "tiny_lora_diffusers.safetensors"]
ADD = "+ Add LoRA"


def rows(front, node_id) -> list[tuple[str, dict]]:
    return [(w["name"], w["value"]) for w in front.widgets(node_id) if w["type"] == "prompt_media_lora_row"]


def zone_x(front, node_id, row: str, zone: str, part: str = "center") -> float:
    """x (from the node's left edge) of a part of a row: toggle, name, up, down, remove, or a
    strength box ("strength", "strength_model", "strength_clip") with part left/center/right."""
    z = front.js("""([id, row]) => { const n = app.graph.getNodeById(id);
        return n.widgets.find(w => w.name === row).zones(n); }""", [node_id, row])
    if zone.startswith("strength"):
        a, b = next(r for key, _, r in z["strengths"] if key == zone)
    else:
        a, b = z[zone]
    return {"left": a + 4, "center": (a + b) / 2, "right": b - 4}[part]


def click_row(front, node_id, row: str, zone: str, part: str = "center"):
    front.click_widget(node_id, row, zone_x(front, node_id, row, zone, part))


def pick_lora(front, node_id, row: str, lora: str):
    click_row(front, node_id, row, "name")
    entry = front.page.locator(".litecontextmenu .litemenu-entry", has_text=re.compile(f"^{re.escape(lora)}$"))
    entry.click()
    front.page.locator(".litecontextmenu").wait_for(state="detached")
    front.redraw()


def build_chain(front) -> int:
    """Through the mouse: 3 rows, a LoRA each, row 2 off, row 3 stronger, row 1 moved down."""
    node_id = front.add_node(NODE)
    assert [w["name"] for w in front.widgets(node_id)] == ["strength_mode", "add_trigger_words", ADD]
    for _ in range(3):
        front.click_widget(node_id, ADD)
    assert [name for name, _ in rows(front, node_id)] == ["lora_1", "lora_2", "lora_3"]
    for row, lora in zip(("lora_1", "lora_2", "lora_3"), LORAS):
        pick_lora(front, node_id, row, lora)
    click_row(front, node_id, "lora_2", "toggle")                    # switch off
    click_row(front, node_id, "lora_3", "strength", "right")         # 1.00 -> 1.05
    click_row(front, node_id, "lora_3", "strength", "right")         # -> 1.10
    click_row(front, node_id, "lora_1", "down")                      # attn below conv
    return node_id


EXPECTED_ROWS = {
    "lora_1": {"on": False, "lora": LORAS[1], "strength": 1, "strength_model": 1, "strength_clip": 1},
    "lora_2": {"on": True, "lora": LORAS[0], "strength": 1, "strength_model": 1, "strength_clip": 1},
    "lora_3": {"on": True, "lora": LORAS[2], "strength": 1.1, "strength_model": 1.1, "strength_clip": 1.1},
}


def chain_inputs(front) -> dict:
    prompt = front.api_prompt()
    chains = [n for n in prompt.values() if n["class_type"] == NODE]
    assert len(chains) == 1, prompt
    return chains[0]["inputs"]


def queued_prompt(front) -> dict:
    sent = []

    def fake_queue(route):
        if route.request.method != "POST":
            return route.fallback()
        sent.append(route.request.post_data_json)
        return route.fulfill(json={"prompt_id": "lora-chain-ui", "number": 0, "node_errors": {}})

    front.page.route("**/api/prompt", fake_queue)
    try:
        front.page.locator("button", has_text=re.compile(r"^\s*Run\s*$")).first.click()
        deadline = time.monotonic() + 10
        while not sent and time.monotonic() < deadline:
            front.page.wait_for_timeout(50)     # lets Playwright dispatch the route callback
    finally:
        front.page.unroute("**/api/prompt", fake_queue)
    assert sent, "the Run button posted nothing"
    return sent[0]["prompt"]


def open_file(front, path) -> int:
    """Open a workflow, API JSON or PNG with Ctrl+O, as a user would; the chain node's id."""
    with front.page.expect_file_chooser() as chooser:
        front.shortcut("Control+o")
    chooser.value.set_files(str(path))
    front.page.wait_for_function("(t) => app.graph._nodes.some(n => n.type === t)", arg=NODE)
    [node_id] = front.nodes_of(NODE)
    return node_id


def assert_rows(front, node_id, expected=EXPECTED_ROWS):
    assert dict(rows(front, node_id)) == expected
    assert front.widgets(node_id)[-1]["name"] == ADD                # the button stays last


def test_rows_edit_serialise_and_come_back(front, comfy_url, tmp_path):
    node_id = build_chain(front)
    assert_rows(front, node_id)

    # the API prompt: exactly the node's own widget and the rows, by name; no button
    inputs = chain_inputs(front)
    assert inputs == {"strength_mode": "shared", "add_trigger_words": False, **EXPECTED_ROWS}

    # what the Run button posts (caught before the server: nothing executes)
    assert queued_prompt(front)[str(node_id)]["inputs"] == inputs

    # the saved workflow: rows by name, positional widgets_values only for the node's own widgets
    node = next(n for n in front.workflow()["nodes"] if n["type"] == NODE)
    assert node["widgets_values"] == ["shared", False]
    assert node["lora_rows"] == EXPECTED_ROWS

    # Ctrl+S through the UI, then reload the page: the open workflow is restored
    name = f"lora_chain_ui_{int(time.time() * 1000)}"
    front.shortcut("Control+s")
    dialog_input = front.page.locator('.p-dialog-content input[type="text"]')
    dialog_input.fill(name)
    dialog_input.press("Enter")
    dialog_input.wait_for(state="hidden")
    saved = http_json(comfy_url, userdata_path(f"workflows/{name}.json"))
    try:
        assert next(n for n in saved["nodes"] if n["type"] == NODE)["lora_rows"] == EXPECTED_ROWS
        front.reload()
        [node_id] = front.nodes_of(NODE)
        assert_rows(front, node_id)
        assert chain_inputs(front) == inputs

        # the saved file opened again (configure path)
        front.js("async (wf) => { await app.loadGraphData(wf); }", saved)
        [node_id] = front.nodes_of(NODE)
        assert_rows(front, node_id)
    finally:
        http_json(comfy_url, userdata_path(f"workflows/{name}.json"), method="DELETE")

    # an API-format JSON opened with Ctrl+O (no configure(): values arrive by input name)
    api_file = tmp_path / "lora_chain_api.json"
    api_file.write_text(json.dumps(front.api_prompt()))
    front.js("() => app.graph.clear()")
    node_id = open_file(front, api_file)
    assert_rows(front, node_id)
    assert chain_inputs(front) == inputs


def test_api_json_rows_in_numeric_order_and_separate_strengths(front, tmp_path):
    """Hand-written API JSON: rows out of order, lora_10 after lora_9, separate strengths."""
    api = {"5": {"class_type": NODE, "inputs": {
        "strength_mode": "separate",
        "lora_10": {"on": True, "lora": LORAS[2], "strength_model": 0.5, "strength_clip": -0.25},
        "lora_9": {"on": False, "lora": LORAS[1]},
        "lora_2": {"on": True, "lora": LORAS[0], "strength": 0.75}}}}
    api_file = tmp_path / "api.json"
    api_file.write_text(json.dumps(api))
    node_id = open_file(front, api_file)
    # the rows keep the file's names (each value landed on its own row), in numeric order
    assert [(name, v["lora"], v["on"]) for name, v in rows(front, node_id)] == [
        ("lora_2", LORAS[0], True), ("lora_9", LORAS[1], False), ("lora_10", LORAS[2], True)]
    inputs = chain_inputs(front)
    assert list(inputs) == ["strength_mode", "add_trigger_words", "lora_2", "lora_9", "lora_10"]
    assert inputs["strength_mode"] == "separate"
    assert inputs["lora_10"] == {"on": True, "lora": LORAS[2], "strength": 0.5,   # completed rows
                                 "strength_model": 0.5, "strength_clip": -0.25}
    assert inputs["lora_2"]["strength"] == 0.75 and inputs["lora_2"]["strength_clip"] == 0.75
    # separate mode draws two boxes; the clip one moves only the clip strength
    click_row(front, node_id, "lora_10", "strength_clip", "left")
    assert chain_inputs(front)["lora_10"]["strength_clip"] == -0.3
    assert chain_inputs(front)["lora_10"]["strength_model"] == 0.5
    # the next edit renumbers top to bottom
    click_row(front, node_id, "lora_2", "down")
    assert [(name, v["lora"]) for name, v in rows(front, node_id)] == [
        ("lora_1", LORAS[1]), ("lora_2", LORAS[0]), ("lora_3", LORAS[2])]


def test_png_workflow_and_copy_paste(front, tmp_path):
    from PIL import Image, PngImagePlugin
    node_id = build_chain(front)
    workflow, prompt = front.workflow(), front.api_prompt()

    # a PNG carrying the workflow (as SaveImage writes it), opened with Ctrl+O
    info = PngImagePlugin.PngInfo()
    info.add_text("prompt", json.dumps(prompt))
    info.add_text("workflow", json.dumps(workflow))
    png = tmp_path / "chain.png"
    Image.new("RGB", (8, 8)).save(png, pnginfo=info)
    front.js("() => app.graph.clear()")
    node_id = open_file(front, png)
    assert_rows(front, node_id)

    # copy/paste: the new node has the same rows, and editing one leaves the other alone
    pasted = front.js("""(id) => {
        const before = new Set(app.graph._nodes.map(n => n.id));
        app.canvas.selectNode(app.graph.getNodeById(id));
        app.canvas.copyToClipboard();
        app.canvas.pasteFromClipboard();
        return app.graph._nodes.find(n => !before.has(n.id)).id;
    }""", node_id)
    assert_rows(front, pasted)
    front.js("(id) => { const n = app.graph.getNodeById(id); "
             "n.removeLoraRow(n.widgets.find((w) => w.name === 'lora_1')); }", pasted)
    assert len(rows(front, pasted)) == 2
    assert_rows(front, node_id)


def draw_lora_chain(front, out: Path) -> None:
    """docs/img/lora_chain.png (made by scripts/make_readme_images.py): a checkpoint feeding a
    chain of three rows, one switched off."""
    node_id = build_chain(front)
    ckpt = front.add_node("CheckpointLoaderSimple", (40, 200), clear=False)
    front.js("""([ckpt, chain]) => {
        const c = app.graph.getNodeById(ckpt), n = app.graph.getNodeById(chain);
        n.pos = [c.pos[0] + c.size[0] + 60, c.pos[1]];
        c.connect(0, n, 0); c.connect(1, n, 1);
        app.canvas.deselectAll();
    }""", [ckpt, node_id])
    front.node_screenshot([ckpt, node_id], str(out), pad=16)


def test_the_docs_picture_of_a_chain_draws(front, tmp_path):
    """What make_readme_images.py draws, into a temporary file: both nodes, not a blank canvas."""
    out = tmp_path / "lora_chain.png"
    draw_lora_chain(front, out)
    with Image.open(out) as im:
        assert im.width > 400 and im.height > 150, im.size
        assert len(im.convert("RGB").getcolors(1 << 20) or ()) > 50      # text and widgets drawn


def test_the_lora_picker_filters_as_you_type_without_triggering_shortcuts(front, comfy_server):
    """Longer lists get the front end's own filter box (the one combo menus have): typing narrows
    the list, Enter picks, and the keys never reach the global shortcuts."""
    extra = comfy_server.base / "models" / "loras" / "filter_test"
    extra.mkdir(parents=True, exist_ok=True)
    source = comfy_server.base / "models" / "loras" / LORAS[0]
    for name in ("alpha_style", "beta_style", "gamma_detail"):
        (extra / f"{name}.safetensors").symlink_to(source.resolve())
    try:
        node_id = front.add_node(NODE)
        front.click_widget(node_id, ADD)
        click_row(front, node_id, "lora_1", "name")
        box = front.page.locator(".litecontextmenu .comfy-context-menu-filter")
        box.wait_for()
        assert box.evaluate("e => e === document.activeElement")
        sidebar = front.js("() => app.extensionManager.sidebarTab.activeSidebarTabId")
        front.page.keyboard.type("wq")                  # "w", "q": shortcuts for sidebar tabs elsewhere
        assert front.js("() => app.extensionManager.sidebarTab.activeSidebarTabId") == sidebar
        box.fill("")
        front.page.keyboard.type("sty")
        visible = front.page.locator(".litecontextmenu .litemenu-entry:visible").all_inner_texts()
        assert visible == ["filter_test/alpha_style.safetensors", "filter_test/beta_style.safetensors"]
        front.page.keyboard.press("Enter")
        front.page.locator(".litecontextmenu").wait_for(state="detached")
        assert rows(front, node_id)[0][1]["lora"] == "filter_test/alpha_style.safetensors"
    finally:
        for f in extra.iterdir():
            f.unlink()
        extra.rmdir()
