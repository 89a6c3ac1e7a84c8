"""The gallery's data (core/gallery.py), the session page (core/session_page.py) and regeneration
(core/regenerate.py) on synthetic sessions: the grid is the contact sheet's, the folder index
re-reads only what changed, stars and tags live in one file and touch nothing else, the page
escapes everything, a sidecar becomes a one-job prompt file that composes to the same prompt."""
from __future__ import annotations

import hashlib
import json
import os
import re
import time

import pytest

from prompt_media_pkg.core import gallery as gallery_module
from prompt_media_pkg.core.contact_sheet import plan_sheet, scan_session
from prompt_media_pkg.core.expand import expand
from prompt_media_pkg.core.gallery import (
    MARKS_NAME,
    FolderIndex,
    Gallery,
    GalleryError,
    read_marks,
    session_roots,
    update_marks,
)
from prompt_media_pkg.core.gallery_index import code_version, read_index_file
from prompt_media_pkg.core.regenerate import (
    PARENT_KEY,
    RegenerateError,
    parent_record,
    regeneration_job,
    regeneration_prompt,
    session_root,
)
from prompt_media_pkg.core.schema import load_prompt_media
from prompt_media_pkg.core.session import gallery_index_path
from prompt_media_pkg.core.session_page import PAGE_NAME, page_data, render_page, script_json, write_session_page
from prompt_media_pkg.core.sidecar import read_sidecar
from prompt_media_pkg.tests.synthetic_session import write_session

PROMPTS = ["a lighthouse", "a fox", "a barn"]
TIMES = [{"time": "dawn"}, {"time": "dusk"}]
REL = "collections/images/2026/11/22/1458"


def session(tmp_path, seeds=(11, 22), prompts=PROMPTS, variations=TIMES, **kw):
    folder = tmp_path.joinpath(*REL.split("/"))
    (folder.parents[3] / ".prompt_media").mkdir(parents=True, exist_ok=True)     # a saver's root
    jobs = write_session(str(folder), list(seeds), list(prompts), list(variations), **kw)
    return str(folder), jobs


def view(folder: str) -> dict:
    index = FolderIndex(folder)
    index.refresh()
    return json.loads(index.view(REL))


def digest(folder: str) -> dict:
    return {n: hashlib.sha256(open(os.path.join(folder, n), "rb").read()).hexdigest()
            for n in sorted(os.listdir(folder)) if "_seed_" in n}


def test_grid_is_the_contact_sheets_pages_rows_and_columns(tmp_path):
    folder, jobs = session(tmp_path)
    v = view(folder)
    assert v["title"] == "2026-11-22 14:58" and v["done"] == v["total"] == 12
    names = [im["name"] for im in v["images"]]
    assert names == [j["name"] for j in jobs]                      # count order
    plan = plan_sheet(scan_session(folder)[0])
    assert [p["title"] for p in v["pages"]] == [g.title for g in plan.grids] == ["seed 11", "seed 22"]
    assert [p["columns"] for p in v["pages"]] == [list(g.column_labels) for g in plan.grids]
    for page, seed_index in zip(v["pages"], (0, 1)):
        assert [r["prompt"] for r in page["rows"]] == PROMPTS
        for row in page["rows"]:
            for col, name in enumerate(row["cells"]):
                job = next(j for j in jobs if j["name"] == name)
                assert (job["seed_index"], job["prompt_index"], job["variation_index"]) == \
                    (seed_index, row["prompt_index"], col)


def test_missing_positions_are_empty_cells_and_values_that_change_in_a_column_are_captions(tmp_path):
    folder, jobs = session(tmp_path, seeds=(1,), prompts=PROMPTS[:2],
                           variations=[{"time": "dawn", "style": "oil"}, {"time": "dusk", "style": "ink"}])
    # prompt 2's style differs from prompt 1's in column 1: a caption, not a column label
    second = os.path.join(folder, jobs[3]["name"][:-4] + ".json")
    data = json.load(open(second))
    data["oom"]["variation_values"]["style"] = "pencil"
    json.dump(data, open(second, "w"))
    os.unlink(os.path.join(folder, jobs[2]["name"]))               # a job not generated (yet)
    v = view(folder)
    (page,) = v["pages"]
    assert page["columns"] == ["dawn", "dusk"] and page["captions"] == ["style"]
    assert page["rows"][1]["cells"][0] is None
    assert v["done"] == 3 and v["total"] == 4


