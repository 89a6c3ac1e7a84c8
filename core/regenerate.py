"""Regenerating an image from its sidecar, exactly or with changes (the gallery's Regenerate and
Vary, the CLI's --regenerate and --set): the one place that turns a sidecar into a job.

The job is a one-job prompt media file (the sidecar's exact prompt, negative, seed, sampler
settings, size and LoRAs; ``changes`` applied) plus the checkpoint and the session root, queued
through the project's API workflow (workflows/api/prompt_media_session.json), so it runs like
any session: a new session folder, a sidecar of what the sampler really used. The file's
``regenerated_from`` section names the parent image (path inside the output directory, its
sha256, the changes, and for the CLI the parent's pixel digest); the Session Saver copies it into
the new sidecar and adds whether the new pixels equal the parent's.

The CLI regenerates many images as one set (:func:`regeneration_sources` expands images, sidecars
and session folders in a fixed order; :func:`parse_settings` reads ``--set KEY=VALUE``); each
image is still its own one-job file, queued into one planned session folder.
"""
from __future__ import annotations

import copy
import hashlib
import os
from dataclasses import dataclass, replace

import yaml

from .session import DEFAULT_ROOT, dated_split, session_sidecars
from .sidecar import GenerationParamsError, Sidecar, regeneration

PARENT_KEY = "regenerated_from"      # in the job's prompt file and in the new sidecar
# what Vary and --set may change, and how each is read from the request
CHANGEABLE = {"seed": int, "steps": int, "cfg": float, "sampler": str, "scheduler": str, "denoise": float,
              "width": int, "height": int, "prompt": str, "negative": str}
# --set also takes the sidecar's and the prompt file's spellings
SET_ALIASES = {"cfg_scale": "cfg", "sampler_name": "sampler", "negative_prompt": "negative", "positive": "prompt"}
SAMPLERS_REPRODUCED = {"KSampler"}   # the sampler node of the project's workflow
IMAGE_SUFFIX, SIDECAR_SUFFIX = ".png", ".json"


class RegenerateError(ValueError):
    """The image cannot be regenerated this way; the message says why."""


@dataclass(frozen=True)
class RegenerationJob:
    yaml_text: str          # a one-job prompt media file
    checkpoint: str         # ckpt_name for CheckpointLoaderSimple
    root: str               # the session root for the saver (inside the output directory)
    parent: dict            # the regenerated_from section
    description: str
    seed: int = 0           # the seed it runs with (its file name's)
    prompt: str = ""        # the positive prompt it runs with


@dataclass(frozen=True)
class Offset:
    """``--set seed=+1``: added to each image's own value."""
    amount: int | float
    text: str               # the --set as typed, for errors


def _change(key: str, value):
    kind = CHANGEABLE.get(key)
    if kind is None:
        raise RegenerateError(f"{key!r} cannot be changed (only {', '.join(CHANGEABLE)})")
    if kind is str:
        if not isinstance(value, str) or not value.strip() and key != "negative":
            raise RegenerateError(f"{key} must be non-empty text")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and value != int(value)):
        raise RegenerateError(f"{key} must be {'an integer' if kind is int else 'a number'}, got {value!r:.40}")
    value = kind(value)
    if key == "seed" and not 0 <= value <= 0xffffffffffffffff:
        raise RegenerateError("seed must be from 0 to 2^64-1")
    if key == "steps" and not 1 <= value <= 10000:
        raise RegenerateError("steps must be from 1 to 10000")
    if key in ("width", "height") and not 16 <= value <= 16384:
        raise RegenerateError(f"{key} must be from 16 to 16384")
    if key == "denoise" and not 0 < value <= 1:
        raise RegenerateError("denoise must be more than 0 and at most 1")
    if key == "cfg" and not 0 <= value <= 100:
        raise RegenerateError("cfg must be from 0 to 100")
    return value


def parse_setting(text: str) -> tuple[str, object]:
    """One ``--set KEY=VALUE``: (key, value), or (key, Offset) for a number written with a sign
    (``seed=+1``, ``cfg=-0.5``: added to each image's own value). Keys: CHANGEABLE and
    SET_ALIASES. Raises RegenerateError naming the --set."""
    key, sep, value = text.partition("=")
    key = key.strip()
    name = SET_ALIASES.get(key, key)
    if not sep or not key:
        raise RegenerateError(f"--set {text!r}: write KEY=VALUE, e.g. --set cfg_scale=5 or --set seed=+1")
    kind = CHANGEABLE.get(name)
    if kind is None:
        raise RegenerateError(f"--set {text}: {key!r} cannot be changed (only "
                              f"{', '.join(CHANGEABLE)}; cfg_scale for cfg)")
    try:
        if kind is str:
            return name, _change(name, value)
        number = value.strip()
        try:
            parsed = int(number) if kind is int else float(number)
        except ValueError:
            raise RegenerateError(f"{name} must be {'an integer' if kind is int else 'a number'}, "
                                  f"got {value!r:.40}") from None
        if number.startswith(("+", "-")):
            return name, Offset(parsed, f"--set {text}")
        return name, _change(name, parsed)
    except RegenerateError as e:
        message = str(e)
        raise RegenerateError(message if message.startswith("--set ") else f"--set {text}: {message}") from None


