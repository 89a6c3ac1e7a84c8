from prompt_media_pkg.core.sidecar import applied_loras, oom_section, parse_project_id

HASHES = {"a.safetensors": "aa" * 32, "b.safetensors": "bb" * 32, "core.safetensors": "cc" * 32}


def test_project_id():
    assert parse_project_id("") is None and parse_project_id("  ") is None and parse_project_id(None) is None
    assert parse_project_id("12") == 12 and parse_project_id(" -3 ") == -3 and parse_project_id(5) == 5
    assert parse_project_id("proj-7") == "proj-7" and parse_project_id("١٢") == "١٢"   # non-ASCII digits stay text


def test_loras_in_application_order_with_hashes():
    graph = [{"lora_name": "core.safetensors", "strength_model": 0.5, "strength_clip": 0.4},
             {"stack_node": "4", "class_type": "PromptMediaLoraChain"},
             {"lora_name": "zero.safetensors", "strength_model": 0, "strength_clip": 0}]
    stack = [{"name": "a.safetensors", "strength_model": 1.0, "strength_clip": 0.5, "sha256": "given"},
             {"name": "b.safetensors", "strength_model": 0.3, "strength_clip": 0.3}]
    out = applied_loras(graph, stack, None, HASHES.get)
    assert out == [
        {"lora_name": "core.safetensors", "strength_model": 0.5, "strength_clip": 0.4, "sha256": "cc" * 32},
        {"lora_name": "a.safetensors", "strength_model": 1.0, "strength_clip": 0.5, "sha256": "given"},
        {"lora_name": "b.safetensors", "strength_model": 0.3, "strength_clip": 0.3, "sha256": "bb" * 32},
    ]


def test_loras_without_stack_use_the_declared_list_at_the_chain():
    graph = [{"stack_node": "4", "class_type": "PromptMediaLoraChain"}]
    declared = [{"name": "a.safetensors", "strength_model": 1.0, "strength_clip": 1.0}]
    assert [l["lora_name"] for l in applied_loras(graph, None, declared, HASHES.get)] == ["a.safetensors"]
    assert applied_loras([], None, declared, HASHES.get) == []          # no chain in the graph: none applied


def test_stack_in_an_unknown_graph_is_still_recorded():
    stack = [{"name": "a.safetensors", "strength_model": 1.0, "strength_clip": 1.0}]
    assert applied_loras(None, stack, None, HASHES.get)[0]["sha256"] == "aa" * 32
    assert applied_loras([], [], None, HASHES.get) == []


def test_oom_section_has_every_key():
    assert set(oom_section({"index": 1})) >= {"index", "total", "seed_index", "prompt_index", "variation_index",
                                               "variations_per_prompt", "base_prompt", "variation_values",
                                               "mode", "variation_seed", "expansion_id"}
