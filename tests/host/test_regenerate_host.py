"""Issue 17.7 in real ComfyUI: ``run_session.py --regenerate`` of a session folder the CLI made
gives pixel-identical images, each new sidecar naming its parent; ``--set`` makes a variation that
changes exactly the parameters set; an image that cannot be regenerated (its checkpoint is not on
the server) is reported with the reason and the others still run.

The server is ``checkpoint_only_server`` (only the tiny checkpoint, no LoRAs)."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from prompt_media_pkg.tests.host.workflows import TEST_CHECKPOINT

REPO = Path(__file__).resolve().parents[2]
SMALL = "prompts: [a red fox, a blue bird]\nseeds: [3]\nsteps: 1\nwidth: 64\nheight: 64\n"


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "run_session.py"), *args], capture_output=True, text=True,
                          timeout=600)


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def sidecar(png: Path) -> dict:
    return json.loads(png.with_suffix(".json").read_text(encoding="utf-8"))


def saved(result: subprocess.CompletedProcess) -> list[Path]:
    """The images a text-mode run printed on stdout, in order."""
    return [Path(line) for line in result.stdout.splitlines()]


@pytest.fixture
def session(checkpoint_only_server, tmp_path, request):
    """A two-image session made by the CLI: (server, root, its folder, its images in number order)."""
    server = checkpoint_only_server
    root = f"pmtest/{request.node.name}"
    path = tmp_path / "fox.yaml"
    path.write_text(SMALL, encoding="utf-8")
    made = cli(str(path), "--server", server.url, "--checkpoint", TEST_CHECKPOINT, "--root", root, "--compose", "none")
    assert made.returncode == 0, made.stderr
    images = saved(made)
    assert len(images) == 2 and images[0].parent == images[1].parent
    return server, root, images[0].parent, images


def test_regenerating_a_session_folder_gives_identical_pixels_naming_each_parent(session, tmp_path):
    server, root, folder, parents = session
    # an image whose checkpoint this server does not have: reported, the others go on
    bad = tmp_path / "elsewhere"
    bad.mkdir()
    shutil.copy(parents[0], bad / "007_seed_3.png")
    data = sidecar(parents[0])
    data["parameters"]["model_name"] = "missing_model.safetensors"
    (bad / "007_seed_3.json").write_text(json.dumps(data), encoding="utf-8")
    data = sidecar(parents[1])                             # and one whose LoRA it does not have
    data["parameters"]["loras"] = [{"lora_name": "gone_style.safetensors", "strength_model": 0.8, "strength_clip": 1.0}]
    (bad / "008_seed_3.json").write_text(json.dumps(data), encoding="utf-8")

    result = cli("--regenerate", str(folder), str(bad / "007_seed_3.png"), str(bad / "008_seed_3.json"),
                 "--server", server.url, "--root", root)
    assert result.returncode == 1, result.stderr          # done, but two images were not regenerated
    assert (f"error: cannot regenerate {bad / '007_seed_3.png'}: parameters.model_name: checkpoint "
            "'missing_model.safetensors' not found in ComfyUI's models/checkpoints") in result.stderr
    assert (f"error: cannot regenerate {bad / '008_seed_3.png'}: parameters.loras[0].name: LoRA "
            "'gone_style.safetensors' not found in the loras folder (the loras folder is empty); put the file "
            "into ComfyUI's models/loras\n") in result.stderr
    assert "pixels: 2 identical to their parent, 0 different" in result.stderr
    children = saved(result)
    assert len(children) == 2 and not set(children) & set(parents)
    numbers = [int(p.name.split("_")[0]) for p in children]
    assert numbers == [numbers[0], numbers[0] + 1]        # one planned set, in the sources' order
    for parent, child in zip(parents, children):
        assert np.array_equal(pixels(child), pixels(parent)), child
        record = sidecar(child)["regenerated_from"]
        assert record == {"image": str(parent), "image_sha256": sidecar(parent)["image_sha256"], "changes": {},
                          "identical_pixels": True}
        assert sidecar(child)["parameters"] == sidecar(parent)["parameters"]
        assert child.name.endswith(parent.name[3:])       # the same seed in the name
    # a regeneration's one-job file is not copied (its sidecar says it all); the set is composed here
    assert not list(children[0].parent.glob("prompt_media*.yaml"))
    assert (children[0].parent / "contact_sheet.jpg").is_file()
    # nothing was written next to the unregenerable image
    assert sorted(p.name for p in bad.iterdir()) == ["007_seed_3.json", "007_seed_3.png", "008_seed_3.json"]


def test_a_set_variation_changes_exactly_those_parameters(session, tmp_path):
    server, root, folder, parents = session
    sources = [str(parents[0]), str(parents[1].with_suffix(".json"))]      # an image and a sidecar
    collected = tmp_path / "variation"
    result = cli("--regenerate", *sources, "--set", "cfg_scale=5", "--set", "seed=+1", "--server", server.url,
                 "--root", root, "--events", "json", "--collect", str(collected))
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert [e["event"] for e in events if e["event"] != "started"][:1] == ["planned"]
    children = [Path(path) for e in events if e["event"] == "saved" for path in e["paths"]]
    assert len(children) == 2
    assert [e["source"] for e in events if e["event"] == "saved"] == [str(p) for p in parents]
    # --collect: the set in one folder of its own, byte for byte, with its contact sheet
    copies = [Path(path) for e in events if e["event"] == "saved" for path in e["collected"]]
    assert [p.parent for p in copies] == [collected, collected] and [p.name for p in copies] == [c.name for c in children]
    for copy, child in zip(copies, children):
        assert copy.read_bytes() == child.read_bytes()
        assert copy.with_suffix(".json").read_bytes() == child.with_suffix(".json").read_bytes()
    assert (collected / "contact_sheet.jpg").is_file()
    assert "pixels: 0 identical to their parent, 2 different" in result.stderr
    again = cli("--regenerate", *sources, "--server", server.url, "--root", root, "--collect", str(collected))
    assert again.returncode == 2 and "collect into an empty folder" in again.stderr
    for parent, child in zip(parents, children):
        before, after = sidecar(parent), sidecar(child)
        seed = before["parameters"]["seed"] + 1
        assert child.name.endswith(f"_seed_{seed}.png")
        assert after["parameters"]["cfg_scale"] == 5.0 and after["parameters"]["seed"] == seed
        changed = {k for k in before["parameters"] if before["parameters"][k] != after["parameters"].get(k)}
        assert changed == {"cfg_scale", "seed"}
        assert after["regenerated_from"] == {"image": str(parent), "image_sha256": before["image_sha256"],
                                             "changes": {"cfg": 5.0, "seed": seed}, "identical_pixels": False}


def test_a_set_over_two_servers_with_their_own_outputs_is_identical_and_collected(comfy_server, make_comfy_server,
                                                                                  tmp_path, request):
    """The second server cannot see the parents (its own output folder): identical_pixels comes from
    the parent's pixel digest the CLI sends with each job."""
    other = make_comfy_server()
    root = f"pmtest/{request.node.name}"
    path = tmp_path / "four.yaml"
    path.write_text(SMALL.replace("seeds: [3]", "seeds: [3, 8]"), encoding="utf-8")
    made = cli(str(path), "--server", comfy_server.url, "--checkpoint", TEST_CHECKPOINT, "--root", root,
               "--compose", "none")
    assert made.returncode == 0, made.stderr
    parents = saved(made)
    before = set(other.client.history())
    result = cli("--regenerate", str(parents[0].parent), "--server", comfy_server.url, "--server", other.url,
                 "--root", root, "--collect", str(tmp_path / "set"), "--lookahead", "1")
    assert result.returncode == 0, result.stderr
    assert len(set(other.client.history()) - before) >= 1            # the second server made some of them
    copies = saved(result)
    assert len(copies) == 4 and {p.parent for p in copies} == {(tmp_path / "set").resolve()}
    by_parent = {sidecar(p)["regenerated_from"]["image"]: p for p in copies}
    assert sorted(by_parent) == sorted(str(p) for p in parents)
    for parent in parents:
        child = by_parent[str(parent)]
        assert np.array_equal(pixels(child), pixels(parent)), child
        assert sidecar(child)["regenerated_from"]["identical_pixels"] is True
    # numbered in the sources' order, whichever server made each
    assert [by_parent[str(p)].name[:3] for p in parents] == sorted(p.name[:3] for p in copies)
    assert "pixels: 4 identical to their parent, 0 different" in result.stderr
