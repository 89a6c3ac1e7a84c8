"""Issue 13.8: what the unit tier assumes about the host, checked against the real one.

- a KSamplerAdvanced graph (its input names, noise_seed as the seed) runs and the sidecar states
  what it sampled;
- core primitive nodes (PrimitiveInt / PrimitiveFloat / PrimitiveString) feeding the sampler and
  the prompt text: the sidecar resolves the values through them;
- the PNG our saver writes is, chunk for chunk, what core SaveImage writes for the same image,
  plus one tEXt "parameters" chunk (A1111).
"""
from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from prompt_media_pkg.core.expand import expand
from prompt_media_pkg.core.schema import load_prompt_media
from prompt_media_pkg.tests.host.test_saver_host import SESSION_YAML, WORKFLOW, saver_workflow
from prompt_media_pkg.tests.host.workflows import NODE


def first_job(variation_seed: int) -> dict:
    return expand(load_prompt_media(SESSION_YAML, "session.yaml"), variation_seed=variation_seed)[0]


def sidecar_of(comfy, result) -> tuple[Path, dict]:
    (png,) = [p for p in comfy.image_paths(result) if "_seed_" in p.name]
    return png, json.loads(png.with_suffix(".json").read_text(encoding="utf-8"))


def png_chunks(path: Path) -> list[tuple[bytes, bytes]]:
    """(type, data) of every chunk, in file order."""
    data, pos, chunks = path.read_bytes(), 8, []
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    while pos < len(data):
        size = int.from_bytes(data[pos:pos + 4], "big")
        chunks.append((data[pos + 4:pos + 8], data[pos + 8:pos + 8 + size]))
        pos += 12 + size
    return chunks


def test_ksampler_advanced_graph_runs_and_the_sidecar_states_what_it_sampled(comfy):
    comfy.put_yaml("session.yaml", SESSION_YAML)
    wf = saver_workflow("session.yaml", comfy.prefix, run="one job per run", variation_seed=41)
    plain = wf[NODE["sampler"]]["inputs"]
    wf[NODE["sampler"]] = {"class_type": "KSamplerAdvanced", "inputs": {
        "model": plain["model"], "positive": plain["positive"], "negative": plain["negative"],
        "latent_image": plain["latent_image"], "add_noise": "enable", "noise_seed": plain["seed"],
        "steps": 2, "cfg": 4.0, "sampler_name": "euler", "scheduler": "karras",
        "start_at_step": 0, "end_at_step": 10000, "return_with_leftover_noise": "disable"}}
    _png, side = sidecar_of(comfy, comfy.run_ok(wf))
    job = first_job(41)
    p, src = side["parameters"], side["parameters_source"]
    assert (src["sampler_node"], src["sampler_class"]) == (NODE["sampler"], "KSamplerAdvanced")
    assert (p["seed"], p["steps"], p["cfg_scale"], p["scheduler"], p["denoise"]) == (job["seed"], 2, 4.0, "karras", 1.0)
    assert src["fields"]["seed"] == "job" and src["fields"]["steps"] == "widget"
    assert src["overrides"]["steps"] == {"used": 2, "file": 1}


def test_primitive_nodes_feeding_the_graph_are_resolved_in_the_sidecar(comfy):
    comfy.put_yaml("session.yaml", SESSION_YAML)
    wf = saver_workflow("session.yaml", comfy.prefix, run="one job per run", variation_seed=42)
    wf["41"] = {"class_type": "PrimitiveInt", "inputs": {"value": 3}}
    wf["42"] = {"class_type": "PrimitiveFloat", "inputs": {"value": 6.5}}
    wf["43"] = {"class_type": "PrimitiveString", "inputs": {"value": "a lone lighthouse"}}
    sampler = wf[NODE["sampler"]]["inputs"]
    sampler["steps"], sampler["cfg"] = ["41", 0], ["42", 0]
    wf[NODE["positive"]]["inputs"]["text"] = ["43", 0]
    _png, side = sidecar_of(comfy, comfy.run_ok(wf))
    p, src = side["parameters"], side["parameters_source"]
    assert (p["steps"], p["cfg_scale"], p["prompt"]) == (3, 6.5, "a lone lighthouse")
    assert src["fields"]["steps"] == src["fields"]["cfg"] == "widget"
    assert src["overrides"]["steps"] == {"used": 3, "file": 1}
    assert p["seed"] == first_job(42)["seed"] and src["fields"]["seed"] == "job"


def test_our_png_is_what_saveimage_writes_plus_the_parameters_chunk(comfy):
    comfy.put_yaml("session.yaml", SESSION_YAML)
    wf = saver_workflow("session.yaml", comfy.prefix, run="one job per run", variation_seed=43)
    wf["90"] = {"class_type": "SaveImage", "inputs": {"images": [NODE["decode"], 0],
                                                      "filename_prefix": f"{comfy.prefix}/core"}}
    result = comfy.run_ok(wf, extra_data={"extra_pnginfo": {"workflow": WORKFLOW}})
    ours, _side = sidecar_of(comfy, result)
    (core,) = [p for p in comfy.image_paths(result) if p.name.startswith("core")]
    ours_chunks, core_chunks = png_chunks(ours), png_chunks(core)
    parameters = [c for c in ours_chunks if c[0] == b"tEXt" and c[1].startswith(b"parameters\0")]
    assert len(parameters) == 1
    assert [c for c in ours_chunks if c not in parameters] == core_chunks     # byte for byte
    assert {c[1].split(b"\0")[0] for c in core_chunks if c[0] == b"tEXt"} == {b"prompt", b"workflow"}
    with Image.open(ours) as a, Image.open(core) as b:
        assert a.tobytes() == b.tobytes()
