"""run_session.py --regenerate without a server (core/regenerate.py): --set parsing (errors name the
bad --set), offsets applied to each image's own value, path expansion (images, sidecars, session
folders; fixed order, each image once), the plan with the images that cannot be regenerated and
why, the pixel digest the saver compares against, and the CLI's dry run."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from PIL import Image

from prompt_media_pkg.core.expand import expand
from prompt_media_pkg.core.regenerate import (
    PARENT_KEY,
    Offset,
    RegenerateError,
    file_pixels_sha256,
    parent_record,
    parse_setting,
    parse_settings,
    pixels_sha256,
    plan_regeneration,
    regeneration_job,
    regeneration_sources,
)
from prompt_media_pkg.core.schema import load_prompt_media
from prompt_media_pkg.core.session import NumberingError, PlannedSession, open_session, open_set
from prompt_media_pkg.core.sidecar import read_sidecar
from prompt_media_pkg.tests.synthetic_session import write_session

REPO = Path(__file__).resolve().parents[2]


def session(folder: Path, seeds=(3, 4), prompts=("a red fox", "a blue bird")) -> list[Path]:
    """A synthetic session; its images in number order."""
    jobs = write_session(str(folder), seeds=seeds, prompts=prompts, variations=[{}])
    return [folder / job["name"] for job in jobs]


def edit(png: Path, change) -> None:
    path = png.with_suffix(".json")
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


@pytest.mark.parametrize("text, expected", [
    ("cfg_scale=5", ("cfg", 5.0)), ("cfg=4.5", ("cfg", 4.5)), ("seed=12", ("seed", 12)),
    ("steps=30", ("steps", 30)), ("sampler=dpmpp_2m", ("sampler", "dpmpp_2m")),
    ("sampler_name=euler", ("sampler", "euler")), ("scheduler=karras", ("scheduler", "karras")),
    ("denoise=0.5", ("denoise", 0.5)), ("width=768", ("width", 768)),
    ("prompt=a cat, sitting", ("prompt", "a cat, sitting")), ("negative_prompt=", ("negative", "")),
    ("seed=+1", ("seed", Offset(1, "--set seed=+1"))), ("cfg=-0.5", ("cfg", Offset(-0.5, "--set cfg=-0.5"))),
    (" steps = +10", ("steps", Offset(10, "--set  steps = +10"))),
])
def test_a_set_is_read_as_a_value_or_an_offset(text, expected):
    assert parse_setting(text) == expected


@pytest.mark.parametrize("text, message", [
    ("cfg_scale", "--set 'cfg_scale': write KEY=VALUE, e.g. --set cfg_scale=5 or --set seed=+1"),
    ("=5", "--set '=5': write KEY=VALUE"),
    ("model=x.safetensors", "--set model=x.safetensors: 'model' cannot be changed (only seed, steps, cfg, sampler"),
    ("cfg_scale=high", "--set cfg_scale=high: cfg must be a number, got 'high'"),
    ("steps=2.5", "--set steps=2.5: steps must be an integer, got '2.5'"),
    ("seed=+x", "--set seed=+x: seed must be an integer"),
    ("steps=0", "--set steps=0: steps must be from 1 to 10000"),
    ("denoise=1.5", "--set denoise=1.5: denoise must be more than 0 and at most 1"),
    ("prompt=  ", "--set prompt=  : prompt must be non-empty text"),
])
def test_a_bad_set_is_refused_naming_it(text, message):
    with pytest.raises(RegenerateError) as e:
        parse_setting(text)
    assert str(e.value).startswith(message)


def test_the_last_set_of_a_key_counts():
    assert parse_settings(["cfg=5", "cfg_scale=6", "seed=+2"]) == {"cfg": 6.0, "seed": Offset(2, "--set seed=+2")}


def test_offsets_apply_to_each_image_and_are_recorded_resolved(tmp_path):
    images = session(tmp_path / "s")
    changes = parse_settings(["seed=+1", "cfg=-0.3", "steps=+2"])
    for png in images:
        car = read_sidecar(png)
        job = regeneration_job(car, str(png), changes)
        assert job.parent["changes"] == {"seed": car.seed + 1, "cfg": 6.7, "steps": 4}
        (only,) = expand(load_prompt_media(job.yaml_text))
        assert (only["seed"], only["cfg"], only["steps"]) == (car.seed + 1, 6.7, 4)
        assert only["positive"] == car.prompt and job.seed == car.seed + 1
    with pytest.raises(RegenerateError, match=r"^--set steps=-2 makes steps 0: steps must be from 1"):
        regeneration_job(read_sidecar(images[0]), "x.png", parse_settings(["steps=-2"]))


def test_sources_expand_in_a_fixed_order_each_image_once(tmp_path):
    a = session(tmp_path / "out" / "2026" / "12" / "03" / "1300")
    b = session(tmp_path / "out" / "2026" / "12" / "03" / "1301", seeds=(5,))
    (tmp_path / "out" / ".prompt_media").mkdir()
    (tmp_path / "out" / ".prompt_media" / "001_seed_1.json").write_text("{}")     # state, not images
    sidecars = [str(p.with_suffix(".json")) for p in a + b]
    assert regeneration_sources([tmp_path / "out"]) == sidecars
    # the order given; an image and its sidecar are one image; a folder after its own image: once
    assert regeneration_sources([b[1], a[2].with_suffix(".json"), a[2], a[0].parent]) == \
        [sidecars[5], sidecars[2], sidecars[0], sidecars[1], sidecars[3]]
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.txt").write_text("x")
    for path, message in [(tmp_path / "missing", "no such file or folder"),
                          (tmp_path / "empty", "no session images"),
                          (tmp_path / "notes.txt", r"not an image \(.png\) or a sidecar \(.json\)")]:
        with pytest.raises(RegenerateError, match=f"^{path}: {message}"):
            regeneration_sources([str(a[0]), str(path)])


def test_the_plan_skips_what_cannot_be_regenerated_with_the_reason(tmp_path):
    images = session(tmp_path / "s", seeds=(3, 4, 5))
    lone = tmp_path / "s" / "010_seed_1.png"
    Image.new("RGB", (8, 8)).save(lone)                      # an image without a sidecar
    edit(images[1], lambda d: d.update(parameters_source={"sampler_class": "SamplerCustomAdvanced"}))
    edit(images[2], lambda d: d["parameters"].update(vae_name="ae.safetensors"))
    edit(images[3], lambda d: d["parameters"].update(batch_index=1, batch_size=2))
    edit(images[4], lambda d: d["parameters"].update(stages=[{}, {}]))
    edit(images[5], lambda d: d["parameters"].pop("steps"))
    plan = plan_regeneration([tmp_path / "s", lone], ["cfg=5"], root="cli/regen", pixels=True)
    assert [job.parent["image"] for _sidecar, job in plan.jobs] == [str(images[0])]
    (_sidecar, job), = plan.jobs
    assert job.root == "cli/regen" and job.parent["changes"] == {"cfg": 5.0}
    assert job.parent["pixels_sha256"] == file_pixels_sha256(str(images[0]))
    reasons = dict(plan.skipped)
    assert list(reasons) == [str(p) for p in images[1:]] + [str(lone)]
    assert reasons[str(images[1])].startswith("made by a SamplerCustomAdvanced graph")
    assert reasons[str(images[2])].startswith("made with a separate VAE (ae.safetensors)")
    assert reasons[str(images[3])].startswith("image 2 of a batch of 2")
    assert reasons[str(images[4])].startswith("made by 2 sampling passes")
    assert "parameters.steps" in reasons[str(images[5])]
    assert reasons[str(lone)].endswith("no sidecar (it holds the parameters to regenerate)")
    as_json = plan.as_dict()
    assert as_json["totals"] == {"jobs": 1, "images": 1, "skipped": 6}
    assert as_json["jobs"][0] | {"prompt": None} == {
        "number": 1, "index": 0, "filename": "001_seed_3.png", "source": str(images[0]), "image_sha256": "2" * 64,
        "prompt": None, "seed": 3, "changes": {"cfg": 5.0}, "checkpoint": "tiny_sd15.ckpt"}


def test_the_pixel_digest_is_of_pixels_not_of_the_file(tmp_path):
    image = Image.new("RGB", (3, 2), (10, 20, 30))
    image.save(tmp_path / "a.png", compress_level=1)
    image.save(tmp_path / "b.png", compress_level=9, pnginfo=None)
    assert (tmp_path / "a.png").read_bytes() != (tmp_path / "b.png").read_bytes()
    assert file_pixels_sha256(str(tmp_path / "a.png")) == file_pixels_sha256(str(tmp_path / "b.png")) == \
        pixels_sha256("RGB", (3, 2), bytes([10, 20, 30]) * 6)
    assert pixels_sha256("RGB", (2, 3), bytes([10, 20, 30]) * 6) != pixels_sha256("RGB", (3, 2), bytes([10, 20, 30]) * 6)
    assert file_pixels_sha256(str(tmp_path / "missing.png")) is None
    # the saver's record: the digest decides when given, else the parent file inside the output folder
    section = {"image": "/elsewhere/001_seed_3.png", "image_sha256": "a" * 64, "changes": {"seed": 4},
               "pixels_sha256": "d" * 64}
    record = parent_record(section, str(tmp_path), lambda p: 1 / 0, lambda: "d" * 64)
    assert record == {"image": "/elsewhere/001_seed_3.png", "image_sha256": "a" * 64, "changes": {"seed": 4},
                      "identical_pixels": True}
    assert parent_record(section, str(tmp_path), lambda p: True, lambda: "e" * 64)["identical_pixels"] is False
    assert parent_record({"image": "a.png"}, str(tmp_path), lambda p: True)["identical_pixels"] is True
    assert PARENT_KEY == "regenerated_from"


def test_a_set_reserves_its_numbers_at_once_and_each_image_finds_its_own(tmp_path):
    root, minute = str(tmp_path / "out"), datetime(2026, 12, 3, 13, 40)
    parts = [f"e{n:015d}" for n in range(3000)]
    open_session(root, "earlier", 2, now=lambda: minute)                  # numbers 1-2 of that minute
    folder, first = open_set(root, parts, now=lambda: minute)
    assert (os.path.relpath(folder, root), first) == (os.path.join("2026", "12", "03", "1340"), 3)
    log = os.path.join(root, ".prompt_media", "numbers", "2026-12-03-1340")
    assert sorted(os.listdir(log)) == ["0001.json", "0002.json"]         # one entry for 3,000 images
    planned = [PlannedSession("2026/12/03/1340", first + k) for k in range(len(parts))]
    for k in (0, 1, 2999, 1500):                                         # any order, any server
        assert open_session(root, parts[k], 1, planned=planned[k]).first == first + k
    with pytest.raises(NumberingError, match="already reserved by another session"):
        open_session(root, parts[4], 1, planned=planned[5])              # not its own number
    with pytest.raises(NumberingError):
        open_session(root, "stranger", 1, planned=planned[7])
    # the same set opened on a server sharing the output folder: the same numbers, nothing new
    assert open_set(root, parts, planned=planned[0]) == (folder, first)
    # a second set in the same minute goes after the first
    assert open_set(root, parts[:2], now=lambda: minute) == (folder, first + len(parts))
    assert len(os.listdir(log)) == 3


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "run_session.py"), *args], capture_output=True, text=True,
                          timeout=120, cwd=cwd)


def test_dry_run_shows_the_plan_and_what_is_skipped(tmp_path):
    images = session(tmp_path / "s")
    edit(images[1], lambda d: d.update(parameters_source={"sampler_class": "SamplerCustomAdvanced"}))
    table = cli("--regenerate", "s", "--set", "seed=+1", "--dry-run", cwd=tmp_path)
    assert table.returncode == 1 and table.stderr == ""       # one image cannot be regenerated
    lines = table.stdout.splitlines()
    assert lines[0] == "regenerate: 3 of 4 images with seed=+1"
    assert lines[2].split() == ["1", "001_seed_4.png", "4", "seed", "4", "s/001_seed_3.png", "a", "red", "fox"]
    assert lines[-2] == "3 jobs into one new session folder; 1 cannot be regenerated:"
    assert lines[-1].startswith(f"  {images[1]}: made by a SamplerCustomAdvanced graph")
    plan = json.loads(cli("--regenerate", str(images[0]), "--dry-run", "--json", cwd=tmp_path).stdout)
    assert [j["filename"] for j in plan["jobs"]] == ["001_seed_3.png"] and plan["skipped"] == []


@pytest.mark.parametrize("args, message", [
    (["--regenerate", "s", "--set", "cfg=x", "--dry-run"], "error: --set cfg=x: cfg must be a number, got 'x'\n"),
    (["--regenerate", "nope", "--dry-run"], "error: nope: no such file or folder\n"),
    (["--set", "cfg=5", "x.yaml", "--dry-run"], "--set goes with --regenerate"),
    (["--regenerate", "s", "--resume", "--server", "x"], "--resume does not go with --regenerate"),
    (["--regenerate", "s", "--model", "m", "--server", "x"], "--model does not go with --regenerate"),
    (["--regenerate", "s", "--ray", "local", "--comfyui", "c", "--collect", "c"], "--ray does not go with --regenerate"),
    (["x.yaml", "--regenerate", "s", "--dry-run"], "--regenerate takes images, sidecars and session folders, not x.yaml"),
])
def test_regenerate_refuses_bad_input_before_anything_runs(tmp_path, args, message):
    session(tmp_path / "s")
    before = sorted(os.listdir(tmp_path / "s"))
    result = cli(*args, cwd=tmp_path)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.endswith(message) if message.startswith("error:") else message in result.stderr
    assert sorted(os.listdir(tmp_path / "s")) == before
