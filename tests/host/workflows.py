"""API-format workflows for host tests, built in Python so each test states only what it varies.

Node ids of :func:`loader_oom_txt2img` are fixed (see ``NODE``) so tests can find outputs and
node errors by id, and other tests can swap a node (e.g. the saver) by id.
"""
from __future__ import annotations

import json
from pathlib import Path

from prompt_media_pkg.core.api_prompt import LOADER_OUTPUTS, OOM_OUTPUTS

TEST_CHECKPOINT = "tiny_sd15.ckpt"
API_WORKFLOW = Path(__file__).resolve().parents[2] / "workflows" / "api" / "prompt_media_session.json"

# loader / OOM output indexes (their RETURN_NAMES)
LOADER_OUT = {name: i for i, name in enumerate(LOADER_OUTPUTS)}
OOM_OUT = {name: i for i, name in enumerate(OOM_OUTPUTS)}

NODE = {"checkpoint": "1", "loader": "2", "oom": "3", "positive": "4", "negative": "5", "latent": "6",
        "sampler": "7", "decode": "8", "save": "9", "show_summary": "10", "show_jobs": "11",
        "show_count": "12"}
# PreviewAny nodes that echo loader settings into the history (ui text), by setting name
SHOW_SETTING = {name: str(20 + i) for i, name in enumerate(
    ("steps", "cfg", "width", "height", "sampler_name", "scheduler", "denoise"))}


def loader_oom_txt2img(file: str, *, prefix: str, run: str = "all jobs", job_index: int = 0,
                       mode: str = "product", preset: str = "", yaml_text: str = "", seed: int = 0,
                       variation_seed: int = 0, max_jobs: int = 10_000, previews: bool = True,
                       checkpoint: str = TEST_CHECKPOINT) -> dict:
    """Loader -> OOM -> CLIPTextEncode / EmptyLatentImage / KSampler / VAEDecode / SaveImage.

    Settings (steps, cfg, width, height, sampler, scheduler, denoise) and the negative prompt come
    from the loader; the positive prompt and the seed from the OOM node. SaveImage writes
    ``<prefix>/img_NNNNN_.png``. With ``previews`` core PreviewAny nodes echo the loader's summary
    and settings and the OOM jobs / job count into the history (ui text) so tests can read them.
    """
    L, O = NODE["loader"], NODE["oom"]
    wf = {
        NODE["checkpoint"]: {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": checkpoint}},
        L: {"class_type": "PromptMediaLoader", "inputs": {"file": file, "preset": preset, "yaml_text": yaml_text}},
        O: {"class_type": "PromptMediaOOM", "inputs": {
            "prompt_media": [L, LOADER_OUT["prompt_media"]], "mode": mode, "run": run, "job_index": job_index,
            "variation_seed": variation_seed, "seed": seed, "max_jobs": max_jobs}},
        NODE["positive"]: {"class_type": "CLIPTextEncode", "inputs": {
            "clip": [NODE["checkpoint"], 1], "text": [O, OOM_OUT["positive"]]}},
        NODE["negative"]: {"class_type": "CLIPTextEncode", "inputs": {
            "clip": [NODE["checkpoint"], 1], "text": [L, LOADER_OUT["negative"]]}},
        NODE["latent"]: {"class_type": "EmptyLatentImage", "inputs": {
            "width": [L, LOADER_OUT["width"]], "height": [L, LOADER_OUT["height"]], "batch_size": 1}},
        NODE["sampler"]: {"class_type": "KSampler", "inputs": {
            "model": [NODE["checkpoint"], 0], "positive": [NODE["positive"], 0], "negative": [NODE["negative"], 0],
            "latent_image": [NODE["latent"], 0], "seed": [O, OOM_OUT["seed"]],
            **{k: [L, LOADER_OUT[k]] for k in ("steps", "cfg", "sampler_name", "scheduler", "denoise")}}},
        NODE["decode"]: {"class_type": "VAEDecode", "inputs": {
            "samples": [NODE["sampler"], 0], "vae": [NODE["checkpoint"], 2]}},
        NODE["save"]: {"class_type": "SaveImage", "inputs": {
            "images": [NODE["decode"], 0], "filename_prefix": f"{prefix}/img"}},
    }
    if previews:
        wf[NODE["show_summary"]] = _show([L, LOADER_OUT["summary"]])
        wf[NODE["show_jobs"]] = _show([O, OOM_OUT["job"]])
        wf[NODE["show_count"]] = _show([O, OOM_OUT["job_count"]])
        for name, node_id in SHOW_SETTING.items():
            wf[node_id] = _show([L, LOADER_OUT[name]])
    return wf


def _show(link: list) -> dict:
    return {"class_type": "PreviewAny", "inputs": {"source": link}}


def session_prompt(file: str, root: str, job_index: int = 0) -> dict:
    """The shipped API workflow (workflows/api/prompt_media_session.json) on the test checkpoint,
    one job per run, saving under ``root`` without composing."""
    prompt = json.loads(API_WORKFLOW.read_text(encoding="utf-8"))
    by_class = {node["class_type"]: node for node in prompt.values()}
    by_class["CheckpointLoaderSimple"]["inputs"]["ckpt_name"] = TEST_CHECKPOINT
    by_class["PromptMediaLoader"]["inputs"]["file"] = file
    by_class["PromptMediaOOM"]["inputs"].update(run="one job per run", job_index=job_index)
    by_class["PromptMediaSessionSaver"]["inputs"].update(root=root, compose="none")
    return prompt


def oom_id(prompt: dict) -> str:
    return next(k for k, v in prompt.items() if v["class_type"] == "PromptMediaOOM")
