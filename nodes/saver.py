"""PromptMediaSessionSaver: saves each image into its session folder with a JSON sidecar.

The logic lives in core (session, atomic, pngmeta, graph_params, sidecar, generation_params);
this module gathers what only ComfyUI knows: the output directory, model files, the graph,
--disable-metadata and system information.
"""
from __future__ import annotations

import logging
import os
import subprocess
from datetime import datetime
from functools import lru_cache

import numpy as np

import folder_paths
from comfy.cli_args import args
from comfy.utils import ProgressBar

from ..core.atomic import FLUSHER
from ..core.generation_params import GenerationParamsError, load_generation_params, save_generation_params
from ..core.graph_params import file_name_seed, find_sampler_params, resolve
from ..core.hashing import sha256_bytes
from ..core.plan import planned_count, planned_image_name
from ..core.pngmeta import COMPRESS_LEVEL, a1111_parameters, comfy_chunks, encode_png
from ..core.regenerate import PARENT_KEY, parent_record, pixels_sha256
from ..core.session import (
    DEFAULT_ROOT,
    SESSIONS,
    STARTED_FORMAT,
    NumberingError,
    PlannedSession,
    Session,
    copy_prompt_file,
    publish_image,
    resolve_root,
)
from ..core.sidecar import (
    PLUGIN_NAME,
    applied_loras,
    oom_section,
    parameters_section,
    parameters_source_section,
    parse_project_id,
    session_section,
)
from .gallery import note_saved
from .host import CATEGORY, cached_sha256, lora_trigger_words, send_event

log = logging.getLogger(__name__)
# The session clock (local time) for session folders and sidecar timestamps; looked up at each
# save, so the host tests can pin it (tests/host/clock_extension) instead of racing the minute.
clock = datetime.now

COMPOSE_CHOICES = ("none", "sheet", "animation", "both")
TIMESTAMP_FORMAT = "%Y%m%d_%H%M%S"
REPO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@lru_cache(maxsize=1)
def plugin_version() -> str:
    """[project].version of our pyproject.toml (the registry's version)."""
    try:
        import tomllib
        with open(os.path.join(REPO_DIR, "pyproject.toml"), "rb") as f:
            return str(tomllib.load(f)["project"]["version"])
    except Exception:            # no pyproject / no tomllib: still save, say we do not know
        return "unknown"


@lru_cache(maxsize=1)
def system_info() -> dict:
    """ComfyUI and torch versions, device name, GPU driver where there is one (once per process)."""
    info = {"comfyui_version": None, "torch_version": None, "device": None, "gpu_driver": None}
    try:
        import comfyui_version
        info["comfyui_version"] = comfyui_version.__version__
    except Exception:
        pass
    try:
        import torch
        info["torch_version"] = torch.__version__
        import comfy.model_management as mm
        device = mm.get_torch_device()
        info["device"] = mm.get_torch_device_name(device)
        if getattr(device, "type", "") == "cuda":
            info["gpu_driver"] = _nvidia_driver() or (f"hip {torch.version.hip}" if torch.version.hip else None)
    except Exception as e:
        log.debug("prompt-media: system info incomplete: %s", e)
    return info


def _nvidia_driver() -> str | None:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=5, check=True).stdout
        return out.strip().splitlines()[0] or None
    except Exception:
        return None


def file_sha256(folder: str | None, name) -> str | None:
    """sha256 of a model file by its models folder (checkpoints, diffusion_models, text_encoders,
    vae); without a folder, a checkpoint or diffusion model of that name."""
    if not isinstance(name, str) or not name:
        return None
    for kind in (folder,) if folder else ("checkpoints", "diffusion_models"):
        path = folder_paths.get_full_path(kind, name)
        if path:
            return cached_sha256(path)
    return None


def lora_sha256(name) -> str | None:
    if not isinstance(name, str) or not name:
        return None
    path = folder_paths.get_full_path("loras", name)
    return cached_sha256(path) if path else None


def _pixels(image) -> np.ndarray:
    """One image tensor [H, W, C] -> uint8, exactly as core SaveImage converts it."""
    i = 255. * image.cpu().numpy()
    return np.clip(i, 0, 255).astype(np.uint8)


