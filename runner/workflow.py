"""The workflow files the CLI reads: the API-format prompt (set up for a run by core/workflow.py) and
its UI-format twin (``workflows/api/X.json`` <-> ``workflows/X.json``) with the same widget values, sent as
``extra_data.extra_pnginfo.workflow`` the way the editor sends it, so a PNG dropped into ComfyUI
brings back the editable graph."""
from __future__ import annotations

import copy
import json
from pathlib import Path


class WorkflowError(ValueError):
    """The workflow file is unreadable (what it must hold: core/workflow.py)."""

# the values of the "control after generate" widget the editor puts after a seed-like INT widget
CONTROL_VALUES = frozenset({"fixed", "increment", "decrement", "randomize"})


def read_json(path: Path, what: str) -> dict:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise WorkflowError(f"{path}: cannot read the {what}: {e}") from e
    if not isinstance(data, dict):
        raise WorkflowError(f"{path}: the {what} is not a JSON object")
    return data


def ui_twin_path(api_path: Path) -> Path | None:
    """``<dir>/api/X.json`` -> ``<dir>/X.json`` when that file exists, else None."""
    api_path = Path(api_path)
    twin = api_path.parent.parent / api_path.name
    return twin if api_path.parent.name == "api" and twin.is_file() else None


def _is_link(value) -> bool:
    return isinstance(value, list) and len(value) == 2 and isinstance(value[1], int)


def ui_workflow_for(ui: dict, prompt: dict) -> dict:
    """A copy of the UI workflow whose widget values are the API prompt's constants, node by node
    (the twins share node ids). A node's widgets are its inputs that have a ``widget`` entry, in
    order; a seed-like INT widget is followed in ``widgets_values`` by its control value."""
    ui = copy.deepcopy(ui)
    for node in ui.get("nodes", []):
        api = prompt.get(str(node.get("id")))
        values = node.get("widgets_values")
        if not isinstance(api, dict) or not isinstance(values, list):
            continue
        inputs = api.get("inputs", {})
        pos = 0
        for name in [i.get("name") for i in node.get("inputs", []) if isinstance(i.get("widget"), dict)]:
            if pos >= len(values):
                break
            if name in inputs and not _is_link(inputs[name]):
                values[pos] = inputs[name]
            is_int = isinstance(values[pos], int) and not isinstance(values[pos], bool)
            pos += 1
            if is_int and pos < len(values) and values[pos] in CONTROL_VALUES:
                pos += 1
    return ui
