"""Issue 7, hostile workflows against real ComfyUI: every path a workflow, a prompt file or a
sidecar carries is refused when it leaves the input/output/models folders, with a message
naming the field, and nothing is read or written outside. Each test plants a canary folder
*next to* the base dir (a valid sidecar, a valid prompt file): a hostile path aims there, and
the canary must be byte-for-byte unchanged afterwards, as must everything in the base dir
outside output/.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from prompt_media_pkg.tests.host.test_contact_sheet_host import SHEET_NODE, sheet_workflow
from prompt_media_pkg.tests.host.workflows import session_prompt

SAVER, LOADER, CHAIN = "10", "2", "4"
LOAD_PARAMS, PREVIEW = "50", "51"
NONE_CHOICE = "(none: use path)"
YAML = "prompts: [a lighthouse]\nseeds: [3]\nsteps: 1\ncfg: 5.0\nwidth: 64\nheight: 64\n"


def sidecar(**parameters) -> dict:
    p = {"prompt": "a lighthouse", "negative_prompt": "", "seed": 3, "steps": 1, "cfg_scale": 5.0,
         "sampler": "euler", "scheduler": "normal", "denoise": 1.0, "width": 64, "height": 64,
         "model_name": "tiny_sd15.ckpt", "loras": []}
    p.update(parameters)
    return {"plugin": "prompt-media", "plugin_version": "0", "timestamp": "20250101_000000", "task_id": 1,
            "parameters": p, "output": {"filename": "x.png", "path": "/etc/passwd"}}


def snapshot(*roots: Path, skip: tuple[Path, ...] = ()) -> dict[str, tuple[int, int]]:
    """{path: (size, mtime_ns)} of every file under ``roots`` (links not followed)."""
    out = {}
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if Path(dirpath, d) not in skip]
            for name in filenames:
                p = Path(dirpath, name)
                st = p.lstat()
                out[str(p)] = (st.st_size, st.st_mtime_ns)
    return out


@pytest.fixture
def hostile(comfy):
    """(comfy, canary): the canary folder beside the base dir; checked unchanged at the end,
    together with everything in the base dir except output/ and the server's own files."""
    base = comfy.server.base
    canary = base.parent / f"{base.name}-canary"
    canary.mkdir(exist_ok=True)
    (canary / "secret.json").write_text(json.dumps(sidecar()), encoding="utf-8")
    (canary / "secret.png").write_bytes(b"not an image")
    (canary / "x.yaml").write_text(YAML, encoding="utf-8")
    # would ComfyUI's own name normalisation ('../../x.yaml' -> 'x.yaml') find something?
    comfy.put_yaml("x.yaml", YAML)
    comfy.put_yaml("hostile.yaml", YAML)                     # the tests' own prompt file
    (base / "output.json").write_text(json.dumps(sidecar()), encoding="utf-8")   # '.' -> <output>.json
    own = (base / "output", base / "user", base / "temp")
    before = snapshot(canary, base, skip=own)
    try:
        yield comfy, canary
        after = snapshot(canary, base, skip=own)
        changed = {p for p in set(before) | set(after)
                   if before.get(p) != after.get(p) and not p.endswith(".log")}
        assert not changed, f"written outside the output folder: {sorted(changed)}"
    finally:
        shutil.rmtree(canary, ignore_errors=True)


def refusal(result, node_id: str) -> str:
    assert result.rejected and result.http_status == 400, result.error_summary()
    assert node_id in result.node_errors, result.node_errors
    return " ".join(f"{e.get('message')} {e.get('details')}" for e in result.node_errors[node_id]["errors"])


def saver_prompt(comfy, root: str) -> dict:
    prompt = session_prompt("hostile.yaml", "x")
    prompt[SAVER]["inputs"]["root"] = root
    return prompt


@pytest.mark.parametrize("root, words", [
    ("../../x", "contains '..'"), ("a/../../../x", "contains '..'"), ("..\\..\\x", "contains '..'"),
    ("/tmp/x", "is absolute"), ("C:\\x", "is absolute"), ("C:x", "is absolute"),
    ("\\\\server\\share\\x", "is absolute"), ("//server/share", "is absolute"), ("a\0b", "NUL byte"),
    ("CANARY", "is absolute"),
])
def test_saver_root_outside_output_is_refused(hostile, root, words):
    comfy, canary = hostile
    root = str(canary / "x") if root == "CANARY" else root
    text = refusal(comfy.run(saver_prompt(comfy, root)), SAVER)
    assert "root" in text and words in text


