"""Issue 15 in real ComfyUI: <lora:...> tags in prefix, prompts and variation values, applied per
job through the shipped session workflow (OOM lora_stack -> LoRA Chain), against chains of core
LoraLoader nodes encoding the cleaned prompt."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from PIL import Image

from prompt_media_pkg.core.expand import expand
from prompt_media_pkg.core.pngmeta import read_text_chunks
from prompt_media_pkg.core.schema import load_prompt_media
from prompt_media_pkg.tests import civitai_rules
from prompt_media_pkg.tests.host.workflows import API_WORKFLOW, TEST_CHECKPOINT, oom_id, session_prompt

# 2 prompts x 2 light values: the prefix tag in every job, a prompt tag in jobs 0-1, a value tag
# in jobs 1 and 3 naming the loras: entry's LoRA (applied once, with the file's strengths)
TAGS_YAML = """\
prompt_settings:
  prefix: "<lora:tiny_lora_attn:0.9:0.6>, tiny test,"
  negative: "blurry"
prompts:
  - "a red fox <lora:tiny_lora_conv:1.3:0.8>"
  - "a blue bird"
variations:
  light:
    type: sequential
    values: ["morning", "night <lora:TINY_LORA_DIFFUSERS:-0.7:1.1>"]
loras:
  - {name: tiny_lora_diffusers, strength_model: 0.5, strength_clip: 0.4}
