"""Trigger words: the files beside a LoRA, its safetensors header (bounded read), the choice of
which LoRAs add them, and their place in the prompt (once, after the prefix)."""
import json
import os
import struct

import pytest

from prompt_media_pkg.core import trigger_words as tw
from prompt_media_pkg.core.errors import PromptMediaError
from prompt_media_pkg.core.expand import expand
from prompt_media_pkg.core.schema import load_prompt_media


def safetensors(path, metadata=None, data=b"\0" * 64):
    """A real .safetensors layout: u64 header length, JSON header, tensor bytes."""
    header = {"w": {"dtype": "F32", "shape": [len(data) // 4], "data_offsets": [0, len(data)]}}
    if metadata is not None:
        header["__metadata__"] = metadata
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)
    return str(path)


def test_modelspec_trigger_phrase(tmp_path):
    path = safetensors(tmp_path / "a.safetensors", {"modelspec.trigger_phrase": "cksc,  monochrome sketch ,"})
    assert tw.read_trigger_words(path) == tw.TriggerWords(("cksc", "monochrome sketch"), "modelspec.trigger_phrase")


def test_kohya_tag_frequency_gives_the_tags_of_the_most_captions(tmp_path):
    freq = {"10_cksc": {"cksc": 40, "1boy": 12, "monochrome": 39}, "5_extra": {"cksc": 10, "monochrome": 11}}
    path = safetensors(tmp_path / "k.safetensors", {"ss_tag_frequency": json.dumps(freq), "ss_other": "1"})
    assert tw.read_trigger_words(path) == tw.TriggerWords(("cksc", "monochrome"), "ss_tag_frequency")
    many = {"d": {f"tag{i}": 5 for i in range(10)}}
    path = safetensors(tmp_path / "m.safetensors", {"ss_tag_frequency": json.dumps(many)})
    assert tw.read_trigger_words(path).words == ("tag0", "tag1", "tag2")          # at most MAX_TAGS


def test_files_beside_the_lora_win_in_order(tmp_path):
    path = safetensors(tmp_path / "Style v2.safetensors", {"modelspec.trigger_phrase": "from header"})
    (tmp_path / "Style v2.metadata.json").write_text(json.dumps(
        {"sha256": "x", "civitai": {"trainedWords": ["lora manager word", "", 3]}}))
    assert tw.read_trigger_words(path) == tw.TriggerWords(("lora manager word",), "Style v2.metadata.json")
    (tmp_path / "Style v2.civitai.info").write_text(json.dumps({"trainedWords": ["civitai, phrase", "two"]}))
    assert tw.read_trigger_words(path) == tw.TriggerWords(("civitai, phrase", "two"), "Style v2.civitai.info")
    (tmp_path / "Style v2.civitai.info").write_text(json.dumps({"trainedWords": []}))   # empty: next source
    assert tw.read_trigger_words(path).source == "Style v2.metadata.json"


def test_damaged_or_foreign_files_give_no_words(tmp_path):
    assert tw.read_trigger_words(str(tmp_path / "missing.safetensors")) == tw.TriggerWords()
    pt = tmp_path / "old.pt"
    pt.write_bytes(b"PK\x03\x04" + b"\0" * 100)
    assert tw.read_trigger_words(str(pt)) == tw.TriggerWords()
    huge = tmp_path / "huge.safetensors"                       # a header length past the format's limit
    huge.write_bytes(struct.pack("<Q", 2**40) + b"{}")
    assert tw.safetensors_metadata(str(huge)) == {}
    short = tmp_path / "short.safetensors"                     # truncated header
    short.write_bytes(struct.pack("<Q", 500) + b'{"__metadata__": {')
    assert tw.safetensors_metadata(str(short)) == {}
    bad = safetensors(tmp_path / "bad.safetensors", {"modelspec.trigger_phrase": "ok"})
    (tmp_path / "bad.civitai.info").write_text("{not json")
    (tmp_path / "bad.metadata.json").write_bytes(b"\xff\xfe")
    assert tw.read_trigger_words(bad).words == ("ok",)
    typed = safetensors(tmp_path / "typed.safetensors", {"ss_tag_frequency": '{"d": {"a": "x", "b": true}}'})
    assert tw.read_trigger_words(typed) == tw.TriggerWords()


def test_the_header_is_read_not_the_tensors(tmp_path, monkeypatch):
    path = safetensors(tmp_path / "big.safetensors", {"modelspec.trigger_phrase": "w"}, data=b"\1" * 4_000_000)
    reads = []
    real_open = open

    def spy(*args, **kw):
        f = real_open(*args, **kw)
        real_read = f.read

        def read(n=-1):
            reads.append(n)
            return real_read(n)
        f.read = read
        return f
    monkeypatch.setattr("builtins.open", spy)
    assert tw.read_trigger_words(path).words == ("w",)
    assert reads and all(0 <= n < 10_000 for n in reads), reads     # bounded reads only, never read()


def test_cached_until_the_lora_or_a_file_beside_it_changes(tmp_path, monkeypatch):
    path = safetensors(tmp_path / "c.safetensors", {"modelspec.trigger_phrase": "one"})
    assert tw.trigger_words(path).words == ("one",)
    calls = []
    real = tw.read_trigger_words
    monkeypatch.setattr(tw, "read_trigger_words", lambda p: calls.append(p) or real(p))
    assert tw.trigger_words(path).words == ("one",) and calls == []
    info = tmp_path / "c.civitai.info"
    info.write_text(json.dumps({"trainedWords": ["two"]}))
    assert tw.trigger_words(path).words == ("two",) and len(calls) == 1
    st = os.stat(info)
    info.write_text(json.dumps({"trainedWords": ["six"]}))
    os.utime(info, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert tw.trigger_words(path).words == ("six",)


# --------------------------------------------------------------------------- which LoRAs, where

WORDS = {"a.safetensors": ("alpha",), "b.safetensors": ("beta", "b two"), "c.safetensors": ("gamma",)}


def words_for(text):
    media = load_prompt_media(text, "t.yaml")
    def resolve(name):
        return name + ".safetensors" if name + ".safetensors" in WORDS else None
    return media, tw.words_to_add(media, resolve, lambda f: WORDS[f])


def test_file_level_and_per_entry_flags():
    doc = ("prompts: ['x <lora:c:1>']\nloras:\n  - {name: a}\n  - {name: b, add_trigger_words: false}\n")
    assert words_for(doc)[1] == {}                                           # off by default
    _, words = words_for("add_trigger_words: true\n" + doc)
    assert words == {"a": ("alpha",), "c": ("gamma",)}                      # b switched off by its entry
    _, words = words_for(doc.replace("{name: a}", "{name: a, add_trigger_words: true}"))
    assert words == {"a": ("alpha",)}
    # a tag for a loras: entry's LoRA follows the entry's flag
    _, words = words_for("add_trigger_words: true\nprompts: ['<lora:b:1> x']\nloras: [{name: b, add_trigger_words: false}]\n")
    assert words == {}


def test_words_go_after_the_prefix_once_and_only_into_jobs_using_the_lora():
    media, words = words_for(
        "add_trigger_words: true\nprompt_settings: {prefix: 'art, beta'}\n"
        "prompts: ['p1 <lora:c:1>', 'p2']\nloras: [{name: a}, {name: b}]\n"
        "variations:\n  v: {type: sequential, values: ['alpha mood', '<lora:c:0.5> plain']}\n")
    jobs = expand(media, trigger_words=words, extra_trigger_words=("row word", "ALPHA"))
    assert [j["positive"] for j in jobs] == [
        # in the order of the job's LoRAs (a, b, c), then the rows' words; alpha is in the text
        # already (any case, whole words), beta too: not added again
        "art, beta, b two, gamma, row word, p1, alpha mood",
        "art, beta, alpha, b two, gamma, row word, p1, plain",
        "art, beta, b two, row word, p2, alpha mood",
        "art, beta, alpha, b two, gamma, row word, p2, plain"]
    assert "gamma" not in jobs[2]["positive"]                 # p2 with 'alpha mood' names no c


def test_the_yaml_flags_are_validated():
    with pytest.raises(PromptMediaError) as e:
        load_prompt_media("prompts: [a]\nadd_trigger_words: yes please\n", "t.yaml")
    assert str(e.value).startswith("t.yaml:2:") and "expected true or false" in str(e.value)
    with pytest.raises(PromptMediaError) as e:
        load_prompt_media("prompts: [a]\nloras: [{name: x, add_trigger_words: 1}]\n", "t.yaml")
    assert "loras[0].add_trigger_words: expected true or false" in str(e.value)
