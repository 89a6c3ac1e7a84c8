"""Issue 14: the sidecar of every sampling shape, from the graph to the file and back: model,
text encoders, VAE and their sha256, Flux guidance, stages; parameters_source says where each
value was read; the typed record and Load Generation Params' values read it back."""
import copy

from prompt_media_pkg.core.graph_params import find_sampler_params, resolve
from prompt_media_pkg.core.pngmeta import a1111_parameters
from prompt_media_pkg.core.sidecar import (
    applied_loras,
    parameters_section,
    parameters_source_section,
    read_sidecar,
    regeneration,
    save_generation_params,
)
from prompt_media_pkg.tests.unit.test_graph_params import GRAPH, JOB, flux, two_pass

HASHES = {("diffusion_models", "flux1-dev.safetensors"): "d" * 64, ("text_encoders", "clip_l.safetensors"): "c" * 64,
          ("text_encoders", "t5xxl_fp16.safetensors"): "t" * 64, ("vae", "ae.safetensors"): "a" * 64,
          ("checkpoints", "tiny_sd15.ckpt"): "0" * 64, ("checkpoints", "refiner.safetensors"): "r" * 64}


def sha256_of(folder, name):
    return HASHES.get((folder, name))


def sidecar(tmp_path, graph, job=JOB, stack=None):
    g = find_sampler_params(graph, "10")
    resolved = resolve(g, job, image_size=(64, 64))
    stage_loras = [applied_loras(s.loras, stack, None, lambda n: None) for s in g.stages]
    params = parameters_section(g, resolved, stage_loras[0] if stage_loras else [], sha256_of, 0, 1, stage_loras)
    source = parameters_source_section(g, resolved, None)
    path = save_generation_params(str(tmp_path / "001_seed_7.png"), "prompt-media", "0.3.0", 1, "t", params,
                                  parameters_source=source)
    return params, source, read_sidecar(path)


def test_flux_sidecar_names_every_file_with_its_hash_and_the_guidance(tmp_path):
    stack = [{"name": "style.safetensors", "strength_model": 0.8, "strength_clip": 0.8, "sha256": "s" * 64}]
    params, source, sc = sidecar(tmp_path, flux(), stack=stack)
    assert (params["model_name"], params["model_folder"], params["model_sha256"]) == \
        ("flux1-dev.safetensors", "diffusion_models", "d" * 64)
    assert params["weight_dtype"] == "fp8_e4m3fn" and params["clip_type"] == "flux"
    assert params["text_encoders"] == [{"name": "clip_l.safetensors", "sha256": "c" * 64},
                                       {"name": "t5xxl_fp16.safetensors", "sha256": "t" * 64}]
    assert (params["vae_name"], params["vae_sha256"]) == ("ae.safetensors", "a" * 64)
    assert (params["guidance"], params["cfg_scale"], params["negative_prompt"]) == (3.5, 1.0, None)
    assert params["guider"] == "BasicGuider" and params["model_sampling"]["class"] == "ModelSamplingFlux"
    assert params["loras"][0]["lora_name"] == "style.safetensors" and "stages" not in params
    fields = source["fields"]
    assert fields["negative"].startswith("not used") and fields["guidance"] == "job" and fields["vae_name"] == "widget"
    assert source["read_from"]["sampler_name"] == "18" and source["sampler_class"] == "SamplerCustomAdvanced"
    assert (sc.guidance, sc.model_folder, sc.text_encoders, sc.vae_name, sc.stages) == \
        (3.5, "diffusion_models", ("clip_l.safetensors", "t5xxl_fp16.safetensors"), "ae.safetensors", 1)
    regen = regeneration(sc)
    assert (regen.steps, regen.sampler, regen.scheduler, regen.model_name, regen.guidance) == \
        (3, "dpmpp_2m", "simple", "flux1-dev.safetensors", 3.5)
    text = a1111_parameters(params)
    assert "CFG scale: 1.0, Distilled CFG Scale: 3.5, Seed: 7" in text and "Model: flux1-dev" in text
    assert "Negative prompt" not in text


def test_checkpoint_sidecar_uses_the_checkpoints_own_parts(tmp_path):
    params, source, sc = sidecar(tmp_path, GRAPH)
    assert (params["model_folder"], params["model_sha256"], params["text_encoders"]) == ("checkpoints", "0" * 64, [])
    assert params["vae_name"] is None and params["vae_sha256"] is None and params["guidance"] is None
    assert source["fields"]["vae_name"] == "not used: the checkpoint's own VAE"
    assert source["fields"]["text_encoders"] == "not used: the checkpoint's own text encoder"
    assert regeneration(sc).guidance == 3.5 and sc.vae_name is None


def test_two_passes_are_recorded_as_stages_first_pass_on_top(tmp_path):
    params, source, sc = sidecar(tmp_path, two_pass(GRAPH))
    assert params["seed"] == 7 and params["model_name"] == "tiny_sd15.ckpt" and sc.stages == 2
    first, second = params["stages"]
    assert (first["sampler_node"], second["sampler_node"]) == ("8", "31")
    assert (second["seed"], second["noise"], second["start_at_step"], second["end_at_step"]) == (99, "disabled", 6, 10)
    assert (second["model_name"], second["model_sha256"], second["loras"]) == ("refiner.safetensors", "r" * 64, [])
    assert [s["sampler_class"] for s in source["stages"]] == ["KSampler", "KSamplerAdvanced"]
    assert source["stages"][1]["fields"]["denoise"].startswith("not used")


def test_unknown_values_are_null_with_the_reason(tmp_path):
    graph = copy.deepcopy(flux())
    graph["16"]["inputs"]["noise_seed"] = ["40", 0]
    graph["40"] = {"class_type": "SomeSeedNode", "inputs": {}}
    params, source, sc = sidecar(tmp_path, graph)
    assert params["seed"] is None and sc.seed is None
    assert source["fields"]["seed"] == "unknown: linked from node 40 (SomeSeedNode) output 0"
    assert "Seed:" not in a1111_parameters(params)