seeds: [7]
steps: 2
cfg: 5.0
width: 64
height: 64
sampler: euler
scheduler: normal
"""
ATTN, CONV, DIFF = ("tiny_lora_attn.safetensors", "tiny_lora_conv.safetensors",
                    "tiny_lora_diffusers.safetensors")
# what each job applies, in order: the loras: entry, then the tags in order of appearance
JOB_LORAS = [
    [(DIFF, 0.5, 0.4), (ATTN, 0.9, 0.6), (CONV, 1.3, 0.8)],
    [(DIFF, 0.5, 0.4), (ATTN, 0.9, 0.6), (CONV, 1.3, 0.8)],
    [(DIFF, 0.5, 0.4), (ATTN, 0.9, 0.6)],
    [(DIFF, 0.5, 0.4), (ATTN, 0.9, 0.6)],
]
CLEAN_PROMPTS = ["tiny test, a red fox, morning", "tiny test, a red fox, night",
                 "tiny test, a blue bird, morning", "tiny test, a blue bird, night"]


def core_txt2img(prefix: str, loras, positive: str, seed: int = 7) -> dict:
    """Checkpoint -> core LoraLoader per LoRA -> CLIPTextEncode(cleaned prompt) -> ... -> SaveImage."""
    wf = {"1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": TEST_CHECKPOINT}}}
    model, clip = ["1", 0], ["1", 1]
    for i, (name, sm, sc) in enumerate(loras):
        node = str(40 + i)
        wf[node] = {"class_type": "LoraLoader", "inputs": {
            "model": model, "clip": clip, "lora_name": name, "strength_model": sm, "strength_clip": sc}}
        model, clip = [node, 0], [node, 1]
    wf.update({
        "4": {"class_type": "CLIPTextEncode", "inputs": {"clip": clip, "text": positive}},
        "5": {"class_type": "CLIPTextEncode", "inputs": {"clip": clip, "text": "blurry"}},
        "6": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "7": {"class_type": "KSampler", "inputs": {
            "model": model, "positive": ["4", 0], "negative": ["5", 0], "latent_image": ["6", 0],
            "seed": seed, "steps": 2, "cfg": 5.0, "sampler_name": "euler", "scheduler": "normal", "denoise": 1.0}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["7", 0], "vae": ["1", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"images": ["8", 0], "filename_prefix": f"{prefix}/img"}},
    })
    return wf


def pixels(path: Path) -> bytes:
    with Image.open(path) as im:
        return im.convert("RGB").tobytes()


def sidecar(path: Path) -> dict:
    return json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))


def node_of(prompt: dict, class_type: str) -> str:
    return next(k for k, v in prompt.items() if v["class_type"] == class_type)


def executed(result) -> set[str]:
    return {str(m.get("node")) for m in result.messages("executing") if m.get("node") is not None}


def cached(result) -> set[str]:
    return {str(n) for m in result.messages("execution_cached") for n in m.get("nodes", [])}


def test_expected_jobs_match_the_file():
    jobs = expand(load_prompt_media(TAGS_YAML, "tags.yaml"))
    assert [j["positive"] for j in jobs] == CLEAN_PROMPTS
    assert [len(j["loras"]) for j in jobs] == [3, 3, 2, 2]


def test_tags_apply_per_job_pixel_equal_to_core_lora_loaders_and_the_chain_stays_cached(comfy, test_models_dir):
    name = comfy.put_yaml("lora_tags.yaml", TAGS_YAML)
    root = f"{comfy.prefix}/session"
    images, runs = [], []
    for job_index in range(4):
        prompt = session_prompt(name, root, job_index)
        result = comfy.run_ok(prompt)
        runs.append((prompt, result))
        [path] = comfy.image_paths(result)
        images.append(path)
    chain = node_of(runs[0][0], "PromptMediaLoraChain")
    negative = next(k for k, v in runs[0][0].items()
                    if v["class_type"] == "CLIPTextEncode" and v["inputs"]["text"][0] != oom_id(runs[0][0]))

    # ComfyUI caches by inputs: the chain (and the negative encoding after it) re-runs only when
    # the job's LoRA set changes: job 1 has job 0's set (its value tag names the loras: entry's
    # LoRA), job 2 drops the prompt tag, job 3 has job 2's set
    assert chain in executed(runs[0][1])
    assert chain in cached(runs[1][1]) and negative in cached(runs[1][1])
    assert chain in executed(runs[2][1])
    assert chain in cached(runs[3][1]) and negative in cached(runs[3][1])

    lora_sha = {n: hashlib.sha256((Path(test_models_dir) / "loras" / n).read_bytes()).hexdigest()
                for n in (ATTN, CONV, DIFF)}
    for job_index, path in enumerate(images):
        core = comfy.run_ok(core_txt2img(f"{comfy.prefix}/core{job_index}", JOB_LORAS[job_index],
                                         CLEAN_PROMPTS[job_index]))
        [core_path] = comfy.image_paths(core)
        assert pixels(path) == pixels(core_path), f"job {job_index} differs from core LoraLoaders"
        side = sidecar(path)
        params = side["parameters"]
        assert params["prompt"] == CLEAN_PROMPTS[job_index]          # no tag reached CLIP
        assert [(lora["lora_name"], lora["strength_model"], lora["strength_clip"], lora["sha256"])
                for lora in params["loras"]] == [(n, sm, sc, lora_sha[n]) for n, sm, sc in JOB_LORAS[job_index]]
        notes = side["parameters_source"]["notes"]
        if job_index in (1, 3):     # the value tag named the loras: entry's LoRA: applied once
            assert any("<lora:TINY_LORA_DIFFUSERS:-0.7:1.1>" in n and "applied once, with 0.5/0.4" in n
                       for n in notes), notes
        else:
            assert not any("applied once" in n for n in notes), notes

    # the tag naming the loras: entry's LoRA was warned about when the file was loaded
    assert "names tiny_lora_diffusers.safetensors, which the loras: entry on line 12" in comfy.log()


def test_all_jobs_in_one_run_give_the_same_images(comfy):
    name = comfy.put_yaml("lora_tags_all.yaml", TAGS_YAML)
    one_by_one = []
    for job_index in range(4):
        [path] = comfy.image_paths(comfy.run_ok(session_prompt(name, f"{comfy.prefix}/one", job_index)))
        one_by_one.append(pixels(path))
    prompt = session_prompt(name, f"{comfy.prefix}/all")
    prompt[oom_id(prompt)]["inputs"]["run"] = "all jobs"          # the chain runs once per job
    paths = comfy.image_paths(comfy.run_ok(prompt))
    assert [pixels(p) for p in paths] == one_by_one


def _refusal(result, node_id: str) -> str:
    assert result.rejected, result.error_summary()
    return " ".join(f"{e.get('message')} {e.get('details')}" for e in result.node_errors[node_id]["errors"])


def test_a_tag_naming_a_missing_lora_is_refused_before_the_queue(comfy):
    name = comfy.put_yaml("lora_tags_missing.yaml", TAGS_YAML.replace("tiny_lora_conv:1.3", "tiny_lora_cnv:1.3"))
    prompt = session_prompt(name, comfy.prefix)
    text = _refusal(comfy.run(prompt), node_of(prompt, "PromptMediaLoraChain"))
    assert "lora_tags_missing.yaml:5:" in text and "prompts[0]: <lora:tiny_lora_cnv:1.3:0.8>" in text
    assert "LoRA 'tiny_lora_cnv' not found" in text and "closest: tiny_lora_conv.safetensors" in text
    assert comfy.client.queue()["queue_running"] == []

    # a malformed tag is the loader's file:line error
    name = comfy.put_yaml("lora_tags_bad.yaml", TAGS_YAML.replace("tiny_lora_conv:1.3", "tiny_lora_conv:x1.3"))
    prompt = session_prompt(name, comfy.prefix)
    text = _refusal(comfy.run(prompt), node_of(prompt, "PromptMediaLoader"))
    assert "lora_tags_bad.yaml:5:" in text and "weight 'x1.3' is not a number" in text


def test_tags_that_nothing_would_apply_are_refused(comfy):
    name = comfy.put_yaml("lora_tags_unwired.yaml", TAGS_YAML)
    # the 0.2.0 wiring: the chain takes the loader's lora_stack (the loras: list alone)
    prompt = session_prompt(name, comfy.prefix)
    chain = node_of(prompt, "PromptMediaLoraChain")
    prompt[chain]["inputs"]["lora_stack"] = [node_of(prompt, "PromptMediaLoader"), 1]
    text = _refusal(comfy.run(prompt), chain)
    assert "lora_tags_unwired.yaml:2:" in text and "must take OOM Variations' lora_stack output" in text

    # no chain at all: the tags would be dropped silently
    del prompt[chain]["inputs"]["lora_stack"]
    text = _refusal(comfy.run(prompt), oom_id(prompt))
    assert "no LoRA Chain takes this node's lora_stack output" in text


def copy_with_metadata(src: Path, dest: Path, metadata: dict | None) -> None:
    """``src`` (a .safetensors file) with ``metadata`` as its header's __metadata__; the tensor
    bytes are copied unchanged (their offsets are relative to the header's end)."""
    raw = src.read_bytes()
    size = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + size])
    header.pop("__metadata__", None)
    if metadata is not None:
        header["__metadata__"] = metadata
    encoded = json.dumps(header).encode()
    dest.write_bytes(len(encoded).to_bytes(8, "little") + encoded + raw[8 + size:])


