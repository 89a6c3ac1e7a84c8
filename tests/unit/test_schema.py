"""The prompt media file: dialects, settings resolution and every error path with its message."""
from pathlib import Path

import pytest

from prompt_media_pkg.core.errors import PromptMediaError
from prompt_media_pkg.core.schema import DEFAULT_SETTINGS, LoraSpec, load_prompt_media, load_prompt_media_file

DATA = Path(__file__).resolve().parents[1] / "data" / "corpus"


def load(text, preset="", **kw):
    return load_prompt_media(text, "t.yaml", preset, **kw)


def error(text, preset="", **kw) -> str:
    with pytest.raises(PromptMediaError) as e:
        load(text, preset, **kw)
    return str(e.value)


# --------------------------------------------------------------------------- dialects

def test_prompt_settings_and_top_level_settings():
    m = load_prompt_media_file(str(DATA / "2024-12-28.yaml"))
    assert m.prefix.startswith("Painterly fantasy realism")
    assert m.negative.startswith("ugly, deformed")
    s = m.settings
    assert (s.steps, s.cfg, s.width, s.height, s.sampler_name, s.scheduler, s.denoise) == \
        (20, 1.0, 1344, 768, "euler", "simple", 1.0)
    assert s.seeds == (159753,)
    assert m.loras == (LoraSpec("DreamwovenTales-000004", 0.9, 0.9),)
    assert "title" in m.extra and "characters" in m.extra      # unknown keys kept


def test_workflow_presets_override_top_level():
    m = load_prompt_media_file(str(DATA / "prompt.sample.yaml"), "dev")
    assert (m.settings.steps, m.settings.cfg, m.settings.width, m.settings.height) == (20, 7.0, 1344, 768)
    assert m.settings.seeds == (1, 2, 3)
    assert m.presets == ("dev", "schnell", "default")
    top = load_prompt_media_file(str(DATA / "prompt.sample.yaml"))
    assert top.settings.width == DEFAULT_SETTINGS["width"] and top.settings.seeds == ()


def test_preset_overrides_only_the_keys_it_has():
    m = load("prompts: [a]\nsteps: 9\ncfg: 3\nworkflows:\n  fast: {steps: 2}\n", "fast")
    assert (m.settings.steps, m.settings.cfg) == (2, 3.0)


def test_cfg_scale_spelling_and_prefix_prompt_keys():
    m = load("prefix_prompt: p\nnegative_prompt: n\ncfg_scale: 4.5\nprompts: [x]\n")
    assert (m.prefix, m.negative, m.settings.cfg) == ("p", "n", 4.5)


def test_three_lora_shapes():
    listed = load("prompts: [a]\nloras:\n  - {name: a, strength_model: 0.5, strength_clip: 0.25}\n  - {name: b}\n")
    assert listed.loras == (LoraSpec("a", 0.5, 0.25), LoraSpec("b", 1.0, 1.0))
    nested = load("prompts: [a]\nloras:\n  lora:\n    - {name: Bonafida.Studio, strength: 0.7}\n")
    assert nested.loras == (LoraSpec("Bonafida.Studio", 0.7, 0.7),)
    single = load_prompt_media_file(str(DATA / "prompt-with-lora.yaml"))
    assert single.loras == (LoraSpec("midjourney_whisper_flux_lora_v01.safetensors", 1.0, 1.0),)


def test_null_setting_falls_back_to_default():
    m = load_prompt_media_file(str(DATA / "prompt.yaml"))       # real file with `height:` empty
    assert m.settings.height == DEFAULT_SETTINGS["height"] and m.settings.width == 768


def test_static_variation_with_several_values_and_random_variations():
    m = load_prompt_media_file(str(DATA / "healing-moments.yaml"), "dev")
    assert m.variations[0].type == "static" and len(m.variations[0].values) == 4
    r = load_prompt_media_file(str(DATA / "midnight-mouse-chase.yml"))
    assert {v.type for v in r.variations} == {"random"}


