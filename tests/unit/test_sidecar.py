import json
import os
import re

import pytest

from prompt_media_pkg.core.sidecar import (
    GenerationParamsError,
    LoraUse,
    OomPlace,
    applied_loras,
    oom_section,
    parse_project_id,
    read_sidecar,
    regeneration,
    save_generation_params,
)
from prompt_media_pkg.tests.synthetic_session import make_sidecar

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


# --------------------------------------------------------------------------- the typed record

def write(folder, name: str, data: dict) -> str:
    path = os.path.join(folder, name)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f)
    return path


def session_sidecar(**parameters) -> dict:
    data = make_sidecar(task_id=7, seed=42, seed_index=1, prompt_index=2, variation_index=3,
                        variations_per_prompt=4, base_prompt="a lake", total=24,
                        variation_values={"style": "ink", "n": "3"}, filename="007_seed_42.png",
                        folder="/elsewhere", source_name="lakes.yaml")
    data["oom"]["variation_values"]["n"] = 3             # values other than text are read as text
    data["parameters"]["loras"] = [{"lora_name": "a.safetensors", "strength_model": 0.5,
                                    "strength_clip": 1, "sha256": "aa" * 32}]
    data["parameters"].update(parameters)
    return data


def test_read_sidecar_gives_one_typed_record(tmp_path):
    image = tmp_path / "007_seed_42.png"
    data = session_sidecar()
    save_generation_params(str(image), "prompt-media", "0.2.0", data["task_id"], data["timestamp"],
                           data["parameters"], data["project_id"], oom=data["oom"],
                           session=data["session"], system=data["system"])
    for given in (image, tmp_path / "007_seed_42.json"):                # the image or the .json
        sc = read_sidecar(str(given))
        assert sc.path == str(tmp_path / "007_seed_42.json") and sc.image_path == str(image)
        assert (sc.plugin, sc.plugin_version, sc.task_id, sc.count, sc.project_id) == \
            ("prompt-media", "0.2.0", 7, 7, "test")
        assert (sc.prompt, sc.negative, sc.seed, sc.steps, sc.cfg, sc.sampler, sc.scheduler) == \
            ("a lake, ink, 3", "blurry", 42, 2, 7.0, "euler", "normal")
        assert (sc.denoise, sc.width, sc.height, sc.model_name, sc.model_sha256) == \
            (1.0, 64, 64, "tiny_sd15.ckpt", "0" * 64)
        assert sc.loras == (LoraUse("a.safetensors", 0.5, 1.0, "aa" * 32),)
        assert isinstance(sc.loras[0].strength_clip, float)
        assert sc.oom == OomPlace(index=6, total=24, seed_index=1, prompt_index=2, variation_index=3,
                                  variations_per_prompt=4, base_prompt="a lake",
                                  variation_values={"style": "ink", "n": "3"}, mode="product",
                                  variation_seed=0, expansion_id="e0123456789abcdef", preset=None)
        assert sc.source_name == "lakes.yaml" and sc.parameters["loras"][0]["sha256"] == "aa" * 32
        assert sc.data["system"]["device"] == "cpu"                   # sections not modelled stay
    assert read_sidecar(str(tmp_path / "none.png")) is None


def test_missing_values_are_none_and_other_writers_read(tmp_path):
    path = write(tmp_path, "x.json", {"plugin": "other", "plugin_version": "1", "timestamp": "t",
                                      "task_id": "job-9", "parameters": {"seed": None}})
    sc = read_sidecar(path)
    assert sc.count is None and sc.task_id == "job-9" and sc.oom is None and sc.loras == ()
    assert (sc.seed, sc.steps, sc.cfg, sc.sampler, sc.prompt, sc.model_name, sc.source_name) == \
        (None, None, None, None, "", "", "")
    assert sc.image_path == str(tmp_path / "x.png")


@pytest.mark.parametrize("change, message", [
    ({"seed": "3"}, "parameters.seed must be int, found '3'"),
    ({"steps": True}, "parameters.steps must be int, found True"),
    ({"cfg_scale": "high"}, "parameters.cfg_scale must be a number, found 'high'"),
    ({"denoise": [1]}, "parameters.denoise must be a number, found [1]"),
    ({"prompt": 5}, "parameters.prompt must be text, found 5"),
    ({"model_name": 5}, "parameters.model_name must be text, found 5"),
    ({"loras": 5}, "parameters.loras must be a list, found int"),
    ({"loras": [{"strength_model": 1}]}, "parameters.loras[0] has no lora_name"),
    ({"loras": [{"lora_name": "a", "strength_model": "abc"}]},
     "parameters.loras[0].strength_model must be a number, found 'abc'"),
])
def test_wrong_types_name_the_file_and_field(tmp_path, change, message):
    path = write(tmp_path, "bad.json", session_sidecar(**change))
    with pytest.raises(GenerationParamsError) as err:
        read_sidecar(path)
    assert str(err.value) == f"{path}: {message}"


@pytest.mark.parametrize("section, change, message", [
    ("oom", {"seed_index": "0"}, "oom.seed_index must be int, found '0'"),
    ("oom", {"variation_values": ["ink"]}, "oom.variation_values must be an object"),
    ("session", {"source_name": 3}, "session.source_name must be text, found 3"),
    (None, {"oom": [1]}, "oom must be an object, found [1]"),
    (None, {"project_id": 1.5}, "project_id must be int or text, found 1.5"),
])
def test_wrong_types_in_other_sections(tmp_path, section, change, message):
    data = session_sidecar()
    (data[section] if section else data).update(change)
    path = write(tmp_path, "bad.json", data)
    with pytest.raises(GenerationParamsError, match=re.escape(message)):
        read_sidecar(path)


# --------------------------------------------------------------------------- regeneration

def test_regeneration_values_in_load_params_order(tmp_path):
    data = session_sidecar(denoise=None, loras=[{"lora_name": "a.safetensors", "strength_clip": 0.25}])
    values = regeneration(read_sidecar(write(tmp_path, "x.json", data)))
    assert values.outputs() == ("a lake, ink, 3", "blurry", 42, 2, 7.0, "euler", "normal", 1.0, 64, 64,
                                "tiny_sd15.ckpt",
                                [{"name": "a.safetensors", "strength_model": 1.0, "strength_clip": 0.25}], 3.5)


@pytest.mark.parametrize("change, message", [
    ({"seed": None}, "parameters.seed must be int, found None"),
    ({"cfg_scale": None}, "parameters.cfg_scale must be a number, found None"),
    ({"sampler": None}, "parameters.sampler must be text, found None"),
    ({"model_name": "../../../etc/passwd"}, "parameters.model_name '../../../etc/passwd' contains '..'"),
    ({"model_name": "/etc/passwd"}, "parameters.model_name '/etc/passwd' is absolute"),
    ({"model_name": "C:\\m.ckpt"}, "is absolute"),
    ({"model_name": "m\0.ckpt"}, "NUL byte"),
])
def test_regeneration_needs_the_sampler_values_and_a_plain_model_name(tmp_path, change, message):
    path = write(tmp_path, "x.json", session_sidecar(**change))
    with pytest.raises(GenerationParamsError, match=re.escape(message)) as err:
        regeneration(read_sidecar(path))
    assert str(err.value).startswith(path)
