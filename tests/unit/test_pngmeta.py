import hashlib
import json

import numpy as np
from PIL import Image

from prompt_media_pkg.core import pngmeta
from prompt_media_pkg.tests import civitai_rules

PARAMS = {"prompt": "a lake, dawn", "negative_prompt": "blurry", "steps": 2, "sampler": "euler_ancestral",
          "scheduler": "karras", "cfg_scale": 7.0, "seed": 42, "width": 64, "height": 96,
          "model_name": "sd/tiny_sd15.ckpt", "model_sha256": "0123456789abcdef" * 4, "denoise": 1.0,
          "loras": [{"lora_name": "sub/detail.safetensors", "strength_model": 0.5, "strength_clip": 0.5,
                     "sha256": "fedcba9876543210" * 4},
                    {"lora_name": "b.safetensors", "strength_model": 1, "strength_clip": 1, "sha256": None}]}


def test_a1111_text():
    text = pngmeta.a1111_parameters(PARAMS, "0.3.64")
    assert text.split("\n") == [
        "a lake, dawn, <lora:detail:0.5>, <lora:b:1>",
        "Negative prompt: blurry",
        'Steps: 2, Sampler: Euler a, Schedule type: Karras, CFG scale: 7.0, Seed: 42, Size: 64x96, '
        'Model hash: 0123456789, Model: tiny_sd15, Lora hashes: "detail: fedcba9876", '
        'Hashes: {"model": "0123456789", "lora:detail": "fedcba9876"}, Version: ComfyUI 0.3.64',
    ]


def test_a1111_denoise_unknown_names_and_missing_values():
    text = pngmeta.a1111_parameters({"prompt": "p", "steps": 3, "sampler": "my_sampler",
                                     "scheduler": "normal", "cfg_scale": 5, "seed": 1, "denoise": 0.5})
    assert text == ("p\nSteps: 3, Sampler: my_sampler, Schedule type: Normal, CFG scale: 5, Seed: 1, "
                    "Denoising strength: 0.5, Version: ComfyUI")


SHA = {name: hashlib.sha256(name.encode()).hexdigest() for name in ("model", "vae", "a", "b", "c", "d")}
CIVITAI_PARAMS = {
    "prompt": "a lighthouse, dusk: golden hour", "negative_prompt": "blurry, text", "steps": 20,
    "sampler": "dpmpp_2m", "scheduler": "karras", "cfg_scale": 6.5, "seed": 123456789,
    "width": 832, "height": 1216, "model_name": "flux/flux1-dev.safetensors", "model_sha256": SHA["model"],
    "vae_name": "vae\\ae.safetensors", "vae_sha256": SHA["vae"], "denoise": 1.0,
    "loras": [
        {"lora_name": "styles/Anime Line.safetensors", "strength_model": 0.8, "strength_clip": 0.4, "sha256": SHA["a"]},
        {"lora_name": "ck-charcoal-drawing-000014.safetensors", "strength_model": 1.0, "strength_clip": 1.0,
         "sha256": SHA["b"]},
        {"lora_name": "Bonafida.Studio.safetensors", "strength_model": 0.65, "strength_clip": 0.0, "sha256": SHA["c"]},
        {"lora_name": "neg.safetensors", "strength_model": -0.5, "strength_clip": 1.0, "sha256": SHA["d"]},
    ]}


def test_civitai_reads_model_vae_and_every_lora_with_hash_and_weight():
    text = pngmeta.a1111_parameters(CIVITAI_PARAMS, "0.3.64")
    chunks = {"prompt": "{}", "workflow": "{}", "parameters": text}
    assert civitai_rules.can_parse(chunks)
    meta = civitai_rules.parse(chunks)
    assert meta["prompt"].startswith("a lighthouse, dusk: golden hour, <lora:Anime_Line:0.8>")
    assert meta["negativePrompt"] == "blurry, text"
    assert (meta["steps"], meta["sampler"], meta["cfgScale"], meta["seed"]) == ("20", "DPM++ 2M", "6.5", "123456789")
    assert meta["Size"] == "832x1216" and meta["Version"] == "ComfyUI 0.3.64"
    assert meta["hashes"] == {"model": SHA["model"][:10], "vae": SHA["vae"][:10],
                              "lora:Anime_Line": SHA["a"][:10], "lora:ck-charcoal-drawing-000014": SHA["b"][:10],
                              "lora:Bonafida.Studio": SHA["c"][:10], "lora:neg": SHA["d"][:10]}
    by_name = {r["name"]: r for r in meta["resources"]}
    assert by_name["flux1-dev"] == {"type": "model", "name": "flux1-dev", "hash": SHA["model"][:10]}
    assert by_name["Anime_Line"] == {"type": "lora", "name": "Anime_Line", "weight": 0.8, "hash": SHA["a"][:10]}
    assert by_name["ck-charcoal-drawing-000014"]["weight"] == 1.0
    assert by_name["Bonafida.Studio"] == {"type": "lora", "name": "Bonafida.Studio", "weight": 0.65,
                                         "hash": SHA["c"][:10]}
    # Civitai's tag pattern has no minus sign: a negative weight is known only by its hash
    assert by_name["neg"] == {"type": "lora", "name": "neg", "hash": SHA["d"][:10]}
    assert len(meta["resources"]) == 5
    assert "VAE: ae.safetensors" in text and f"VAE hash: {SHA['vae'][:10]}" in text


