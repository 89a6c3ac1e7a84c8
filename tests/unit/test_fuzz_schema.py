"""Property-based fuzzing of the prompt media loader and the OOM expander (issue 7, "Bad input").

The property, for any text: ``load_prompt_media`` either returns a PromptMedia or raises
PromptMediaError reading ``file[:line[:col]]: field: message``; never another exception, and
every call is bounded in time. For a PromptMedia, ``expand`` either returns exactly
``count_jobs`` well-formed, JSON-able jobs or refuses the cap with PromptMediaError before
building any job.

Runs are reproducible (derandomized, no example database): 10,960 documents per run
(EXAMPLES), about 90 s on a busy 2-core box.
"""
import json
import os
import re
import time
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from prompt_media_pkg.core.errors import PromptMediaError
from prompt_media_pkg.core.expand import MODES, count_jobs, expand
from prompt_media_pkg.core.schema import KNOWN_KEYS, MAX_TEXT_CHARS, VARIATION_TYPES, PromptMedia, load_prompt_media

CORPUS = Path(__file__).resolve().parents[1] / "data" / "corpus"
CORPUS_TEXTS = [p.read_text(encoding="utf-8") for p in sorted(CORPUS.glob("*.y*ml"))]

SECONDS_PER_CALL = 2.0          # CPU seconds of this thread (wall time swings with machine load); typical calls take ~1 ms
JOB_KEYS = {"index", "total", "seed_index", "prompt_index", "variation_index", "variations_per_prompt",
            "seed", "base_prompt", "positive", "negative", "variation_values", "steps", "cfg", "width",
            "height", "sampler_name", "scheduler", "denoise", "mode", "variation_seed", "source_name",
            "source_sha256", "preset", "expansion_id", "guidance", "model_name",
            "loras", "lora_notes"}
SOURCES = ["fuzz.yaml", "my prompts (v2).yml", "d\u00e9j\u00e0 vu \U0001F600.yaml", "a:b.yaml"]
# documents generated per run, by case class (docs/reliability.md reports the same numbers)
EXAMPLES = {"dumped": 1600, "wrong_types": 500, "valid": 500, "raw": 4500, "corpus": 3300,
            "structural": 400, "huge": 60, "caps": 100}
SCALE = float(os.environ.get("PROMPT_MEDIA_FUZZ_SCALE", "1"))   # e.g. 10 for a long local run
LINE_BREAKS = re.compile("\r\n|[\n\r\x85\u2028\u2029]")                 # YAML 1.1 line breaks
WHERE = re.compile(r"(?::(\d+)(?::(\d+))?)?")


def fuzz_settings(n: int) -> settings:
    # derandomize + no database: the same documents on every run, so CI is reproducible;
    # our own per-call time bound replaces hypothesis' deadline (which flakes on a busy box).
    phases = [Phase.explicit, Phase.generate] + ([] if os.environ.get("PROMPT_MEDIA_FUZZ_NO_SHRINK") else [Phase.shrink])
    return settings(max_examples=max(1, int(n * SCALE)), derandomize=True, database=None, deadline=None,
                    suppress_health_check=list(HealthCheck), print_blob=True, phases=phases)


# --------------------------------------------------------------------------- the property

def assert_error_shape(err: PromptMediaError, source: str, text: str | None = None) -> None:
    s = str(err)
    assert s.startswith(source), s
    m = WHERE.match(s, len(source))
    assert s[m.end():].startswith(": "), s
    assert err.field and err.message, s
    assert s == f"{s[:m.end()]}: {err.field}: {err.message}", s
    if m.group(1) is not None:
        assert err.line >= 1 and (err.column is None or err.column >= 1), s
        if text is not None:
            assert err.line <= len(LINE_BREAKS.findall(text)) + 2, s
    s.encode("utf-8")                      # shown in the UI and logs: must be real text


def timed(fn, *args, **kw):
    t0 = time.thread_time()
    try:
        return fn(*args, **kw)
    finally:
        elapsed = time.thread_time() - t0
        assert elapsed < SECONDS_PER_CALL, f"{fn.__name__} took {elapsed:.2f} s"