def test_single_seed_scalar_and_numbers_as_values():
    m = load("prompts: [a]\nseeds: 7\nvariations:\n  n: {type: sequential, values: [1, 10, 100]}\n")
    assert m.settings.seeds == (7,) and m.variations[0].values == ("1", "10", "100")


def test_sampler_and_scheduler_checked_against_host_lists():
    msg = error("prompts: [a]\nsampler: eulr\n", samplers=["euler", "dpmpp_2m"], schedulers=["normal"])
    assert msg.startswith("t.yaml:2:10: sampler: 'eulr' is not a sampler this ComfyUI knows")
    assert "euler" in msg


def test_every_file_of_the_corpus_loads_with_every_preset():
    files = sorted(p for p in DATA.iterdir() if p.suffix in (".yaml", ".yml"))
    assert len(files) == 34
    for p in files:
        m = load_prompt_media_file(str(p))
        assert m.prompts, p
        for preset in m.presets:
            load_prompt_media_file(str(p), preset)


# --------------------------------------------------------------------------- errors

@pytest.mark.parametrize("text, expected", [
    ("prompts: [a]\nvariations:\n  style:\n    type: randm\n    values: [x]\n",
     "t.yaml:4:11: variations.style.type: 'randm' is not one of sequential, random, static"),
    ("prompts: [a]\nvariations:\n  style:\n    values: [x]\n",
     "t.yaml:4:5: variations.style.type: missing not one of sequential, random, static"),
    ("prompts: [a]\nvariations:\n  style: {type: random, values: []}\n",
     "t.yaml:3:33: variations.style.values: expected a non-empty list, got a list"),
    ("title: x\n", "t.yaml:1:1: prompts: missing: a file needs a 'prompts' list"),
    ("prompts: []\n", "t.yaml:1:10: prompts: expected a non-empty list of strings, got a list"),
    ("prompts:\n  - ok\n  - [nested]\n", "t.yaml:3:5: prompts[1]: expected a string, got a list"),
    ("prompts:\n  - ok\n  - '  '\n", "t.yaml:3:5: prompts[1]: must not be empty"),
    ("prompts: [a]\nsteps: many\n", "t.yaml:2:8: steps: expected a whole number, got a string 'many'"),
    ("prompts: [a]\nsteps: 0\n", "t.yaml:2:8: steps: 0 is out of range 1..10000"),
    ("prompts: [a]\nwidth: 1000.5\n", "t.yaml:2:8: width: expected a whole number, got 1000.5"),
    ("prompts: [a]\nwidth: 1001\n", "t.yaml:2:8: width: 1001 is not a multiple of 8"),
    ("prompts: [a]\ndenoise: 1.5\n", "t.yaml:2:10: denoise: 1.5 is out of range 0..1"),
    ("prompts: [a]\ncfg: .nan\n", "t.yaml:2:6: cfg: expected a number, got a number nan"),
    ("prompts: [a]\nseeds: [1, -2]\n", "t.yaml:2:12: seeds[1]: -2 is out of range"),
    ("prompts: [a]\nseeds: [true]\n", "t.yaml:2:9: seeds[0]: expected a whole number, got a boolean True"),
    ("prompts: [a]\nloras:\n  - {strength: 1}\n", "t.yaml:3:5: loras[0]: missing 'name'"),
    ("prompts: [a]\nloras:\n  - {name: x, strength: 11}\n", "t.yaml:3:25: loras[0].strength: 11 is out of range -10..10"),
    ("prompts: [a]\nloras: 5\n", "t.yaml:2:8: loras: expected a list of LoRAs, got a number"),
    ("prompts: [a]\nprompt_settings: [x]\n", "t.yaml:2:18: prompt_settings: expected a mapping"),
    ("- just\n- a list\n", "t.yaml:1:1: (document): expected a mapping with 'prompts', got a list"),
    ("prompts: [a\n", "t.yaml:2:1: (yaml): while parsing a flow sequence expected ',' or ']'"),
    ("prompts: [a]\nprompts2: !!python/object:os.system {}\n", "t.yaml:2:11: (yaml):"),
    ("prompts: ['a\x00b']\n", "t.yaml:1:13: (yaml): character 0x0000 is not allowed in YAML"),
    ('prompts: ["a\\U00110000"]\n', "t.yaml:1:15: (yaml): invalid escape in a quoted string"),
    ('prompts: ["a\\UFFFFFFFF"]\n', "t.yaml:1:15: (yaml): invalid escape in a quoted string"),
])
def test_error_messages_name_file_line_column_and_field(text, expected):
    assert error(text).startswith(expected)


