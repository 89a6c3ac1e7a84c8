"""Regenerating an image from its sidecar, exactly or with changes (the gallery's Regenerate and
Vary, the CLI's --regenerate): the one place that turns a sidecar into a job.

The job is a one-job prompt media file (the sidecar's exact prompt, negative, seed, sampler
settings, size and LoRAs; ``changes`` applied) plus the checkpoint and the session root, queued
through the project's API workflow (workflows/api/prompt_media_session.json), so it runs like
any session: a new session folder, a sidecar of what the sampler really used. The file's
``regenerated_from`` section names the parent image (path inside the output directory, its
sha256, the changes); the Session Saver copies it into the new sidecar and adds whether the new
pixels equal the parent's.
"""
from __future__ import annotations

import copy
import os
from dataclasses import dataclass

import yaml

from .session import DEFAULT_ROOT, dated_split
from .sidecar import GenerationParamsError, Sidecar, regeneration

PARENT_KEY = "regenerated_from"      # in the job's prompt file and in the new sidecar
# what Vary may change, and how each is read from the request
CHANGEABLE = {"seed": int, "steps": int, "cfg": float, "prompt": str, "negative": str}
SAMPLERS_REPRODUCED = {"KSampler"}   # the sampler node of the project's workflow


class RegenerateError(ValueError):
    """The image cannot be regenerated this way; the message says why."""


@dataclass(frozen=True)
class RegenerationJob:
    yaml_text: str          # a one-job prompt media file
    checkpoint: str         # ckpt_name for CheckpointLoaderSimple
    root: str               # the session root for the saver (inside the output directory)
    parent: dict            # the regenerated_from section
    description: str


def _change(key: str, value):
    kind = CHANGEABLE.get(key)
    if kind is None:
        raise RegenerateError(f"{key!r} cannot be changed (only {', '.join(CHANGEABLE)})")
    if kind is str:
        if not isinstance(value, str) or not value.strip():
            raise RegenerateError(f"{key} must be non-empty text")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and value != int(value)):
        raise RegenerateError(f"{key} must be {'an integer' if kind is int else 'a number'}, got {value!r:.40}")
    value = kind(value)
    if key == "seed" and not 0 <= value <= 0xffffffffffffffff:
        raise RegenerateError("seed must be from 0 to 2^64-1")
    if key == "steps" and not 1 <= value <= 10000:
        raise RegenerateError("steps must be from 1 to 10000")
    return value


def session_root(folder: str) -> str:
    """The saver root a session folder (relative to the output directory, '/'-separated) was
    made under: ``<root>/YYYY/MM/DD/HHMM``; any other folder regenerates into the default."""
    split = dated_split(folder)
    return split[0] if split and split[0] else DEFAULT_ROOT


def regeneration_job(sidecar: Sidecar, image: str, changes: dict | None = None) -> RegenerationJob:
    """The job that regenerates ``sidecar``'s image (``image``: its path inside the output
    directory, '/'-separated), with ``changes`` (seed, steps, cfg, prompt, negative) applied.
    Raises RegenerateError when the sidecar cannot be reproduced by the project's workflow."""
    changes = {k: _change(k, v) for k, v in (changes or {}).items()}
    source = sidecar.data.get("parameters_source")
    sampler_class = source.get("sampler_class") if isinstance(source, dict) else None
    if sampler_class and sampler_class not in SAMPLERS_REPRODUCED:
        raise RegenerateError(f"{image}: made by a {sampler_class} graph; Regenerate reproduces "
                              f"{', '.join(sorted(SAMPLERS_REPRODUCED))} graphs (load its workflow instead)")
    try:
        r = regeneration(sidecar)
    except GenerationParamsError as e:
        raise RegenerateError(str(e)) from None
    if not r.model_name:
        raise RegenerateError(f"{image}: the sidecar names no checkpoint (parameters.model_name)")
    parent = {"image": image, "image_sha256": sidecar.data.get("image_sha256"), "changes": changes}
    document = {
        PARENT_KEY: parent,
        "prompt_settings": {"prefix": "", "negative": changes.get("negative", r.negative)},
        "prompts": [changes.get("prompt", r.positive)],
        "seeds": [changes.get("seed", r.seed)],
        "steps": changes.get("steps", r.steps), "cfg": changes.get("cfg", r.cfg),
        "width": r.width, "height": r.height, "sampler": r.sampler, "scheduler": r.scheduler,
        "denoise": r.denoise,
        "loras": [{"name": lora["name"], "strength_model": lora["strength_model"],
                   "strength_clip": lora["strength_clip"]} for lora in r.lora_stack],
    }
    what = ", ".join(f"{k} {v}" if k not in ("prompt", "negative") else k for k, v in changes.items())
    folder = image.rsplit("/", 1)[0] if "/" in image else ""
    return RegenerationJob(
        yaml_text=yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=1 << 16),
        checkpoint=r.model_name, root=session_root(folder), parent=parent,
        description=f"{os.path.basename(image)}" + (f" with {what}" if what else " exactly"))


def regeneration_prompt(workflow: dict, job: RegenerationJob) -> dict:
    """The project's API workflow set up to run ``job``: the checkpoint, the job's file as the
    loader's inline YAML, job 0 of one job, the saver's root; no contact sheet for one image."""
    prompt = copy.deepcopy(workflow)

    def only(class_type: str) -> dict:
        nodes = [n for n in prompt.values() if isinstance(n, dict) and n.get("class_type") == class_type]
        if len(nodes) != 1:
            raise RegenerateError(f"the workflow needs exactly one {class_type} node (it has {len(nodes)})")
        return nodes[0]["inputs"]

    only("CheckpointLoaderSimple")["ckpt_name"] = job.checkpoint
    only("PromptMediaLoader").update(file="", preset="", yaml_text=job.yaml_text)
    only("PromptMediaOOM").update(mode="product", run="one job per run", job_index=0)
    only("PromptMediaSessionSaver").update(root=job.root, compose="none")
    return prompt


def parent_record(section, output_dir: str, pixels_equal) -> dict | None:
    """The ``regenerated_from`` section of a new sidecar, from the job file's section: the
    parent's path, sha256 and changes as given, plus ``identical_pixels`` (``pixels_equal(path)``
    on the parent image when it is still inside the output directory, else None)."""
    if not isinstance(section, dict) or not isinstance(section.get("image"), str):
        return None
    from .paths import PathError, path_inside
    changes = section.get("changes") if isinstance(section.get("changes"), dict) else {}
    record = {"image": section["image"],
              "image_sha256": section.get("image_sha256") if isinstance(section.get("image_sha256"), str) else None,
              "changes": {str(k): v for k, v in changes.items() if isinstance(v, (str, int, float))},
              "identical_pixels": None}
    try:
        path = path_inside(output_dir, section["image"], "regenerated_from.image")
        if os.path.isfile(path):
            record["identical_pixels"] = bool(pixels_equal(path))
    except (PathError, OSError, ValueError):
        pass
    return record