def check_text(text: str, source: str = "fuzz.yaml", preset: str = "") -> PromptMedia | None:
    try:
        media = timed(load_prompt_media, text, source, preset)
    except PromptMediaError as e:
        assert_error_shape(e, source, text)
        return None
    assert isinstance(media, PromptMedia)
    assert media.prompts and all(isinstance(p, str) and p.strip() for p in media.prompts)
    for s in (media.prefix, media.negative, *media.prompts, *(x for v in media.variations for x in v.values)):
        assert "\x00" not in s and len(s) <= MAX_TEXT_CHARS
        s.encode("utf-8")
    return media


def check_expansion(media: PromptMedia, mode: str, variation_seed: int, fallback_seed: int,
                    max_jobs: int) -> None:
    try:
        total = timed(count_jobs, media, mode, fallback_seed)
    except PromptMediaError as e:
        assert mode not in MODES
        assert_error_shape(e, media.source_name)
        return
    try:
        jobs = timed(expand, media, mode, variation_seed, fallback_seed, max_jobs)
    except PromptMediaError as e:
        assert total > max_jobs, str(e)
        assert_error_shape(e, media.source_name)
        assert e.field == "max_jobs"
        return
    assert total <= max_jobs and len(jobs) == total
    names = [v.name for v in media.variations]
    options = {v.name: set(v.values) for v in media.variations if v.type != "static"}
    seeds = media.settings.seeds or (fallback_seed,)
    for i, job in enumerate(jobs):
        assert set(job) == JOB_KEYS
        assert job["index"] == i and job["total"] == total
        assert isinstance(job["positive"], str) and "\x00" not in job["positive"]
        assert "<lora:" not in job["positive"].lower()          # tags go to the chain, never to CLIP
        assert job["loras"][:len(media.loras)] == [dict(spec.as_dict(), source="file") for spec in media.loras]
        job["positive"].encode("utf-8")
        assert job["base_prompt"] in media.prompts and job["seed"] in seeds
        assert sorted(job["variation_values"]) == sorted(names)
        for name, value in job["variation_values"].items():
            assert name not in options or value in options[name]
        json.dumps(job, allow_nan=False)


# --------------------------------------------------------------------------- strategies

ANY_CHAR = st.characters(codec=None, exclude_categories=())             # incl. lone surrogates
NASTY_CHARS = st.sampled_from(
    ["\x00", "\x07", "\x1b", "\x7f", "\x85", "\u2028", "\u2029", "\ufeff", "\ufffe", "\uffff",
     "\u202e", "\u200f", "\u0627\u0644\u0633\u0644\u0627\u0645", "\u05e9\u05dc\u05d5\u05dd",  # RTL
     "e\u0301\u0301\u0301", "\U0001F600", "\U0001F469\u200d\U0001F4BB", "\ud800", "\udfff",
     "\t", "\r", "\r\n", ",", ", ,", ":", "#", "&", "*", "!", "|", ">", "%", "@", "`", "'", '"',
     "{", "}", "[", "]", "- ", "? ", "---", "...", "\\"])
LORA_TAG_BITS = st.sampled_from(["<lora:", "<LoRA:a b.c-d:0.5>", "<lora:x>", "<lora::1>", "<lora:x:1:2:3>",
                                 "<lora:x:abc>", ">", ":", "<"])
TEXT = st.one_of(st.text(ANY_CHAR, max_size=30), st.lists(NASTY_CHARS, max_size=8).map("".join),
                 st.lists(LORA_TAG_BITS | st.text(ANY_CHAR, max_size=4), max_size=6).map("".join))
HUGE_TEXT = st.builds(lambda c, n: c * n, NASTY_CHARS | st.sampled_from("ax "),
                      st.sampled_from([MAX_TEXT_CHARS, MAX_TEXT_CHARS + 1, 100_000]))
NUMBERS = st.one_of(
    st.integers(), st.integers(min_value=-2**80, max_value=2**80),
    st.sampled_from([0, -1, 1, 7, 8, 15, 16, 2**63 - 1, 2**63, 2**64 - 1, 2**64, -2**63, 10**300]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([-0.0, 0.5, 1e-320, 1.7976931348623157e308, float("inf"), float("nan")]))
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, TEXT, st.binary(max_size=20),
                    st.dates(), st.datetimes())
