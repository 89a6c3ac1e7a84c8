"""core/api_prompt.py and core/session_lookup.py: one reader of posted API prompts."""
import copy
import json

import pytest

from prompt_media_pkg.core.api_prompt import (
    Linked,
    constant_inputs,
    consumers,
    input_value,
    loader_source,
    nodes_of_class,
    of_class,
    parse_link,
    source_of,
    upstream,
    value,
)
from prompt_media_pkg.core.schema import load_prompt_media
from prompt_media_pkg.core.session import Session, save_session
from prompt_media_pkg.core.session_lookup import SessionLookupError, session_request, session_status

PROMPT = {
    "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "a.safetensors"}},
    "2": {"class_type": "PromptMediaLoader", "inputs": {"file": "a.yaml", "preset": "", "yaml_text": ""}},
    "3": {"class_type": "PromptMediaOOM", "inputs": {"prompt_media": ["2", 0], "mode": "cycle", "seed": 4,
                                                     "variation_seed": 9, "job_index": 0}},
    "4": {"class_type": "PrimitiveInt", "inputs": {"value": 30}},
    "5": {"class_type": "KSampler", "inputs": {"model": ["1", 0], "steps": ["4", 0], "seed": ["3", 1], "cfg": 7}},
    "6": {"class_type": "PromptMediaSessionSaver", "inputs": {"images": ["7", 0], "job": ["3", 2], "root": "mine"}},
    "7": {"class_type": "VAEDecode", "inputs": {"samples": ["5", 0], "vae": ["1", 2]}},
}


def test_links_constants_and_primitives():
    assert parse_link(["3", 1]) == ("3", 1) and parse_link([3, 0]) == ("3", 0)
    for not_a_link in ("x", 5, [1, 2, 3], ["3", "1"], [True, 0], ["3", False], None, {"a": 1}):
        assert parse_link(not_a_link) is None
    assert value(PROMPT, 7) == 7
    assert value(PROMPT, ["4", 0]) == 30                        # through a core primitive node
    assert value(PROMPT, ["3", 1]) == Linked("3", 1, "PromptMediaOOM")
    assert value(PROMPT, ["99", 0]) == Linked("99", 0, None)     # dangling link: still a link
    sampler = PROMPT["5"]
    assert input_value(PROMPT, sampler, "steps") == 30
    assert input_value(PROMPT, sampler, "denoise", 1.0) == 1.0
    assert constant_inputs(PROMPT, sampler, ("steps", "cfg")) == {"steps": 30, "cfg": 7}
    assert constant_inputs(PROMPT, sampler, ("steps", "seed")) is None


def test_sources_classes_consumers_and_upstream():
    assert source_of(PROMPT, PROMPT["3"], "prompt_media") == ("2", 0, PROMPT["2"])
    assert source_of(PROMPT, PROMPT["3"], "mode") is None
    assert [i for i, _ in nodes_of_class(PROMPT, "KSampler", "VAEDecode")] == ["5", "7"]
    assert [i for i, _ in consumers(PROMPT, "3")] == ["5", "6"]
    assert [i for i, _ in consumers(PROMPT, "3", input_name="job")] == ["6"]
    assert [i for i, _ in consumers(PROMPT, "1", class_type="VAEDecode")] == ["7"]
    assert upstream(PROMPT, ["7", 0], of_class("CheckpointLoaderSimple"))[0] == "1"
    assert upstream(PROMPT, ["7", 0], of_class("CheckpointLoaderSimple"), follow=("samples",)) is None
    assert upstream(PROMPT, "not a link", of_class("KSampler")) is None


def test_malformed_prompts_read_as_nothing():
    for bad in (None, [], "x", {"1": "not a node"}, {"1": {"class_type": "A", "inputs": [1]}}):
        assert nodes_of_class(bad, "A") == [] and consumers(bad, "1") == []
    assert source_of({"1": {"inputs": {"x": ["2", 0]}}, "2": 5}, {"inputs": {"x": ["2", 0]}}, "x") is None


def test_loader_source_is_none_when_linked():
    assert loader_source(PROMPT, PROMPT["2"]) == ("a.yaml", "", "")
    linked = copy.deepcopy(PROMPT)
    linked["2"]["inputs"]["preset"] = ["8", 0]
    linked["8"] = {"class_type": "SomeTextNode", "inputs": {}}
    assert loader_source(linked, linked["2"]) is None
    linked["8"] = {"class_type": "PrimitiveString", "inputs": {"value": "dev"}}
    assert loader_source(linked, linked["2"]) == ("a.yaml", "", "dev")
    assert loader_source(PROMPT, {"class_type": "PromptMediaLoader", "inputs": {}}) == ("", "", "")


def test_session_request_reads_the_oom_node_loader_and_its_saver():
    r = session_request(PROMPT, "3")
    assert (r.source, r.mode, r.seed, r.variation_seed, r.root) == (("a.yaml", "", ""), "cycle", 4, 9, "mine")
    no_saver = {k: v for k, v in PROMPT.items() if k != "6"}
    assert session_request(no_saver, "3").root == "collections/images"


