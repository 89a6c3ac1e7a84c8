"""The shipped templates: each API workflow (workflows/api/) has its UI twin (workflows/) with the
same nodes plus a Note saying what to pick, a thumbnail, and everything a session needs. (The
browser tier checks that each UI twin, loaded in the real front end, queues exactly its API
workflow; the host tier that each passes ComfyUI's validation.)"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from prompt_media_pkg.core.schema import load_prompt_media_file
from prompt_media_pkg.core.workflow import template_names, workflow_nodes

REPO = Path(__file__).resolve().parents[2]
API_DIR, UI_DIR = REPO / "workflows" / "api", REPO / "workflows"
TEMPLATES = sorted(p.stem for p in API_DIR.glob("*.json"))
# what each template is for: (model loader, sampler)
SHAPES = {"prompt_media_session": ("CheckpointLoaderSimple", "KSampler"),
          "flux_dev": ("UNETLoader", "SamplerCustomAdvanced"),
          "flux_schnell": ("UNETLoader", "SamplerCustomAdvanced"),
          "sd35": ("CheckpointLoaderSimple", "KSampler")}


def test_the_four_templates_are_shipped():
    assert TEMPLATES == sorted(SHAPES)
    assert template_names(API_DIR) == sorted(name.replace("_", "-") for name in SHAPES)


@pytest.mark.parametrize("name", TEMPLATES)
def test_ui_twin_has_the_same_nodes_plus_a_note_and_a_thumbnail(name):
    api = json.loads((API_DIR / f"{name}.json").read_text(encoding="utf-8"))
    ui = json.loads((UI_DIR / f"{name}.json").read_text(encoding="utf-8"))
    ui_nodes = {str(n["id"]): n["type"] for n in ui["nodes"] if n["type"] != "Note"}
    assert ui_nodes == {k: v["class_type"] for k, v in api.items()}
    notes = [n for n in ui["nodes"] if n["type"] == "Note"]
    assert len(notes) == 1 and "Queue session" in notes[0]["widgets_values"][0]
    with Image.open(UI_DIR / f"{name}.jpg") as thumb:
        assert thumb.format == "JPEG" and thumb.size[0] >= 400 and thumb.size[1] >= 250


@pytest.mark.parametrize("name", TEMPLATES)
def test_template_has_what_a_session_needs_and_its_preset_exists(name):
    api = json.loads((API_DIR / f"{name}.json").read_text(encoding="utf-8"))
    nodes = workflow_nodes(api)
    model_loader, sampler = SHAPES[name]
    assert [t.class_type for t in nodes.models] == [model_loader]
    assert sum(1 for n in api.values() if n["class_type"] == sampler) == 1
    loader = api[nodes.loader]["inputs"]
    media = load_prompt_media_file(str(REPO / "example_prompts" / loader["file"]), loader["preset"])
    assert media.preset == loader["preset"]
