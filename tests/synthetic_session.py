"""Synthetic session folders for tests and benchmarks: PNGs plus sidecars in the contract's schema.

Used by tests/unit/test_contact_sheet.py (imported as ``prompt_media_pkg.tests.synthetic_session``)
and benchmarks/bench_contact_sheet.py. Pure stdlib + Pillow.
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence

from PIL import Image


def make_sidecar(*, task_id: int, seed: int, seed_index: int, prompt_index: int, variation_index: int,
                 variations_per_prompt: int, base_prompt: str, variation_values: dict, total: int,
                 filename: str, folder: str, width: int = 64, height: int = 64,
                 expansion_id: str = "e0123456789abcdef", source_name: str = "prompt.yaml") -> dict:
    """A sidecar dict with every key of the contract (values plausible, not computed)."""
    positive = ", ".join([base_prompt, *variation_values.values()])
    return {
        "plugin": "prompt-media", "plugin_version": "0.1.0", "timestamp": "20251012_143000",
        "task_id": task_id, "project_id": "test",
        "parameters": {
            "prompt": positive, "negative_prompt": "blurry", "width": width, "height": height,
            "steps": 2, "cfg_scale": 7.0, "sampler": "euler", "scheduler": "normal", "denoise": 1.0,
            "seed": seed, "model_name": "tiny_sd15.ckpt", "model_sha256": "0" * 64, "loras": [],
        },
        "output": {"filename": filename, "path": os.path.join(folder, filename)},
        "oom": {
            "index": task_id - 1, "total": total, "seed_index": seed_index, "prompt_index": prompt_index,
            "variation_index": variation_index, "variations_per_prompt": variations_per_prompt,
            "base_prompt": base_prompt, "variation_values": variation_values, "mode": "product",
            "variation_seed": 0, "expansion_id": expansion_id,
        },
        "session": {"started": "20251012_143000", "folder": folder, "source_name": source_name,
                    "source_sha256": "1" * 64},
        "image_sha256": "2" * 64,
        "system": {"comfyui_version": "0.3.64", "torch_version": "2.14.1", "device": "cpu", "gpu_driver": ""},
    }


def solid(colour: tuple[int, int, int], size: tuple[int, int]) -> Image.Image:
    return Image.new("RGB", size, colour)


def write_session(folder: str, seeds: Sequence[int], prompts: Sequence[str],
                  variations: Sequence[dict], *, size: tuple[int, int] = (64, 64),
                  image: Callable[[int, tuple[int, int]], Image.Image] | None = None,
                  sizes: Callable[[int], tuple[int, int]] | None = None,
                  order: Callable[[list[dict]], list[dict]] | None = None,
                  compress_level: int = 1, **sidecar_extra) -> list[dict]:
    """Writes seeds x prompts x variations images in the job order (seed, prompt, variation) and
    returns one dict per job: task_id, name, seed_index, prompt_index, variation_index, colour.

    ``image(task_id, size)`` draws the image (default: a unique solid colour per image);
    ``sizes(task_id)`` gives per-image sizes; ``order`` may reorder jobs before counts are given
    (so count order and grid order differ)."""
    os.makedirs(folder, exist_ok=True)
    jobs = [dict(seed=s, seed_index=si, prompt_index=pi, base_prompt=p, variation_index=vi,
                 variation_values=dict(v))
            for si, s in enumerate(seeds) for pi, p in enumerate(prompts) for vi, v in enumerate(variations)]
    if order:
        jobs = order(jobs)
    total = len(jobs)
    for task_id, job in enumerate(jobs, start=1):
        name = f"{task_id:03d}_seed_{job['seed']}"
        job_size = sizes(task_id) if sizes else size
        colour = unique_colour(task_id)
        im = image(task_id, job_size) if image else solid(colour, job_size)
        im.save(os.path.join(folder, name + ".png"), compress_level=compress_level)
        sidecar = make_sidecar(task_id=task_id, total=total, variations_per_prompt=len(variations),
                               filename=name + ".png", folder=folder, width=job_size[0],
                               height=job_size[1], **job, **sidecar_extra)
        with open(os.path.join(folder, name + ".json"), "w", encoding="utf-8") as f:
            json.dump(sidecar, f, indent=2)
        job.update(task_id=task_id, name=name + ".png", colour=colour)
    return jobs


def unique_colour(task_id: int) -> tuple[int, int, int]:
    """Distinct, JPEG-robust colours: channels on a coarse 0/64/128/192/255 lattice."""
    levels = (40, 100, 160, 220)
    n = task_id - 1
    return levels[n % 4], levels[(n // 4) % 4], levels[(n // 16) % 4] if n < 64 else 255 - (n % 64)
