"""LoRA chain planning: name resolution, row keys, order, skipping, LORA_STACK shapes."""
import pytest

from prompt_media_pkg.core.errors import PromptMediaError
from prompt_media_pkg.core.lora_names import (
    LoraNameError,
    closest_names,
    normalize_lora_stack,
    parse_row,
    parse_rows,
    plan_chain,
    resolve_lora_name,
    row_number,
    stack_entry,
)

AVAILABLE = [
    "Bonafida.Studio.safetensors",
    "detail_tweaker.safetensors",
    "detail_tweaker.ckpt",
    "styles\\Anime Line.safetensors",      # Windows separators, as folder_paths returns them there
    "styles/Watercolor.pt",
    "people/a/face.safetensors",
    "people/b/face.safetensors",
    "tiny_lora_attn.safetensors",
]


# --- resolution -------------------------------------------------------------------------------

@pytest.mark.parametrize("name, expected", [
    ("detail_tweaker.safetensors", "detail_tweaker.safetensors"),            # exact
    ("detail_tweaker.ckpt", "detail_tweaker.ckpt"),                          # exact beats preference
    ("detail_tweaker", "detail_tweaker.safetensors"),                        # .safetensors first
    ("Bonafida.Studio", "Bonafida.Studio.safetensors"),                      # a dot in the name
    ("styles/Anime Line.safetensors", "styles\\Anime Line.safetensors"),     # '/' vs '\\'
    ("styles\\Anime Line", "styles\\Anime Line.safetensors"),
    ("anime line", "styles\\Anime Line.safetensors"),                        # file name, any folder, any case
    ("WATERCOLOR.PT", "styles/Watercolor.pt"),
    ("watercolor", "styles/Watercolor.pt"),
    ("a/face", "people/a/face.safetensors"),                                 # tail with a folder
    ("bonafida.studio", "Bonafida.Studio.safetensors"),
    ("  tiny_lora_attn  ", "tiny_lora_attn.safetensors"),
])
def test_resolves(name, expected):
    assert resolve_lora_name(name, AVAILABLE) == expected


def test_missing_lists_closest_names():
    with pytest.raises(LoraNameError) as e:
        resolve_lora_name("detail_tweeker", AVAILABLE, field="lora_2")
    err = e.value
    assert err.name == "detail_tweeker" and err.field == "lora_2"
    assert err.candidates[0].startswith("detail_tweaker")
    assert "'detail_tweeker' not found" in str(err) and "detail_tweaker.safetensors" in str(err)
    assert isinstance(err, PromptMediaError)


def test_missing_with_nothing_close_and_empty_folder():
    with pytest.raises(LoraNameError, match="8 LoRAs available"):
        resolve_lora_name("zzzzzzzzzzzzzzzz", AVAILABLE)
    with pytest.raises(LoraNameError, match="loras folder is empty"):
        resolve_lora_name("x", [])


def test_ambiguous_file_name_lists_both():
    with pytest.raises(LoraNameError, match="ambiguous") as e:
        resolve_lora_name("face", AVAILABLE)
    assert e.value.candidates == ("people/a/face.safetensors", "people/b/face.safetensors")


def test_partial_file_name_is_not_a_match():
    with pytest.raises(LoraNameError):
        resolve_lora_name("tweaker", AVAILABLE)       # only whole names at folder boundaries
    with pytest.raises(LoraNameError):
        resolve_lora_name("Studio", AVAILABLE)


def test_empty_name():
    with pytest.raises(LoraNameError, match="no LoRA chosen"):
        resolve_lora_name("  ", AVAILABLE)


def test_closest_names_compares_file_names_too():
    assert closest_names("watercolour", AVAILABLE)[0] == "styles/Watercolor.pt"


# --- rows ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("key, n", [("lora_1", 1), ("lora_10", 10), ("lora_0", None), ("lora_01", None),
                                    ("lora_x", None), ("lora_stack", None), ("xlora_1", None), ("lora_1 ", None)])
def test_row_number(key, n):
    assert row_number(key) == n


def test_rows_in_numeric_order_not_dict_or_string_order():
    rows = {f"lora_{n}": {"on": True, "lora": f"l{n}", "strength": 1} for n in (10, 2, 9, 1)}
    assert [s.name for s in parse_rows(rows)] == ["l1", "l2", "l9", "l10"]
    assert [s.origin for s in parse_rows(rows)] == ["lora_1", "lora_2", "lora_9", "lora_10"]


def test_off_rows_are_dropped():
    rows = {"lora_1": {"on": False, "lora": "missing-but-off"}, "lora_2": {"on": True, "lora": "x"}}
    assert [s.name for s in parse_rows(rows)] == ["x"]


def test_shared_and_separate_strengths():
    row = {"on": True, "lora": "x", "strength": 0.5, "strength_model": 0.8, "strength_clip": -0.2}
    shared, separate = parse_row("lora_1", row, "shared"), parse_row("lora_1", row, "separate")
    assert (shared.strength_model, shared.strength_clip) == (0.5, 0.5)
    assert (separate.strength_model, separate.strength_clip) == (0.8, -0.2)


def test_row_defaults_for_hand_written_prompts():
    assert parse_row("lora_1", {"lora": "x"}).strength_model == 1.0
    s = parse_row("lora_1", {"lora": "x", "strength": 0.3}, "separate")
    assert (s.strength_model, s.strength_clip) == (0.3, 0.3)
    s = parse_row("lora_1", {"lora": "x", "strength_model": 0.7}, "shared")
    assert (s.strength_model, s.strength_clip) == (0.7, 0.7)


