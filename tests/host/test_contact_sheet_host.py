"""Issue 8 in real ComfyUI: a 3 prompts x 2 variations session ends with a contact sheet whose
grid matches the session, and the Session Contact Sheet node composes a chosen folder.

Graph: tiny_sd15 -> loader/OOM -> ... -> VAEDecode -> PromptMediaSessionSaver(compose=...), 64x64, 1 step.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from prompt_media_pkg.core import contact_sheet as cs
from prompt_media_pkg.tests.host.workflows import LOADER_OUT, NODE, OOM_OUT, loader_oom_txt2img

SESSION_YAML = """\
# 3 prompts x 2 variations x 1 seed = 6 jobs
prompt_settings:
  negative: "blurry"
prompts:
  - a red fox
  - a blue bird
  - a green frog
variations:
  light:
    type: sequential
    values: [morning light, at night]
seeds: [4242]
steps: 1
width: 64
height: 64
sampler: euler
scheduler: normal
"""
SHEET_NODE = "30"


def session_workflow(file: str, root: str, compose: str) -> dict:
    wf = loader_oom_txt2img(file, prefix=root, previews=False, run="all jobs")
    wf[NODE["save"]] = {"class_type": "PromptMediaSessionSaver", "inputs": {
        "images": [NODE["decode"], 0], "job": [NODE["oom"], OOM_OUT["job"]],
        "prompt_media": [NODE["loader"], LOADER_OUT["prompt_media"]], "root": root, "compose": compose}}
    return wf


def sheet_workflow(folder: str, **options) -> dict:
    inputs = {"session": "(no sessions yet)", "sheet_format": "png", "animation": "webp", "cell_size": 64,
              "border": 4, "row_spacing": 6, "max_width": 2400, "max_height": 4096, "font_size": 12,
              "frame_ms": 200, "output_pages": 4, "folder": folder}
    inputs.update(options)
    return {SHEET_NODE: {"class_type": "PromptMediaContactSheet", "inputs": inputs}}


def only_session_folder(output: Path, root: str) -> Path:
    dirs = [p for p in (output / root).glob("[0-9]" * 4 + "/[0-9][0-9]/[0-9][0-9]/" + "[0-9]" * 4) if p.is_dir()]
    assert len(dirs) == 1, dirs
    return dirs[0]


def mean_abs_diff(a: Image.Image, b: Image.Image) -> float:
    return float(np.abs(np.asarray(a, dtype=np.float32) - np.asarray(b, dtype=np.float32)).mean())


def test_session_ends_with_a_sheet_whose_grid_matches(comfy):
    comfy.put_yaml("sheet_session.yaml", SESSION_YAML)
    comfy.run_ok(session_workflow("sheet_session.yaml", comfy.prefix, compose="both"))
    folder = only_session_folder(comfy.server.output_dir, comfy.prefix)
    assert (folder / "contact_sheet.jpg").is_file() and (folder / "session.webp").is_file()

    images, skipped = cs.scan_session(str(folder))
    assert len(images) == 6 and skipped == []
    plan = cs.plan_sheet(images, header="x")
    assert len(plan.pages) == 1 and len(plan.grids) == 1
    grid = plan.grids[0]
    assert (grid.seed, grid.prompt_indexes, grid.columns) == (4242, (0, 1, 2), 2)
    assert grid.column_labels == ("morning light", "at night")

    # every cell of the written sheet shows its own image (closer to it than to any other)
    with Image.open(folder / "contact_sheet.jpg") as sheet:
        sheet = sheet.convert("RGB")
    assert sheet.size == (plan.pages[0].width, plan.pages[0].height)
    cells = plan.pages[0].cells
    assert [(c.prompt_index, c.variation_index) for c in cells] == [(p, v) for p in range(3) for v in range(2)]
    thumbs = {im.name: cs.letterboxed(im.path, plan.cell_size) for im in images}
    for cell in cells:
        x, y, w, h = cell.box
        crop = sheet.crop((x, y, x + w, y + h))
        diffs = {name: mean_abs_diff(crop, t) for name, t in thumbs.items()}
        assert min(diffs, key=diffs.get) == cell.image.name, diffs
        assert diffs[cell.image.name] < 8
    with Image.open(folder / "session.webp") as anim:
        assert anim.n_frames == 6


def test_contact_sheet_node_composes_a_folder_and_outputs_the_pages(comfy):
    comfy.put_yaml("sheet_session.yaml", SESSION_YAML)
    comfy.run_ok(session_workflow("sheet_session.yaml", comfy.prefix, compose="none"))
    folder = only_session_folder(comfy.server.output_dir, comfy.prefix)
    assert not (folder / "contact_sheet.jpg").exists()
    relative = str(folder.relative_to(comfy.server.output_dir))

    wf = sheet_workflow(relative)
    wf["31"] = {"class_type": "PreviewImage", "inputs": {"images": [SHEET_NODE, 0]}}
    result = comfy.run_ok(wf)
    assert result.outputs[SHEET_NODE]["images"] == [
        {"filename": "contact_sheet.png", "subfolder": relative, "type": "output"}]
    assert (folder / "contact_sheet.png").is_file() and (folder / "session.webp").is_file()
    preview = result.outputs["31"]["images"][0]
    with Image.open(comfy.server.base / "temp" / preview["subfolder"] / preview["filename"]) as shown, \
            Image.open(folder / "contact_sheet.png") as written:
        assert shown.size == written.size                     # the IMAGE output is the sheet page
        assert mean_abs_diff(shown.convert("RGB"), written.convert("RGB")) < 1

    # unchanged folder: cached; an escape is refused before anything runs
    again = comfy.run_ok(wf)
    assert SHEET_NODE in [n for m in again.messages("execution_cached") for n in m.get("nodes", [])]
    bad = comfy.run(sheet_workflow("../outside"))
    assert bad.rejected and "contains '..'" in str(bad.node_errors)
