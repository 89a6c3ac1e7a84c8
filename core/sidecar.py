"""The Prompt Media sidecar's sections, assembled from a job, the resolved sampler values and
the session (the generic file format and I/O live in generation_params)."""
from __future__ import annotations

from typing import Any, Callable, Iterable

from .graph_params import GraphParams, Resolved

PLUGIN_NAME = "prompt-media"
OOM_KEYS = ("index", "total", "seed_index", "prompt_index", "variation_index",
            "variations_per_prompt", "base_prompt", "variation_values", "mode", "variation_seed",
            "expansion_id", "preset")


def parameters_section(resolved: Resolved, model_sha256: str | None, loras: list[dict],
                       batch_index: int, batch_size: int) -> dict:
    v = resolved.values
    return {
        "prompt": v["positive"], "negative_prompt": v["negative"],
        "width": v["width"], "height": v["height"], "steps": v["steps"], "cfg_scale": v["cfg"],
        "sampler": v["sampler_name"], "scheduler": v["scheduler"], "denoise": v["denoise"],
        "seed": v["seed"], "model_name": v["model_name"], "model_sha256": model_sha256,
        "loras": loras, "batch_index": batch_index, "batch_size": batch_size,
    }


def parameters_source_section(graph: GraphParams, resolved: Resolved, *notes: str | None) -> dict:
    """Where each parameter came from; ``overrides`` lists widget values that differ from
    what the prompt file / job said (e.g. steps typed into the KSampler)."""
    return {"sampler_node": graph.sampler_id, "sampler_class": graph.sampler_class,
            "fields": resolved.sources, "overrides": resolved.overrides,
            "notes": [*(graph.notes or ()), *(n for n in notes if n)]}


def oom_section(job: dict) -> dict:
    return {k: job.get(k) for k in OOM_KEYS}


def session_section(started: str, folder: str, job: dict) -> dict:
    return {"started": started, "folder": folder, "source_name": job.get("source_name"),
            "source_sha256": job.get("source_sha256")}


def lora_entry(name: Any, strength_model: Any, strength_clip: Any, sha256: str | None) -> dict:
    return {"lora_name": name, "strength_model": strength_model, "strength_clip": strength_clip,
            "sha256": sha256}


def stack_entries(stack: Iterable[dict], sha256_of: Callable[[str], str | None]) -> list[dict]:
    """LORA_STACK items ({name, strength_model, strength_clip[, sha256]}) as sidecar entries."""
    out = []
    for item in stack or ():
        name = item.get("name", item.get("lora_name"))
        out.append(lora_entry(name, item.get("strength_model"), item.get("strength_clip"),
                              item.get("sha256") or sha256_of(name)))
    return out


def applied_loras(graph_loras: list[dict] | None, lora_stack: list[dict] | None,
                  declared: list[dict] | None, sha256_of: Callable[[str], str | None]) -> list[dict]:
    """LoRAs in application order: core LoraLoader nodes on the model path, and the LoRA
    chain's applied stack at the chain's place in it. Without a connected stack the chain's
    place gets the file's ``declared`` list; a connected stack with no chain found on the path
    (an unknown graph) goes first."""
    stack = stack_entries(lora_stack, sha256_of) if lora_stack is not None else None
    out: list[dict] = []
    placed = False
    for item in graph_loras or ():
        if "stack_node" in item:
            if stack is None and declared is not None:
                stack = stack_entries(declared, sha256_of)
            out.extend(stack or ())
            placed = True
            continue
        name, sm, sc = item.get("lora_name"), item.get("strength_model"), item.get("strength_clip")
        if not isinstance(name, str):
            continue                 # a linked name: not knowable from the graph
        if sm == 0 and sc == 0:
            continue                 # core LoraLoader skips it as well
        out.append(lora_entry(name, sm, sc, sha256_of(name)))
    if not placed and stack:
        out = stack + out
    return out


def parse_project_id(value: Any) -> int | str | None:
    """'' -> None, '12' -> 12, anything else kept as text (ids from other tools)."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if not text:
        return None
    if text.lstrip("-").isdigit() and text.lstrip("-").isascii():
        return int(text)
    return text
