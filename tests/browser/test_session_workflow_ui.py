"""Issue 5 in the real front end: the shipped UI workflow loads whole and queues exactly the API
workflow; the OOM node shows the server's job status and "Queue session" queues exactly the
remaining jobs, one prompt each, with no UI-only widget in the API prompt."""
from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from prompt_media_pkg.runner.comfy_client import ComfyClient

REPO = Path(__file__).resolve().parents[2]
UI_WORKFLOW = json.loads((REPO / "workflows" / "prompt_media_session.json").read_text(encoding="utf-8"))
API_WORKFLOW = json.loads((REPO / "workflows" / "api" / "prompt_media_session.json").read_text(encoding="utf-8"))

SIX_JOBS = """\
prompts: [a red fox, a blue bird, a green frog]
variations:
  light: {type: sequential, values: [morning, night]}
seeds: [3]
steps: 1
width: 64
height: 64
"""
OOM_INPUTS = {"prompt_media", "mode", "run", "job_index", "variation_seed", "seed", "max_jobs"}


def load_workflow(front, workflow: dict) -> None:
    front.js("async (wf) => { await app.loadGraphData(wf); }", workflow)
    front.redraw()


def node_id(front, node_type: str) -> int:
    ids = front.nodes_of(node_type)
    assert len(ids) == 1, (node_type, ids)
    return ids[0]


def set_widget(front, node, name: str, value) -> None:
    front.js("""([id, name, value]) => {
        app.graph.getNodeById(id).widgets.find(w => w.name === name).value = value; }""", [node, name, value])


def widget_value(front, node, name: str):
    return front.js("([id, name]) => app.graph.getNodeById(id).widgets.find(w => w.name === name)?.value",
                    [node, name])


def test_ui_workflow_loads_whole_and_queues_exactly_the_api_workflow(front):
    load_workflow(front, UI_WORKFLOW)
    missing = front.js("() => app.graph._nodes.filter(n => !LiteGraph.registered_node_types[n.type]).map(n => n.type)")
    assert missing == []
    broken = front.js("""() => Object.values(app.graph.links ?? {}).filter(l => l && (
        !app.graph.getNodeById(l.origin_id) || !app.graph.getNodeById(l.target_id))).length""")
    assert broken == 0
    expected = {k: {"class_type": v["class_type"], "inputs": v["inputs"]} for k, v in API_WORKFLOW.items()}
    got = {k: {"class_type": v["class_type"], "inputs": v["inputs"]} for k, v in front.api_prompt().items()}
    assert got == expected


def test_oom_status_and_queue_session_queue_exactly_the_remaining_jobs(front, comfy_url):
    name = ComfyClient(comfy_url).upload_input(f"browser_six_{time.time_ns()}.yaml", SIX_JOBS.encode(),
                                               subfolder="prompt_media")
    load_workflow(front, UI_WORKFLOW)
    loader, oom = node_id(front, "PromptMediaLoader"), node_id(front, "PromptMediaOOM")
    set_widget(front, loader, "file", name)
    set_widget(front, node_id(front, "CheckpointLoaderSimple"), "ckpt_name", "tiny_sd15.ckpt")
    set_widget(front, node_id(front, "PromptMediaSessionSaver"), "root", f"browser/{time.time_ns()}")
    set_widget(front, node_id(front, "PromptMediaSessionSaver"), "compose", "none")

    # one real job through the server: the node shows what the server says while it runs, then,
    # the queue empty and the session unfinished, where it stands
    front.js("""(id) => { const w = app.graph.getNodeById(id).widgets.find(w => w.name === 'pm_status');
        window.pmSeen = []; let v = w.value;
        Object.defineProperty(w, 'value', { get: () => v, set: (x) => { v = x; window.pmSeen.push(x); } }); }""", oom)
    front.js("() => app.queuePrompt(0, 1)")
    front.page.wait_for_function("""(id) => (app.graph.getNodeById(id).widgets
        .find(w => w.name === 'pm_status')?.value ?? '').startsWith('stopped')""", arg=oom, timeout=240_000)
    assert "job 1 of 6 · 3 prompts × 2 variations × 1 seed" in front.js("() => window.pmSeen")
    assert widget_value(front, oom, "pm_status") == \
        "stopped · 1 of 6 saved, 5 left · Queue session resumes at job 2"
    assert widget_value(front, oom, "job_index") == 1          # Run continues the session too
    client = ComfyClient(comfy_url)
    assert not any(client.queue().get(k) for k in ("queue_running", "queue_pending"))

    # then "Queue session": exactly jobs 2..6, one prompt each (caught before they run)
    posted: list[dict] = []

    def catch(route):
        body = json.loads(route.request.post_data)
        posted.append(body["prompt"])
        route.fulfill(status=200, content_type="application/json",
                      body=json.dumps({"prompt_id": f"caught-{len(posted)}", "number": len(posted), "node_errors": {}}))

    front.page.route("**/api/prompt", catch)
    set_widget(front, oom, "job_index", 0)               # the button must not trust the widget
    front.click_widget(oom, "Queue session")
    front.page.wait_for_function("(id) => (app.graph.getNodeById(id).widgets.find(w => w.name === 'pm_status')"
                                 "?.value ?? '').startsWith('queueing')", arg=oom)
    deadline = time.monotonic() + 30
    while len(posted) < 5 and time.monotonic() < deadline:
        front.page.wait_for_timeout(100)
    front.page.wait_for_timeout(500)                     # and no sixth one
    assert [p[str(oom)]["inputs"]["job_index"] for p in posted] == [1, 2, 3, 4, 5]
    assert all(p[str(oom)]["inputs"]["run"] == "one job per run" for p in posted)
    assert set(posted[0][str(oom)]["inputs"]) == OOM_INPUTS      # no button, no status widget
    assert widget_value(front, oom, "pm_status") == "queueing jobs 2–6 of 6"