def parse_settings(texts) -> dict:
    """Every ``--set`` in order (a key set twice: the last one counts)."""
    return dict(parse_setting(text) for text in texts or ())


def _resolved(key: str, value, current):
    """A change with an Offset applied to the image's own value (errors name the --set)."""
    if not isinstance(value, Offset):
        return _change(key, value)
    total = current + value.amount
    total = round(total, 6) if isinstance(total, float) else total     # cfg 7.0 -0.3: 6.7, not 6.699999…
    try:
        return _change(key, total)
    except RegenerateError as e:
        raise RegenerateError(f"{value.text} makes {key} {total}: {e}") from None


def _unreproducible(sidecar: Sidecar) -> str | None:
    """Why the project's workflow (one checkpoint, one KSampler pass, one image) would not make
    this image again, or None."""
    if sidecar.stages > 1:
        return f"made by {sidecar.stages} sampling passes; regenerating runs one"
    if sidecar.model_folder not in (None, "checkpoints"):
        return f"its model is in models/{sidecar.model_folder}; regenerating loads a checkpoint"
    if sidecar.text_encoders:
        return "made with separately loaded text encoders; regenerating uses the checkpoint's"
    if sidecar.vae_name:
        return f"made with a separate VAE ({sidecar.vae_name}); regenerating uses the checkpoint's"
    batch_index, batch_size = sidecar.parameters.get("batch_index"), sidecar.parameters.get("batch_size")
    if isinstance(batch_index, int) and batch_index > 0:
        return (f"image {batch_index + 1} of a batch of {batch_size}: its noise is drawn with the batch; "
                "regenerating makes one image")
    return None


def session_root(folder: str) -> str:
    """The saver root a session folder (relative to the output directory, '/'-separated) was
    made under: ``<root>/YYYY/MM/DD/HHMM``; any other folder regenerates into the default."""
    split = dated_split(folder)
    return split[0] if split and split[0] else DEFAULT_ROOT


def regeneration_job(sidecar: Sidecar, image: str, changes: dict | None = None,
                     parent_pixels: str | None = None) -> RegenerationJob:
    """The job that regenerates ``sidecar``'s image (``image``: its path inside the output
    directory, '/'-separated, or for the CLI the path it was read from), with ``changes``
    (CHANGEABLE keys; an Offset is added to the image's value) applied. ``parent_pixels``: the
    parent's :func:`pixels_sha256`, for a saver that may not see the parent file itself. Raises
    RegenerateError when the sidecar cannot be reproduced by the project's workflow."""
    source = sidecar.data.get("parameters_source")
    sampler_class = source.get("sampler_class") if isinstance(source, dict) else None
    if sampler_class and sampler_class not in SAMPLERS_REPRODUCED:
        raise RegenerateError(f"{image}: made by a {sampler_class} graph; Regenerate reproduces "
                              f"{', '.join(sorted(SAMPLERS_REPRODUCED))} graphs (load its workflow instead)")
    why = _unreproducible(sidecar)
    if why:
        raise RegenerateError(f"{image}: {why} (load its workflow instead)")
    try:
        r = regeneration(sidecar)
    except GenerationParamsError as e:
        raise RegenerateError(str(e)) from None
    if not r.model_name:
        raise RegenerateError(f"{image}: the sidecar names no checkpoint (parameters.model_name)")
    current = {"seed": r.seed, "steps": r.steps, "cfg": r.cfg, "denoise": r.denoise, "width": r.width,
               "height": r.height}
    changes = {k: _resolved(k, v, current.get(k)) for k, v in (changes or {}).items()}
    parent = {"image": image, "image_sha256": sidecar.data.get("image_sha256"), "changes": changes}
    if parent_pixels:
        parent["pixels_sha256"] = parent_pixels
    positive, seed = changes.get("prompt", r.positive), changes.get("seed", r.seed)
    document = {
        PARENT_KEY: parent,
        "prompt_settings": {"prefix": "", "negative": changes.get("negative", r.negative)},
        "prompts": [positive],
        "seeds": [seed],
        "steps": changes.get("steps", r.steps), "cfg": changes.get("cfg", r.cfg),
        "width": changes.get("width", r.width), "height": changes.get("height", r.height),
        "sampler": changes.get("sampler", r.sampler), "scheduler": changes.get("scheduler", r.scheduler),
        "denoise": changes.get("denoise", r.denoise),
        "loras": [{"name": lora["name"], "strength_model": lora["strength_model"],
                   "strength_clip": lora["strength_clip"]} for lora in r.lora_stack],
    }
    what = ", ".join(f"{k} {v}" if k not in ("prompt", "negative") else k for k, v in changes.items())
    folder = image.rsplit("/", 1)[0] if "/" in image else ""
    return RegenerationJob(
        yaml_text=yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=1 << 16),
        checkpoint=r.model_name, root=session_root(folder), parent=parent,
        description=f"{os.path.basename(image)}" + (f" with {what}" if what else " exactly"),
        seed=seed, prompt=positive)


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


