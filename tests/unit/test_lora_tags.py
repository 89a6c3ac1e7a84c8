"""<lora:...> tags in prompt text: parsing, removal from the CLIP text, per-job LoRA sets, one
application per LoRA, and file:line errors for malformed tags and missing LoRAs."""
import pytest

from prompt_media_pkg.core.errors import PromptMediaError
from prompt_media_pkg.core.expand import compose_prompt, expand
from prompt_media_pkg.core.lora_names import (
    check_file_loras,
    duplicate_warnings,
    plan_chain,
    stack_entry,
)
from prompt_media_pkg.core.lora_tags import (
    LoraTagError,
    find_lora_tags,
    split_lora_tags,
)
from prompt_media_pkg.core.schema import load_prompt_media

INSTALLED = ["ck-charcoal-drawing-000014.safetensors", "Bonafida.Studio.safetensors",
             "styles/Anime Line.safetensors", "detail.safetensors"]


def load(text):
    return load_prompt_media(text, "tags.yaml")


def error(text) -> PromptMediaError:
    with pytest.raises(PromptMediaError) as e:
        load(text)
    return e.value


# --------------------------------------------------------------------------- parsing

@pytest.mark.parametrize("text, name, model, clip", [
    ("<lora:detail:0.7>", "detail", 0.7, 0.7),                        # one weight: both
    ("<lora:detail:0.7:0.3>", "detail", 0.7, 0.3),                    # model, then CLIP
    ("<lora:detail>", "detail", 1.0, 1.0),                            # no weight: 1.0, as A1111
    ("<lora:Bonafida.Studio:1>", "Bonafida.Studio", 1.0, 1.0),        # dots
    ("<lora:ck-charcoal-drawing-000014:1>", "ck-charcoal-drawing-000014", 1.0, 1.0),
    ("<lora:Anime Line:.5>", "Anime Line", 0.5, 0.5),                 # spaces, a bare fraction
    ("<lora: detail : -0.25 : +1 >", "detail", -0.25, 1.0),           # spaces around fields, signs
    ("<LoRA:detail:2>", "detail", 2.0, 2.0),                          # any case
])
def test_one_tag(text, name, model, clip):
    [tag] = find_lora_tags(f"a cat, {text}, a hat")
    assert (tag.name, tag.strength_model, tag.strength_clip, tag.text) == (name, model, clip, text)


@pytest.mark.parametrize("part, clean", [
    ("<lora:x:1>, in the style of cksc, manga", "in the style of cksc, manga"),     # at the start
    ("storybook charm, 3d model <lora:DreamwovenTales:0.8>,", "storybook charm, 3d model"),  # at the end
    ("a <lora:x:1> cat, a <lora:y:0.5:0.5>hat", "a cat, a hat"),                    # in the middle
    ("a<lora:x:1>b", "a b"),                                                         # never glues words
    ("<lora:x:1>", ""),                                                              # nothing else
    ("<lora:x:1> , <lora:y:1>,, a", "a"),
])
def test_tags_leave_no_stray_commas_or_spaces(part, clean):
    assert compose_prompt(part) == clean
    assert compose_prompt("prefix", part, "value") == ", ".join(p for p in ("prefix", clean, "value") if p)


def test_split_keeps_everything_else_and_reports_tags_in_order():
    text, tags = split_lora_tags("x <lora:a:1> y <lora:b:2:3> z")
    assert [t.name for t in tags] == ["a", "b"] and " ".join(text.split()) == "x y z"
    assert split_lora_tags("no tags <here>") == ("no tags <here>", ())
    assert find_lora_tags("<hypernet:h:1> <lyco:l:1>") == ()       # other networks are not LoRA tags


@pytest.mark.parametrize("text, why", [
    ("<lora::0.5>", "the LoRA name is empty"),
    ("<lora:  :1>", "the LoRA name is empty"),
    ("<lora:x:abc>", "weight 'abc' is not a number"),
    ("<lora:x:1.0.0>", "weight '1.0.0' is not a number"),
    ("<lora:x:nan>", "weight 'nan' is not a number"),
    ("<lora:x:>", "weight '' is not a number"),
    ("<lora:x:1:2:3>", "3 weights"),
    ("<lora:x:11>", "outside -10..10"),
    ("a <lora:x:1, b", "no closing '>'"),
    ("<lora:x:1 <lora:y:1>", "no closing '>'"),
])
def test_malformed_tags(text, why):
    with pytest.raises(LoraTagError) as e:
        find_lora_tags(text)
    assert why in str(e.value)