def test_saver_root_through_a_symlink_pointing_out_is_refused(hostile):
    comfy, canary = hostile
    link = comfy.server.output_dir / comfy.prefix / "link"
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(canary)
    text = refusal(comfy.run(saver_prompt(comfy, f"{comfy.prefix}/link/images")), SAVER)
    assert "outside" in text and "symlink" in text


def test_linked_root_is_checked_when_the_saver_runs(hostile):
    comfy, canary = hostile
    prompt = saver_prompt(comfy, "x")
    prompt["40"] = {"class_type": "PrimitiveString", "inputs": {"value": "../../../" + canary.name}}
    prompt[SAVER]["inputs"]["root"] = ["40", 0]
    result = comfy.run(prompt)
    assert result.status == "error" and result.error["node_type"] == "PromptMediaSessionSaver"
    assert "contains '..'" in result.error["exception_message"]


@pytest.mark.parametrize("name", ["../../../etc/passwd", "/etc/passwd", "..\\..\\tiny_lora_attn.safetensors",
                                  "C:\\loras\\tiny_lora_attn.safetensors", "tiny_lora_attn\0.safetensors"])
def test_lora_names_from_rows_and_yaml_are_refused(hostile, name):
    comfy, canary = hostile
    prompt = saver_prompt(comfy, comfy.prefix)
    prompt[CHAIN]["inputs"]["lora_1"] = {"on": True, "lora": name, "strength": 1.0}
    assert "not found" in refusal(comfy.run(prompt), CHAIN)

    yaml_text = YAML + f"loras:\n  - {{name: {json.dumps(name)}, strength_model: 1.0}}\n"
    prompt = saver_prompt(comfy, comfy.prefix)
    prompt[LOADER]["inputs"].update(file="", yaml_text=yaml_text)
    result = comfy.run(prompt)
    if "\0" in name:                      # the loader itself refuses a NUL in the YAML
        assert "NUL" in refusal(result, LOADER) or "control" in refusal(result, LOADER)
    else:
        assert "not found" in refusal(result, CHAIN)


@pytest.mark.parametrize("file, words", [
    ("../../x.yaml", "contains '..'"), ("sub/../../x.yaml", "contains '..'"), ("/etc/passwd", "is absolute"),
    ("CANARY", "is absolute"), ("C:\\x.yaml", "is absolute"), ("\\\\server\\share\\x.yaml", "is absolute"),
    ("x.yaml\0.txt", "NUL byte"),
])
def test_loader_file_outside_input_is_refused(hostile, file, words):
    """ComfyUI's get_full_path maps '../../x.yaml' to input/prompt_media/x.yaml; the loader
    refuses instead of silently reading another file."""
    comfy, canary = hostile
    file = str(canary / "x.yaml") if file == "CANARY" else file
    prompt = saver_prompt(comfy, comfy.prefix)
    prompt[LOADER]["inputs"]["file"] = file
    text = refusal(comfy.run(prompt), LOADER)
    assert "file" in text and words in text


def load_params_prompt(path: str) -> dict:
    return {LOAD_PARAMS: {"class_type": "PromptMediaLoadParams", "inputs": {"image": NONE_CHOICE, "path": path}},
            PREVIEW: {"class_type": "PreviewAny", "inputs": {"source": [LOAD_PARAMS, 0]}}}


def test_load_params_path_outside_output_is_refused(hostile):
    comfy, canary = hostile
    out = comfy.server.output_dir
    inside = out / comfy.prefix
    inside.mkdir(parents=True, exist_ok=True)
    (inside / "link.json").symlink_to(canary / "secret.json")       # an ordinary name, pointing out
    (inside / "dirlink").symlink_to(canary)
    rel = os.path.relpath(canary, out)
    cases = {f"{rel}/secret.json": "contains '..'", f"{rel}/secret.png": "contains '..'",
             str(canary / "secret.json"): "outside", "C:\\secret.json": "is absolute",
             "\\\\server\\share\\secret.json": "is absolute", "secret\0.json": "NUL byte",
             f"{comfy.prefix}/link.png": "outside", f"{comfy.prefix}/link.json": "outside",
             f"{comfy.prefix}/dirlink/secret.json": "outside",
             ".": "outside", str(out): "outside"}                    # '.' would read <base>/output.json
    for path, words in cases.items():
        text = refusal(comfy.run(load_params_prompt(path)), LOAD_PARAMS)
        assert words in text, (path, text)