def parent_record(section, output_dir: str, pixels_equal, pixels_digest=None) -> dict | None:
    """The ``regenerated_from`` section of a new sidecar, from the job file's section: the
    parent's path, sha256 and changes as given, plus ``identical_pixels``: the section's
    ``pixels_sha256`` (the CLI's) against ``pixels_digest()`` of the new image, else
    ``pixels_equal(path)`` on the parent image when it is still inside the output directory,
    else None."""
    if not isinstance(section, dict) or not isinstance(section.get("image"), str):
        return None
    from .paths import PathError, path_inside
    changes = section.get("changes") if isinstance(section.get("changes"), dict) else {}
    record = {"image": section["image"],
              "image_sha256": section.get("image_sha256") if isinstance(section.get("image_sha256"), str) else None,
              "changes": {str(k): v for k, v in changes.items() if isinstance(v, (str, int, float))},
              "identical_pixels": None}
    if isinstance(section.get("pixels_sha256"), str) and pixels_digest is not None:
        record["identical_pixels"] = section["pixels_sha256"] == pixels_digest()
        return record
    try:
        path = path_inside(output_dir, section["image"], "regenerated_from.image")
        if os.path.isfile(path):
            record["identical_pixels"] = bool(pixels_equal(path))
    except (PathError, OSError, ValueError):
        pass
    return record



# --------------------------------------------------------------------------- the CLI's sets

def pixels_sha256(mode: str, size: tuple[int, int], raw: bytes) -> str:
    """A digest of an image's pixels (not its file: PNG metadata differs between runs): equal
    for equal pixels of the same mode and size."""
    return hashlib.sha256(f"{mode} {size[0]}x{size[1]}\n".encode() + raw).hexdigest()


def file_pixels_sha256(path: str) -> str | None:
    """:func:`pixels_sha256` of an image file; None when there is none or Pillow cannot read it."""
    try:
        from PIL import Image
        with Image.open(path) as im:
            im.load()
            return pixels_sha256(im.mode, im.size, im.tobytes())
    except (ImportError, OSError, ValueError):
        return None


def regeneration_sources(paths) -> list[str]:
    """The images to regenerate, each as its sidecar's path, in a fixed order: the paths in the
    order given; an image (.png) or a sidecar (.json) itself; a folder: its session images in
    number order, then its subfolders' (sorted, recursively; hidden ones skipped). Each image
    once. Raises RegenerateError for a path that is missing, not an image or sidecar, or a
    folder without any session image."""
    out: dict[str, None] = {}
    for given in paths:
        path = os.path.abspath(given)
        if os.path.isdir(path):
            found = []
            for folder, subfolders, _files in os.walk(path):
                subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
                found += session_sidecars(folder)
            if not found:
                raise RegenerateError(f"{given}: no session images (NNN_seed_S.png with a .json sidecar) in this folder")
            out.update(dict.fromkeys(found))
        elif os.path.isfile(path):
            stem, suffix = os.path.splitext(path)
            if suffix.lower() not in (IMAGE_SUFFIX, SIDECAR_SUFFIX):
                raise RegenerateError(f"{given}: not an image (.png) or a sidecar (.json)")
            out[stem + SIDECAR_SUFFIX] = None
        else:
            raise RegenerateError(f"{given}: no such file or folder")
    return list(out)


