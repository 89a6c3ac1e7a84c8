"""core/graph_params.py: every core sampling shape read from the posted graph; what cannot be
read is unknown, never the job's value."""
import copy

import pytest

from prompt_media_pkg.core.graph_params import Linked, file_name_seed, find_sampler_params, resolve

GRAPH = {
    "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "tiny_sd15.ckpt"}},
    "2": {"class_type": "PromptMediaLoader", "inputs": {"file": "a.yaml", "preset": ""}},
    "3": {"class_type": "PromptMediaOOM", "inputs": {"prompt_media": ["2", 0], "job_index": 0}},
    "4": {"class_type": "PromptMediaLoraChain",
          "inputs": {"model": ["11", 0], "clip": ["11", 1], "lora_stack": ["2", 1]}},
    "11": {"class_type": "LoraLoader", "inputs": {"model": ["1", 0], "clip": ["1", 1],
                                                   "lora_name": "a.safetensors", "strength_model": 0.5,
                                                   "strength_clip": 0.25}},
    "5": {"class_type": "CLIPTextEncode", "inputs": {"text": ["3", 0], "clip": ["4", 1]}},
    "6": {"class_type": "CLIPTextEncode", "inputs": {"text": ["2", 2], "clip": ["4", 1]}},
    "7": {"class_type": "EmptyLatentImage", "inputs": {"width": ["2", 5], "height": ["2", 6], "batch_size": 1}},
    "8": {"class_type": "KSampler",
          "inputs": {"model": ["4", 0], "seed": ["3", 1], "steps": ["2", 3], "cfg": ["2", 4],
                     "sampler_name": ["2", 7], "scheduler": ["2", 8], "positive": ["5", 0],
                     "negative": ["6", 0], "latent_image": ["7", 0], "denoise": ["2", 9]}},
    "9": {"class_type": "VAEDecode", "inputs": {"samples": ["8", 0], "vae": ["1", 2]}},
    "10": {"class_type": "PromptMediaSessionSaver", "inputs": {"images": ["9", 0], "job": ["3", 2]}},
}
JOB = {"seed": 7, "steps": 20, "cfg": 7.0, "sampler_name": "euler", "scheduler": "normal",
       "denoise": 1.0, "positive": "a fox, night", "negative": "blurry", "width": 512, "height": 512,
       "guidance": 3.5, "model_name": None}
SAMPLER_FIELDS = ("seed", "steps", "cfg", "sampler_name", "scheduler", "denoise", "positive", "negative",
                  "width", "height")


def one(graph, saver="10", job=JOB, image_size=None):
    g = find_sampler_params(graph, saver)
    resolved = resolve(g, job, image_size)
    assert len(resolved) == len(g.stages) or not g.found
    return g, resolved[0]


def test_all_linked_values_come_from_the_job():
    g, r = one(GRAPH)
    assert g.found and g.sampler_id == "8" and g.sampler_class == "KSampler" and len(g.stages) == 1
    stage = g.stages[0]
    assert stage.values["seed"] == Linked("3", 1, "PromptMediaOOM")
    assert stage.values["steps"] == Linked("2", 3, "PromptMediaLoader")
    assert stage.values["positive"] == Linked("3", 0, "PromptMediaOOM")
    assert stage.values["width"] == Linked("2", 5, "PromptMediaLoader")
    assert stage.values["model_name"] == "tiny_sd15.ckpt"          # through our chain and LoraLoader
    assert stage.values["model_folder"] == "checkpoints"
    assert g.loras == [{"lora_name": "a.safetensors", "strength_model": 0.5, "strength_clip": 0.25},
                       {"stack_node": "4", "class_type": "PromptMediaLoraChain"}]
    assert {k: r.values[k] for k in SAMPLER_FIELDS} == {k: JOB[k] for k in SAMPLER_FIELDS}
    assert r.values["model_name"] == "tiny_sd15.ckpt" and r.sources["model_name"] == "widget"
    assert {r.sources[k] for k in SAMPLER_FIELDS} == {"job"}
    assert r.overrides == {}
    assert r.values["guidance"] is None and r.sources["guidance"].startswith("not used: no FluxGuidance")
    assert r.values["text_encoders"] == [] and r.sources["text_encoders"].startswith("not used: the checkpoint")
    assert g.vae_name is None and g.vae_absent == "not used: the checkpoint's own VAE"
    assert stage.read_from["seed"] == "8" and stage.read_from["positive"] == "5"
    assert file_name_seed(g, [r], JOB) == (7, None)