DATA = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=5),
    st.dictionaries(st.one_of(TEXT, st.integers(), st.booleans(), st.none()), inner, max_size=5),
    st.frozensets(st.one_of(st.integers(), st.text(max_size=5)), max_size=4).map(set)),
    max_leaves=25)


def dump(data, draw) -> str:
    """yaml.safe_dump with random presentation (flow/block, unicode or escapes, width)."""
    return yaml.safe_dump(data, allow_unicode=draw(st.booleans()),
                          default_flow_style=draw(st.sampled_from([False, True, None])),
                          sort_keys=draw(st.booleans()), width=draw(st.sampled_from([20, 80, 10**6])))


# A document made only of values the loader accepts; loading it must succeed and round-trip.
CLEAN_CHAR = st.characters(codec="utf-8", exclude_categories=("Cs", "Cc"))
CLEAN_TEXT = st.text(CLEAN_CHAR | st.sampled_from(", \t"), max_size=25)
NON_BLANK = CLEAN_TEXT.filter(lambda s: s.strip())
NAMES = st.text(st.characters(codec="ascii", categories=("L", "N")) | st.just("_"), min_size=1, max_size=8)
SETTINGS = st.fixed_dictionaries({}, optional={
    "steps": st.integers(1, 10000), "cfg": st.floats(0, 100), "cfg_scale": st.integers(0, 100),
    "width": st.integers(2, 2048).map(lambda n: n * 8), "height": st.integers(2, 2048).map(lambda n: n * 8),
    "sampler": NON_BLANK, "scheduler": NON_BLANK, "denoise": st.floats(0, 1), "guidance": st.floats(0, 100),
    "model": NON_BLANK, "seeds": st.one_of(st.integers(0, 2**64 - 1), st.lists(st.integers(0, 2**64 - 1), max_size=4))})


@st.composite
def valid_documents(draw) -> tuple[dict, str]:
    doc = dict(draw(SETTINGS))
    doc["prompts"] = draw(st.lists(NON_BLANK, min_size=1, max_size=4))
    if draw(st.booleans()):
        doc["prompt_settings"] = {"prefix": draw(CLEAN_TEXT), "negative": draw(CLEAN_TEXT)}
    else:
        doc.update(draw(st.fixed_dictionaries({}, optional={
            "prefix_prompt": CLEAN_TEXT, "negative_prompt": CLEAN_TEXT})))
    doc["variations"] = draw(st.dictionaries(NAMES, st.fixed_dictionaries({
        "type": st.sampled_from(VARIATION_TYPES),
        "values": st.lists(CLEAN_TEXT, min_size=1, max_size=5)}), max_size=3))
    doc["loras"] = draw(st.lists(st.fixed_dictionaries(
        {"name": NON_BLANK}, optional={"strength": st.floats(-10, 10),
                                       "strength_model": st.floats(-10, 10)}), max_size=2))
    doc["workflows"] = draw(st.dictionaries(NAMES, SETTINGS, max_size=2))
    preset = draw(st.sampled_from(["", *doc["workflows"]]))
    return doc, preset


