"""core/workflow.py: the runner's view of an API workflow (templates, our nodes, model files)."""
import copy
import json
from pathlib import Path

import pytest

from prompt_media_pkg.core.workflow import (
    WorkflowError,
    check_model_files,
    session_prompt,
    set_model_files,
    template_names,
    template_path,
    workflow_nodes,
)

REPO = Path(__file__).resolve().parents[2]
API_DIR = REPO / "workflows" / "api"


def load(name: str) -> dict:
    return json.loads((API_DIR / name).read_text(encoding="utf-8"))


def test_short_names_and_files(tmp_path):
    assert template_path("prompt-media-session", API_DIR) == API_DIR / "prompt_media_session.json"
    assert template_path("prompt_media_session", API_DIR) == API_DIR / "prompt_media_session.json"
    own = tmp_path / "mine.json"
    own.write_text("{}")
    assert template_path(str(own), API_DIR) == own
    with pytest.raises(WorkflowError, match=r"'flux-schnel' is neither.*templates: .*prompt-media-session"):
        template_path("flux-schnel", API_DIR)
    assert "prompt-media-session" in template_names(API_DIR)


def test_missing_nodes_are_named_before_anything_runs():
    wf = load("prompt_media_session.json")
    nodes = workflow_nodes(wf)
    assert [t.label for t in nodes.models] == ["CheckpointLoaderSimple (node 1).ckpt_name"]
    broken = {k: v for k, v in wf.items() if v["class_type"] not in ("PromptMediaOOM", "PromptMediaSessionSaver")}
    with pytest.raises(WorkflowError, match=r"no OOM Variations \(PromptMediaOOM\) node; no Session Saver"):
        workflow_nodes(broken)
    doubled = copy.deepcopy(wf)
    doubled["99"] = copy.deepcopy(wf["2"])
    with pytest.raises(WorkflowError, match=r"2 Prompt Media Loader \(PromptMediaLoader\) nodes \(it needs exactly one\)"):
        workflow_nodes(doubled)
    for not_api in ({}, {"nodes": [], "links": []}, [1]):
        with pytest.raises(WorkflowError, match=r"not an API-format workflow.*Export \(API\)"):
            workflow_nodes(not_api)


FLUXISH = {
    "1": {"class_type": "UNETLoader", "inputs": {"unet_name": "flux1-dev.safetensors", "weight_dtype": "default"}},
    "2": {"class_type": "PromptMediaLoader", "inputs": {"file": "a.yaml", "preset": ""}},
    "3": {"class_type": "PromptMediaOOM", "inputs": {"prompt_media": ["2", 0]}},
    "4": {"class_type": "PromptMediaSessionSaver", "inputs": {"images": ["9", 0], "job": ["3", 2]}},
    "5": {"class_type": "DualCLIPLoader", "inputs": {"clip_name1": "clip_l.safetensors", "clip_name2": "t5.safetensors",
                                                     "type": "flux"}},
    "6": {"class_type": "VAELoader", "inputs": {"vae_name": "ae.safetensors"}},
}
OBJECT_INFO = {
    "UNETLoader": {"input": {"required": {"unet_name": [["flux1-dev.safetensors", "sub/Flux1-Schnell.safetensors"]],
                                          "weight_dtype": [["default"]]}}},
    "DualCLIPLoader": {"input": {"required": {"clip_name1": [["clip_l.safetensors", "t5xxl_fp16.safetensors"]],
                                              "clip_name2": [["clip_l.safetensors", "t5xxl_fp16.safetensors"]]}}},
    "VAELoader": {"input": {"required": {"vae_name": ["COMBO", {"options": ["ae.safetensors", "taesd"]}]}}},
}


def test_model_text_encoders_and_vae_are_set_and_resolved_like_lora_names():
    wf = copy.deepcopy(FLUXISH)
    nodes = workflow_nodes(wf)
    set_model_files(wf, nodes, model="flux1-schnell", text_encoders=["clip_l", "T5XXL_FP16"], vae="ae")
    assert wf["1"]["inputs"]["unet_name"] == "flux1-schnell"
    assert check_model_files(wf, nodes, OBJECT_INFO) == []
    assert wf["1"]["inputs"]["unet_name"] == "sub/Flux1-Schnell.safetensors"     # unique case-insensitive
    assert [wf["5"]["inputs"][k] for k in ("clip_name1", "clip_name2")] == ["clip_l.safetensors", "t5xxl_fp16.safetensors"]
    assert wf["6"]["inputs"]["vae_name"] == "ae.safetensors"
    set_model_files(wf, nodes, model="flux-dve", option="--checkpoint")
    assert check_model_files(wf, nodes, OBJECT_INFO, {("1", "unet_name"): "--checkpoint"}) == [
        "--checkpoint: diffusion model 'flux-dve' not found in ComfyUI's models/diffusion_models "
        "(closest: flux1-dev.safetensors, sub/Flux1-Schnell.safetensors)"]
    wf["6"]["inputs"]["vae_name"] = "vea"
    assert check_model_files(wf, nodes, OBJECT_INFO)[1] == (
        "VAELoader (node 6).vae_name in the workflow: VAE 'vea' not found in ComfyUI's models/vae (closest: ae.safetensors)")


def test_options_for_loaders_the_workflow_lacks_are_refused():
    wf = load("prompt_media_session.json")
    nodes = workflow_nodes(wf)
    set_model_files(wf, nodes, model="sd15.safetensors")
    assert wf["1"]["inputs"]["ckpt_name"] == "sd15.safetensors"       # --checkpoint's job, for any shape
    with pytest.raises(WorkflowError, match="no text encoder loader"):
        set_model_files(wf, nodes, text_encoders=["clip_l"])
    with pytest.raises(WorkflowError, match="no VAE loader"):
        set_model_files(wf, nodes, vae="ae")
    flux = copy.deepcopy(FLUXISH)
    with pytest.raises(WorkflowError, match=r"DualCLIPLoader \(node 5\) takes 2 text encoders, got 1"):
        set_model_files(flux, workflow_nodes(flux), text_encoders=["clip_l"])
    flux["1"]["inputs"]["unet_name"] = ["7", 0]
    with pytest.raises(WorkflowError, match="it is connected to another node"):
        set_model_files(flux, workflow_nodes(flux), model="x")
    set_model_files(flux, workflow_nodes(flux), model="x", linked_ok=True)      # the file's model: left to the link
    assert flux["1"]["inputs"]["unet_name"] == ["7", 0]


def test_session_prompt_sets_our_nodes_for_one_job_per_run():
    wf = load("flux_schnell.json")
    prompt, nodes = session_prompt(wf, file="f.yaml", preset="schnell", mode="cycle", variation_seed=3, seed=4,
                                   max_jobs=9, root="r", compose="none")
    assert prompt is not wf and wf[nodes.loader]["inputs"]["file"] == "model_presets.yaml"
    assert prompt[nodes.loader]["inputs"] == {"file": "f.yaml", "preset": "schnell", "yaml_text": ""}
    assert {k: prompt[nodes.oom]["inputs"][k] for k in ("mode", "run", "job_index", "variation_seed", "seed",
                                                         "max_jobs")} == \
        {"mode": "cycle", "run": "one job per run", "job_index": 0, "variation_seed": 3, "seed": 4, "max_jobs": 9}
    assert (prompt[nodes.saver]["inputs"]["root"], prompt[nodes.saver]["inputs"]["compose"]) == ("r", "none")