def test_index_rereads_only_new_or_replaced_sidecars(tmp_path, monkeypatch):
    folder, jobs = session(tmp_path, seeds=(1,))
    index = FolderIndex(folder)
    index.refresh()
    reads = []
    real = gallery_module.read_sidecar
    monkeypatch.setattr(gallery_module, "read_sidecar",
                        lambda p: reads.append(os.path.splitext(os.path.basename(p))[0]) or real(p))
    assert index.refresh() is False and reads == []                 # unchanged folder: not even listed
    first = index.view(REL)
    assert index.view(REL) is first                                 # cached bytes
    write_session(os.path.join(folder, "more"), [1], ["x"], [{}])   # (another folder: no effect)
    # a new image, and a sidecar replaced under the same name (a new inode)
    src = jobs[0]["name"][:-4]
    os.link(os.path.join(folder, src + ".png"), os.path.join(folder, "099_seed_1.png"))
    data = json.load(open(os.path.join(folder, src + ".json")))
    data["task_id"] = 99
    data["oom"]["base_prompt"] = "a lighthouse"
    json.dump(data, open(os.path.join(folder, "099_seed_1.json"), "w"))
    replaced = os.path.join(folder, jobs[1]["name"][:-4] + ".json")
    data = json.load(open(replaced))
    data["parameters"]["seed"] = 4242
    json.dump(data, open(replaced + ".tmp", "w"))
    os.replace(replaced + ".tmp", replaced)
    os.utime(folder, ns=(1, index.mtime_ns + 1000))                 # coarse clocks: make the change visible
    assert index.refresh() is True
    assert sorted(reads) == sorted(["099_seed_1", os.path.basename(replaced)[:-5]])
    v = json.loads(index.view(REL))
    assert next(im for im in v["images"] if im["name"] == jobs[1]["name"])["seed"] == 4242
    assert v["images"][-1]["name"] == "099_seed_1.png"


def test_a_growing_session_plans_only_the_page_that_changed(tmp_path, monkeypatch):
    folder, jobs = session(tmp_path, seeds=(1, 2), prompts=PROMPTS[:2])
    os.unlink(os.path.join(folder, jobs[-1]["name"]))              # the last job: not there yet
    index = FolderIndex(folder)
    index.refresh()
    before = json.loads(index.view(REL))
    planned = []
    real = gallery_module.grid_page
    monkeypatch.setattr(gallery_module, "grid_page", lambda g, s: planned.append(g.key) or real(g, s))
    os.link(os.path.join(folder, jobs[0]["name"]), os.path.join(folder, jobs[-1]["name"]))   # it arrives
    os.utime(folder, ns=(1, index.mtime_ns + 1000))
    index.refresh()
    after = json.loads(index.view(REL))
    assert [key[1] for key in planned] == [1]                       # only seed 2's page
    assert after["pages"][0] == before["pages"][0]
    assert after["pages"][1]["rows"][1]["cells"][1] == jobs[-1]["name"]
    assert [im["name"] for im in after["images"]] == [j["name"] for j in jobs]
    assert index.images() is index.images() and len(index.images()) == 8


def test_broken_sidecars_are_skipped_with_the_reason(tmp_path):
    folder, jobs = session(tmp_path, seeds=(1,), prompts=PROMPTS[:1])
    with open(os.path.join(folder, jobs[0]["name"][:-4] + ".json"), "w") as f:
        f.write('{"plugin": "prompt-media", "parameters": ')
    v = view(folder)
    assert [im["name"] for im in v["images"]] == [jobs[1]["name"]]
    assert len(v["skipped"]) == 1 and "truncated" in v["skipped"][0]


def test_session_list_summary_and_state(tmp_path):
    folder, _ = session(tmp_path)
    g = Gallery(str(tmp_path))
    quick = g.summary(folder)                                       # not indexed: the cheap reading
    g.index(folder)
    indexed = g.summary(folder)
    for s in (quick, indexed):
        assert (s["folder"], s["title"], s["done"], s["total"], s["sources"]) == \
            (REL, "2026-11-22 14:58", 12, 12, ["prompt.yaml"])
        assert s["state"] == "complete" and s["thumb"] == "012_seed_22.png"
    os.unlink(os.path.join(folder, "012_seed_22.png"))
    assert g.summary(folder, running=True)["state"] == "running"
    old = 1_000_000_000
    os.utime(folder, (old, old))
    assert g.summary(folder)["state"] == "interrupted"