def test_queue_session_refusal_is_a_toast_not_node_text(front):
    """The server's refusal (no loader connected) appears once as an error toast; the node's
    status line stays empty and nothing is queued."""
    oom = front.add_node("PromptMediaOOM")
    posted: list = []
    front.page.route("**/api/prompt", lambda route: (posted.append(1), route.abort()))
    front.click_widget(oom, "Queue session")
    toast = front.page.locator(".p-toast-message-error")
    toast.wait_for()
    assert "prompt_media is not connected" in toast.inner_text()
    assert toast.count() == 1
    assert widget_value(front, oom, "pm_status") == ""
    assert posted == []


def test_shared_module_is_loaded_once_and_registers_nothing(front, comfy_url):
    """Every .js under js/ is loaded as an extension: common.js is among them and adds no
    extension of its own; the two node extensions are there."""
    scripts = front.js("async () => (await (await fetch('/extensions')).json())")
    ours = sorted(s.rsplit("/", 1)[1] for s in scripts if "/comfyui-prompt-media/" in s)
    assert "common.js" in ours and "lora_chain.js" in ours and "oom_session.js" in ours
    names = front.js("() => app.extensions.map(e => e.name)")
    assert "PromptMedia.OOMSession" in names and "prompt_media.lora_chain" in names
    assert not [n for n in names if "common" in n.lower()]


# ----------------------------------------------------------------------------- issue 18, item 7

FOUR_JOBS = """\
prompts: [a red fox, a blue bird]
variations:
  light: {type: sequential, values: [morning, night]}
seeds: [8]
steps: 1
width: 64
height: 64
"""


def session_graph(front, comfy_url, yaml_text: str, tag: str) -> tuple[int, str]:
    """The shipped workflow on a fresh prompt file and root; returns (OOM node id, root)."""
    name = ComfyClient(comfy_url).upload_input(f"{tag}_{time.time_ns()}.yaml", yaml_text.encode(),
                                               subfolder="prompt_media")
    root = f"browser/{tag}_{time.time_ns()}"
    load_workflow(front, UI_WORKFLOW)
    set_widget(front, node_id(front, "PromptMediaLoader"), "file", name)
    set_widget(front, node_id(front, "CheckpointLoaderSimple"), "ckpt_name", "tiny_sd15.ckpt")
    set_widget(front, node_id(front, "PromptMediaSessionSaver"), "root", root)
    set_widget(front, node_id(front, "PromptMediaSessionSaver"), "compose", "none")
    return node_id(front, "PromptMediaOOM"), root


def session_images(output_dir: Path, root: str) -> list[Path]:
    return sorted((output_dir / root).rglob("*_seed_*.png"))


def job_indexes(images: list[Path]) -> list[int]:
    return sorted(json.loads(p.with_suffix(".json").read_text())["oom"]["index"] for p in images)


def wait_status(front, oom, prefix: str, timeout_ms: int = 300_000) -> str:
    front.page.wait_for_function("""([id, prefix]) => (app.graph.getNodeById(id).widgets
        .find(w => w.name === 'pm_status')?.value ?? '').startsWith(prefix)""", arg=[oom, prefix], timeout=timeout_ms)
    return widget_value(front, oom, "pm_status")