# Raw YAML-ish text: tokens a hand-written (or hostile) file may hold.
SCALAR_TOKENS = st.sampled_from([
    "1e309", "-1e309", "-0.0", ".nan", ".NaN", ".inf", "-.inf", "18446744073709551616", "18446744073709551615",
    "-1", "0", "7", "1001", "1.5", "1_000", "0x1F", "0o17", "0b101", "1:30:00", "190:20:30.15", "+12",
    "0x" + "f" * 4000, "9" * 5000, "0b" + "1" * 20000, "1" + "0" * 400 + ".0",
    "~", "null", "Null", "true", "false", "yes", "no", "on", "off", "True",
    "2024-12-28", "2024-02-30", "2024-13-01", "2024-12-28T25:61:00Z", "2001-12-14t21:59:43.10-05:00",
    "!!python/object:os.system {}", "!!python/object/apply:os.system [echo hi]", "!!python/name:os.system",
    "!!binary aGVsbG8=", "!!binary '@@@'", "!!binary \u00e9", "!custom x", "!custom [a]", "!<tag:x> y",
    "!!int abc", "!!int ''", "!!int 0x", "!!int 0b2", "!!int ':'", "!!int -", "!!float abc", "!!float ''",
    "!!float -", "!!bool maybe", "!!bool ''", "!!timestamp foo", "!!timestamp ''", "!!null x", "!!str [a]",
    "!!set {a, b}", "!!set [a]", "!!omap [a: 1, b: 2]", "!!omap [a]", "!!pairs [a: 1]", "!!pairs {a: 1}",
    "!!map [a]", "!!seq {a: 1}", "!!merge x", "!!value x", "!!yaml x",
    "&a x", "&a [x, *a]", "*a", "*undefined", "&a &b x", "[a, b", "{a: 1", "{a: 1}", "[]", "{}",
    "'quoted", "'it''s'", '"esc \\x00 nul"', '"\\ud800 lone"', '"\\U0001F600 \\u202e rtl"', '"\\e\\a\\b"',
    '"\\x"', '"\\U12345678"', "|", ">-", "|+2", "- a", "? x", ": y", "<<: *a", "<<: [*a, *b]", "<<: 5",
    "\\", "%YAML 1.1", "%TAG ! tag:x,2000:", "---", "...", "#c",
])
KEY_TOKENS = st.sampled_from(sorted(KNOWN_KEYS) + [
    "lora", "name", "strength", "strength_model", "strength_clip", "prefix", "negative", "type",
    "values", "dev", "1", "<<", "? a", "[a]", "{a: 1}", "!!binary aGVsbG8=", "&k prompts", "*k", ""])
VALUE = st.one_of(SCALAR_TOKENS, TEXT.map(lambda s: json.dumps(s, ensure_ascii=False)),
                  st.text(ANY_CHAR, max_size=12), NUMBERS.map(str))
LINE = st.one_of(
    st.builds(lambda k, v: f"{k}: {v}", KEY_TOKENS, VALUE), st.builds(lambda v: f"- {v}", VALUE),
    KEY_TOKENS.map(lambda k: f"{k}:"), VALUE, st.lists(NASTY_CHARS, max_size=6).map("".join))
RAW_DOCUMENTS = st.builds(
    lambda lines: "\n".join(" " * indent + line for indent, line in lines),
    st.lists(st.tuples(st.sampled_from([0, 0, 2, 4, 1, 3, 8]), LINE), min_size=1, max_size=14))


@st.composite
def corpus_mutants(draw) -> str:
    """A real file with lines deleted, duplicated, retyped, re-indented, swapped or cut."""
    lines = draw(st.sampled_from(CORPUS_TEXTS)).split("\n")
    for _ in range(draw(st.integers(1, 6))):
        i = draw(st.integers(0, max(len(lines) - 1, 0)))
        op = draw(st.sampled_from(["delete", "duplicate", "retype", "reindent", "swap", "insert",
                                   "truncate", "tabs", "crlf", "key"]))
        if not lines:
            lines = [""]
        line = lines[i]
        if op == "delete":
            del lines[i]
        elif op == "duplicate":
            lines.insert(i, line)
        elif op == "retype":                      # keep the key, change the value
            key, sep, _ = line.partition(":")
            lines[i] = f"{key}{sep or ':'} {draw(VALUE)}"
        elif op == "reindent":
            stripped = line.lstrip(" ")
            lines[i] = " " * draw(st.sampled_from([0, 1, 2, 3, 4, 6, 12])) + stripped
        elif op == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif op == "insert":
            lines.insert(i, " " * (len(line) - len(line.lstrip(" "))) + draw(LINE))
        elif op == "truncate":
            lines = lines[:i] + [line[:draw(st.integers(0, len(line)))]]
        elif op == "tabs":
            lines[i] = line.replace("  ", "\t")
        elif op == "crlf":
            lines[i] = line + "\r"
        else:                                     # rename a key into another known one
            _, sep, rest = line.partition(":")
            indent = " " * (len(line) - len(line.lstrip(" ")))
            lines[i] = f"{indent}{draw(KEY_TOKENS)}:{rest}" if sep else line
    return "\n".join(lines)