def test_session_roots_are_found_where_a_saver_kept_its_state(tmp_path):
    for rel in ("collections/images", "cli/runs", "deep/a/b/c"):
        (tmp_path.joinpath(*rel.split("/")) / ".prompt_media").mkdir(parents=True)
    (tmp_path / "2026" / ".prompt_media").mkdir(parents=True)      # dated folders are not entered
    assert session_roots(str(tmp_path), "collections/images") == ["collections/images", "cli/runs"]


def test_stars_and_tags_live_in_one_file_and_touch_no_image_or_sidecar(tmp_path):
    folder, jobs = session(tmp_path, seeds=(1,))
    before = digest(folder)
    name = jobs[2]["name"]
    assert update_marks(folder, name, star=True) == {name: {"star": True, "tags": []}}
    update_marks(folder, name, tags=[" blue  sky ", "keep", "keep", ""])
    update_marks(folder, jobs[0]["name"], tags=["x"])
    assert read_marks(folder) == {name: {"star": True, "tags": ["blue sky", "keep"]},
                                  jobs[0]["name"]: {"star": False, "tags": ["x"]}}
    update_marks(folder, jobs[0]["name"], tags=[])                 # nothing left: the entry goes
    assert list(read_marks(folder)) == [name]
    assert digest(folder) == before
    assert [n for n in os.listdir(folder) if n.startswith(".pm-tmp-")] == []
    for bad, kw in [("../x.png", {"star": True}), ("notes.txt", {"star": True}), ("999_seed_1.png", {"star": True}),
                    (name, {"star": "yes"}), (name, {"tags": "keep"}), (name, {"tags": ["x" * 65]})]:
        with pytest.raises(GalleryError):
            update_marks(folder, bad, **kw)
    assert os.path.exists(os.path.join(folder, MARKS_NAME))


def test_regeneration_job_composes_to_the_same_prompt_and_settings(tmp_path):
    folder, jobs = session(tmp_path, seeds=(7,), prompts=['a "quoted", <b>fox</b>'])
    sidecar = read_sidecar(os.path.join(folder, jobs[1]["name"]))
    job = regeneration_job(sidecar, f"{REL}/{jobs[1]['name']}")
    assert job.checkpoint == "tiny_sd15.ckpt" and job.root == "collections/images"
    media = load_prompt_media(job.yaml_text, "regen.yaml")
    assert media.extra[PARENT_KEY] == {"image": f"{REL}/{jobs[1]['name']}", "image_sha256": "2" * 64, "changes": {}}
    (only,) = expand(media)
    assert only["positive"] == sidecar.prompt and only["seed"] == 7
    s = media.settings
    assert (s.steps, s.cfg, s.width, s.height, s.sampler_name, s.scheduler) == (2, 7.0, 64, 64, "euler", "normal")
    varied = regeneration_job(sidecar, f"{REL}/{jobs[1]['name']}", {"seed": 9, "cfg": 4.5, "prompt": "a cat"})
    (vjob,) = expand(load_prompt_media(varied.yaml_text, "vary.yaml"))
    assert (vjob["positive"], vjob["seed"]) == ("a cat", 9) and "with seed 9, cfg 4.5, prompt" in varied.description


def test_regeneration_refuses_what_it_cannot_reproduce(tmp_path):
    folder, jobs = session(tmp_path, seeds=(7,), prompts=PROMPTS[:1])
    path = os.path.join(folder, jobs[0]["name"][:-4] + ".json")
    sidecar = read_sidecar(path)
    for changes, message in [({"model": "x"}, "cannot be changed"), ({"seed": -1}, "seed must be"),
                             ({"steps": 2.5}, "an integer"), ({"cfg": "high"}, "a number"), ({"prompt": " "}, "non-empty")]:
        with pytest.raises(RegenerateError, match=message):
            regeneration_job(sidecar, "x.png", changes)
    data = json.load(open(path))
    data["parameters_source"] = {"sampler_class": "SamplerCustomAdvanced"}
    json.dump(data, open(path, "w"))
    with pytest.raises(RegenerateError, match="SamplerCustomAdvanced graph"):
        regeneration_job(read_sidecar(path), "x.png")


