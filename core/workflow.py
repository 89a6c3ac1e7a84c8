"""An API workflow as a runner drives it: which template, which of our nodes, which model files.

Pure (no ComfyUI, no server), so the CLI and the tests share it:

- :func:`template_path`: ``--workflow`` as a file or a shipped template's short name
  (``flux-schnell`` -> ``workflows/api/flux_schnell.json``);
- :func:`workflow_nodes`: the Prompt Media Loader, OOM Variations and Session Saver a session
  needs (a workflow without one of them is refused, naming it) and its model file loaders;
- :func:`set_model_files`: ``--model`` on whichever model loader the workflow has (checkpoint or
  diffusion model), text encoders and VAE the same way;
- :func:`check_model_files`: every model file the workflow names against the server's lists
  (``/object_info``), resolved like LoRA names, before anything is queued.
"""
from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .api_prompt import LOADER_CLASS, OOM_CLASS, SAVER_CLASS, class_of, nodes_of_class, parse_link
from .errors import PromptMediaError
from .lora_names import FileNameError, resolve_file_name

WORKFLOW_SOURCE = "workflow"
# node class -> the inputs naming its files, and the models folder they are in
MODEL_LOADER_INPUTS = {"CheckpointLoaderSimple": ("ckpt_name",), "UNETLoader": ("unet_name",)}
TEXT_ENCODER_INPUTS = {"CLIPLoader": ("clip_name",), "DualCLIPLoader": ("clip_name1", "clip_name2"),
                       "TripleCLIPLoader": ("clip_name1", "clip_name2", "clip_name3")}
VAE_INPUTS = {"VAELoader": ("vae_name",)}
FOLDERS = {"CheckpointLoaderSimple": "models/checkpoints", "UNETLoader": "models/diffusion_models",
           "CLIPLoader": "models/text_encoders", "DualCLIPLoader": "models/text_encoders",
           "TripleCLIPLoader": "models/text_encoders", "VAELoader": "models/vae"}
KINDS = {"CheckpointLoaderSimple": "checkpoint", "UNETLoader": "diffusion model", "CLIPLoader": "text encoder",
         "DualCLIPLoader": "text encoder", "TripleCLIPLoader": "text encoder", "VAELoader": "VAE"}
SESSION_NODES = ((LOADER_CLASS, "Prompt Media Loader"), (OOM_CLASS, "OOM Variations"),
                 (SAVER_CLASS, "Session Saver"))


class WorkflowError(PromptMediaError):
    def __init__(self, message: str, *, field: str = ""):
        super().__init__(message, source=WORKFLOW_SOURCE, field=field)


@dataclass
class FileInput:
    """A node input that names a model file: (node id, class, input name)."""
    node_id: str
    class_type: str
    name: str

    @property
    def label(self) -> str:
        return f"{self.class_type} (node {self.node_id}).{self.name}"

    @property
    def key(self) -> tuple[str, str]:
        return self.node_id, self.name


@dataclass
class WorkflowNodes:
    loader: str
    oom: str
    saver: str
    models: list[FileInput] = field(default_factory=list)          # checkpoint / diffusion model
    text_encoders: list[list[FileInput]] = field(default_factory=list)   # per CLIP loader, in order
    vaes: list[FileInput] = field(default_factory=list)


def template_names(workflows_dir: Path) -> list[str]:
    """Short names of the shipped API templates (``flux_schnell.json`` -> ``flux-schnell``)."""
    return sorted(p.stem.replace("_", "-") for p in Path(workflows_dir).glob("*.json"))


def template_path(name_or_path: str | Path, workflows_dir: Path) -> Path:
    """A workflow file, or a shipped template's short name (``flux-schnell``, ``flux_schnell``)."""
    path = Path(name_or_path)
    if path.suffix.lower() == ".json" or path.exists():
        return path
    candidate = Path(workflows_dir) / f"{str(name_or_path).replace('-', '_')}.json"
    if candidate.is_file() and "/" not in str(name_or_path) and "\\" not in str(name_or_path):
        return candidate
    raise WorkflowError(f"{name_or_path!r} is neither a workflow file nor a shipped template "
                        f"(templates: {', '.join(template_names(workflows_dir))})", field="--workflow")


def _file_inputs(prompt: dict, spec: dict[str, tuple[str, ...]]) -> list[list[FileInput]]:
    return [[FileInput(node_id, class_of(node), name) for name in spec[class_of(node)]]
            for node_id, node in nodes_of_class(prompt, *spec)]


def workflow_nodes(prompt: dict) -> WorkflowNodes:
    """Our three session nodes (exactly one each) and the model file inputs; a workflow the
    runner cannot drive is refused naming every node that is missing or doubled."""
    if not isinstance(prompt, dict) or not prompt or isinstance(prompt.get("nodes"), list):
        raise WorkflowError("not an API-format workflow (expected {node id: {class_type, inputs}}; "
                            "save it with Workflow > Export (API))")
    found, problems = {}, []
    for cls, title in SESSION_NODES:
        ids = [node_id for node_id, _ in nodes_of_class(prompt, cls)]
        if len(ids) == 1:
            found[cls] = ids[0]
        else:
            problems.append(f"{'no' if not ids else len(ids)} {title} ({cls}) node{'s' if len(ids) > 1 else ''}"
                            + (" (it needs exactly one)" if ids else ""))
    if problems:
        raise WorkflowError(f"cannot run a session: the workflow has {'; '.join(problems)}")
    return WorkflowNodes(found[LOADER_CLASS], found[OOM_CLASS], found[SAVER_CLASS],
                         [f for group in _file_inputs(prompt, MODEL_LOADER_INPUTS) for f in group],
                         _file_inputs(prompt, TEXT_ENCODER_INPUTS),
                         [f for group in _file_inputs(prompt, VAE_INPUTS) for f in group])