EXPANSION_ARGS = st.tuples(
    st.sampled_from(MODES + ("zip", "")), st.integers(-2**70, 2**70),
    st.one_of(st.integers(0, 2**64 - 1), st.integers()), st.sampled_from([0, 1, 3, 20, 64]))


# --------------------------------------------------------------------------- the runs

@fuzz_settings(EXAMPLES["dumped"])
@given(data=DATA, source=st.sampled_from(SOURCES), preset=st.sampled_from(["", "dev", "1", "x\x00"]),
       draw=st.data())
def test_random_structures_dumped_as_yaml(data, source, preset, draw):
    if isinstance(data, dict) and draw.draw(st.booleans()):
        data.setdefault("prompts", ["a"])               # reach past the first check more often
    check_text(dump(data, draw.draw), source, preset)


@fuzz_settings(EXAMPLES["wrong_types"])
@given(doc=valid_documents(), key=st.sampled_from(sorted(KNOWN_KEYS) + [
    "prompt_settings.prefix", "prompt_settings.negative", "variations.*", "variations.*.type",
    "variations.*.values", "variations.*.values.0", "loras.0", "loras.0.name", "loras.0.strength",
    "workflows.*", "workflows.*.steps", "prompts.0"]), value=DATA, draw=st.data())
def test_wrong_type_for_every_known_key(doc, key, value, draw):
    doc, preset = doc
    target, *rest = key.split(".")
    node = doc
    for part in [target, *rest][:-1]:
        if isinstance(node, dict) and part == "*":
            part = next(iter(node), None)
        elif isinstance(node, list):
            part = int(part)
            if part >= len(node):
                part = None
        if part is None or not isinstance(node, (dict, list)):
            break
        node = node[part] if isinstance(node, list) else node.setdefault(part, {})
    else:
        last = [target, *rest][-1]
        if isinstance(node, dict):
            node[next(iter(node), "v") if last == "*" else last] = value
        elif isinstance(node, list) and node:
            node[0] = value
    media = check_text(dump(doc, draw.draw), "fuzz.yaml", preset)
    if media is not None:
        check_expansion(media, *draw.draw(EXPANSION_ARGS))


@fuzz_settings(EXAMPLES["valid"])
@given(doc=valid_documents(), args=EXPANSION_ARGS, draw=st.data())
def test_valid_documents_load_round_trip_and_expand(doc, args, draw):
    doc, preset = doc
    media = check_text(dump(doc, draw.draw), "fuzz.yaml", preset)
    assert media is not None, "a valid document was refused"
    assert media.prompts == tuple(p.strip() for p in doc["prompts"])
    assert sorted(v.name for v in media.variations) == sorted(doc["variations"])   # sort_keys may reorder
    assert media.preset == preset and sorted(media.presets) == sorted(doc["workflows"])
    check_expansion(media, *args)


@fuzz_settings(EXAMPLES["raw"])
@given(text=RAW_DOCUMENTS, preset=st.sampled_from(["", "dev"]), args=EXPANSION_ARGS)
def test_raw_yaml_fragments(text, preset, args):
    media = check_text(text, "fuzz.yaml", preset)
    if media is not None:
        check_expansion(media, *args)


@fuzz_settings(EXAMPLES["corpus"])
@given(text=corpus_mutants(), args=EXPANSION_ARGS)
def test_mutated_corpus_files(text, args):
    media = check_text(text, "mutant.yaml")
    if media is not None:
        check_expansion(media, *args)


@fuzz_settings(EXAMPLES["huge"])
@given(doc=valid_documents(), where=st.sampled_from(["prompts", "prefix_prompt", "negative_prompt", "sampler",
                                                     "variation value", "variation name", "key"]),
       huge=HUGE_TEXT, draw=st.data())
def test_huge_strings(doc, where, huge, draw):
    doc, preset = doc
    doc.pop("prompt_settings", None)
    if where == "prompts":
        doc["prompts"].append(huge)
    elif where == "variation value":
        doc["variations"]["v"] = {"type": "random", "values": [huge]}
    elif where == "variation name":
        doc["variations"][huge] = {"type": "random", "values": ["x"]}
    elif where == "key":
        doc[huge] = "x"
    else:
        doc[where] = huge
    media = check_text(dump(doc, draw.draw), "fuzz.yaml", preset)
    if media is not None:
        check_expansion(media, *draw.draw(EXPANSION_ARGS))