def test_unknown_preset_lists_the_files_presets():
    msg = error("prompts: [a]\nworkflows:\n  dev: {steps: 3}\n  fast: {steps: 1}\n", "schnel")
    assert msg == "t.yaml:3:3: workflows: preset 'schnel' not found; the file's presets: dev, fast"
    assert "no 'workflows:' section" in error("prompts: [a]\n", "dev")


def test_alias_bomb_is_refused_quickly():
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    for i in range(1, 9):
        bomb += f"{chr(97 + i)}: &{chr(97 + i)} [" + ", ".join([f"*{chr(96 + i)}"] * 10) + "]\n"
    bomb += "prompts: [ok]\n"
    import time
    t0 = time.perf_counter()
    msg = error(bomb)
    assert "expands to more than" in msg and time.perf_counter() - t0 < 1.0


def test_oversized_file_is_refused(tmp_path):
    big = tmp_path / "big.yaml"
    big.write_bytes(b"prompts: [a]\n# " + b"x" * (3 * 1024 * 1024) + b"\n")
    with pytest.raises(PromptMediaError, match=r"^big.yaml: file is larger than"):
        load_prompt_media_file(str(big))


def test_not_utf8_and_unreadable_files(tmp_path):
    bad = tmp_path / "latin.yaml"
    bad.write_bytes("prompts: [caf\xe9]\n".encode("latin-1"))
    with pytest.raises(PromptMediaError, match=r"^latin.yaml: not UTF-8 text"):
        load_prompt_media_file(str(bad))
    with pytest.raises(PromptMediaError, match=r"^missing.yaml: cannot read file"):
        load_prompt_media_file(str(tmp_path / "missing.yaml"))


def test_content_hash_identifies_the_text():
    a, b = load("prompts: [a]\n"), load("prompts: [b]\n")
    assert a.sha256 != b.sha256 and a.sha256 == load("prompts: [a]\n").sha256


# --------------------------------------------------------------------------- regressions found by fuzzing

@pytest.mark.parametrize("text, expected", [
    ("prompts: [a]\nwhen: 2024-02-30\n", "t.yaml:2:7: (yaml): '2024-02-30' is not a valid timestamp"),
    ("prompts: [a]\nsteps: !!int abc\n", "t.yaml:2:8: (yaml): 'abc' is not a valid int"),
    ("prompts: [a]\ncfg: !!float ''\n", "t.yaml:2:6: (yaml): '' is not a valid float"),
    ("prompts: [a]\nx: !!bool maybe\n", "t.yaml:2:4: (yaml): 'maybe' is not a valid bool"),
    ("prompts: [a]\nx: !!timestamp foo\n", "t.yaml:2:4: (yaml): 'foo' is not a valid timestamp"),
    ("prompts: [a]\nsteps: " + "9" * 5000 + "\n", "t.yaml:2:8: (yaml): '9999"),
])
def test_scalars_pyyaml_cannot_construct_are_yaml_errors(text, expected):
    assert error(text).startswith(expected)


@pytest.mark.parametrize("text", ["[" * 200_000, "{a: " * 60_000, "- " * 100_000 + "x",
                                  "prompts: [" + "a," * 12_000 + "]\n",
                                  "prompts:\n" + "- a\n" * 12_000],
                         ids=["flow-seq", "flow-map", "block-seq", "flow-items", "block-items"])
