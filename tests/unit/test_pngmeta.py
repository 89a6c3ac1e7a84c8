import json

import numpy as np
from PIL import Image

from prompt_media_pkg.core import pngmeta

PARAMS = {"prompt": "a lake, dawn", "negative_prompt": "blurry", "steps": 2, "sampler": "euler_ancestral",
          "scheduler": "karras", "cfg_scale": 7.0, "seed": 42, "width": 64, "height": 96,
          "model_name": "sd/tiny_sd15.ckpt", "model_sha256": "0123456789abcdef" * 4, "denoise": 1.0,
          "loras": [{"lora_name": "sub/detail.safetensors", "strength_model": 0.5, "strength_clip": 0.5,
                     "sha256": "fedcba9876543210" * 4},
                    {"lora_name": "b.safetensors", "strength_model": 1, "strength_clip": 1, "sha256": None}]}


def test_a1111_text():
    text = pngmeta.a1111_parameters(PARAMS)
    assert text.split("\n") == [
        "a lake, dawn",
        "Negative prompt: blurry",
        'Steps: 2, Sampler: Euler a, Schedule type: Karras, CFG scale: 7.0, Seed: 42, Size: 64x96, '
        'Model hash: 0123456789, Model: tiny_sd15, Lora hashes: "detail: fedcba9876"',
    ]


def test_a1111_denoise_unknown_names_and_missing_values():
    text = pngmeta.a1111_parameters({"prompt": "p", "steps": 3, "sampler": "my_sampler",
                                     "scheduler": "normal", "cfg_scale": 5, "seed": 1, "denoise": 0.5})
    assert text == "p\nSteps: 3, Sampler: my_sampler, Schedule type: Normal, CFG scale: 5, Seed: 1, Denoising strength: 0.5"


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
    assert text["parameters"].startswith("a lake, dawn\nNegative prompt: blurry\nSteps: 2")
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
                    "Distilled CFG Scale: 3.5, Seed: 7, Size: 1024x768, Model hash: ababababab, Model: flux1-dev")