def test_regeneration_prompt_fills_the_project_workflow():
    workflow = json.load(open(os.path.join(os.path.dirname(__file__), "..", "..", "workflows", "api",
                                           "prompt_media_session.json")))
    from prompt_media_pkg.core.regenerate import RegenerationJob
    job = RegenerationJob("prompts: [x]\n", "model.safetensors", "cli/runs", {}, "")
    prompt = regeneration_prompt(workflow, job)
    by_class = {n["class_type"]: n["inputs"] for n in prompt.values()}
    assert by_class["CheckpointLoaderSimple"]["ckpt_name"] == "model.safetensors"
    assert (by_class["PromptMediaLoader"]["yaml_text"], by_class["PromptMediaLoader"]["file"]) == ("prompts: [x]\n", "")
    assert by_class["PromptMediaOOM"]["job_index"] == 0 and by_class["PromptMediaOOM"]["run"] == "one job per run"
    assert (by_class["PromptMediaSessionSaver"]["root"], by_class["PromptMediaSessionSaver"]["compose"]) == ("cli/runs", "none")
    assert workflow["1"]["inputs"]["ckpt_name"] != "model.safetensors"     # a copy


def test_session_root_of_a_folder():
    assert session_root("cli/runs/2026/11/22/1458") == "cli/runs"
    assert session_root("2026/11/22/1458") == "collections/images"
    assert session_root("collected/my_session") == "collections/images"


def test_parent_record_checks_the_parent_inside_the_output_directory(tmp_path):
    (tmp_path / "a.png").write_bytes(b"x")
    section = {"image": "a.png", "image_sha256": "f" * 64, "changes": {"seed": 3, "bad": [1]}}
    assert parent_record(section, str(tmp_path), lambda p: True) == \
        {"image": "a.png", "image_sha256": "f" * 64, "changes": {"seed": 3}, "identical_pixels": True}
    outside = parent_record({"image": "../etc/passwd"}, str(tmp_path), lambda p: pytest.fail("read outside"))
    assert outside["identical_pixels"] is None
    assert parent_record("not a section", str(tmp_path), lambda p: True) is None


HOSTILE = 'a </script><script>alert(1)</script> <b>fox</b> & "co" \u2028 <!--'


def test_page_escapes_everything_and_embeds_every_image(tmp_path):
    folder, jobs = session(tmp_path, seeds=(1,), prompts=[HOSTILE, "plain"], source_name='<i>x</i>.yaml')
    path = write_session_page(folder, REL)
    html = open(path, encoding="utf-8").read()
    assert os.path.basename(path) == PAGE_NAME
    data_text = re.search(r'<script type="application/json" id="pm-data">(.*?)</script>', html, re.S).group(1)
    assert "<" not in data_text and ">" not in data_text and "\u2028" not in data_text
    data = json.loads(data_text)
    assert sorted(data["details"]) == sorted(j["name"] for j in jobs)
    assert data["view"]["pages"][0]["rows"][0]["prompt"] == HOSTILE
    assert "<title>2026-11-22 14:58 · &lt;i&gt;x&lt;/i&gt;.yaml</title>" in html
    assert html.count("<script") == 2 and html.count("</script>") == 2   # nothing else opens or closes one
    assert "<i>" not in html and "<b>" not in html
    assert str(tmp_path) not in html                                     # no absolute path of this machine


def test_page_data_matches_the_view_and_marks(tmp_path):
    folder, jobs = session(tmp_path, seeds=(1,), prompts=PROMPTS[:1])
    update_marks(folder, jobs[0]["name"], star=True, tags=["best"])
    data = page_data(folder, REL)
    assert data["marks"] == {jobs[0]["name"]: {"star": True, "tags": ["best"]}}
    assert data["details"][jobs[1]["name"]]["parameters"]["seed"] == 1
    assert "a1111" not in data["details"][jobs[1]["name"]]            # the page has no Copy button
    assert render_page(data).startswith("<!doctype html>")


def test_script_json_round_trips_hostile_text():
    value = {"x": HOSTILE, "y": ["</SCRIPT>", "&amp;", "\u2029"]}
    text = script_json(value)
    assert json.loads(text) == value and "</" not in text


