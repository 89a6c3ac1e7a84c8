"""Issue 14 in the real front end: each model-family template's UI twin (workflows/<name>.json)
loads whole and queues exactly its API workflow (workflows/api/<name>.json); its Note node stays
out of the prompt. (The checkpoint template: test_session_workflow_ui.py.)"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TEMPLATES = ("flux_dev", "flux_schnell", "sd35")


@pytest.mark.parametrize("name", TEMPLATES)
def test_template_ui_twin_queues_exactly_its_api_workflow(front, name):
    ui = json.loads((REPO / "workflows" / f"{name}.json").read_text(encoding="utf-8"))
    api = json.loads((REPO / "workflows" / "api" / f"{name}.json").read_text(encoding="utf-8"))
    front.js("async (wf) => { await app.loadGraphData(wf); }", ui)
    front.redraw()
    missing = front.js("() => app.graph._nodes.filter(n => !LiteGraph.registered_node_types[n.type]).map(n => n.type)")
    assert missing == []
    assert front.nodes_of("Note")                              # the Note is there ...
    expected = {k: {"class_type": v["class_type"], "inputs": v["inputs"]} for k, v in api.items()}
    got = {k: {"class_type": v["class_type"], "inputs": v["inputs"]} for k, v in front.api_prompt().items()}
    assert got == expected                                     # ... and not in the prompt