def _same_pixels(path: str, pixels: np.ndarray) -> bool:
    """True when the PNG at ``path`` holds exactly ``pixels`` (an earlier attempt of this job)."""
    from PIL import Image
    try:
        with Image.open(path) as im:
            return np.array_equal(np.asarray(im.convert(_MODES[pixels.shape[-1]])), pixels.reshape(
                pixels.shape[:2] if pixels.shape[-1] == 1 else pixels.shape))
    except (OSError, ValueError, KeyError):
        return False


_MODES = {1: "L", 3: "RGB", 4: "RGBA"}


def _pixels_digest(pixels: np.ndarray) -> str:
    """core.regenerate.pixels_sha256 of an image about to be saved (as Pillow reads it back)."""
    return pixels_sha256(_MODES[pixels.shape[-1]], (pixels.shape[1], pixels.shape[0]),
                         np.ascontiguousarray(pixels).tobytes())


def _saved_before(session: Session, folder: str, name: str, job_index: int, batch_index: int) -> bool:
    """True when this image of the job is already saved (a retried job: its sidecar is there and
    records this session, job and batch image). Raises NumberingError when the planned name is
    another session's."""
    sidecar_path = os.path.join(folder, name[:-4] + ".json")
    try:
        sidecar = load_generation_params(sidecar_path)
    except GenerationParamsError as e:
        raise NumberingError(f"the planned name {name} of job {job_index + 1} is taken in {folder} by an "
                             f"unreadable sidecar ({e}); nothing was overwritten: move it away and run the "
                             "job again") from None
    if sidecar is None:
        return False
    if session.holds(sidecar, job_index, batch_index):
        return True
    oom = sidecar.get("oom") or {}
    raise NumberingError(
        f"the planned name {name} of job {job_index + 1} is taken in {folder} by another session's image "
        f"(expansion {oom.get('expansion_id')}, job {oom.get('index')}); nothing was overwritten. Move those "
        "files away and run the job again, or start a new session (job 0)")


