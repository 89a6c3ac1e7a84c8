import json

import pytest

from prompt_media_pkg.core.generation_params import (
    GenerationParamsError,
    get_params_path,
    load_generation_params,
    params_exist,
    save_generation_params,
)

PARAMS = {"prompt": "a lake at dawn", "negative_prompt": "blurry", "width": 64, "height": 64,
          "steps": 2, "cfg_scale": 7.0, "sampler": "euler", "scheduler": "normal", "denoise": 1.0,
          "seed": 42, "model_name": "tiny_sd15.ckpt", "model_sha256": "ab" * 32,
          "loras": [{"lora_name": "x.safetensors", "strength_model": 0.5, "strength_clip": 0.5,
                     "sha256": "cd" * 32}]}


def test_paths():
    assert get_params_path("/a/b/001_seed_7.png") == "/a/b/001_seed_7.json"
    assert get_params_path("/a/b/001_seed_7.json") == "/a/b/001_seed_7.json"
    assert get_params_path("rel/x.tar.png") == "rel/x.tar.json"


def test_round_trip_with_extra_keys(tmp_path):
    image = tmp_path / "001_seed_42.png"
    image.write_bytes(b"png")
    assert not params_exist(str(image))
    assert load_generation_params(str(image)) is None
    path = save_generation_params(str(image), "prompt-media", "0.1.0", 1, "20251013_150530",
                                  PARAMS, project_id=3, oom={"index": 0}, image_sha256="ee" * 32)
    assert path == str(tmp_path / "001_seed_42.json")
    assert params_exist(str(image))
    data = load_generation_params(str(image))
    assert data["plugin"] == "prompt-media" and data["plugin_version"] == "0.1.0"
    assert data["task_id"] == 1 and data["timestamp"] == "20251013_150530"
    assert data["project_id"] == 3
    assert data["parameters"] == PARAMS
    assert data["output"] == {"filename": "001_seed_42.png", "path": str(image)}
    assert data["oom"] == {"index": 0} and data["image_sha256"] == "ee" * 32
    assert load_generation_params(path) == data      # the .json itself works too


def test_does_not_overwrite_unless_asked(tmp_path):
    image = str(tmp_path / "x.png")
    save_generation_params(image, "p", "1", 1, "t", {"seed": 1})
    with pytest.raises(FileExistsError, match="x.json"):
        save_generation_params(image, "p", "1", 2, "t", {"seed": 2})
    assert load_generation_params(image)["task_id"] == 1
    save_generation_params(image, "p", "1", 2, "t", {"seed": 2}, overwrite=True)
    assert load_generation_params(image)["task_id"] == 2


def test_output_override(tmp_path):
    image = str(tmp_path / "x.png")
    save_generation_params(image, "p", "1", 1, "t", {}, output={"filename": "x.png", "path": "x.png"})
    assert load_generation_params(image)["output"] == {"filename": "x.png", "path": "x.png"}


@pytest.mark.parametrize("content, message", [
    (b"", "truncated or empty"),
    (b'{"plugin": "p", "plugin_ver', "truncated"),
    (b"not json at all", "not valid JSON"),
    (b"[1, 2]", "expected a JSON object, found list"),
    (b'{"plugin": "p"}', "missing required key 'plugin_version'"),
    (b'{"plugin": "p", "plugin_version": "1", "timestamp": "t", "task_id": 1, "parameters": []}',
     "'parameters' must be dict, found list"),
    (b'{"plugin": 1, "plugin_version": "1", "timestamp": "t", "task_id": 1, "parameters": {}}',
     "'plugin' must be str"),
    (b'{"plugin": "p", "plugin_version": "1", "timestamp": "t", "task_id": true, "parameters": {}}',
     "'task_id' must be int or str, found bool"),
    (b"\xff\xfe", "not UTF-8"),
])
def test_corrupt_sidecar_is_a_clear_error(tmp_path, content, message):
    (tmp_path / "bad.json").write_bytes(content)
    with pytest.raises(GenerationParamsError) as err:
        load_generation_params(str(tmp_path / "bad.png"))
    assert message in str(err.value)
    assert str(tmp_path / "bad.json") in str(err.value)


def test_size_cap(tmp_path, monkeypatch):
    from prompt_media_pkg.core import sidecar
    monkeypatch.setattr(sidecar, "MAX_SIDECAR_BYTES", 100)
    (tmp_path / "big.json").write_text(json.dumps({"plugin": "p" * 200}))
    with pytest.raises(GenerationParamsError, match="larger than"):
        load_generation_params(str(tmp_path / "big.png"))


def test_unicode_kept(tmp_path):
    image = str(tmp_path / "u.png")
    save_generation_params(image, "p", "1", 1, "t", {"prompt": "café, 猫"})
    assert "café, 猫" in open(get_params_path(image), encoding="utf-8").read()
    assert load_generation_params(image)["parameters"]["prompt"] == "café, 猫"


@pytest.mark.parametrize("content, message", [
    (b"[" * 200_000, "nested too deeply"),                      # was a RecursionError
    (b'{"plugin": "p", "parameters": {"cfg_scale": NaN}}', "contains NaN"),
    (b'{"plugin": "p", "parameters": {"seed": -Infinity}}', "contains -Infinity"),
    (b'{"plugin": "p", "parameters": {"cfg_scale": 1e999}}', "1e999 (out of range)"),
    (b'{"plugin": "p", "parameters": {"seed": ' + b"9" * 5000 + b"}}", "5000-digit integer"),  # was ValueError
], ids=["deep", "nan", "minus_inf", "1e999", "5000_digits"])
def test_hostile_numbers_and_nesting_are_clear_errors(tmp_path, content, message):
    (tmp_path / "bad.json").write_bytes(content)
    with pytest.raises(GenerationParamsError) as err:
        load_generation_params(str(tmp_path / "bad.png"))
    assert message in str(err.value) and str(tmp_path / "bad.json") in str(err.value)
