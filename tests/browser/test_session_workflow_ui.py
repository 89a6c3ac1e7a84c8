"""Issue 5 in the real front end: the shipped UI workflow loads whole and queues exactly the API
workflow; the OOM node shows the server's job status and "Queue session" queues exactly the
remaining jobs, one prompt each, with no UI-only widget in the API prompt."""
from __future__ import annotations

import json
import time
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

    # one real job through the server: the node shows what the server says
    front.js("() => app.queuePrompt(0, 1)")
    front.page.wait_for_function("""(id) => (app.graph.getNodeById(id).widgets
        .find(w => w.name === 'pm_status')?.value ?? '').startsWith('job 1 of 6')""", arg=oom, timeout=240_000)
    assert widget_value(front, oom, "pm_status") == "job 1 of 6 · 3 prompts × 2 variations × 1 seed"
    assert widget_value(front, oom, "job_index") == 1          # incremented after queueing
    client, deadline = ComfyClient(comfy_url), time.monotonic() + 120
    while any(client.queue().get(k) for k in ("queue_running", "queue_pending")):   # saver done too
        assert time.monotonic() < deadline
        time.sleep(0.2)

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
    assert widget_value(front, oom, "pm_status") == "queueing jobs 2..6 · 6 jobs · 3 prompts × 2 variations × 1 seed"


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