class PromptMediaSessionSaver:
    DESCRIPTION = ("Saves every image into <output>/<root>/YYYY/MM/DD/HHMM/ as NNN_seed_S.png with "
                   "a JSON sidecar of the parameters the sampler actually used. Never overwrites; "
                   "a session continues across runs and restarts.")
    CATEGORY = CATEGORY
    FUNCTION = "save"
    OUTPUT_NODE = True
    RETURN_TYPES = ()
    OUTPUT_TOOLTIPS = ()

    def __init__(self):
        self._prompt_cache = None          # (prompt, extra_pnginfo, unique_id, chunks, graph)
        self._copied = None                # (folder, source name, sha256) of the last prompt-file copy

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "images": ("IMAGE", {"tooltip": "The decoded images of the job (each gets its own number)."}),
                "job": ("JOB", {"tooltip": "From OOM Variations: indices, seed and settings of the job."}),
                "root": ("STRING", {
                    "default": DEFAULT_ROOT,
                    "tooltip": "Folder inside ComfyUI's output directory; sessions go to "
                               "<root>/YYYY/MM/DD/HHMM/."}),
            },
            "optional": {
                "prompt_media": ("PROMPT_MEDIA", {"tooltip": "From Prompt Media Loader: the file is "
                                                             "copied into the session folder once."}),
                "lora_stack": ("LORA_STACK", {"tooltip": "From LoRA Chain: the LoRAs actually applied "
                                                         "(recorded with their sha256)."}),
                "project_id": ("STRING", {"default": "", "tooltip": "Optional project id stored in "
                                                                    "each sidecar (a number is stored as a number)."}),
                "compose": (list(COMPOSE_CHOICES), {
                    "default": "sheet",
                    "tooltip": "After the session's last job: a contact sheet, an animation, both, "
                               "or nothing. Never affects saving."}),
                # sockets, not widgets: run_session.py sets them; in the graph editor they stay unset
                "session_folder": ("STRING", {
                    "default": "", "forceInput": True,
                    "tooltip": "Set by run_session.py: the planned session's folder under root "
                               "(YYYY/MM/DD/HHMM), the same on every server. Empty: the saver opens "
                               "sessions itself (job 0 opens one)."}),
                "first_number": ("INT", {
                    "default": 0, "min": 0, "max": 2**31 - 1, "forceInput": True,
                    "tooltip": "Set by run_session.py with session_folder: the number of job 1's image "
                               "(job j's is first_number + j x batch size). 0: not planned."}),
            },
            "hidden": {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO", "unique_id": "UNIQUE_ID"},
        }

    @classmethod
    def VALIDATE_INPUTS(cls, root=None, session_folder=None, first_number=None):
        try:                               # linked inputs arrive as None: checked when it runs
            if root is not None:
                resolve_root(folder_paths.get_output_directory(), root)
            if session_folder is not None and first_number is not None:
                PlannedSession.parse(session_folder, first_number)
        except ValueError as e:
            return str(e)
        return True

    def _per_prompt(self, prompt, extra_pnginfo, unique_id):
        """Graph analysis and serialised chunks, once per queued prompt (all jobs share them)."""
        c = self._prompt_cache
        if c is not None and c[0] is prompt and c[1] is extra_pnginfo and c[2] == unique_id:
            return c[3], c[4]
        chunks = comfy_chunks(prompt, extra_pnginfo)
        graph = find_sampler_params(prompt, unique_id)
        self._prompt_cache = (prompt, extra_pnginfo, unique_id, chunks, graph)
        return chunks, graph

    def save(self, images, job, root, prompt_media=None, lora_stack=None, project_id="",
             compose="sheet", session_folder="", first_number=0, prompt=None, extra_pnginfo=None,
             unique_id=None):
        if not isinstance(job, dict):
            raise TypeError(f"job must be the JOB output of OOM Variations, got {type(job).__name__}")
        output_dir = folder_paths.get_output_directory()
        root_dir = resolve_root(output_dir, root)
        planned = PlannedSession.parse(session_folder, first_number)
        chunks, graph = self._per_prompt(prompt, extra_pnginfo, unique_id)
        job_index = int(job.get("index", 0))
        total = int(job.get("total", 0))
        batch_size = int(images.shape[0])
        session = SESSIONS.for_job(root_dir, str(job.get("expansion_id") or "no_expansion"), job_index,
                                   max(total, job_index + 1), batch_size, now=clock, planned=planned)
        if batch_size != session.batch_size:
            raise NumberingError(f"this job made {batch_size} images but its session in {session.folder} "
                                 f"numbers {session.batch_size} per job (the batch size changed mid-session): "
                                 "start a new session (job 0) with the new batch size")
        folder = session.folder
        # a regeneration's one-job file is made from its parent's sidecar, which the new sidecar repeats
        # with regenerated_from: a set of them would leave a copy per image
        copy_key = (folder, prompt_media.source_name, prompt_media.sha256) \
            if prompt_media is not None and PARENT_KEY not in prompt_media.extra else None
        if copy_key is not None and copy_key != self._copied:     # once per session folder and file
            copy = copy_prompt_file(folder, prompt_media.source_name, prompt_media.text)
            self._copied = copy_key
            if session.opened:
                log.info("[Prompt Media] prompt file copied to %s", copy)

        declared = job.get("loras")          # the job's set: the file's loras: list and its tags
        if declared is None and prompt_media is not None:
            declared = [spec.as_dict() for spec in prompt_media.loras]
        stage_loras = [applied_loras(stage.loras, lora_stack if i == 0 or _has_chain(stage) else None,
                                     declared if i == 0 or _has_chain(stage) else None, lora_sha256,
                                     lora_trigger_words)
                       for i, stage in enumerate(graph.stages)]
        loras = stage_loras[0] if stage_loras else applied_loras(None, lora_stack, declared, lora_sha256,
                                                                  lora_trigger_words)
        # a LoRA named twice is applied once: the job's notes (tags), the chain's (rows, spellings)
        lora_notes = list(dict.fromkeys([*(job.get("lora_notes") or ()), *(
            note for item in lora_stack or () if isinstance(item, dict) for note in item.get("notes") or ())]))
        if lora_stack is None and any(_has_chain(stage) for stage in graph.stages):
            lora_notes.append("loras: the LoRA Chain's lora_stack output is not connected to the saver; "
                              "recorded the job's declared LoRAs instead")
        project = parse_project_id(project_id)
        system = system_info()
        started = session.started.strftime(STARTED_FORMAT)
        subfolder = os.path.relpath(folder, output_dir)
        parent = prompt_media.extra.get(PARENT_KEY) if prompt_media is not None else None
        results, already = [], []
        for batch_index in range(batch_size):
            pixels = _pixels(images[batch_index])
            resolved = resolve(graph, job, image_size=(pixels.shape[1], pixels.shape[0]))
            params = parameters_section(graph, resolved, loras, file_sha256, batch_index, batch_size,
                                        stage_loras)
            seed, seed_note = file_name_seed(graph, resolved, job)
            # the number and name the plan gave this image (core/plan.py, as --dry-run shows them)
            count = planned_count(job_index, batch_index, batch_size, session.first)
            name = planned_image_name(job_index, seed, batch_index, batch_size, session.first)
            path = os.path.join(folder, name)
            result = {"filename": name, "subfolder": subfolder, "type": "output"}
            if _saved_before(session, folder, name, job_index, batch_index):
                log.info("[Prompt Media] already saved (job run again): %s", path)
                results.append(result)
                already.append(name)
                continue
            png_chunks = None if args.disable_metadata else chunks + [
                ("parameters", a1111_parameters(params, system["comfyui_version"]))]
            data = encode_png(pixels, png_chunks, COMPRESS_LEVEL)
            lineage = {}          # a regenerated or varied image names its parent
            if parent is not None:
                record = parent_record(parent, output_dir, lambda p, px=pixels: _same_pixels(p, px),
                                       lambda px=pixels: _pixels_digest(px))
                lineage = {PARENT_KEY: record} if record else {}
            # complete under its name at once; made durable (fsync) in the background below
            if not publish_image(folder, name, data, durable=False):
                # an earlier attempt published this image and stopped before its sidecar
                if not _same_pixels(path, pixels):
                    raise NumberingError(
                        f"the planned name {name} of job {job_index + 1} is taken in {folder} by an image "
                        "without a sidecar that differs from this job's (left by a crash on a device that "
                        "does not repeat its pixels exactly, or copied in); nothing was overwritten: move it "
                        "away and run the job again")
                with open(path, "rb") as f:
                    data = f.read()
                log.info("[Prompt Media] completing an earlier attempt's image with its sidecar: %s", path)
            try:
                save_generation_params(
                    path, PLUGIN_NAME, plugin_version(), count, clock().strftime(TIMESTAMP_FORMAT),
                    params, project,
                    output={"filename": name, "path": os.path.abspath(path),
                            "subfolder": subfolder.replace(os.sep, "/")},
                    parameters_source=parameters_source_section(graph, resolved, *lora_notes, seed_note),
                    oom=oom_section(job), session=session_section(started, folder, job, session.first),
                    image_sha256=sha256_bytes(data), system=system, durable=False, **lineage)
            except FileExistsError:
                # another server saved this same job at the same moment (a retry racing the original)
                if not _saved_before(session, folder, name, job_index, batch_index):
                    raise
                already.append(name)
            FLUSHER.add(path, path[:-4] + ".json")   # fsynced in the background: the next job does not wait
            log.info("[Prompt Media] saved %s", path)
            note_saved(folder)
            send_event("saved", {"folder": subfolder.replace(os.sep, "/"), "filename": name,
                                 "index": job_index, "total": total,
                                 "expansion_id": job.get("expansion_id"), "node": unique_id})
            results.append(result)
            session.saved(job_index, batch_index)

        if job_index == total - 1:
            _finish(folder, subfolder.replace(os.sep, "/"), compose, unique_id)
        # session progress on the node, after this job is safely on disk (it is a cancel point)
        ProgressBar(max(total, 1)).update_absolute(job_index + 1)
        return {"ui": {"images": results, "already_saved": already}}


def _has_chain(stage) -> bool:
    return any("stack_node" in lora for lora in stage.loras)


def _finish(folder: str, relative: str, compose: str, node_id) -> None:
    """The session's end, after every image and sidecar is on disk: its index.html, and the
    contact sheet / animation. A failure is a warning in the log and a toast in the editor,
    never an error (saving is done)."""
    from ..core.session_page import write_session_page
    steps = [("writing index.html", lambda: write_session_page(folder, relative))]
    if compose != "none":
        from ..core.contact_sheet import compose_session
        steps.append(("composing the session", lambda: compose_session(
            folder, sheet=compose in ("sheet", "both"), animation=compose in ("animation", "both")).summary()))
    for what, step in steps:
        try:
            log.info("[Prompt Media] %s: %s", folder, step())
        except Exception as e:
            message = f"{what} failed (images are saved): {e}"
            log.warning("[Prompt Media] %s: %s", folder, message)
            send_event("warning", {"node": node_id, "message": f"{folder}: {message}"})   # a toast


NODE_CLASS_MAPPINGS = {"PromptMediaSessionSaver": PromptMediaSessionSaver}
NODE_DISPLAY_NAME_MAPPINGS = {"PromptMediaSessionSaver": "Session Saver"}
