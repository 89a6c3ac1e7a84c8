"""Issue 14.4 on the real host: run_session.py drives a Flux-shaped API workflow (UNETLoader,
CLIPLoader, VAELoader, SamplerCustomAdvanced) with --model / --text-encoders / --vae set on
whichever loaders it has, resolved like LoRA names; the preset's 'model:' is used without
--model; a model file ComfyUI lacks is refused before anything is queued."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from prompt_media_pkg.tests.host.test_sampling_shapes_host import CLIP_L, SHAPES, UNET, VAE, session_graph

REPO = Path(__file__).resolve().parents[2]
TWO_JOBS = "prompts: [a red fox, a blue bird]\nseeds: [3]\nsteps: 1\nwidth: 64\nheight: 64\n"


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "run_session.py"), *args], capture_output=True, text=True,
                          timeout=600)


def flux_like_workflow(tmp_path: Path) -> Path:
    """The Flux-shaped session graph with the real file names a Flux user has (none of them here)."""
    prompt = session_graph(SHAPES["Flux (BasicGuider)"], "placeholder.yaml", "collections/images")
    prompt["20"]["inputs"]["unet_name"] = "flux1-dev.safetensors"
    prompt["21"]["inputs"]["clip_name"] = "clip_l.safetensors"
    prompt["22"]["inputs"]["vae_name"] = "ae.safetensors"
    path = tmp_path / "flux_like.json"
    path.write_text(json.dumps(prompt), encoding="utf-8")
    return path


def sidecars(comfy, root: str) -> list[dict]:
    return [json.loads(p.read_text(encoding="utf-8"))
            for p in sorted((comfy.server.output_dir / root).rglob("*_seed_*.json"))]


def test_model_text_encoders_and_vae_on_a_flux_shaped_workflow(comfy, tmp_path):
    workflow = flux_like_workflow(tmp_path)
    (tmp_path / "two.yaml").write_text(TWO_JOBS, encoding="utf-8")
    history = set(comfy.client.history())
    refused = cli(str(tmp_path / "two.yaml"), "--server", comfy.server.url, "--workflow", str(workflow),
                  "--model", "tiny_unt", "--text-encoders", "tiny_clip_l", "--vae", "tiny_vae")
    assert (refused.returncode, refused.stdout) == (2, "")
    assert refused.stderr.endswith(f"error: --model: diffusion model 'tiny_unt' not found in ComfyUI's "
                                   f"models/diffusion_models (closest: {UNET})\n")
    assert set(comfy.client.history()) == history                 # nothing was queued

    root = f"{comfy.prefix}/cli"
    done = cli(str(tmp_path / "two.yaml"), "--server", comfy.server.url, "--workflow", str(workflow),
               "--model", "tiny_unet", "--text-encoders", "tiny_clip_l", "--vae", "tiny_vae", "--root", root,
               "--compose", "none")
    assert done.returncode == 0, done.stderr
    sides = sidecars(comfy, root)
    assert [s["output"]["filename"] for s in sides] == ["001_seed_3.png", "002_seed_3.png"]
    for side in sides:
        p = side["parameters"]
        assert (p["model_name"], p["model_folder"], p["vae_name"]) == (UNET, "diffusion_models", VAE)
        assert [t["name"] for t in p["text_encoders"]] == [CLIP_L]

    # without --model the preset's 'model:' picks the file
    (tmp_path / "preset.yaml").write_text(TWO_JOBS + "workflows:\n  mine:\n    model: Tiny_UNet\n", encoding="utf-8")
    root2 = f"{comfy.prefix}/cli_preset"
    by_preset = cli(str(tmp_path / "preset.yaml"), "--server", comfy.server.url, "--workflow", str(workflow),
                    "--preset", "mine", "--text-encoders", CLIP_L, "--vae", VAE, "--root", root2, "--compose", "none")
    assert by_preset.returncode == 0, by_preset.stderr
    assert {s["parameters"]["model_name"] for s in sidecars(comfy, root2)} == {UNET}


def test_without_model_the_workflows_own_file_must_be_there(comfy, tmp_path):
    (tmp_path / "two.yaml").write_text(TWO_JOBS, encoding="utf-8")
    result = cli(str(tmp_path / "two.yaml"), "--server", comfy.server.url)          # the shipped template's
    assert (result.returncode, result.stdout) == (2, "")
    assert "error: CheckpointLoaderSimple (node 1).ckpt_name in the workflow (set it with --model): checkpoint " \
           "'v1-5-pruned-emaonly.safetensors' not found in ComfyUI's models/checkpoints" in result.stderr