def test_compose_only_writes_the_page_of_an_older_session(tmp_path):
    import subprocess
    import sys
    folder, jobs = session(tmp_path, seeds=(1,), prompts=PROMPTS[:1])
    assert not os.path.exists(os.path.join(folder, PAGE_NAME))
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    proc = subprocess.run([sys.executable, os.path.join(repo, "run_session.py"), "--compose-only", folder],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert os.path.join(folder, PAGE_NAME) in proc.stdout.splitlines()
    data = page_data(folder, "2026/11/22/1458")       # the dated part only: no path of this machine
    html = open(os.path.join(folder, PAGE_NAME), encoding="utf-8").read()
    assert script_json(data) in html and str(tmp_path) not in html


# ----------------------------------------------------------------------------- the index on disk

def counted_reads(monkeypatch) -> list[str]:
    """The sidecars the gallery reads from now on (their base names)."""
    reads = []
    real = gallery_module.read_sidecar
    monkeypatch.setattr(gallery_module, "read_sidecar",
                        lambda p: reads.append(os.path.splitext(os.path.basename(p))[0]) or real(p))
    return reads


def stored_index(folder: str) -> FolderIndex:
    """A FolderIndex as after a server start, with the session's index file."""
    index = FolderIndex(folder, index_file=gallery_index_path(folder))
    index.refresh()
    return index


def write_index(folder: str) -> str:
    index = stored_index(folder)
    assert index.dirty and index.save() and not index.dirty
    return index.index_file


def bump(path: str) -> None:
    """Make a change visible to coarse clocks (the folder's or a sidecar's mtime)."""
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))


def test_the_index_file_answers_a_cold_open_without_reading_a_sidecar(tmp_path, monkeypatch):
    folder, jobs = session(tmp_path)
    before = {n: os.stat(os.path.join(folder, n)).st_mtime_ns for n in os.listdir(folder)}
    folder_mtime = os.stat(folder).st_mtime_ns
    path = write_index(folder)
    # beside the root's session state, not among the images: the session folder is untouched
    assert path == str(tmp_path.joinpath("collections", "images", ".prompt_media", "gallery", "2026-11-22-1458.index"))
    assert os.stat(folder).st_mtime_ns == folder_mtime
    assert {n: os.stat(os.path.join(folder, n)).st_mtime_ns for n in os.listdir(folder)} == before
    memory = FolderIndex(folder)
    memory.refresh()
    reads = counted_reads(monkeypatch)
    index = stored_index(folder)
    assert reads == []
    assert index.view(REL) == memory.view(REL)
    assert index.progress() == (12, 12, ["prompt.yaml"]) and index.thumb() == ("012_seed_22.png", 64 * 64)
    assert index.save() is False                        # nothing changed: nothing written
    # the records themselves (Queue session asks for them) come from the file as well
    assert [im.name for im in index.images()] == [j["name"] for j in jobs] and reads == []
    assert index.images() == memory.images()


def test_a_sidecar_changed_in_place_is_read_again(tmp_path, monkeypatch):
    folder, jobs = session(tmp_path, seeds=(1,))
    write_index(folder)
    changed = os.path.join(folder, jobs[2]["name"][:-4] + ".json")
    data = json.load(open(changed))
    data["parameters"]["seed"] = 4242                    # same inode, other size and mtime
    with open(changed, "w") as f:
        json.dump(data, f)
    bump(changed)
    reads = counted_reads(monkeypatch)
    index = stored_index(folder)
    v = json.loads(index.view(REL))
    assert reads == [jobs[2]["name"][:-4]]
    assert next(im for im in v["images"] if im["name"] == jobs[2]["name"])["seed"] == 4242
    memory = FolderIndex(folder)
    memory.refresh()
    assert index.view(REL) == memory.view(REL)
    assert index.dirty and index.save()                 # the file is brought up to date
    reads.clear()
    assert stored_index(folder).view(REL) == memory.view(REL) and reads == []


def test_a_new_image_is_read_and_a_deleted_one_is_gone(tmp_path, monkeypatch):
    folder, jobs = session(tmp_path, seeds=(1,))
    os.unlink(os.path.join(folder, jobs[-1]["name"]))   # the last job: not saved yet
    write_index(folder)
    os.link(os.path.join(folder, jobs[0]["name"]), os.path.join(folder, jobs[-1]["name"]))   # it arrives
    gone = jobs[1]["name"]
    os.unlink(os.path.join(folder, gone))
    os.unlink(os.path.join(folder, gone[:-4] + ".json"))
    reads = counted_reads(monkeypatch)
    index = stored_index(folder)
    names = [im["name"] for im in json.loads(index.view(REL))["images"]]
    assert reads == [jobs[-1]["name"][:-4]]
    assert names == [j["name"] for j in jobs if j["name"] != gone]
    assert index.save()
    reads.clear()
    again = stored_index(folder)
    assert [im["name"] for im in json.loads(again.view(REL))["images"]] == names and reads == []
    assert gone not in read_index_file(again.index_file).keys


