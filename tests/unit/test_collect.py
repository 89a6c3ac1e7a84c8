"""core/collect.py: the --collect folder takes each image only with a sidecar that matches it,
never overwrites, holds one session, and tells --resume which jobs it has."""
from __future__ import annotations

import hashlib
import io
import json

import pytest
from PIL import Image

from prompt_media_pkg.core.collect import CollectError, CollectFolder
from prompt_media_pkg.tests.synthetic_session import make_sidecar

EXPANSION = "e0123456789abcdef"


def image_and_sidecar(job: int, seed: int = 7, colour=(40, 100, 160), expansion_id: str = EXPANSION,
                      first: int | None = 1) -> tuple[str, bytes, bytes]:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), colour).save(buf, "PNG")
    png = buf.getvalue()
    name = f"{job + 1:03d}_seed_{seed}.png"
    sidecar = make_sidecar(task_id=job + 1, seed=seed, seed_index=0, prompt_index=job, variation_index=0,
                           variations_per_prompt=1, base_prompt=f"prompt {job}", variation_values={}, total=4,
                           filename=name, folder="/server/output/2026/01/02/0304", expansion_id=expansion_id)
    sidecar["image_sha256"] = hashlib.sha256(png).hexdigest()
    if first is not None:
        sidecar["session"]["first"] = first
    return name, png, json.dumps(sidecar).encode()


def test_an_image_and_its_sidecar_are_collected_and_said_done(tmp_path):
    folder = CollectFolder(tmp_path / "collected")
    assert folder.open(EXPANSION, 1).done() == set()
    for job in (2, 0):
        name, png, sidecar = image_and_sidecar(job)
        path = folder.add(name, png, sidecar, "http://a:1 x/")
        assert path.read_bytes() == png and path.with_suffix(".json").read_bytes() == sidecar
    assert folder.open(EXPANSION, 1).done() == {0, 2}


def test_an_image_that_does_not_match_its_sidecar_is_not_collected(tmp_path):
    folder = CollectFolder(tmp_path)
    name, png, sidecar = image_and_sidecar(0)
    with pytest.raises(CollectError, match=r"001_seed_7.png does not match its sidecar's image_sha256"):
        folder.add(name, png + b"x", sidecar, "http://a:1 x/")
    with pytest.raises(CollectError, match="truncated or empty"):
        folder.add(name, png, sidecar[:20], "http://a:1 x/")
    assert list(tmp_path.iterdir()) == []


def test_the_same_file_twice_is_kept_and_other_bytes_never_overwrite(tmp_path):
    folder = CollectFolder(tmp_path)
    name, png, sidecar = image_and_sidecar(0)
    folder.add(name, png, sidecar, "a")
    folder.add(name, png, sidecar, "b")                      # a job run twice (a retry): the same bytes
    other_name, other_png, other_sidecar = image_and_sidecar(0, colour=(220, 40, 40))
    with pytest.raises(CollectError, match="exists with other content; not overwritten"):
        folder.add(other_name, other_png, other_sidecar, "c")
    assert (tmp_path / name).read_bytes() == png
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []   # no temp file left


def test_a_folder_of_another_session_is_refused(tmp_path):
    name, png, sidecar = image_and_sidecar(0, expansion_id="another")
    CollectFolder(tmp_path).add(name, png, sidecar, "a")
    with pytest.raises(CollectError, match="holds 001_seed_7.json of another session"):
        CollectFolder(tmp_path).open(EXPANSION, 1)
    other_first = CollectFolder(tmp_path / "first")
    other_first.open(EXPANSION, 9)
    name, png, sidecar = image_and_sidecar(0, first=9)
    other_first.add(name, png, sidecar, "a")
    with pytest.raises(CollectError, match="of another session"):
        CollectFolder(other_first.folder).open(EXPANSION, 1)


def test_a_sidecar_without_its_image_is_not_a_done_job(tmp_path):
    name, png, sidecar = image_and_sidecar(1)
    CollectFolder(tmp_path).add(name, png, sidecar, "a")
    (tmp_path / name).unlink()
    assert CollectFolder(tmp_path).open(EXPANSION, 1).done() == set()


def test_the_prompt_file_is_copied_once(tmp_path):
    source = tmp_path / "my prompts.yaml"
    source.write_text("prompts: [a]\n", encoding="utf-8")
    folder = CollectFolder(tmp_path / "c")
    folder.open(EXPANSION)
    first = folder.add_prompt_file(source)
    assert folder.add_prompt_file(source) == first and first.read_text() == "prompts: [a]\n"
