"""PNG metadata: ComfyUI's own text chunks plus an A1111-style ``parameters`` chunk.

- ``prompt`` (the API graph) and one chunk per ``extra_pnginfo`` key (``workflow``), JSON-encoded
  exactly as core SaveImage writes them, so dropping the PNG onto ComfyUI restores the graph.
- ``parameters``: the text A1111 writes and Civitai / image viewers parse::

      a lake at dawn
      Negative prompt: blurry
      Steps: 20, Sampler: Euler a, Schedule type: Karras, CFG scale: 7.0, Seed: 1, Size: 512x512, ...
"""
from __future__ import annotations

import io
import json
import os
import re
from collections.abc import Iterable
from typing import Any

from PIL import Image
from PIL.PngImagePlugin import PngInfo

from .hashing import short_hash

COMPRESS_LEVEL = 4       # what core SaveImage uses
_NOT_IN_CIVITAI_NAME = re.compile(r"[^A-Za-z0-9_.\-]")

# ComfyUI sampler / scheduler names -> the labels A1111 writes (and Civitai recognises).
SAMPLER_LABELS = {
    "euler": "Euler", "euler_ancestral": "Euler a", "heun": "Heun", "dpm_2": "DPM2",
    "dpm_2_ancestral": "DPM2 a", "lms": "LMS", "dpm_fast": "DPM fast", "dpm_adaptive": "DPM adaptive",
    "dpmpp_2s_ancestral": "DPM++ 2S a", "dpmpp_sde": "DPM++ SDE", "dpmpp_2m": "DPM++ 2M",
    "dpmpp_2m_sde": "DPM++ 2M SDE", "dpmpp_3m_sde": "DPM++ 3M SDE", "ddim": "DDIM",
    "uni_pc": "UniPC", "lcm": "LCM", "restart": "Restart", "ipndm": "iPNDM",
}
SCHEDULER_LABELS = {
    "normal": "Normal", "karras": "Karras", "exponential": "Exponential",
    "sgm_uniform": "SGM Uniform", "simple": "Simple", "ddim_uniform": "DDIM", "beta": "Beta",
    "kl_optimal": "KL Optimal", "polyexponential": "Polyexponential",
}


def _quote(text: Any) -> str:
    """A1111's rule: values holding ',', ':' or a newline are JSON-quoted."""
    text = str(text)
    if "," not in text and "\n" not in text and ":" not in text:
        return text
    return json.dumps(text, ensure_ascii=False)


def _label_name(file_name: str) -> str:
    """'sub/foo.safetensors' -> 'foo' (A1111 shows names without folder and extension);
    ',' and ':' would break the hash list, so they become '_'."""
    base = os.path.splitext(os.path.basename(str(file_name).replace("\\", "/")))[0]
    return base.replace(",", "_").replace(":", "_")


def _lora_label(file_name: str) -> str:
    """A LoRA's name in the tag, ``Lora hashes`` and ``Hashes``: the file name without folder and
    extension, with every character Civitai's tag pattern (``[A-Za-z0-9_.-]``) lacks made '_',
    so the three agree and Civitai finds the tag's weight for the hash's resource."""
    return _NOT_IN_CIVITAI_NAME.sub("_", _label_name(file_name)) or "_"