def test_without_a_separate_vae_or_hashes_nothing_is_invented():
    params = dict(CIVITAI_PARAMS, vae_name=None, vae_sha256=None, model_sha256=None,
                  loras=[{"lora_name": "x.safetensors", "strength_model": 0.5, "strength_clip": 0.5, "sha256": None}])
    text = pngmeta.a1111_parameters(params)
    meta = civitai_rules.parse({"parameters": text})
    assert "VAE" not in text and "Hashes" not in text and "Model hash" not in text
    assert meta["resources"] == [{"type": "lora", "name": "x", "weight": 0.5}]     # a weight, no hash
    assert text.endswith(", Version: ComfyUI")


def test_the_oracle_follows_civitais_quirks():
    # a quoted value is parsed as a details line; the first Steps line is the details line
    assert civitai_rules.parse_details_line('Steps: 2, Lora hashes: "a: 1, b: 2", Model: m') == {
        "steps": "2", "Lora hashes": {"a": "1", "b": "2"}, "Model": "m"}
    meta = civitai_rules.parse({"parameters": "p <lora:x:.5> <lora:y z:1> <lora:w:1:2>\nSteps: 1, Seed: 3\nSteps: 9"})
    assert meta["prompt"] == "p <lora:x:.5> <lora:y z:1> <lora:w:1:2>\nSteps: 9"
    assert meta["resources"] == [{"type": "lora", "name": "x", "weight": 0.5}]
    assert civitai_rules.parse_float("1.5.2") == 1.5 and civitai_rules.parse_float(".") != civitai_rules.parse_float(".")
    assert not civitai_rules.can_parse({"prompt": "{}"})


def test_chunks_match_core_saveimage_and_read_back_with_pillow():
    prompt = {"3": {"class_type": "KSampler", "inputs": {"seed": 1}}}
    extra = {"workflow": {"nodes": [], "links": []}, "other": [1, 2]}
    chunks = pngmeta.comfy_chunks(prompt, extra) + [("parameters", pngmeta.a1111_parameters(PARAMS))]
    pixels = np.zeros((8, 8, 3), np.uint8)
    pixels[2, 3] = (255, 128, 1)
    data = pngmeta.encode_png(pixels, chunks)
    text = pngmeta.read_text_chunks(data)
    assert list(text) == ["prompt", "workflow", "other", "parameters"]
    assert json.loads(text["prompt"]) == prompt
    assert text["prompt"] == json.dumps(prompt)          # byte-for-byte what SaveImage writes
    assert json.loads(text["workflow"]) == extra["workflow"]
    assert text["parameters"].startswith("a lake, dawn, <lora:detail:0.5>, <lora:b:1>\nNegative prompt: blurry\nSteps: 2")
    import io
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(data))), pixels)


def test_metadata_disabled_writes_no_chunks():
    data = pngmeta.encode_png(np.zeros((4, 4, 3), np.uint8), None)
    assert pngmeta.read_text_chunks(data) == {}


def test_no_prompt_no_workflow():
    assert pngmeta.comfy_chunks(None, None) == []


def test_a1111_flux_shape_as_forge_writes_it():
    """A diffusion model (UNETLoader) with Flux guidance: Model/Model hash name the diffusion model,
    the guidance is Forge's 'Distilled CFG Scale', the _gpu sampler variant keeps A1111's label."""
    text = pngmeta.a1111_parameters({"prompt": "a fox", "negative_prompt": None, "steps": 4,
                                     "sampler": "dpmpp_2m_sde_gpu", "scheduler": "simple", "cfg_scale": 1.0,
                                     "guidance": 3.5, "seed": 7, "width": 1024, "height": 768,
                                     "model_name": "flux/flux1-dev.safetensors", "model_sha256": "ab" * 32})
    assert text == ("a fox\nSteps: 4, Sampler: DPM++ 2M SDE, Schedule type: Simple, CFG scale: 1.0, "
                    "Distilled CFG Scale: 3.5, Seed: 7, Size: 1024x768, Model hash: ababababab, Model: flux1-dev, "
                    'Hashes: {"model": "ababababab"}, Version: ComfyUI')