def test_malformed_tag_is_a_file_line_error():
    doc = ("prompt_settings:\n  prefix: \"fine art\"\nprompts:\n  - a cat\n"
           "  - \"a dog <lora::0.5>\"\n")
    e = error(doc)
    assert (e.source, e.line, e.field) == ("tags.yaml", 5, "prompts[1]")
    assert str(e).startswith("tags.yaml:5:") and "'<lora::0.5>'" in str(e) and "name is empty" in str(e)

    e = error("prompts: [a]\nvariations:\n  style:\n    type: sequential\n"
              "    values: [ok, \"<lora:w:x>\"]\n")
    assert e.line == 5 and e.field == "variations.style.values[1]" and "'x' is not a number" in str(e)

    e = error("prompt_settings: {prefix: \"<lora:x:1\"}\nprompts: [a]\n")
    assert e.line == 1 and "no closing" in str(e)

    e = error("prompts: [a]\nnegative_prompt: \"blurry <lora:x:1>\"\n")
    assert e.field == "negative_prompt" and "negative prompt would not be applied" in str(e)


def test_tags_in_the_file_are_listed_with_their_position():
    m = load("prompt_settings:\n  prefix: \"<lora:a:1>, p\"\nprompts:\n  - \"x <lora:b:0.5>\"\n"
             "variations:\n  v: {type: static, values: [\"<lora:c:0.2:0.1>\"]}\n")
    assert [(r.tag.name, r.position.field, r.position.line) for r in m.lora_tags] == [
        ("a", "prompt_settings.prefix", 2), ("b", "prompts[0]", 4), ("c", "variations.v.values[0]", 6)]


# --------------------------------------------------------------------------- per-job LoRA sets

SESSION = """
prompt_settings:
  prefix: "<lora:ck-charcoal-drawing-000014:1>, brazilian"
loras:
  lora:
    - {name: ck-charcoal-drawing-000014, strength: 0.7}
prompts:
  - "a market <lora:Bonafida.Studio:0.6>"
  - "a beach"
variations:
  style:
    type: sequential
    values: ["watercolor", "<lora:Anime Line:0.8:0.4> line art"]
seeds: [1]
"""


def _set(job):
    return [(l["name"], l["strength_model"], l["strength_clip"], l["source"]) for l in job["loras"]]


def test_each_job_has_its_own_set_in_order_of_appearance():
    jobs = expand(load(SESSION))
    assert [j["positive"] for j in jobs] == [
        "brazilian, a market, watercolor", "brazilian, a market, line art",
        "brazilian, a beach, watercolor", "brazilian, a beach, line art"]
    # the prefix tag names the loras: entry's LoRA: applied once, with the file's strength
    file_lora = [("ck-charcoal-drawing-000014", 0.7, 0.7, "file")]
    assert _set(jobs[0]) == file_lora + [("Bonafida.Studio", 0.6, 0.6, "tag")]
    assert _set(jobs[1]) == file_lora + [("Bonafida.Studio", 0.6, 0.6, "tag"), ("Anime Line", 0.8, 0.4, "tag")]
    assert _set(jobs[2]) == file_lora
    assert _set(jobs[3]) == file_lora + [("Anime Line", 0.8, 0.4, "tag")]
    assert jobs[1]["loras"][2]["tag"] == "<lora:Anime Line:0.8:0.4>"
    note = ("<lora:ck-charcoal-drawing-000014:1> names ck-charcoal-drawing-000014, which the file's "
            "loras: entry applies already: applied once, with 0.7/0.7")
    assert {tuple(j["lora_notes"]) for j in jobs} == {(note,)}
    # the values and base prompt stay as written (they name the job in sidecars and sheets)
    assert jobs[1]["variation_values"] == {"style": "<lora:Anime Line:0.8:0.4> line art"}
    assert jobs[0]["base_prompt"] == "a market <lora:Bonafida.Studio:0.6>"