TRIGGER_YAML = """\
add_trigger_words: true
prompt_settings:
  prefix: "tiny test"
  negative: "blurry"
prompts:
  - "a red fox <lora:pm_trig_header:0.8>"
  - "a blue bird"
loras:
  - {name: tiny_lora_conv, strength: 0.5, add_trigger_words: false}
seeds: [7]
steps: 2
width: 64
height: 64
"""


def test_trigger_words_from_metadata_go_into_the_prompt_once_and_into_the_sidecar(comfy, test_models_dir):
    loras = comfy.server.base / "models" / "loras"
    models = Path(test_models_dir) / "loras"
    freq = json.dumps({"10_x": {"foxtrigger": 12, "red": 3}})
    copy_with_metadata(models / ATTN, loras / "pm_trig_header.safetensors",
                       {"ss_tag_frequency": freq, "modelspec.title": "x"})
    copy_with_metadata(models / DIFF, loras / "pm_trig_row.safetensors", None)
    (loras / "pm_trig_row.civitai.info").write_text(json.dumps({"trainedWords": ["rowword", "row phrase"]}))
    name = comfy.put_yaml("lora_trigger.yaml", TRIGGER_YAML)

    prompt = session_prompt(name, comfy.prefix, 0)
    chain = node_of(prompt, "PromptMediaLoraChain")
    prompt[chain]["inputs"].update(add_trigger_words=True, lora_1={"on": True, "lora": "pm_trig_row",
                                                                  "strength_model": 0.3, "strength_clip": 0.2})
    sides = []
    for job_index in (0, 1):
        prompt[oom_id(prompt)]["inputs"]["job_index"] = job_index
        [path] = comfy.image_paths(comfy.run_ok(prompt))
        sides.append(sidecar(path))
    # the tag's words only where the tag is; the chain row's (toggle on) everywhere; the loras:
    # entry switched off (its file has none anyway); each word once, after the prefix
    assert [s["parameters"]["prompt"] for s in sides] == [
        "tiny test, foxtrigger, rowword, row phrase, a red fox",
        "tiny test, rowword, row phrase, a blue bird"]
    by_name = {lora["lora_name"]: lora for lora in sides[0]["parameters"]["loras"]}
    assert list(by_name) == [CONV, "pm_trig_header.safetensors", "pm_trig_row.safetensors"]
    assert by_name["pm_trig_header.safetensors"]["trigger_words"] == ["foxtrigger"]
    assert by_name["pm_trig_row.safetensors"]["trigger_words"] == ["rowword", "row phrase"]
    assert by_name[CONV]["trigger_words"] == []

    # the toggle off: the row is applied, its words are not added (job 0 again opens a new
    # session: the same job in the same session would be found already saved)
    prompt[chain]["inputs"]["add_trigger_words"] = False
    prompt[oom_id(prompt)]["inputs"]["job_index"] = 0
    [path] = comfy.image_paths(comfy.run_ok(prompt))
    assert sidecar(path)["parameters"]["prompt"] == "tiny test, foxtrigger, a red fox"
    assert "pm_trig_row.safetensors" in [lora["lora_name"] for lora in sidecar(path)["parameters"]["loras"]]