def _set(prompt: dict, target: FileInput, name: str, option: str, linked_ok: bool) -> None:
    inputs = prompt[target.node_id]["inputs"]
    if parse_link(inputs.get(target.name)) is not None:
        if linked_ok:
            return
        raise WorkflowError(f"{option} cannot set {target.label}: it is connected to another node "
                            "(disconnect it in the workflow, or leave out the option)", field=option)
    inputs[target.name] = name


def set_model_files(prompt: dict, nodes: WorkflowNodes, *, model: str | None = None,
                    text_encoders: Sequence[str] | None = None, vae: str | None = None,
                    option: str = "--model", linked_ok: bool = False) -> None:
    """Set the model on every model loader of the workflow (checkpoint or diffusion model), the
    text encoders on its CLIP loader (in order) and the VAE on its VAE loader. An option for a
    loader the workflow lacks is an error naming it (``option``: how the user said the model);
    ``linked_ok`` leaves a model input that another node feeds alone instead of refusing."""
    if model:
        if not nodes.models:
            raise WorkflowError("the workflow has no model loader (CheckpointLoaderSimple or UNETLoader) "
                                "to set", field=option)
        for target in nodes.models:
            _set(prompt, target, model, option, linked_ok)
    if text_encoders:
        if not nodes.text_encoders:
            raise WorkflowError("the workflow has no text encoder loader (CLIPLoader, DualCLIPLoader or "
                                "TripleCLIPLoader) to set", field="--text-encoders")
        for group in nodes.text_encoders:
            if len(group) != len(text_encoders):
                raise WorkflowError(f"{group[0].class_type} (node {group[0].node_id}) takes {len(group)} "
                                    f"text encoder{'s' if len(group) > 1 else ''}, got {len(text_encoders)}",
                                    field="--text-encoders")
            for target, name in zip(group, text_encoders):
                _set(prompt, target, name, "--text-encoders", False)
    if vae:
        if not nodes.vaes:
            raise WorkflowError("the workflow has no VAE loader (VAELoader) to set; its VAE comes from "
                                "the checkpoint", field="--vae")
        for target in nodes.vaes:
            _set(prompt, target, vae, "--vae", False)


def file_inputs(nodes: WorkflowNodes) -> list[FileInput]:
    return [*nodes.models, *(f for group in nodes.text_encoders for f in group), *nodes.vaes]


def choices(object_info: dict, target: FileInput) -> list[str] | None:
    """The server's list for one file input (``/object_info``), or None when it does not say."""
    spec = ((object_info.get(target.class_type) or {}).get("input") or {})
    for section in ("required", "optional"):
        entry = (spec.get(section) or {}).get(target.name)
        if isinstance(entry, list) and entry:
            options = entry[0]
            if isinstance(options, list):
                return [str(o) for o in options]
            if options == "COMBO" and len(entry) > 1 and isinstance(entry[1], dict):
                return [str(o) for o in entry[1].get("options", [])]
    return None


def check_model_files(prompt: dict, nodes: WorkflowNodes, object_info: dict,
                      labels: dict[tuple[str, str], str] | None = None) -> list[str]:
    """Resolve every constant model file name the workflow sets against the server's lists (like
    LoRA names: exact, without extension, a unique case-insensitive match) and write the
    resolved names back. Returns the problems, each naming where the name came from (``labels``:
    (node id, input) -> e.g. "--model"; else the node and input), the folder and the closest
    names; empty when everything resolves."""
    problems = []
    for target in file_inputs(nodes):
        name = prompt[target.node_id]["inputs"].get(target.name)
        available = choices(object_info, target)
        if available is None or not isinstance(name, str):
            continue                  # linked, or a node the server does not describe
        try:
            prompt[target.node_id]["inputs"][target.name] = resolve_file_name(
                name, available, kind=KINDS[target.class_type],
                folder=f"ComfyUI's {FOLDERS[target.class_type]}", source=WORKFLOW_SOURCE)
        except FileNameError as e:
            problems.append(f"{(labels or {}).get(target.key, target.label + ' in the workflow')}: {e.message}")
    return problems


def session_prompt(workflow: dict, *, file: str, preset: str, mode: str, variation_seed: int, seed: int,
                   max_jobs: int, root: str, compose: str) -> tuple[dict, WorkflowNodes]:
    """A copy of ``workflow`` set up for one session run, one job per queued prompt (set the OOM
    node's ``job_index`` per prompt); the workflow is refused when it lacks a session node."""
    prompt = copy.deepcopy(workflow)
    nodes = workflow_nodes(prompt)
    prompt[nodes.loader]["inputs"].update(file=file, preset=preset, yaml_text="")
    prompt[nodes.oom]["inputs"].update(mode=mode, run="one job per run", job_index=0,
                                       variation_seed=variation_seed, seed=seed, max_jobs=max_jobs)
    prompt[nodes.saver]["inputs"].update(root=root, compose=compose)
    return prompt, nodes