def test_three_presses_of_queue_session_save_the_session_once(front, comfy_url, comfy_server):
    oom, root = session_graph(front, comfy_url, FOUR_JOBS, "presses")
    for _ in range(3):                                   # as a user did: three presses 0.7 s apart
        front.click_widget(oom, "Queue session")
        front.page.wait_for_timeout(700)
    status = wait_status(front, oom, "done")
    images = session_images(comfy_server.output_dir, root)
    assert job_indexes(images) == [0, 1, 2, 3]          # each job once, none past the end
    assert len({p.parent for p in images}) == 1
    folder = str(images[0].parent.relative_to(comfy_server.output_dir)).replace("\\", "/")
    assert status == f"done · 4 of 4 in {folder} · show in gallery ›"
    # the status is a link: the gallery tab opens on the session
    front.click_widget(oom, "pm_status")
    front.page.locator("[data-testid=pm-gallery] .pmg-cell img").first.wait_for()
    assert front.page.locator(".pm-title").inner_text().startswith(folder.rsplit("/", 4)[-4][:4])
    assert front.page.locator(".pmg-cell[data-name]").count() == 4


def test_after_an_interrupt_the_status_tells_the_truth_and_queue_session_resumes(front, comfy_url, comfy_server):
    oom, root = session_graph(front, comfy_url, SIX_JOBS, "interrupt")
    front.click_widget(oom, "Queue session")
    deadline = time.monotonic() + 300
    while len(session_images(comfy_server.output_dir, root)) < 2:
        assert time.monotonic() < deadline
        front.page.wait_for_timeout(200)   # (not time.sleep: the page's requests pass through Python routes)
    # what the queue panel's Cancel and Clear pending do
    client = ComfyClient(comfy_url)
    client.request("POST", "/queue", {"clear": True})
    client.interrupt()
    status = wait_status(front, oom, "stopped")          # written once the queue is empty
    saved = job_indexes(session_images(comfy_server.output_dir, root))
    n = len(saved)
    assert saved == list(range(n)) and 2 <= n < 6
    assert status == f"stopped · {n} of 6 saved, {6 - n} left · Queue session resumes at job {n + 1}"
    assert widget_value(front, oom, "job_index") == n    # Run would continue it too
    front.click_widget(oom, "Queue session")
    wait_status(front, oom, "done")
    images = session_images(comfy_server.output_dir, root)
    assert job_indexes(images) == [0, 1, 2, 3, 4, 5] and len({p.parent for p in images}) == 1


def test_the_template_opens_fitted_with_a_note_a_thumbnail_and_an_uncovered_button(front, comfy_url):
    assert "ds" not in UI_WORKFLOW.get("extra", {})      # no stored view: the front end fits it
    notes = [n for n in UI_WORKFLOW["nodes"] if n["type"] == "Note"]
    assert len(notes) == 1 and "Queue session" in notes[0]["widgets_values"][0]
    thumb = front.js("""async () => { const r = await fetch('/api/workflow_templates/comfyui-prompt-media/'
        + 'prompt_media_session.jpg'); return [r.status, r.headers.get('content-type'), (await r.blob()).size]; }""")
    assert thumb[0] == 200 and thumb[1] == "image/jpeg" and thumb[2] > 10_000
    front.js("async (wf) => { await app.loadGraphData(wf); }", UI_WORKFLOW)
    front.page.wait_for_timeout(300)
    front.redraw()
    visible = front.js("""() => { const r = app.canvas.canvas.getBoundingClientRect();
        return app.graph._nodes.every(n => { const [x, y] = app.canvas.ds.convertOffsetToCanvas(n.pos);
            const [x2, y2] = app.canvas.ds.convertOffsetToCanvas([n.pos[0] + n.size[0], n.pos[1] + n.size[1]]);
            return x >= 0 && y >= 0 && x2 <= r.width && y2 <= r.height; }); }""")
    assert visible, "every node of the template is on screen when it opens"
    oom = node_id(front, "PromptMediaOOM")
    bx, by = front.widget_xy(oom, "Queue session")
    width = front.js("(id) => app.graph.getNodeById(id).size[0] * app.canvas.ds.scale", oom)
    button = {"left": bx - width / 2, "right": bx + width / 2, "top": by - 10, "bottom": by + 10}
    for node in front.js("() => app.graph._nodes.map(n => n.id)"):
        front.js("(id) => { app.canvas.deselectAll(); app.canvas.selectNode(app.graph.getNodeById(id)); }", node)
        front.page.wait_for_timeout(150)
        box = front.page.locator(".selection-toolbox").bounding_box()
        if box is None:
            continue
        overlap = not (box["x"] + box["width"] < button["left"] or box["x"] > button["right"]
                       or box["y"] + box["height"] < button["top"] or box["y"] > button["bottom"])
        assert not overlap, f"the toolbox of node {node} covers Queue session"


BAD_YAML = "prompts: [a fox]\nsteps: many\n"


