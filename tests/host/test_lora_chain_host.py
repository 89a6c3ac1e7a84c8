"""Issue 4 in real ComfyUI: the LoRA Chain against chained core LoraLoader nodes, its caching,
and refusals of missing LoRAs before the queue starts."""
from __future__ import annotations

import hashlib
import json

from PIL import Image

LORAS = ("tiny_lora_attn.safetensors", "tiny_lora_conv.safetensors", "tiny_lora_diffusers.safetensors")
# (model, clip) strengths: unequal and per LoRA different, so order and model/clip mix-ups show
STRENGTHS = ((0.9, 0.6), (1.3, 0.8), (-0.7, 1.1))
CKPT, POS, NEG, LATENT, SAMPLER, DECODE, SAVE = "1", "4", "5", "6", "7", "8", "9"
CHAIN_ID, STACK_PREVIEW = "30", "31"
READ_LINE = "LoRA Chain: read "


def txt2img(prefix: str, model_src: list, clip_src: list, seed: int = 7) -> dict:
    """Checkpoint -> (model, clip from *_src) -> 64x64, 2 steps -> SaveImage under prefix."""
    return {
        CKPT: {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "tiny_sd15.ckpt"}},
        POS: {"class_type": "CLIPTextEncode", "inputs": {"clip": clip_src, "text": "a lighthouse at dusk"}},
        NEG: {"class_type": "CLIPTextEncode", "inputs": {"clip": clip_src, "text": "blurry"}},
        LATENT: {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        SAMPLER: {"class_type": "KSampler", "inputs": {
            "model": model_src, "positive": [POS, 0], "negative": [NEG, 0], "latent_image": [LATENT, 0],
            "seed": seed, "steps": 2, "cfg": 5.0, "sampler_name": "euler", "scheduler": "normal", "denoise": 1.0}},
        DECODE: {"class_type": "VAEDecode", "inputs": {"samples": [SAMPLER, 0], "vae": [CKPT, 2]}},
        SAVE: {"class_type": "SaveImage", "inputs": {"images": [DECODE, 0], "filename_prefix": f"{prefix}/img"}},
    }


def rows(loras=LORAS, strengths=STRENGTHS) -> dict:
    return {f"lora_{i + 1}": {"on": True, "lora": name, "strength": sm, "strength_model": sm, "strength_clip": sc}
            for i, (name, (sm, sc)) in enumerate(zip(loras, strengths))}


def with_chain(prefix: str, row_inputs: dict, chain_id: str = CHAIN_ID, seed: int = 7, **extra) -> dict:
    wf = txt2img(prefix, [chain_id, 0], [chain_id, 1], seed)
    wf[chain_id] = {"class_type": "PromptMediaLoraChain", "inputs": {
        "model": [CKPT, 0], "clip": [CKPT, 1], "strength_mode": "separate", **row_inputs, **extra}}
    wf[STACK_PREVIEW] = {"class_type": "PreviewAny", "inputs": {"source": [chain_id, 2]}}
    return wf


def with_core_loaders(prefix: str) -> dict:
    """The same LoRAs through three chained core LoraLoader nodes (ids 40, 41, 42)."""
    model, clip = [CKPT, 0], [CKPT, 1]
    wf = {}
    for i, (name, (sm, sc)) in enumerate(zip(LORAS, STRENGTHS)):
        node = str(40 + i)
        wf[node] = {"class_type": "LoraLoader", "inputs": {
            "model": model, "clip": clip, "lora_name": name, "strength_model": sm, "strength_clip": sc}}
        model, clip = [node, 0], [node, 1]
    wf.update(txt2img(prefix, model, clip))
    return wf


def pixels(comfy, result) -> bytes:
    [path] = comfy.image_paths(result)
    with Image.open(path) as im:
        return im.convert("RGB").tobytes()


def executed_nodes(result) -> set[str]:
    return {str(m.get("node")) for m in result.messages("executing") if m.get("node") is not None}


def cached_nodes(result) -> set[str]:
    return {str(n) for m in result.messages("execution_cached") for n in m.get("nodes", [])}


def test_chain_of_three_is_pixel_identical_to_core_lora_loaders(comfy, test_models_dir):
    chain = comfy.run_ok(with_chain(comfy.prefix + "/chain", rows()))
    core = comfy.run_ok(with_core_loaders(comfy.prefix + "/core"))
    plain = comfy.run_ok(txt2img(comfy.prefix + "/plain", [CKPT, 0], [CKPT, 1]))
    assert pixels(comfy, chain) == pixels(comfy, core)
    assert pixels(comfy, chain) != pixels(comfy, plain)
    log = comfy.log()
    assert "lora key not loaded" not in log and "NOT LOADED" not in log

    # LORA_STACK out: what was applied, in order, with the file's sha256
    [text] = comfy.run_ok(with_chain(comfy.prefix + "/chain", rows())).ui_text(STACK_PREVIEW)
    stack = json.loads(text)
    assert [(e["name"], e["strength_model"], e["strength_clip"]) for e in stack] == [
        (n, sm, sc) for n, (sm, sc) in zip(LORAS, STRENGTHS)]
    for entry in stack:
        expected = hashlib.sha256((test_models_dir / "loras" / entry["name"]).read_bytes()).hexdigest()
        assert entry["sha256"] == expected


