import copy

from prompt_media_pkg.core.graph_params import Linked, find_sampler_params, resolve

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
       "denoise": 1.0, "positive": "a fox, night", "negative": "blurry", "width": 512, "height": 512}


def test_all_linked_values_come_from_the_job():
    g = find_sampler_params(GRAPH, "10")
    assert g.found and g.sampler_id == "8" and g.sampler_class == "KSampler"
    assert g.values["seed"] == Linked("3", 1, "PromptMediaOOM")
    assert g.values["steps"] == Linked("2", 3, "PromptMediaLoader")
    assert g.values["positive"] == Linked("3", 0, "PromptMediaOOM")
    assert g.values["width"] == Linked("2", 5, "PromptMediaLoader")
    assert g.values["model_name"] == "tiny_sd15.ckpt"          # through our chain and LoraLoader
    assert g.loras == [{"lora_name": "a.safetensors", "strength_model": 0.5, "strength_clip": 0.25},
                       {"stack_node": "4", "class_type": "PromptMediaLoraChain"}]
    r = resolve(g, JOB)
    assert {k: r.values[k] for k in JOB} == JOB
    assert r.values["model_name"] == "tiny_sd15.ckpt"
    assert set(r.sources.values()) == {"job", "widget"} and r.sources["model_name"] == "widget"
    assert r.overrides == {}


def test_widget_override_wins_and_is_reported():
    graph = copy.deepcopy(GRAPH)
    graph["8"]["inputs"]["steps"] = 2
    graph["8"]["inputs"]["cfg"] = 7          # same as the job: not an override
    graph["6"]["inputs"]["text"] = "ugly"
    graph["7"]["inputs"]["width"] = 64
    r = resolve(find_sampler_params(graph, "10"), JOB)
    assert r.values["steps"] == 2 and r.sources["steps"] == "widget"
    assert r.values["negative"] == "ugly" and r.values["width"] == 64
    assert r.overrides == {"steps": {"used": 2, "file": 20}, "negative": {"used": "ugly", "file": "blurry"},
                           "width": {"used": 64, "file": 512}}


def test_link_from_foreign_node_is_marked_unverified_and_primitives_are_constants():
    graph = copy.deepcopy(GRAPH)
    graph["20"] = {"class_type": "SomeRandomSeed", "inputs": {"x": 1}}
    graph["21"] = {"class_type": "PrimitiveInt", "inputs": {"value": 3}}
    graph["8"]["inputs"]["seed"] = ["20", 0]
    graph["8"]["inputs"]["steps"] = ["21", 0]
    r = resolve(find_sampler_params(graph, "10"), JOB)
    assert r.values["seed"] == 7 and r.sources["seed"].startswith("job (unverified: linked from node 20")
    assert r.values["steps"] == 3 and r.sources["steps"] == "widget"


def test_advanced_sampler_and_nearest_sampler_wins():
    graph = copy.deepcopy(GRAPH)
    # hires-style second pass: the images come from KSamplerAdvanced 31
    graph["30"] = {"class_type": "LatentUpscale", "inputs": {"samples": ["8", 0], "width": 128, "height": 128}}
    graph["31"] = {"class_type": "KSamplerAdvanced",
                   "inputs": {"model": ["1", 0], "add_noise": "enable", "noise_seed": 99, "steps": 4,
                              "cfg": 5.0, "sampler_name": "dpmpp_2m", "scheduler": "karras",
                              "positive": ["5", 0], "negative": ["6", 0], "latent_image": ["30", 0],
                              "start_at_step": 0, "end_at_step": 10000,
                              "return_with_leftover_noise": "disable"}}
    graph["9"]["inputs"]["samples"] = ["31", 0]
    g = find_sampler_params(graph, "10")
    assert g.sampler_id == "31" and g.sampler_class == "KSamplerAdvanced"
    r = resolve(g, JOB)
    assert r.values["seed"] == 99 and r.values["steps"] == 4 and r.values["denoise"] == 1.0
    assert r.values["sampler_name"] == "dpmpp_2m" and r.values["scheduler"] == "karras"
    assert g.loras == []                    # model straight from the checkpoint
    # width/height: the nearest 'Empty*' latent upstream of the latent input
    assert r.values["width"] == 512 and r.sources["width"] == "job"


def test_unknown_graphs_fall_back_to_the_job():
    for graph, saver in [(None, "10"), ({}, "10"), (GRAPH, "999"),
                         ({"10": {"class_type": "PromptMediaSessionSaver", "inputs": {"images": ["9", 0]}},
                           "9": {"class_type": "LoadImage", "inputs": {"image": "x.png"}}}, "10")]:
        g = find_sampler_params(graph, saver)
        assert not g.found and g.notes
        r = resolve(g, JOB, image_size=(64, 48))
        assert r.values["seed"] == 7 and r.sources["seed"] == "job"
        assert r.values["model_name"] is None and r.sources["model_name"] == "unknown"
        assert r.values["width"] == 512               # the job knows; image size only as last resort
    r = resolve(find_sampler_params(None, None), {}, image_size=(64, 48))
    assert (r.values["width"], r.values["height"], r.sources["width"]) == (64, 48, "image")


def test_malformed_graph_does_not_raise():
    graph = {"10": {"class_type": "PromptMediaSessionSaver", "inputs": {"images": ["8", 0]}},
             "8": {"class_type": "KSampler", "inputs": {"seed": 5, "positive": ["404", 0], "model": "x",
                                                        "latent_image": [1, 2, 3]}},
             "x": "not a node"}
    g = find_sampler_params(graph, "10")
    assert g.found and g.values == {"seed": 5}
    # a cycle (impossible in ComfyUI, but must not hang)
    graph = {"10": {"class_type": "S", "inputs": {"images": ["1", 0]}},
             "1": {"class_type": "A", "inputs": {"x": ["2", 0]}},
             "2": {"class_type": "B", "inputs": {"x": ["1", 0]}}}
    assert not find_sampler_params(graph, "10").found