def test_widget_override_wins_and_is_reported():
    graph = copy.deepcopy(GRAPH)
    graph["8"]["inputs"]["steps"] = 2
    graph["8"]["inputs"]["cfg"] = 7          # same as the job: not an override
    graph["6"]["inputs"]["text"] = "ugly"
    graph["7"]["inputs"]["width"] = 64
    _, r = one(graph)
    assert r.values["steps"] == 2 and r.sources["steps"] == "widget"
    assert r.values["negative"] == "ugly" and r.values["width"] == 64
    assert r.overrides == {"steps": {"used": 2, "file": 20}, "negative": {"used": "ugly", "file": "blurry"},
                           "width": {"used": 64, "file": 512}}


def test_a_link_from_a_foreign_node_is_unknown_never_the_jobs_value():
    graph = copy.deepcopy(GRAPH)
    graph["20"] = {"class_type": "SomeRandomSeed", "inputs": {"x": 1}}
    graph["21"] = {"class_type": "PrimitiveInt", "inputs": {"value": 3}}
    graph["8"]["inputs"]["seed"] = ["20", 0]
    graph["8"]["inputs"]["steps"] = ["21", 0]
    graph["8"]["inputs"]["cfg"] = ["2", 3]         # the loader's *steps* output wired into cfg
    g, r = one(graph)
    assert r.values["seed"] is None
    assert r.sources["seed"] == "unknown: linked from node 20 (SomeRandomSeed) output 0"
    assert r.values["steps"] == 3 and r.sources["steps"] == "widget"      # a core primitive
    assert r.values["cfg"] == 20 and r.sources["cfg"] == "job"            # the value that output carries
    seed, note = file_name_seed(g, [r], JOB)
    assert seed == 7 and "not readable" in note and "job's seed 7" in note


def two_pass(graph):
    """Hires-style second pass: LatentUpscale -> KSamplerAdvanced 31 on the refiner checkpoint."""
    graph = copy.deepcopy(graph)
    graph["30"] = {"class_type": "LatentUpscale", "inputs": {"samples": ["8", 0], "upscale_method": "nearest-exact",
                                                             "width": 128, "height": 96, "crop": "disabled"}}
    graph["32"] = {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "refiner.safetensors"}}
    graph["31"] = {"class_type": "KSamplerAdvanced",
                   "inputs": {"model": ["32", 0], "add_noise": "disable", "noise_seed": 99, "steps": 10,
                              "cfg": 5.0, "sampler_name": "dpmpp_2m", "scheduler": "karras",
                              "positive": ["5", 0], "negative": ["6", 0], "latent_image": ["30", 0],
                              "start_at_step": 6, "end_at_step": 10000,
                              "return_with_leftover_noise": "disable"}}
    graph["9"]["inputs"]["samples"] = ["31", 0]
    return graph


def test_two_passes_are_two_stages_first_pass_first():
    graph = two_pass(GRAPH)
    g = find_sampler_params(graph, "10")
    assert [s.sampler_id for s in g.stages] == ["8", "31"] and g.sampler_id == "8"
    first, second = resolve(g, JOB, image_size=(128, 96))
    assert first.values["seed"] == 7 and first.values["width"] == 512 and first.values["model_name"] == "tiny_sd15.ckpt"
    assert second.values["seed"] == 99 and second.values["noise"] == "disabled"
    assert (second.values["start_at_step"], second.values["end_at_step"]) == (6, 10)
    assert second.values["denoise"] is None and second.sources["denoise"].startswith("not used:")
    assert (second.values["width"], second.values["height"]) == (128, 96) and second.sources["width"] == "widget"
    assert second.values["model_name"] == "refiner.safetensors" and g.stages[1].loras == []
    assert file_name_seed(g, [first, second], JOB) == (7, None)        # the first pass's noise
    # a second pass straight on the first one's latent: its size is not the empty latent's
    graph["31"]["inputs"]["latent_image"] = ["8", 0]
    second = resolve(find_sampler_params(graph, "10"), JOB, image_size=(512, 512))[1]
    assert second.values["width"] is None and "earlier pass" in second.sources["width"]