def stack_only(row_inputs: dict, chain_id: str = "70") -> dict:
    """Just the chain and a preview of its LORA_STACK: no sampling."""
    return {CKPT: {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "tiny_sd15.ckpt"}},
            chain_id: {"class_type": "PromptMediaLoraChain", "inputs": {
                "model": [CKPT, 0], "clip": [CKPT, 1], "strength_mode": "separate", **row_inputs}},
            STACK_PREVIEW: {"class_type": "PreviewAny", "inputs": {"source": [chain_id, 2]}}}


def test_rows_apply_in_numeric_order_and_skipped_rows_change_nothing(comfy):
    # rows by number, not by the order of the keys (lora_10 after lora_2)
    r = rows()
    shuffled = {"lora_10": r["lora_3"], "lora_2": r["lora_2"], "lora_1": r["lora_1"]}
    stack = json.loads(comfy.run_ok(stack_only(shuffled)).ui_text(STACK_PREVIEW)[0])
    assert [e["name"] for e in stack] == list(LORAS)

    # an off row naming a missing LoRA and a both-zero row leave the image as it was
    base = pixels(comfy, comfy.run_ok(with_chain(comfy.prefix + "/a", rows())))
    extra = {"lora_4": {"on": False, "lora": "not_here.safetensors"},
             "lora_5": {"on": True, "lora": LORAS[0], "strength_model": 0, "strength_clip": 0}}
    result = comfy.run_ok(with_chain(comfy.prefix + "/c", {**rows(), **extra}))
    assert pixels(comfy, result) == base
    assert len(json.loads(result.ui_text(STACK_PREVIEW)[0])) == 3


def test_unchanged_chain_is_cached_and_files_are_read_once(comfy):
    chain_id = "50"                      # a node instance of its own: its file cache starts empty
    r1 = comfy.run_ok(with_chain(comfy.prefix, rows(), chain_id, seed=1))
    assert comfy.log().count(READ_LINE) == 3, comfy.log()

    # only the seed changes: the chain is a cache hit, the sampler runs again, no file is read
    mark = len(comfy.log())
    r2 = comfy.run_ok(with_chain(comfy.prefix, rows(), chain_id, seed=2))
    assert chain_id in cached_nodes(r2) and chain_id not in executed_nodes(r2)
    assert SAMPLER in executed_nodes(r2)
    assert READ_LINE not in comfy.log()[mark:]
    assert pixels(comfy, r2) != pixels(comfy, r1)

    # a strength changes: the chain re-runs but takes the loaded files from its memory cache
    mark = len(comfy.log())
    changed = rows(strengths=(STRENGTHS[0], STRENGTHS[1], (-0.5, 1.1)))
    r3 = comfy.run_ok(with_chain(comfy.prefix, changed, chain_id, seed=2))
    assert chain_id in executed_nodes(r3)
    assert READ_LINE not in comfy.log()[mark:]


def _rejection(result, node_id: str) -> str:
    assert result.rejected, result.error_summary()
    errors = result.node_errors[node_id]["errors"]
    return " ".join(f"{e.get('message')} {e.get('details')}" for e in errors)


def test_missing_row_lora_is_refused_before_the_queue(comfy):
    bad = rows(loras=(LORAS[0], "tiny_lora_convv", LORAS[2]))
    result = comfy.run(with_chain(comfy.prefix, bad))
    text = _rejection(result, CHAIN_ID)
    assert "tiny_lora_convv" in text and "lora_2" in text
    assert "closest: tiny_lora_conv.safetensors" in text
    assert comfy.client.queue()["queue_running"] == []


def test_yaml_loras_resolve_and_missing_ones_are_refused(comfy):
    yaml_text = ("prompts: [a lighthouse]\nseeds: [1]\nloras:\n"
                 "  - {name: TINY_LORA_ATTN, strength_model: 0.9, strength_clip: 0.6}\n")
    loader = {"class_type": "PromptMediaLoader", "inputs": {"file": "", "preset": "", "yaml_text": yaml_text}}
    # YAML LoRA (no extension, other case) first, then two rows: the same chain as the core one
    two_rows = {k: v for k, v in rows().items() if k != "lora_1"}
    wf = with_chain(comfy.prefix + "/yaml", two_rows, lora_stack=["60", 1])
    wf["60"] = loader
    result = comfy.run_ok(wf)
    core = comfy.run_ok(with_core_loaders(comfy.prefix + "/core"))
    assert pixels(comfy, result) == pixels(comfy, core)
    assert json.loads(result.ui_text(STACK_PREVIEW)[0])[0]["name"] == LORAS[0]

    wf["60"] = {**loader, "inputs": {**loader["inputs"], "yaml_text": yaml_text.replace("TINY_LORA_ATTN", "tiny_lora_atn")}}
    text = _rejection(comfy.run(wf), CHAIN_ID)
    assert "tiny_lora_atn" in text and "closest: tiny_lora_attn.safetensors" in text