@pytest.mark.parametrize("change, message", [
    (lambda p: p.pop("3"), "node 3 is not an OOM Variations node"),
    (lambda p: p["3"]["inputs"].pop("prompt_media"), "PromptMediaOOM.prompt_media is not connected"),
    (lambda p: p["3"]["inputs"].update(prompt_media=["1", 0]), "must come from a Prompt Media Loader"),
    (lambda p: p["2"]["inputs"].update(file=["1", 0]), "file/yaml_text/preset are linked"),
    (lambda p: p["3"]["inputs"].update(mode=["1", 0]), "PromptMediaOOM.mode is linked"),
    (lambda p: p["6"]["inputs"].update(root=["1", 0]), "PromptMediaSessionSaver.root is linked"),
])
def test_session_request_errors_name_the_problem(change, message):
    prompt = copy.deepcopy(PROMPT)
    change(prompt)
    with pytest.raises(SessionLookupError, match=message):
        session_request(prompt, "3")


def test_session_status_follows_the_recorded_session(tmp_path):
    media = load_prompt_media("prompts: [a, b, c]\nseeds: [1, 2]\n", "a.yaml")
    request = session_request(PROMPT, "3")
    status = session_status(media, request, str(tmp_path))
    assert status["total"] == 6 and status["next_index"] == 0 and status["last_index"] is None
    assert status["remaining"] == 6 and status["folder"] is None
    from datetime import datetime
    folder = tmp_path / "2026" / "01" / "01" / "1200"
    folder.mkdir(parents=True)
    save_session(Session(status["expansion_id"], str(tmp_path), str(folder), datetime(2026, 1, 1, 12),
                         first=4, jobs=6))
    for count in (4, 5, 6):                  # jobs 0-2 saved (the folder says how far it got)
        (folder / f"{count:03d}_seed_1.json").write_text("{}")
    (folder / "003_seed_1.json").write_text("{}")          # another session's number: not ours
    status = session_status(media, request, str(tmp_path))
    assert (status["next_index"], status["remaining"], status["last_index"]) == (3, 3, 2)
    assert (status["folder"], status["session_folder"], status["first_number"]) == (str(folder), "2026/01/01/1200", 4)
    for count in (7, 8, 9):
        (folder / f"{count:03d}_seed_2.json").write_text("{}")
    assert session_status(media, request, str(tmp_path))["next_index"] == 0     # finished: a new one
    json.dumps(status)                                                          # the route's answer


def test_links_from_name_the_input_and_filter_by_output():
    from prompt_media_pkg.core.api_prompt import links_from
    assert [(c, n) for c, n, _ in links_from(PROMPT, "3")] == [("5", "seed"), ("6", "job")]
    assert [(c, n) for c, n, _ in links_from(PROMPT, "3", 2)] == [("6", "job")]
    assert links_from(PROMPT, "3", 7) == [] and links_from(None, "3") == []


def test_queue_session_continues_after_saved_and_queued_jobs(tmp_path):
    """Queue session never queues a job twice: jobs in ComfyUI's queue and jobs with an image
    count as done; a session whose last jobs are all queued has nothing left to queue."""
    from datetime import datetime

    from prompt_media_pkg.core.session_lookup import queued_jobs
    media = load_prompt_media("prompts: [a, b, c]\nseeds: [1, 2]\n", "a.yaml")
    request = session_request(PROMPT, "3")
    exp = session_status(media, request, str(tmp_path))["expansion_id"]
    folder = tmp_path / "2026" / "01" / "01" / "1200"
    folder.mkdir(parents=True)
    save_session(Session(exp, str(tmp_path), str(folder), datetime(2026, 1, 1, 12), 1, 2))

    def queued_prompt(index, **oom_changes):
        p = copy.deepcopy(PROMPT)
        p["3"]["inputs"].update(job_index=index, **oom_changes)
        return p
    queue = [queued_prompt(2), queued_prompt(3), queued_prompt(4, seed=99),      # another session
             {"1": {"class_type": "KSampler", "inputs": {}}}]
    assert queued_jobs(request, queue) == {2, 3}
    saved = {0, 1}
    status = session_status(media, request, str(tmp_path), queued={2, 3}, output_dir=str(tmp_path),
                            saved_jobs=lambda f, e: saved if (f, e) == (str(folder), exp) else set())
    assert (status["saved"], status["queued"], status["next_index"], status["remaining"]) == (2, 2, 4, 2)
    assert status["subfolder"] == "2026/01/01/1200"
    status = session_status(media, request, str(tmp_path), queued={2, 3, 4, 5}, saved_jobs=lambda f, e: saved)
    assert (status["next_index"], status["remaining"]) == (6, 0)                 # all left are queued
    status = session_status(media, request, str(tmp_path), saved_jobs=lambda f, e: {0, 1, 2, 3})
    assert (status["saved"], status["next_index"], status["remaining"]) == (4, 4, 2)   # interrupted: resume
    status = session_status(media, request, str(tmp_path), saved_jobs=lambda f, e: set(range(6)))
    assert (status["next_index"], status["remaining"]) == (0, 6)                 # finished: a new session