def flux(noise="RandomNoise", guider="BasicGuider", sampler=("KSamplerSelect", {"sampler_name": "dpmpp_2m"}),
         sigmas=("BasicScheduler", {"scheduler": "simple", "steps": 3, "denoise": 1.0})):
    """A Flux-shaped graph as the templates wire it (UNET + dual CLIP + VAE + FluxGuidance)."""
    g = {
        "1": {"class_type": "UNETLoader", "inputs": {"unet_name": "flux1-dev.safetensors", "weight_dtype": "fp8_e4m3fn"}},
        "12": {"class_type": "DualCLIPLoader", "inputs": {"clip_name1": "clip_l.safetensors",
                                                          "clip_name2": "t5xxl_fp16.safetensors", "type": "flux"}},
        "13": {"class_type": "VAELoader", "inputs": {"vae_name": "ae.safetensors"}},
        "2": {"class_type": "PromptMediaLoader", "inputs": {"file": "a.yaml", "preset": "dev"}},
        "3": {"class_type": "PromptMediaOOM", "inputs": {"prompt_media": ["2", 0]}},
        "4": {"class_type": "PromptMediaLoraChain", "inputs": {"model": ["1", 0], "clip": ["12", 0], "lora_stack": ["2", 1]}},
        "14": {"class_type": "ModelSamplingFlux", "inputs": {"model": ["4", 0], "max_shift": 1.15, "base_shift": 0.5,
                                                             "width": 1024, "height": 1024}},
        "5": {"class_type": "CLIPTextEncode", "inputs": {"text": ["3", 0], "clip": ["4", 1]}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": ["2", 2], "clip": ["4", 1]}},
        "15": {"class_type": "FluxGuidance", "inputs": {"conditioning": ["5", 0], "guidance": ["2", 11]}},
        "7": {"class_type": "EmptySD3LatentImage", "inputs": {"width": ["2", 5], "height": ["2", 6], "batch_size": 1}},
        "16": {"class_type": noise, "inputs": {"noise_seed": ["3", 1]} if noise == "RandomNoise" else {}},
        "17": {"class_type": guider, "inputs": {
            "BasicGuider": {"model": ["14", 0], "conditioning": ["15", 0]},
            "CFGGuider": {"model": ["14", 0], "positive": ["15", 0], "negative": ["6", 0], "cfg": 4.5},
            "DualCFGGuider": {"model": ["14", 0], "cond1": ["15", 0], "cond2": ["5", 0], "negative": ["6", 0],
                              "cfg_conds": 5.0, "cfg_cond2_negative": 2.0, "style": "regular"}}[guider]},
        "18": {"class_type": sampler[0], "inputs": sampler[1]},
        "19": {"class_type": sigmas[0], "inputs": {"model": ["14", 0], **sigmas[1]}},
        "8": {"class_type": "SamplerCustomAdvanced", "inputs": {"noise": ["16", 0], "guider": ["17", 0],
                                                                "sampler": ["18", 0], "sigmas": ["19", 0],
                                                                "latent_image": ["7", 0]}},
        "9": {"class_type": "VAEDecode", "inputs": {"samples": ["8", 0], "vae": ["13", 0]}},
        "10": {"class_type": "PromptMediaSessionSaver", "inputs": {"images": ["9", 0], "job": ["3", 2]}},
    }
    return g


def test_flux_sampler_custom_advanced_reads_every_part_not_the_job():
    g, r = one(flux())
    assert g.sampler_class == "SamplerCustomAdvanced"
    v, s = r.values, r.sources
    # the measured bug: steps 3 / dpmpp_2m / simple / the unet / no negative / guidance
    assert (v["steps"], v["sampler_name"], v["scheduler"], v["denoise"]) == (3, "dpmpp_2m", "simple", 1.0)
    assert s["steps"] == s["sampler_name"] == s["scheduler"] == "widget"
    assert r.overrides["steps"] == {"used": 3, "file": 20} and r.overrides["scheduler"] == {"used": "simple", "file": "normal"}
    assert v["seed"] == 7 and s["seed"] == "job" and v["noise"] == "enabled"
    assert v["cfg"] == 1.0 and v["negative"] is None and s["negative"].startswith("not used: BasicGuider")
    assert v["guidance"] == 3.5 and s["guidance"] == "job"
    assert (v["model_name"], v["model_folder"], v["weight_dtype"]) == ("flux1-dev.safetensors", "diffusion_models",
                                                                        "fp8_e4m3fn")
    assert v["text_encoders"] == ["clip_l.safetensors", "t5xxl_fp16.safetensors"] and v["clip_type"] == "flux"
    assert g.vae_name == "ae.safetensors"
    assert g.stages[0].model_sampling == {"class": "ModelSamplingFlux", "max_shift": 1.15, "base_shift": 0.5,
                                          "width": 1024, "height": 1024}
    assert g.loras == [{"stack_node": "4", "class_type": "PromptMediaLoraChain"}]
    assert (v["width"], v["height"]) == (512, 512)
    rd = g.stages[0].read_from
    assert (rd["seed"], rd["cfg"], rd["sampler_name"], rd["steps"], rd["guidance"]) == ("16", "17", "18", "19", "15")


def test_cfg_and_dual_cfg_guiders_record_the_negative():
    _, r = one(flux(guider="CFGGuider"))
    assert r.values["cfg"] == 4.5 and r.values["negative"] == "blurry" and r.sources["negative"] == "job"
    g, r = one(flux(guider="DualCFGGuider"))
    assert r.values["cfg"] == 5.0 and r.values["negative"] == "blurry" and r.values["positive_2"] == "a fox, night"
    assert g.stages[0].guider_class == "DualCFGGuider"
    assert g.stages[0].guider_options == {"cfg_cond2_negative": 2.0, "style": "regular"}


def test_disable_noise_is_seed_zero():
    g, r = one(flux(noise="DisableNoise"))
    assert r.values["seed"] == 0 and r.values["noise"] == "disabled" and r.sources["seed"] == "widget"
    assert file_name_seed(g, [r], JOB) == (0, None)


@pytest.mark.parametrize("node, inputs, name", [
    ("KSamplerSelect", {"sampler_name": "euler"}, "euler"),
    ("SamplerEulerAncestral", {"eta": 0.5, "s_noise": 1.0}, "euler_ancestral"),
    ("SamplerDPMPP_2M_SDE", {"solver_type": "heun", "eta": 1.0, "s_noise": 1.0, "noise_device": "cpu"}, "dpmpp_2m_sde"),
    ("SamplerDPMPP_2M_SDE", {"solver_type": "heun", "eta": 1.0, "s_noise": 1.0, "noise_device": "gpu"}, "dpmpp_2m_sde_gpu"),
    ("SamplerLMS", {"order": 4}, "lms"),
])
def test_sampler_nodes(node, inputs, name):
    g, r = one(flux(sampler=(node, inputs)))
    assert r.values["sampler_name"] == name and r.sources["sampler_name"] == "widget"
    if node != "KSamplerSelect":
        assert g.stages[0].sampler_options == {"class": node, **inputs}


@pytest.mark.parametrize("node, inputs, steps, scheduler, denoise", [
    ("BasicScheduler", {"scheduler": "beta", "steps": 8, "denoise": 0.6}, 8, "beta", 0.6),
    ("KarrasScheduler", {"steps": 9, "sigma_max": 14.6, "sigma_min": 0.03, "rho": 7.0}, 9, "karras", None),
    ("ExponentialScheduler", {"steps": 5, "sigma_max": 14.6, "sigma_min": 0.03}, 5, "exponential", None),
    ("BetaSamplingScheduler", {"steps": 6, "alpha": 0.6, "beta": 0.6}, 6, "beta", None),
    ("SDTurboScheduler", {"steps": 2, "denoise": 1.0}, 2, "sd_turbo", 1.0),
])
def test_scheduler_nodes(node, inputs, steps, scheduler, denoise):
    g, r = one(flux(sigmas=(node, inputs)))
    assert (r.values["steps"], r.values["scheduler"], r.values["denoise"]) == (steps, scheduler, denoise)
    if denoise is None:
        assert r.sources["denoise"].startswith("not used:")
    if node in ("KarrasScheduler", "ExponentialScheduler", "BetaSamplingScheduler"):
        assert g.stages[0].scheduler_options["class"] == node


def test_split_sigmas_gives_the_steps_each_pass_runs():
    graph = flux(sigmas=("BasicScheduler", {"scheduler": "simple", "steps": 20, "denoise": 1.0}))
    graph["20"] = {"class_type": "SplitSigmas", "inputs": {"sigmas": ["19", 0], "step": 12}}
    graph["8"]["inputs"]["sigmas"] = ["20", 1]           # low sigmas: steps 12..20
    _, r = one(graph)
    assert (r.values["steps"], r.values["start_at_step"], r.values["end_at_step"]) == (20, 12, 20)
    assert r.values["denoise"] == 1.0          # the schedule's, which the split cuts
    graph["8"]["inputs"]["sigmas"] = ["20", 0]           # high sigmas: steps 0..12
    _, r = one(graph)
    assert (r.values["start_at_step"], r.values["end_at_step"]) == (0, 12)
    graph["21"] = {"class_type": "FlipSigmas", "inputs": {"sigmas": ["19", 0]}}
    graph["8"]["inputs"]["sigmas"] = ["21", 0]
    _, r = one(graph)
    assert r.values["steps"] is None and r.sources["steps"] == "unknown: sigmas from node 21 (FlipSigmas)"


def test_sampler_custom_and_model_sampling_shift():
    graph = copy.deepcopy(GRAPH)
    graph["20"] = {"class_type": "ModelSamplingSD3", "inputs": {"model": ["4", 0], "shift": 3.0}}
    graph["21"] = {"class_type": "KSamplerSelect", "inputs": {"sampler_name": "euler"}}
    graph["22"] = {"class_type": "KarrasScheduler", "inputs": {"steps": 4, "sigma_max": 14.6, "sigma_min": 0.03, "rho": 7.0}}
    graph["8"] = {"class_type": "SamplerCustom", "inputs": {
        "model": ["20", 0], "add_noise": False, "noise_seed": ["3", 1], "cfg": 6.5, "positive": ["5", 0],
        "negative": ["6", 0], "sampler": ["21", 0], "sigmas": ["22", 0], "latent_image": ["7", 0]}}
    g, r = one(graph)
    v = r.values
    assert (v["seed"], v["noise"], v["cfg"], v["steps"], v["scheduler"]) == (7, "disabled", 6.5, 4, "karras")
    assert v["shift"] == 3.0 and v["negative"] == "blurry" and v["model_name"] == "tiny_sd15.ckpt"


def test_text_encoder_loaders_and_clip_skip():
    graph = copy.deepcopy(GRAPH)
    graph["20"] = {"class_type": "CLIPLoader", "inputs": {"clip_name": "clip_l.pt", "type": "stable_diffusion"}}
    graph["21"] = {"class_type": "CLIPSetLastLayer", "inputs": {"clip": ["20", 0], "stop_at_clip_layer": -2}}
    graph["5"]["inputs"]["clip"] = ["21", 0]
    _, r = one(graph)
    assert r.values["text_encoders"] == ["clip_l.pt"] and r.values["clip_type"] == "stable_diffusion"
    assert r.values["clip_skip"] == 2
    graph["20"] = {"class_type": "TripleCLIPLoader", "inputs": {"clip_name1": "a", "clip_name2": "b", "clip_name3": "c"}}
    _, r = one(graph)
    assert r.values["text_encoders"] == ["a", "b", "c"] and "clip_type" not in r.values


def test_unknown_graphs_record_nothing_as_used():
    for graph, saver in [(None, "10"), ({}, "10"), (GRAPH, "999"),
                         ({"10": {"class_type": "PromptMediaSessionSaver", "inputs": {"images": ["9", 0]}},
                           "9": {"class_type": "LoadImage", "inputs": {"image": "x.png"}}}, "10")]:
        g = find_sampler_params(graph, saver)
        assert not g.found and g.notes
        (r,) = resolve(g, JOB, image_size=(64, 48))
        assert r.values["seed"] is None and r.sources["seed"].startswith("unknown")
        assert r.values["positive"] is None and r.values["model_name"] is None
        assert (r.values["width"], r.values["height"], r.sources["width"]) == (64, 48, "image")
        assert file_name_seed(g, [r], JOB)[0] == 7


def test_malformed_graph_does_not_raise():
    graph = {"10": {"class_type": "PromptMediaSessionSaver", "inputs": {"images": ["8", 0]}},
             "8": {"class_type": "KSampler", "inputs": {"seed": 5, "positive": ["404", 0], "model": "x",
                                                        "latent_image": [1, 2, 3]}},
             "x": "not a node"}
    g = find_sampler_params(graph, "10")
    assert g.found and g.stages[0].values["seed"] == 5
    (r,) = resolve(g, JOB)
    assert r.values["seed"] == 5 and r.values["positive"] is None and r.values["model_name"] is None
    for broken in ({"noise": ["404", 0]}, {"guider": 5}, {"sampler": None}, {}):
        sca = {"10": graph["10"], "8": {"class_type": "SamplerCustomAdvanced", "inputs": broken}}
        (r,) = resolve(find_sampler_params(sca, "10"), JOB)
        assert r.values["seed"] is None and r.values["steps"] is None and r.values["cfg"] is None
    # a cycle (impossible in ComfyUI, but must not hang)
    graph = {"10": {"class_type": "S", "inputs": {"images": ["1", 0]}},
             "1": {"class_type": "A", "inputs": {"x": ["2", 0]}},
             "2": {"class_type": "B", "inputs": {"x": ["1", 0]}}}
    assert not find_sampler_params(graph, "10").found
    loop = {"10": {"class_type": "S", "inputs": {"images": ["1", 0]}},
            "1": {"class_type": "KSampler", "inputs": {"latent_image": ["2", 0], "model": ["3", 0]}},
            "2": {"class_type": "KSampler", "inputs": {"latent_image": ["1", 0]}},
            "3": {"class_type": "ModelSamplingSD3", "inputs": {"model": ["3", 0], "shift": 1.0}}}
    assert len(find_sampler_params(loop, "10").stages) == 2


def test_wired_model_folders_follow_the_loaders_model_name_output():
    from prompt_media_pkg.core.graph_params import wired_model_folders
    graph = flux()
    assert wired_model_folders(graph, "2") == []                          # not connected: the loader decides
    graph["1"]["inputs"]["unet_name"] = ["2", 12]
    assert wired_model_folders(graph, "2") == ["diffusion_models"]
    graph["30"] = {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": ["2", 12]}}
    assert wired_model_folders(graph, "2") == ["diffusion_models", "checkpoints"]
    graph = flux()
    graph["30"] = {"class_type": "SomeLoader", "inputs": {"name": ["2", 12]}}
    assert wired_model_folders(graph, "2") == ["checkpoints", "diffusion_models"]
    graph["30"]["inputs"] = {"name": ["2", 11]}                          # another output: not the model
    assert wired_model_folders(graph, "2") == [] and wired_model_folders(None, "2") == []