def _num(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return f"{value:.1f}"
    return str(value)


def a1111_parameters(params: dict, comfyui_version: str | None = None) -> str:
    """The A1111 ``parameters`` text for a sidecar ``parameters`` dict (prompt, negative_prompt,
    steps, sampler, scheduler, cfg_scale, guidance, seed, width, height, model_name (a checkpoint
    or a diffusion model), model_sha256, vae_name, vae_sha256, denoise, loras), written the way
    A1111 writes it and Civitai reads it (``src/utils/metadata/automatic.metadata.ts``): every applied LoRA as a ``<lora:NAME:WEIGHT>``
    tag (its model strength) on the prompt line, since Civitai takes LoRA weights only from
    there; ``Hashes`` with the AutoV2 (10-character) hashes of the model, the VAE and each LoRA;
    ``VAE``/``VAE hash`` when a separate VAE was loaded; ``Version: ComfyUI <version>``.
    Unknown (None) values are left out."""
    loras = [l for l in params.get("loras") or () if l.get("lora_name")]
    tags = [f"<lora:{_lora_label(l['lora_name'])}:{_num(l.get('strength_model', 1.0))}>" for l in loras]
    lines = [", ".join(part for part in (str(params.get("prompt") or ""), *tags) if part)]
    negative = params.get("negative_prompt")
    if negative:
        lines.append(f"Negative prompt: {negative}")
    fields: list[tuple[str, Any]] = [("Steps", params.get("steps"))]
    sampler = params.get("sampler")
    if sampler is not None:     # the _gpu variants differ only in where their noise is drawn
        fields.append(("Sampler", SAMPLER_LABELS.get(sampler, SAMPLER_LABELS.get(str(sampler).removesuffix("_gpu"),
                                                                               sampler))))
    scheduler = params.get("scheduler")
    if scheduler is not None:
        fields.append(("Schedule type", SCHEDULER_LABELS.get(scheduler, scheduler)))
    fields.append(("CFG scale", params.get("cfg_scale")))
    if params.get("guidance") is not None:          # Flux guidance, as Forge writes it
        fields.append(("Distilled CFG Scale", params["guidance"]))
    fields.append(("Seed", params.get("seed")))
    if params.get("width") is not None and params.get("height") is not None:
        fields.append(("Size", f"{params['width']}x{params['height']}"))
    fields.append(("Model hash", short_hash(params.get("model_sha256"))))
    if params.get("model_name"):
        fields.append(("Model", _label_name(params["model_name"])))
    if params.get("vae_name"):
        fields.append(("VAE hash", short_hash(params.get("vae_sha256"))))
        fields.append(("VAE", os.path.basename(str(params["vae_name"]).replace("\\", "/"))))
    denoise = params.get("denoise")
    if denoise is not None and float(denoise) < 1.0:
        fields.append(("Denoising strength", denoise))
    lora_hashes = {_lora_label(l["lora_name"]): short_hash(l["sha256"]) for l in loras if l.get("sha256")}
    if lora_hashes:
        fields.append(("Lora hashes", ", ".join(f"{k}: {v}" for k, v in lora_hashes.items())))
    text = ", ".join(f"{k}: {_quote(_num(v))}" for k, v in fields if v is not None)
    hashes = {"model": short_hash(params.get("model_sha256")),
              "vae": short_hash(params.get("vae_sha256")) if params.get("vae_name") else None,
              **{f"lora:{k}": v for k, v in lora_hashes.items()}}
    hashes = {k: v for k, v in hashes.items() if v}
    if hashes:                  # a JSON object, unquoted, as A1111 writes it (no '}' inside)
        text += f", Hashes: {json.dumps(hashes, ensure_ascii=False)}"
    text += f", Version: ComfyUI {comfyui_version}" if comfyui_version else ", Version: ComfyUI"
    lines.append(text)
    return "\n".join(lines)


def comfy_chunks(prompt: dict | None, extra_pnginfo: dict | None) -> list[tuple[str, str]]:
    """ComfyUI's chunks, serialised as core SaveImage does (``prompt`` first, then one per
    extra_pnginfo key). Serialise once per queued prompt and reuse for every image."""
    chunks = []
    if prompt is not None:
        chunks.append(("prompt", json.dumps(prompt)))
    for key in extra_pnginfo or {}:
        chunks.append((key, json.dumps(extra_pnginfo[key])))
    return chunks


def build_pnginfo(chunks: Iterable[tuple[str, str]]) -> PngInfo:
    info = PngInfo()
    for key, text in chunks:
        info.add_text(key, text)
    return info


def encode_png(pixels, chunks: Iterable[tuple[str, str]] | None,
               compress_level: int = COMPRESS_LEVEL) -> bytes:
    """PNG bytes of an HxWx{3,4} uint8 array (or a PIL image) with the given text chunks;
    ``chunks=None`` writes no metadata at all."""
    img = pixels if isinstance(pixels, Image.Image) else Image.fromarray(pixels)
    buf = io.BytesIO()
    img.save(buf, format="PNG", pnginfo=build_pnginfo(chunks) if chunks is not None else None,
             compress_level=compress_level)
    return buf.getvalue()


def read_text_chunks(path_or_bytes) -> dict[str, str]:
    """The PNG's text chunks (for tests and tools)."""
    src = io.BytesIO(path_or_bytes) if isinstance(path_or_bytes, (bytes, bytearray)) else path_or_bytes
    with Image.open(src) as img:
        img.load()
        return dict(getattr(img, "text", {}) or {})