def test_contact_sheet_folder_outside_output_is_refused(hostile):
    comfy, canary = hostile
    link = comfy.server.output_dir / comfy.prefix / "sheetlink"
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(canary)
    for folder, words in {"..": "contains '..'", f"../{canary.name}": "contains '..'",
                          str(canary): "outside", "C:\\x": "is absolute", "a\0b": "NUL byte",
                          f"{comfy.prefix}/sheetlink": "outside"}.items():
        text = refusal(comfy.run(sheet_workflow(folder)), SHEET_NODE)
        assert words in text, (folder, text)


def put_sidecar(comfy, name: str, content: bytes | dict) -> str:
    folder = comfy.server.output_dir / comfy.prefix
    folder.mkdir(parents=True, exist_ok=True)
    raw = json.dumps(content).encode() if isinstance(content, dict) else content
    (folder / name).write_bytes(raw)
    return f"{comfy.prefix}/{name}"


def test_sidecar_with_paths_pointing_elsewhere(hostile):
    """A sidecar can name a model or LoRA; neither becomes a path out of models/."""
    comfy, canary = hostile
    for model in ("../../../etc/passwd", "/etc/passwd", "C:\\m.ckpt", "m\0.ckpt"):
        path = put_sidecar(comfy, "model.json", sidecar(model_name=model))
        text = refusal(comfy.run(load_params_prompt(path)), LOAD_PARAMS)
        assert "model_name" in text and "model.json" in text, text

    # LoRA names pass Load Params (it only reads them) and are refused by the chain
    path = put_sidecar(comfy, "lora.json", sidecar(loras=[{"lora_name": "../../../etc/passwd",
                                                           "strength_model": 1, "strength_clip": 1}]))
    prompt = {"1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "tiny_sd15.ckpt"}},
              **load_params_prompt(path),
              CHAIN: {"class_type": "PromptMediaLoraChain", "inputs": {
                  "model": ["1", 0], "clip": ["1", 1], "lora_stack": [LOAD_PARAMS, 11], "strength_mode": "separate"}},
              "52": {"class_type": "PreviewAny", "inputs": {"source": [CHAIN, 2]}}}
    result = comfy.run(prompt)
    assert result.status == "error" and result.error["node_type"] == "PromptMediaLoraChain"
    assert "'../../../etc/passwd' not found" in result.error["exception_message"]


CORRUPT = {
    "truncated": (b'{"plugin": "prompt-media", "plugin_version": "0", "parame', "truncated"),
    "empty": (b"", "truncated or empty"),
    "not_json": (b"GIF89a this is not json", "not valid JSON"),
    "not_utf8": (b"\xff\xfe{}", "not UTF-8"),
    "array": (b"[1, 2, 3]", "expected a JSON object"),
    "deep": (b"[" * 100_000, "nested too deeply"),
    "nan": (json.dumps(sidecar(cfg_scale=1.0)).replace("1.0", "NaN", 1).encode(), "NaN"),
    "huge_number": (json.dumps(sidecar()).replace('"seed": 3', '"seed": ' + "9" * 5000).encode(), "5000-digit"),
    "huge_file": (b'{"pad": "' + b"x" * (9 * 1024 * 1024) + b'"}', "larger than 8 MiB"),
    "parameters_list": (sidecar() | {"parameters": []}, "'parameters' must be dict"),
    "seed_text": (sidecar(seed="3"), "parameters.seed must be int"),
    "cfg_text": (sidecar(cfg_scale="high"), "parameters.cfg_scale must be a number"),
    "denoise_list": (sidecar(denoise=[1]), "parameters.denoise must be a number"),
    "loras_number": (sidecar(loras=5), "parameters.loras must be a list"),
    "lora_no_name": (sidecar(loras=[{"strength_model": 1}]), "parameters.loras[0] has no lora_name"),
    "strength_text": (sidecar(loras=[{"lora_name": "a", "strength_model": "abc"}]),
                      "parameters.loras[0].strength_model must be a number"),
    "sampler_unknown": (sidecar(sampler="euler_42"), "sampler 'euler_42' is not available"),
    "model_number": (sidecar(model_name=5), "parameters.model_name must be text"),
}


def test_corrupt_sidecars_through_load_params_name_the_file(hostile):
    comfy, canary = hostile
    for case, (content, words) in CORRUPT.items():
        path = put_sidecar(comfy, f"{case}.json", content)
        text = refusal(comfy.run(load_params_prompt(path)), LOAD_PARAMS)
        assert words in text and f"{case}.json" in text, (case, text)
    path = put_sidecar(comfy, "good.json", sidecar())                 # and a good one still loads
    assert comfy.run_ok(load_params_prompt(path)).ui_text(PREVIEW) == ["a lighthouse"]