def test_civitai_reads_model_and_loras_with_hashes_and_weights_and_comfyui_gets_the_workflow(comfy, test_models_dir):
    name = comfy.put_yaml("lora_tags_civitai.yaml", TAGS_YAML)
    prompt = session_prompt(name, comfy.prefix, 0)
    ui_workflow = json.loads((API_WORKFLOW.parents[1] / API_WORKFLOW.name).read_text(encoding="utf-8"))
    result = comfy.run_ok(prompt, extra_data={"extra_pnginfo": {"workflow": ui_workflow}})
    [path] = comfy.image_paths(result)
    chunks = read_text_chunks(str(path))
    side = sidecar(path)

    # ComfyUI (and readers of its chunks): the editable workflow and the API prompt, as sent
    assert json.loads(chunks["workflow"]) == ui_workflow
    posted = json.loads(chunks["prompt"])
    assert {node["class_type"] for node in posted.values()} >= {"PromptMediaLoraChain", "PromptMediaSessionSaver"}

    # Civitai: the A1111 text, read by its own rules
    assert civitai_rules.can_parse(chunks)
    meta = civitai_rules.parse(chunks)
    sha = {n: hashlib.sha256((Path(test_models_dir) / folder / n).read_bytes()).hexdigest()[:10]
           for folder, n in (("checkpoints", TEST_CHECKPOINT), ("loras", ATTN), ("loras", CONV), ("loras", DIFF))}
    assert meta["resources"] == [
        {"type": "lora", "name": "tiny_lora_diffusers", "weight": 0.5, "hash": sha[DIFF]},
        {"type": "lora", "name": "tiny_lora_attn", "weight": 0.9, "hash": sha[ATTN]},
        {"type": "lora", "name": "tiny_lora_conv", "weight": 1.3, "hash": sha[CONV]},
        {"type": "model", "name": "tiny_sd15", "hash": sha[TEST_CHECKPOINT]}]
    assert meta["hashes"] == {"model": sha[TEST_CHECKPOINT], "lora:tiny_lora_diffusers": sha[DIFF],
                              "lora:tiny_lora_attn": sha[ATTN], "lora:tiny_lora_conv": sha[CONV]}
    assert meta["Version"] == f"ComfyUI {side['system']['comfyui_version']}"
    assert (meta["seed"], meta["steps"], meta["negativePrompt"]) == ("7", "2", "blurry")
    # the tags are in the metadata's prompt line only: the sidecar's prompt is what CLIP encoded
    assert meta["prompt"] == (f"{CLEAN_PROMPTS[0]}, <lora:tiny_lora_diffusers:0.5>, "
                              "<lora:tiny_lora_attn:0.9>, <lora:tiny_lora_conv:1.3>")
    assert side["parameters"]["prompt"] == CLEAN_PROMPTS[0]


def test_civitai_reads_a_separate_vae_with_its_hash(comfy, test_models_dir):
    name = comfy.put_yaml("lora_tags_vae.yaml", TAGS_YAML)
    prompt = session_prompt(name, comfy.prefix, 2)                 # job 2: the loras: entry and the prefix tag
    prompt["50"] = {"class_type": "VAELoader", "inputs": {"vae_name": "tiny_vae.safetensors"}}
    decode = node_of(prompt, "VAEDecode")
    prompt[decode]["inputs"]["vae"] = ["50", 0]
    [path] = comfy.image_paths(comfy.run_ok(prompt))
    chunks = read_text_chunks(str(path))
    meta = civitai_rules.parse(chunks)
    vae_sha = hashlib.sha256((Path(test_models_dir) / "vae" / "tiny_vae.safetensors").read_bytes()).hexdigest()
    assert meta["hashes"]["vae"] == vae_sha[:10] and meta["VAE"] == "tiny_vae.safetensors"
    assert sidecar(path)["parameters"]["vae_sha256"] == vae_sha
    assert [(r["type"], r["name"], r.get("weight")) for r in meta["resources"]] == [
        ("lora", "tiny_lora_diffusers", 0.5), ("lora", "tiny_lora_attn", 0.9), ("model", "tiny_sd15", None)]
