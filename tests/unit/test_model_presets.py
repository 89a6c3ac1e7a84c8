"""Issue 14.3: the file says what the model family needs: ``guidance`` (Flux) as a setting and in
presets; a preset may name its model file (``model:``), resolved like LoRA names."""
import pytest

from prompt_media_pkg.core.errors import PromptMediaError
from prompt_media_pkg.core.expand import expand
from prompt_media_pkg.core.lora_names import FileNameError, LoraNameError, resolve_lora_name
from prompt_media_pkg.core.schema import load_prompt_media

FILE = """\
prompts: [a fox]
guidance: 2.5
workflows:
  dev:
    model: flux1-dev
    guidance: 3.5
  schnell:
    model: Flux1-Schnell
  sd35:
    model: sd3.5
  none: {steps: 4}
"""
AVAILABLE = ["flux1-dev.safetensors", "unet/flux1-schnell.safetensors", "sd3.5_large.safetensors",
             "sd3.5_medium.safetensors"]


def test_guidance_is_a_setting_with_fluxguidances_default():
    assert load_prompt_media("prompts: [a]", "a.yaml").settings.guidance == 3.5
    media = load_prompt_media(FILE, "f.yaml")
    assert media.settings.guidance == 2.5 and media.settings.model == ""
    assert load_prompt_media(FILE, "f.yaml", "dev").settings.guidance == 3.5
    with pytest.raises(PromptMediaError, match=r"f.yaml:2:11: guidance: 101 is out of range 0..100"):
        load_prompt_media(FILE.replace("2.5", "101"), "f.yaml")
    job = expand(load_prompt_media(FILE, "f.yaml", "dev"))[0]
    assert job["guidance"] == 3.5 and job["model_name"] == "flux1-dev"
    assert expand(media)[0]["model_name"] is None


def test_a_presets_model_resolves_like_a_lora_name():
    dev = load_prompt_media(FILE, "f.yaml", "dev")
    assert dev.settings.model == "flux1-dev"                      # as written until resolved
    assert dev.with_model(AVAILABLE, "models/diffusion_models").settings.model == "flux1-dev.safetensors"
    schnell = load_prompt_media(FILE, "f.yaml", "schnell").with_model(AVAILABLE, "models/diffusion_models")
    assert schnell.settings.model == "unet/flux1-schnell.safetensors"   # unique, case-insensitive, in a folder
    assert "model unet/flux1-schnell.safetensors" in schnell.summary()
    with pytest.raises(FileNameError) as e:
        load_prompt_media(FILE, "f.yaml", "sd35").with_model(AVAILABLE, "models/checkpoints")
    assert str(e.value).startswith("f.yaml:10:12: workflows.sd35.model: model 'sd3.5' not found in models/checkpoints")
    assert "closest: sd3.5_large.safetensors, sd3.5_medium.safetensors" in str(e.value)
    assert e.value.candidates[:2] == ("sd3.5_large.safetensors", "sd3.5_medium.safetensors")
    with pytest.raises(FileNameError, match="ambiguous, it matches a/flux1-dev.safetensors, b/flux1-dev.safetensors"):
        load_prompt_media(FILE, "f.yaml", "dev").with_model(["a/flux1-dev.safetensors", "b/flux1-dev.safetensors"],
                                                           "models/diffusion_models")


def test_lora_messages_are_unchanged_by_the_generalisation():
    with pytest.raises(LoraNameError, match=r"LoRA 'x' not found in the loras folder \(the loras folder is empty\)"):
        resolve_lora_name("x", [])
    with pytest.raises(LoraNameError, match=r"no LoRA chosen \(choose one or switch the row off\)"):
        resolve_lora_name("", ["a.safetensors"])


def test_an_escape_past_unicode_is_a_positioned_error():
    # found by the schema fuzzer once guidance/model widened its key set: PyYAML's scanner raised
    # a bare ValueError for it
    with pytest.raises(PromptMediaError, match=r'^x.yaml:1:\d+: \(yaml\): invalid escape in a quoted string'):
        load_prompt_media('prompts: ["\\U12345678"]', "x.yaml")