@pytest.mark.parametrize("damage", ["garbage", "truncated", "foreign", "other code", "bad rows", "bad row"])
def test_a_corrupt_or_foreign_index_file_is_ignored_and_rebuilt(tmp_path, monkeypatch, damage):
    folder, jobs = session(tmp_path, seeds=(1,))
    path = write_index(folder)
    raw = open(path, "rb").read()
    header, rest = raw.split(b"\n", 1)
    if damage == "garbage":
        raw = b"\x00\xff not json at all"
    elif damage == "truncated":
        raw = raw[:len(header) + 40]
    elif damage == "foreign":
        raw = json.dumps({"format": "something-else", "keys": {}}).encode() + b"\n"
    elif damage == "other code":
        raw = header.replace(code_version().encode(), b"0" * 16) + b"\n" + rest
    elif damage == "bad rows":
        raw = raw[:raw.rindex(b"\n", 0, len(raw) - 1) + 1] + b'{"images": 7}\n'
    elif damage == "bad row":                            # one record mangled: only its sidecar is read
        rows_at = raw.rindex(b"\n", 0, len(raw) - 1) + 1
        rows = json.loads(raw[rows_at:])
        rows["images"][jobs[3]["name"]][10] = -5
        raw = raw[:rows_at] + json.dumps(rows).encode() + b"\n"
    with open(path, "wb") as f:
        f.write(raw)
    # what the session's sidecars give, whatever the file says
    memory = FolderIndex(folder)
    memory.refresh()
    reads = counted_reads(monkeypatch)
    index = stored_index(folder)
    assert index.view(REL) == memory.view(REL)
    assert index.images() == memory.images()            # the records too (bad rows: only now)
    if damage == "bad row":
        assert reads == [jobs[3]["name"][:-4]]
    else:
        assert sorted(reads) == sorted(j["name"][:-4] for j in jobs)
    assert index.save()                                 # rewritten whole
    reads.clear()
    assert stored_index(folder).view(REL) == memory.view(REL) and reads == []


def test_growing_after_a_cold_open_from_the_file(tmp_path, monkeypatch):
    folder, jobs = session(tmp_path, seeds=(1, 2), prompts=PROMPTS[:2])
    os.unlink(os.path.join(folder, jobs[-1]["name"]))
    write_index(folder)
    reads = counted_reads(monkeypatch)
    planned = []
    real = gallery_module.grid_page
    monkeypatch.setattr(gallery_module, "grid_page", lambda g, s: planned.append(g.key) or real(g, s))
    index = stored_index(folder)
    index.view(REL)
    os.link(os.path.join(folder, jobs[0]["name"]), os.path.join(folder, jobs[-1]["name"]))
    bump(folder)
    assert index.refresh() is True
    assert reads == [jobs[-1]["name"][:-4]]
    index.view(REL)
    assert [key[1] for key in planned] == [1]            # seed 2's page; seed 1's came from the file
    memory = FolderIndex(folder)
    memory.refresh()
    assert index.view(REL) == memory.view(REL)
    assert index.progress() == (8, 8, ["prompt.yaml"]) and index.dirty


def test_the_gallery_writes_the_index_after_a_change_and_the_page_writes_it_too(tmp_path, monkeypatch):
    folder, jobs = session(tmp_path, seeds=(1,))
    g = Gallery(str(tmp_path), save_delay=0.05)
    idx = g.index(folder)
    deadline = time.monotonic() + 10
    while idx.dirty and time.monotonic() < deadline:    # written in the background
        time.sleep(0.02)
    assert not idx.dirty and read_index_file(gallery_index_path(folder)) is not None
    assert Gallery(str(tmp_path), stored=False).index(folder).index_file is None
    other, _ = session(tmp_path / "other", seeds=(1,))
    page_data(other, REL)                               # the session page reads every sidecar anyway
    reads = counted_reads(monkeypatch)
    assert json.loads(stored_index(other).view(REL))["done"] == 6 and reads == []


def test_only_a_dated_session_folder_of_a_saver_root_has_an_index_file(tmp_path):
    dated = str(tmp_path / "a" / "2026" / "11" / "22" / "1458")
    assert gallery_index_path(str(tmp_path / "collected")) is None        # e.g. --collect DIR
    assert gallery_index_path(dated) is None                              # no saver state there
    (tmp_path / "a" / ".prompt_media").mkdir(parents=True)
    assert gallery_index_path(dated) == str(tmp_path / "a" / ".prompt_media" / "gallery" / "2026-11-22-1458.index")