@st.composite
def structural_attacks(draw) -> str:
    """Alias bombs (lists and merge keys), cycles, deep nesting in flow and block style."""
    kind = draw(st.sampled_from(["laughs", "merge", "cycle", "flow", "block", "mapping", "mixed"]))
    width, levels = draw(st.integers(2, 12)), draw(st.integers(1, 10))
    depth = draw(st.sampled_from([10, 63, 64, 65, 200, 1000, 5000, 50_000]))
    if kind == "laughs":
        doc = "a0: &a0 [x, y]\n" + "".join(
            f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]\n" for i in range(1, levels + 1))
    elif kind == "merge":
        doc = "m0: &m0 {k0: v}\n" + "".join(
            f"m{i}: &m{i} {{<<: [" + ", ".join(f"*m{j}" for j in range(i)) + f"], k{i}: *m{i - 1}}}\n"
            for i in range(1, levels + 1))
    elif kind == "cycle":
        doc = draw(st.sampled_from(["x: &a [*a]\n", "x: &a {k: *a}\n", "x: &a [1, [2, *a]]\n",
                                    "x: &a {<<: *a}\n"]))
    elif kind == "flow":
        doc = "x: " + "[" * depth + "]" * draw(st.sampled_from([0, depth])) + "\n"
    elif kind == "block":
        doc = "x:\n" + "".join(" " * (i + 1) + "-\n" for i in range(min(depth, 3000)))
    elif kind == "mapping":
        doc = "x: " + "{a: " * depth + "1" + "}" * depth + "\n"
    else:
        doc = "x: " + "- " * depth + "y\n"
    return doc + draw(st.sampled_from(["prompts: [ok]\n", "", "prompts: [*a0]\n"]))


@fuzz_settings(EXAMPLES["structural"])
@given(text=structural_attacks())
def test_alias_bombs_cycles_and_deep_nesting(text):
    check_text(text)


# --------------------------------------------------------------------------- expansion bombs

def sequential_bomb(values_per_variable: int, variables: int) -> str:
    values = "[" + ", ".join(f"v{i}" for i in range(values_per_variable)) + "]"
    return "prompts: [a, b]\nseeds: [1, 2]\nvariations:\n" + "".join(
        f"  x{i}: {{type: sequential, values: {values}}}\n" for i in range(variables))


@pytest.mark.parametrize("mode", ["product", "cycle"])
def test_expansion_bomb_refused_before_any_job_in_size_independent_time(mode):
    small, huge = load_prompt_media(sequential_bomb(10, 6), "b.yaml"), \
        load_prompt_media(sequential_bomb(10, 300), "b.yaml")            # 4 x 10^6 vs 4 x 10^300 jobs
    assert count_jobs(small) == 4 * 10**6 and count_jobs(huge) == 4 * 10**300
    timings = {}
    for name, media in (("small", small), ("huge", huge)):
        t0 = time.thread_time()
        if mode == "product":
            with pytest.raises(PromptMediaError, match=r"^b\.yaml: max_jobs: expands to") as e:
                expand(media, mode, max_jobs=10_000)
            assert_error_shape(e.value, "b.yaml")
        else:
            assert len(expand(media, mode)) == 4           # cycle: one variation per prompt
        timings[name] = time.thread_time() - t0
    assert max(timings.values()) < 0.05, timings


@fuzz_settings(EXAMPLES["caps"])
@given(values=st.integers(2, 40), variables=st.integers(1, 60), max_jobs=st.integers(0, 10_000))
def test_any_cap_overflow_is_refused_without_building_jobs(values, variables, max_jobs):
    media = load_prompt_media(sequential_bomb(values, variables), "b.yaml")
    total = count_jobs(media)
    assert total == 4 * values ** variables
    if total > max_jobs:
        t0 = time.thread_time()
        with pytest.raises(PromptMediaError) as e:
            expand(media, max_jobs=max_jobs)
        assert time.thread_time() - t0 < 0.05
        assert_error_shape(e.value, "b.yaml")


def test_documents_per_run_meet_the_ci_floor():
    assert sum(EXAMPLES.values()) >= 10_000, EXAMPLES
