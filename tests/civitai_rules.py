"""How Civitai reads a PNG's A1111 ``parameters`` text, in Python, rule by rule: a test oracle.

Rendered from civitai/civitai ``src/utils/metadata/automatic.metadata.ts``
(``automaticMetadataProcessor.canParse`` / ``parse``), including its quirks: the details line is
the first line starting ``Steps: ``; ``, Hashes: {...}`` (no ``}`` inside) is JSON; a quoted
value is itself parsed as a details line (``Lora hashes: "a: 1, b: 2"`` becomes an object); LoRA
weights come only from ``<lora:NAME:WEIGHT>`` tags in the prompt (NAME of ``[A-Za-z0-9_.-]``,
WEIGHT of ``[0-9.]``, read with JavaScript's parseFloat). Only the pieces that matter for
generation data are rendered (the EXIF UserComment path and AddNet fields are left out).
"""
from __future__ import annotations

import json
import math
import re

HASHES = re.compile(r", Hashes:\s*(\{[^}]+\})")
CIVITAI_RESOURCES = re.compile(r", Civitai resources:\s*(\[[^\]]+\])")
BAD_EXTENSION_KEYS = ("Resources: ", "Hashed prompt: ", "Hashed Negative prompt: ")
TEMPLATE_KEYS = ("Template: ", "Negative Template: ")
EXTRA_NETS = re.compile(r"<(lora|hypernet):([a-zA-Z0-9_.\-]+):([0-9.]+)>")
SD_KEYS = {"Seed": "seed", "CFG scale": "cfgScale", "Sampler": "sampler", "Steps": "steps",
           "Clip skip": "clipSkip"}
EXCLUDED_KEYS = {"hashes", "civitaiResources", "scheduler", "vaes", "additionalResources", "comfy",
                 "upscalers", "models", "controlNets", "denoise", "other", "external"}
NEW_KEY = re.compile(r"[A-Za-z0-9_\s]+: ")      # JavaScript's \w is ASCII
JS_FLOAT = re.compile(r"\s*[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)")


def parse_float(text: str) -> float:
    """JavaScript's parseFloat: the longest number at the start, else NaN."""
    m = JS_FLOAT.match(text)
    return float(m.group()) if m else math.nan


def _truthy(value) -> bool:
    """JavaScript truthiness of a parsed value (an object is truthy even when empty)."""
    return isinstance(value, dict) or bool(value)


def _sd_key(key: str) -> str:
    return SD_KEYS.get(key.strip(), key.strip())


def parse_details_line(line: str | None) -> dict:
    result: dict = {}
    if not line:
        return result
    key, value, quoted = "", "", False
    for char in line:
        if char == '"':
            if quoted:
                result[key] = parse_details_line(value.strip())
                key = ""
            quoted = not quoted
        elif char == ":" and not quoted:
            key, value = _sd_key(value.strip()), ""
        elif char == "," and not quoted:
            if key:
                result[key] = value.strip()
            key, value = "", ""
        else:
            value += char
    if key:
        result[key] = value.strip()
    return result


def can_parse(chunks: dict[str, str]) -> bool:
    return "Steps: " in (chunks.get("parameters") or "")


def _js_entries(value) -> list[tuple[str, object]]:
    """Object.entries: a string gives (index, character) pairs."""
    if isinstance(value, dict):
        return list(value.items())
    if isinstance(value, str):
        return [(str(i), c) for i, c in enumerate(value)]
    return []


def parse(chunks: dict[str, str]) -> dict:
    """The ``metadata`` object Civitai makes of the PNG's text chunks (see the module docstring)."""
    metadata: dict = {}
    details_text = chunks.get("parameters")
    if not details_text:
        return metadata
    lines = [line for line in details_text.split("\n") if line.strip() != ""]
    for key in TEMPLATE_KEYS:
        index = next((i for i, line in enumerate(lines) if line.startswith(key)), -1)
        if index == -1:
            continue
        del lines[index]
        while index < len(lines) and not NEW_KEY.search(lines[index]):
            del lines[index]

    details = next((line for line in lines if line.startswith("Steps: ")), None)
    if details is not None:
        del lines[lines.index(details)]
    for key in BAD_EXTENSION_KEYS:
        if details is not None and key in details:
            details = details.split(key)[0]

    m = HASHES.search(details) if details else None
    if m:
        metadata["hashes"] = json.loads(m.group(1))
        details = HASHES.sub("", details, count=1)
    m = CIVITAI_RESOURCES.search(details) if details else None
    if m:
        metadata["civitaiResources"] = json.loads(m.group(1))
        details = CIVITAI_RESOURCES.sub("", details, count=1)

    for k, v in parse_details_line(details).items():
        key = SD_KEYS.get(k, k)
        if key not in EXCLUDED_KEYS:
            metadata[key] = v

    prompt, *negative = (part.strip() for part in "\n".join(lines).split("Negative prompt:"))
    metadata["prompt"] = prompt
    metadata["negativePrompt"] = " ".join(negative).strip()

    resources = [{"type": kind, "name": name, "weight": parse_float(weight)}
                 for kind, name, weight in EXTRA_NETS.findall(prompt)]
    if _truthy(metadata.get("Lora hashes")):
        metadata.setdefault("hashes", {})
        for name, value in _js_entries(metadata["Lora hashes"]):
            metadata["hashes"][f"lora:{name}"] = value
            resource = next((r for r in resources if r["name"] == name), None)
            if resource is not None:
                resource["hash"] = value
            else:
                resources.append({"type": "lora", "name": name, "hash": value})
        del metadata["Lora hashes"]
    if _truthy(metadata.get("VAE hash")):
        metadata.setdefault("hashes", {})["vae"] = metadata.pop("VAE hash")
    if _truthy(metadata.get("Model")) and _truthy(metadata.get("Model hash")):
        hashes = metadata.setdefault("hashes", {})
        if not _truthy(hashes.get("model")):
            hashes["model"] = metadata["Model hash"]
        resources.append({"type": "model", "name": metadata["Model"], "hash": metadata["Model hash"]})
    metadata["resources"] = resources
    return metadata