def expect_refusal_logged(front) -> None:
    """The front end logs a refused prompt with console.error (its own dialog shows it): that one
    line is expected here, any other error still fails the test."""
    logged = [e for e in front.errors if "PromptExecutionError: Prompt execution failed" in e]
    assert len(logged) == 1, front.errors
    front.errors.remove(logged[0])


def test_a_bad_yaml_file_is_reported_once_on_the_input_at_fault(front, comfy_url):
    load_workflow(front, UI_WORKFLOW)
    loader = node_id(front, "PromptMediaLoader")
    set_widget(front, loader, "yaml_text", BAD_YAML)
    set_widget(front, node_id(front, "CheckpointLoaderSimple"), "ckpt_name", "tiny_sd15.ckpt")
    front.js("() => app.queuePrompt(0, 1)")
    dialog = front.page.locator(".p-dialog", has_text="steps")
    dialog.wait_for()
    expect_refusal_logged(front)
    errors = front.js("(id) => app.lastNodeErrors[id].errors", loader)
    assert len(errors) == 1 and errors[0]["extra_info"]["input_name"] == "yaml_text"
    assert "steps" in errors[0]["details"] and errors[0]["details"].startswith("yaml_text - prompt_media.yaml:2")
    assert dialog.inner_text().count("prompt_media.yaml:2") == 1
    marked = front.js("(id) => app.graph.getNodeById(id).inputs.filter(i => i.hasErrors).map(i => i.name)", loader)
    assert marked == ["yaml_text"]


def test_a_missing_lora_is_reported_once_on_its_row(front, comfy_url):
    load_workflow(front, UI_WORKFLOW)
    set_widget(front, node_id(front, "CheckpointLoaderSimple"), "ckpt_name", "tiny_sd15.ckpt")
    chain = node_id(front, "PromptMediaLoraChain")
    front.js("""(id) => { const n = app.graph.getNodeById(id);
        n.addLoraRow({lora: 'tiny_lora_attn.safetensors'}); n.addLoraRow({lora: 'missing_style.safetensors'}); }""",
             chain)
    front.js("() => app.queuePrompt(0, 1)")
    front.page.locator(".p-dialog", has_text="missing_style").wait_for()
    expect_refusal_logged(front)
    errors = front.js("(id) => app.lastNodeErrors[id].errors", chain)
    assert len(errors) == 1 and errors[0]["extra_info"]["input_name"] == "lora_2"
    assert "missing_style" in errors[0]["details"]


def test_session_and_sidecar_lists_refresh_without_a_reload_and_show_what_tells_them_apart(front, comfy_url):
    sheet = front.add_node("PromptMediaContactSheet")
    params = front.add_node("PromptMediaLoadParams", canvas_xy=(300, 450), clear=False)
    # a session saved outside this page (through the API, as the CLI does), under the default root
    prompt = json.loads(json.dumps(API_WORKFLOW))
    by_class = {n["class_type"]: n["inputs"] for n in prompt.values()}
    by_class["CheckpointLoaderSimple"]["ckpt_name"] = "tiny_sd15.ckpt"
    by_class["PromptMediaLoader"]["yaml_text"] = f"prompts: [list refresh {time.time_ns()}]\nsteps: 1\nwidth: 64\nheight: 64\n"
    by_class["PromptMediaSessionSaver"]["compose"] = "none"
    with ThreadPoolExecutor(1) as pool:           # the client's asyncio loop beside Playwright's
        result = pool.submit(ComfyClient(comfy_url).run, prompt, 300).result()
    assert result.status == "success", result.error_summary()
    (image,) = result.images
    folder = image["subfolder"].replace("\\", "/")
    sidecar = f"{folder}/{image['filename'][:-4]}.json"
    front.page.wait_for_function("""([sheet, params, folder, sidecar]) =>
        app.graph.getNodeById(sheet).widgets.find(w => w.name === 'session').options.values.includes(folder) &&
        app.graph.getNodeById(params).widgets.find(w => w.name === 'image').options.values.includes(sidecar)""",
                                 arg=[sheet, params, folder, sidecar], timeout=30_000)
    set_widget(front, sheet, "session", folder)
    set_widget(front, params, "image", sidecar)
    y, mo, d, hm = folder.split("/")[-4:]
    when = f"{y}-{mo}-{d} {hm[:2]}:{hm[2:]}"
    shown = front.js("""([sheet, params]) => [
        app.graph.getNodeById(sheet).widgets.find(w => w.name === 'session')._displayValue,
        app.graph.getNodeById(params).widgets.find(w => w.name === 'image')._displayValue]""", [sheet, params])
    assert shown == [when, f"{when} · {image['filename'][:-4]}"]
    assert front.api_prompt()[str(sheet)]["inputs"]["session"] == folder    # the value itself is whole