def test_deep_or_huge_documents_are_refused_in_bounded_time(text):
    import time
    t0 = time.perf_counter()
    msg = error(text)
    assert msg.startswith("t.yaml:") and "(yaml):" in msg
    assert "nesting deeper than 64 levels" in msg or "more than 10,000 YAML nodes" in msg
    assert time.perf_counter() - t0 < 5.0   # ~0.5 s idle; CI boxes are busy


def test_largest_accepted_file_parses_in_bounded_time():
    import time
    t0 = time.perf_counter()
    assert error("\n" * (256 * 1024 - 1)).startswith("t.yaml: (document): expected a mapping")
    assert error("x" * (256 * 1024 + 1)) == "t.yaml: (file): file is larger than 256 KiB"
    assert time.perf_counter() - t0 < 5.0   # ~0.5 s idle; CI boxes are busy


@pytest.mark.parametrize("text, expected", [
    ("prompts: [a]\nx: &a [*a]\n", "t.yaml:2:4: (yaml): an alias refers to a collection that contains it"),
    ("prompts: [a]\nx: &a {k: [*a]}\n", "t.yaml:2:4: (yaml): an alias refers to a collection that contains it"),
])
def test_alias_cycles_are_refused(text, expected):
    assert error(text).startswith(expected)


def test_depth_built_from_aliases_counts_the_deepest_use():
    deep = "[" * 40 + "]" * 40
    shallow_uses = f"prompts: [a]\na: &deep {deep}\nc: *deep\n"
    assert load(shallow_uses).prompts == ("a",)
    # the shallow use (c) is measured first; the use 40 levels down (b) must still count
    assert "nesting deeper than 64 levels" in error(
        f"prompts: [a]\na: &deep {deep}\nb: {'[' * 40}*deep{']' * 40}\nc: *deep\n")


def test_integers_past_the_int_to_text_limit_are_clear_errors():
    big = "0x" + "f" * 5000                                   # hex is not limited when parsed
    assert error(f"prompts: [a]\nsteps: {big}\n") == \
        "t.yaml:2:8: steps: a 20,000-bit number is out of range 1..10000"
    assert error(f"prompts: [{big}]\n") == \
        "t.yaml:1:11: prompts[0]: expected a string, got a 20,000-bit number"


def test_non_string_preset_and_variation_names():
    m = load("prompts: [a]\nworkflows:\n  1: {steps: 3}\n", "1")       # was a KeyError
    assert m.presets == ("1",) and m.settings.steps == 3
    msg = error("prompts: [p]\nvariations:\n  1: {type: random, values: [a]}\n"
                "  '1': {type: random, values: [b]}\n")
    assert msg.startswith("t.yaml:3:6: variations.1: the name '1' is used twice")
    assert error("prompts: [a]\nworkflows:\n  yes: {steps: 3}\n").startswith(
        "t.yaml:3:3: workflows.True: a name must be text, got a boolean (quote it)")


def test_lone_surrogate_escapes_are_refused():
    assert error('prompts: ["a\\ud800"]\n') == \
        "t.yaml:1:11: prompts[0]: contains '\\ud800', a lone surrogate that is not valid text"
    assert "lone surrogate" in error('prompts: [a]\nnegative_prompt: "\\udfff"\n')


def test_duplicate_keys_are_refused_with_both_lines():
    msg = error("prompts: [a]\nsteps: 3\nprompts: [b]\n")
    assert msg == ("t.yaml:3:1: (yaml): duplicate key 'prompts' (first at line 1); "
                   "the second would silently replace the first")
    assert "duplicate key 'x'" in error("prompts: [a]\nvariations:\n  x: {type: static, values: [1]}\n"
                                        "  x: {type: static, values: [2]}\n")
    load("base: &b {steps: 2}\nprompts: [a]\nworkflows:\n  fast:\n    <<: *b\n    cfg: 3\n", "fast")