@pytest.mark.parametrize("row, message", [
    ({"lora": "x", "strength": 10.5}, "outside -10..10"),
    ({"lora": "x", "strength": -11}, "outside -10..10"),
    ({"lora": "x", "strength": "1"}, "must be a number"),
    ({"lora": "x", "strength": True}, "must be a number"),
    ({"lora": "x", "strength": float("nan")}, "must be a number"),
    ({"lora": "x", "on": "yes"}, "'on' must be true or false"),
    ({"lora": 3}, "'lora' must be a file name"),
    ({"lora": "x", "weight": 1}, "unknown row field"),
    (["x", 1, 1], "a row must be an object"),
])
def test_bad_rows_name_the_row(row, message):
    with pytest.raises(PromptMediaError, match=message) as e:
        parse_rows({"lora_3": row})
    assert e.value.field.startswith("lora_3")


def test_strength_range_is_inclusive():
    s = parse_row("lora_1", {"lora": "x", "strength_model": -10, "strength_clip": 10}, "separate")
    assert (s.strength_model, s.strength_clip) == (-10.0, 10.0)


def test_unknown_input_key_is_an_error():
    with pytest.raises(PromptMediaError, match="unknown input 'lora_01'"):
        parse_rows({"lora_01": {"lora": "x"}})


def test_bad_strength_mode():
    with pytest.raises(PromptMediaError, match="strength_mode"):
        parse_row("lora_1", {"lora": "x"}, "both")


# --- LORA_STACK ---------------------------------------------------------------------------------

def test_normalize_both_contract_shapes_and_tuples():
    stack = [
        {"name": "a", "strength_model": 0.5, "strength_clip": 0.25},                  # loader
        {"name": "b.safetensors", "strength_model": 1, "strength_clip": 1, "sha256": "ab"},  # chain
        {"lora_name": "c", "strength": 0.7},                                          # sidecar-ish
        ("d", 0.1, 0.2),                                                              # other packs
    ]
    steps = normalize_lora_stack(stack)
    assert [(s.name, s.strength_model, s.strength_clip) for s in steps] == [
        ("a", 0.5, 0.25), ("b.safetensors", 1.0, 1.0), ("c", 0.7, 0.7), ("d", 0.1, 0.2)]
    assert [s.origin for s in steps] == [f"lora_stack[{i}]" for i in range(4)]
    assert normalize_lora_stack(None) == [] and normalize_lora_stack([]) == []


@pytest.mark.parametrize("stack", [{"name": "a"}, "a", [{"strength_model": 1}], [("a", 1)], [{"name": "a", "strength": 11}]])
def test_normalize_rejects(stack):
    with pytest.raises(PromptMediaError):
        normalize_lora_stack(stack)


# --- the plan -----------------------------------------------------------------------------------

def test_plan_stack_first_then_rows_resolved_and_zero_skipped():
    stack = [{"name": "Bonafida.Studio", "strength_model": 0.8, "strength_clip": 0.6},
             {"name": "does-not-matter", "strength_model": 0, "strength_clip": 0}]   # skipped: no lookup
    rows = {"lora_2": {"on": True, "lora": "watercolor", "strength": 0.5},
            "lora_1": {"on": True, "lora": "tiny_lora_attn", "strength": 0},            # both zero
            "lora_3": {"on": False, "lora": "nope"},
            "lora_4": {"on": True, "lora": "detail_tweaker", "strength_model": 0, "strength_clip": 0.3}}
    plan = plan_chain(stack, rows, "separate", AVAILABLE)
    assert [(s.name, s.strength_model, s.strength_clip, s.origin) for s in plan] == [
        ("Bonafida.Studio.safetensors", 0.8, 0.6, "lora_stack[0]"),
        ("styles/Watercolor.pt", 0.5, 0.5, "lora_2"),
        ("detail_tweaker.safetensors", 0.0, 0.3, "lora_4"),
    ]


def test_plan_without_clip_reports_zero_clip_strength_and_skips_clip_only_rows():
    rows = {"lora_1": {"lora": "watercolor", "strength_model": 0, "strength_clip": 1},
            "lora_2": {"lora": "watercolor", "strength_model": 0.4, "strength_clip": 1}}
    plan = plan_chain(None, rows, "separate", AVAILABLE, has_clip=False)
    assert [(s.origin, s.strength_model, s.strength_clip) for s in plan] == [("lora_2", 0.4, 0.0)]


def test_plan_missing_row_names_the_row_and_the_lora():
    with pytest.raises(LoraNameError) as e:
        plan_chain(None, {"lora_5": {"on": True, "lora": "gone.safetensors"}}, "shared", AVAILABLE)
    assert "lora_5" in str(e.value) and "gone.safetensors" in str(e.value)


def test_stack_entry_is_the_contract_shape():
    plan = plan_chain(None, {"lora_1": {"lora": "watercolor", "strength": 0.5}}, "shared", AVAILABLE)
    assert stack_entry(plan[0], "f" * 64) == {"name": "styles/Watercolor.pt", "strength_model": 0.5,
                                              "strength_clip": 0.5, "sha256": "f" * 64}
    # a chain's output can feed another chain
    assert normalize_lora_stack([stack_entry(plan[0], None)])[0].name == "styles/Watercolor.pt"