def test_a_lora_named_twice_counts_once_whatever_the_spelling_and_the_first_mention_wins():
    jobs = expand(load("prompt_settings: {prefix: '<lora:styles/anime line.safetensors:0.3>'}\n"
                       "prompts: ['<lora:Styles\\Anime Line:0.9> x <lora:other:1>']\n"))
    assert _set(jobs[0]) == [("styles/anime line.safetensors", 0.3, 0.3, "tag"), ("other", 1.0, 1.0, "tag")]
    assert "applied once, with 0.3/0.3" in jobs[0]["lora_notes"][0]


def test_the_chain_applies_each_file_once_and_the_first_mention_wins():
    # what the job's set cannot know (two spellings of one installed file), the chain does
    stack = [{"name": "ck-charcoal-drawing-000014", "strength_model": 0.7, "strength_clip": 0.7, "source": "file"},
             {"name": "Anime Line", "strength_model": 0.8, "strength_clip": 0.4, "source": "tag",
              "tag": "<lora:Anime Line:0.8:0.4>"},
             {"name": "anime line.safetensors", "strength_model": 1, "strength_clip": 1, "source": "tag",
              "tag": "<lora:anime line.safetensors:1>"}]
    plan = plan_chain(stack, {}, "shared", INSTALLED)
    assert [(s.name, s.strength_model, s.strength_clip) for s in plan] == [
        ("ck-charcoal-drawing-000014.safetensors", 0.7, 0.7), ("styles/Anime Line.safetensors", 0.8, 0.4)]
    [note] = plan[1].notes
    assert "tag <lora:anime line.safetensors:1> (1/1)" in note and "tag <lora:Anime Line:0.8:0.4>" in note
    assert "applied once, with 0.8/0.4" in note
    assert stack_entry(plan[1], "abc")["notes"] == [note] and "notes" not in stack_entry(plan[0], None)

    # a row naming a file the stack applies is skipped too
    rows = {"lora_1": {"lora": "detail", "strength": 0.5}, "lora_2": {"lora": "ck-charcoal-drawing-000014"}}
    plan = plan_chain(stack, rows, "shared", INSTALLED)
    assert [s.name for s in plan] == ["ck-charcoal-drawing-000014.safetensors", "styles/Anime Line.safetensors",
                                      "detail.safetensors"]
    assert "row lora_2 (1/1)" in plan[0].notes[0] and "loras: entry" in plan[0].notes[0]


def test_duplicates_are_warned_about_at_load_time_with_their_line():
    [warning] = duplicate_warnings(load(SESSION), INSTALLED)
    assert warning.startswith("tags.yaml:3:")
    assert "<lora:ck-charcoal-drawing-000014:1> (1/1) names ck-charcoal-drawing-000014.safetensors" in warning
    assert "loras: entry on line 6" in warning and "with 0.7/0.7" in warning
    assert duplicate_warnings(load("prompts: ['<lora:detail:1>']\n"), INSTALLED) == []


def test_a_tag_naming_a_missing_lora_is_refused_with_its_line_and_the_closest_names():
    with pytest.raises(PromptMediaError) as e:
        check_file_loras(load(SESSION.replace("Bonafida.Studio:0.6", "Bonafida.Studo:0.6")), INSTALLED)
    assert str(e.value).startswith("tags.yaml:8:")
    assert "prompts[0]: <lora:Bonafida.Studo:0.6>: LoRA 'Bonafida.Studo' not found" in str(e.value)
    assert "closest: Bonafida.Studio.safetensors" in str(e.value)

    with pytest.raises(PromptMediaError) as e:
        check_file_loras(load(SESSION.replace("name: ck-charcoal", "name: ck-charcol")), INSTALLED)
    assert str(e.value).startswith("tags.yaml:6:") and "loras.lora[0]: LoRA 'ck-charcol" in str(e.value)
    check_file_loras(load(SESSION), INSTALLED)                 # all installed: no error


def test_files_without_tags_expand_as_before():
    jobs = expand(load("prompts: [a, b]\nloras: [{name: detail, strength: 0.5}]\n"))
    assert [j["positive"] for j in jobs] == ["a", "b"]
    assert all(_set(j) == [("detail", 0.5, 0.5, "file")] for j in jobs)