@dataclass
class RegenerationPlan:
    """A --regenerate set before it runs: the jobs in order, each with the sidecar it came from,
    and the images that cannot be regenerated, each with the reason."""
    changes: dict
    jobs: list[tuple[str, RegenerationJob]]      # (sidecar path, job)
    skipped: list[tuple[str, str]]               # (path, reason)

    def as_dict(self) -> dict:
        from .plan import planned_image_name
        return {"source": "regenerate", "changes": {k: v.text.split("=", 1)[1] if isinstance(v, Offset) else v
                                                     for k, v in self.changes.items()},
                "jobs": [{"number": i + 1, "index": i, "filename": planned_image_name(i, job.seed),
                          "source": job.parent["image"], "image_sha256": job.parent["image_sha256"],
                          "prompt": job.prompt, "seed": job.seed, "changes": dict(job.parent["changes"]),
                          "checkpoint": job.checkpoint}
                         for i, (_sidecar, job) in enumerate(self.jobs)],
                "skipped": [{"source": path, "reason": reason} for path, reason in self.skipped],
                "totals": {"jobs": len(self.jobs), "images": len(self.jobs), "skipped": len(self.skipped)}}

    def table(self, width: int = 120) -> str:
        """The plan as text: every job (number and file name as in an empty folder, seed, changes,
        source image, prompt), then the skipped images with their reasons."""
        d = self.as_dict()
        rows = [["#", "file", "seed", "changes", "from", "prompt"]]
        for job in d["jobs"]:
            what = ", ".join(f"{k} {v}" if k not in ("prompt", "negative") else k for k, v in job["changes"].items())
            rows.append([str(job["number"]), job["filename"], str(job["seed"]), what or "-",
                         _short_path(job["source"]), job["prompt"]])
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
        room = max(20, width - sum(w + 2 for w in widths))
        changes = ", ".join(f"{k}={v}" for k, v in d["changes"].items())
        lines = [f"regenerate: {len(self.jobs)} of {len(self.jobs) + len(self.skipped)} images"
                 + (f" with {changes}" if changes else " exactly")]
        for r in rows:
            prompt = r[-1] if len(r[-1]) <= room else r[-1][:room - 1] + "…"
            lines.append("  ".join(c.ljust(w) for c, w in zip(r[:-1], widths)) + "  " + prompt)
        lines.append(f"{len(self.jobs):,} job{'s' if len(self.jobs) != 1 else ''} into one new session folder"
                     + (f"; {len(self.skipped)} cannot be regenerated:" if self.skipped else ""))
        lines += [f"  {path}: {reason}" for path, reason in self.skipped]
        return "\n".join(lines)


def _short_path(path: str) -> str:
    """The session folder's minute and the file name: what tells two sources apart in a table."""
    parts = path.replace("\\", "/").split("/")
    return "/".join(parts[-2:])


def plan_regeneration(paths, settings=(), root: str = DEFAULT_ROOT, pixels: bool = False) -> RegenerationPlan:
    """The --regenerate set of ``paths`` (see :func:`regeneration_sources`) with ``settings``
    (``--set`` texts) into ``root``. ``pixels``: record each parent's pixel digest (the saver
    compares against it). A path or --set that is wrong raises RegenerateError (nothing runs); an
    image that cannot be regenerated is skipped with its reason."""
    from .errors import PromptMediaError
    from .schema import load_prompt_media
    from .sidecar import read_sidecar
    changes = parse_settings(settings)
    plan = RegenerationPlan(changes, [], [])
    sources = regeneration_sources(paths)
    images = [os.path.splitext(path)[0] + IMAGE_SUFFIX for path in sources]
    digests = dict.fromkeys(images)
    if pixels:        # decoding a 1024² PNG takes ~30 ms; Pillow decodes without the GIL
        from concurrent.futures import ThreadPoolExecutor
        with ThreadPoolExecutor(min(4, os.cpu_count() or 1)) as pool:
            digests = dict(zip(images, pool.map(file_pixels_sha256, images)))
    for sidecar_path, image in zip(sources, images):
        try:
            sidecar = read_sidecar(sidecar_path)
            if sidecar is None:
                raise RegenerateError(f"{sidecar_path}: no sidecar (it holds the parameters to regenerate)")
            job = regeneration_job(sidecar, image, changes, digests[image])
            load_prompt_media(job.yaml_text, os.path.basename(image))      # values the loader would refuse
        except (RegenerateError, GenerationParamsError, PromptMediaError) as e:
            plan.skipped.append((image, str(e).removeprefix(f"{image}: ").removeprefix(f"{sidecar_path}: ")))
            continue
        plan.jobs.append((sidecar_path, replace(job, root=root)))
    return plan
