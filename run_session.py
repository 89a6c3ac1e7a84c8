#!/usr/bin/env python3
"""Run a whole prompt media session through ComfyUI from the command line.

    python run_session.py my_prompts.yaml --comfyui ~/ComfyUI --checkpoint model.safetensors
    python run_session.py my_prompts.yaml --server 127.0.0.1:8188 --checkpoint model.safetensors
    python run_session.py my_prompts.yaml --server ... --checkpoint ... --resume
    python run_session.py my_prompts.yaml --server ... --workflow flux-schnell --preset schnell \
        --model flux1-schnell --text-encoders clip_l t5xxl_fp16 --vae ae
    python run_session.py --compose-only ~/ComfyUI/output/collections/images/2026/11/22/0142
    python run_session.py --regenerate ~/ComfyUI/output/collections/images/2026/11/22/0142 --server ...
    python run_session.py --regenerate 003_seed_7.png 005_seed_9.json --set cfg_scale=5 --set seed=+1 --server ...

Run it with ComfyUI's python (it needs PyYAML and aiohttp, which ComfyUI's environment has).
With --comfyui it starts that ComfyUI (with this extension, for this run only; on the CPU when
torch finds no GPU) and stops it afterwards; with --server it uses one that is running. The file,
the preset, the job count and the workflow (it needs one Prompt Media Loader, OOM Variations and
Session Saver) are checked before ComfyUI starts, the model files and LoRA names as soon as it
answers. The YAML file is uploaded into ComfyUI's input/prompt_media/ (replacing an older upload of
the same name) and the session is queued as one prompt per job through an API workflow (the
project's workflows/api/prompt_media_session.json, a shipped template by name, or your own), so
every image is saved as soon as it is made and an interrupted session continues with --resume. Ctrl-C stops only this run's
jobs: other jobs on the same ComfyUI go on.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import signal
import sys
import time
import urllib.parse
from pathlib import Path

REPO = Path(__file__).resolve().parent
sys.path.insert(0, str(REPO))      # the CLI's own process only: `core`, `runner` as top-level packages

try:
    import aiohttp  # noqa: F401
    import yaml  # noqa: F401
except ImportError as missing:
    sys.stderr.write(f"error: run_session.py needs PyYAML and aiohttp ({missing.name} is missing): run it with "
                     "ComfyUI's python, e.g. /path/to/ComfyUI/venv/bin/python run_session.py ...\n")
    sys.exit(2)

from core.collect import CollectError, CollectFolder
from core.errors import PromptMediaError
from core.expand import iter_jobs
from core.lora_names import LoraNameError, resolve_lora_name
from core.schema import PromptMedia, load_prompt_media, load_prompt_media_file
from core.workflow import (
    check_model_files,
    session_prompt,
    set_model_files,
    template_names,
    template_path,
    workflow_nodes,
)
from runner.comfy_client import ComfyClient, ComfyError, RunResult
from runner.pool import PoolEvent, Server, ServerPool
from runner.workflow import (
    WorkflowError,
    read_json,
    ui_twin_path,
    ui_workflow_for,
)

TEMPLATES = REPO / "workflows" / "api"
WORKFLOW = TEMPLATES / "prompt_media_session.json"
UPLOAD_FOLDER = "prompt_media"           # under ComfyUI's input/, where the loader lists files
INSTALL_HELP = ("install it with ComfyUI-Manager (search \"Prompt Media\") or `git clone "
                "https://github.com/MyImaginationAI/comfyui-prompt-media` into ComfyUI/custom_nodes/, then restart "
                "ComfyUI; or run with --comfyui DIR, which adds it for the run only")
EXIT_DONE, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_NO_COMFYUI, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
RESULTS = sys.stdout        # saved paths and --events json; with --ray everything else printed goes to stderr


class StoreWithOption(argparse.Action):
    """Stores the value and the option the user typed (--model or its alias --checkpoint)."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)
        namespace.model_option = option_string


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """The docstring as written; each option's default after its help (unless the help says it)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" not in text and not any(action.default is v for v in (None, False, argparse.SUPPRESS)) \
                and action.default not in ([], ""):
            text += " (default: %(default)s)"
        return text


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="run_session.py", description=__doc__, formatter_class=HelpFormatter,
        epilog="Exit codes: 0 done (or nothing left to do), 1 a job failed, 2 bad input (nothing was queued), "
               "3 ComfyUI did not start or cannot run sessions, 130 interrupted.")
    p.add_argument("file", nargs="?", help="the prompt media YAML file")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--comfyui", metavar="DIR", help="start the ComfyUI in DIR for this run and stop it after (this or --server is required)")
    where.add_argument("--server", metavar="URL", action="append",
                       help="use a running ComfyUI, e.g. 127.0.0.1:8188 (http:// is assumed; this or --comfyui is "
                            "required); repeat it to run the session over several servers (one per GPU): each "
                            "takes the next job when it has room, and a server that dies or runs out of memory "
                            "has its jobs run on the others")
    p.add_argument("--model", "--checkpoint", metavar="NAME", action=StoreWithOption,
                   help="the model file for the workflow's model loader: a checkpoint (models/checkpoints) or "
                        "a diffusion model (models/diffusion_models); the extension may be left out (default: "
                        "the preset's 'model:', else the workflow's own)")
    p.add_argument("--text-encoders", nargs="+", metavar="NAME",
                   help="the text encoder files for the workflow's CLIP loader, in its order (models/text_encoders) "
                        "(default: the workflow's own)")
    p.add_argument("--vae", metavar="NAME", help="the VAE file for the workflow's VAE loader (models/vae) "
                                                 "(default: the workflow's own)")
    p.add_argument("--preset", default="", metavar="NAME", help="a preset under the file's 'workflows:' section "
                                                "(default: none, the top-level settings)")
    p.add_argument("--mode", default="product", choices=("product", "cycle"),
                   help="how sequential variations combine with prompts")
    p.add_argument("--variation-seed", type=int, default=0, metavar="N", help="seeds the 'random' variation draws")
    p.add_argument("--seed", type=int, default=0, metavar="N", help="the seed of every job when the file has no 'seeds'")
    p.add_argument("--max-jobs", type=int, default=10_000, metavar="N", help="refuse a file that expands to more jobs")
    p.add_argument("--root", default="collections/images", metavar="FOLDER", help="session root inside ComfyUI's output folder")
    p.add_argument("--compose", default="sheet", choices=("none", "sheet", "animation", "both"),
                   help="what to compose when the session ends")
    p.add_argument("--resume", action="store_true",
                   help="continue the unfinished session of this file (default: start a new one)")
    p.add_argument("--workflow", default=str(WORKFLOW), metavar="FILE|NAME",
                   help="API-format workflow to queue, or a shipped template by name ("
                        + ", ".join(template_names(TEMPLATES)) + "); its UI twin in the folder above api/ goes "
                        f"into the PNGs (default: {WORKFLOW.relative_to(REPO)} of this repository)")
    p.add_argument("--python", default=sys.executable, metavar="PATH",
                   help="python to start ComfyUI with (--comfyui) (default: the one running this command)")
    p.add_argument("--port", type=int, default=None, metavar="N", help="port for --comfyui (default: a free one)")
    p.add_argument("--comfyui-arg", action="append", default=[], metavar="ARG",
                   help="extra argument for ComfyUI's main.py (repeatable), e.g. --comfyui-arg=--cpu "
                        "(default: none; --cpu and fast CPU attention are added when torch finds no GPU)")
    p.add_argument("--timeout", type=float, default=3600, metavar="SECONDS", help="seconds one job may take")
    p.add_argument("--lookahead", type=int, default=2, metavar="N",
                   help="jobs kept waiting in ComfyUI's queue behind the running one, so it never idles between "
                        "jobs (0: post each job when the previous one ends)")
    p.add_argument("--events", default="text", choices=("text", "json"),
                   help="json: stdout gets one JSON object per line and event (planned, queued, started, saved "
                        "with paths, failed, interrupted, done) instead of the saved files' paths")
    p.add_argument("--dry-run", action="store_true",
                   help="print the plan (every job: number, file name, seed, variations, prompt; totals) and stop; "
                        "needs no ComfyUI (default: run the session)")
    p.add_argument("--json", action="store_true", help="with --dry-run: the plan as JSON (default: a table)")
    p.add_argument("--collect", metavar="DIR",
                   help="gather the session into this folder as the jobs finish, through each ComfyUI's /view: "
                        "images (checked against their sidecar's image_sha256), sidecars, the prompt file and "
                        "the contact sheet of all of it; never overwrites (default: images stay in each "
                        "server's output folder)")
    p.add_argument("--ray", metavar="ADDRESS",
                   help="run the session on a Ray cluster: one ComfyUI per GPU, each a Ray actor started from "
                        "--comfyui DIR (the same path on every node) with this extension; ADDRESS as ray.init "
                        "takes it (auto, ray://head:10001) or 'local' for a Ray instance on this machine; needs "
                        "--collect and Ray (pip install ray) (default: no Ray)")
    p.add_argument("--ray-cpu-servers", type=int, default=0, metavar="N",
                   help="with --ray: N ComfyUIs on CPUs (one CPU each) instead of one per GPU (default: one per GPU)")
    p.add_argument("--regenerate", nargs="+", metavar="PATH",
                   help="queue each image's exact parameters again, from its sidecar, into one new session "
                        "folder: images (.png), sidecars (.json) or session folders (every image, in number "
                        "order; subfolders too); each new sidecar's regenerated_from names the parent and says "
                        "whether the pixels are identical; an image that cannot be regenerated is reported and "
                        "the others run (default: run the YAML file)")
    p.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                   help="with --regenerate: change one parameter of every image, e.g. --set cfg_scale=5, "
                        "--set sampler=dpmpp_2m; a signed number is added to each image's own value: --set "
                        "seed=+1 (keys: seed, steps, cfg (cfg_scale), sampler, scheduler, denoise, width, "
                        "height, prompt, negative) (repeatable; default: the sidecar's values)")
    p.add_argument("--compose-only", metavar="FOLDER",
                   help="only (re)compose the contact sheet and animation of an existing session folder "
                        "(default: run a session)")
    args = p.parse_args(argv)
    if args.json and not args.dry_run:
        p.error("--json goes with --dry-run")
    if args.settings and not args.regenerate:
        p.error("--set goes with --regenerate")
    if args.regenerate:
        if args.file or args.compose_only:
            p.error(f"--regenerate takes images, sidecars and session folders, not {args.file or '--compose-only'}")
        given = [o for o, v in (("--resume", args.resume), ("--ray", args.ray),
                                ("--preset", args.preset), ("--model", args.model), ("--vae", args.vae),
                                ("--text-encoders", args.text_encoders),
                                ("--workflow", args.workflow != str(WORKFLOW))) if v]
        if given:
            p.error(f"{given[0]} does not go with --regenerate (each image is regenerated with the project's "
                    "workflow and its own sidecar's checkpoint, into a new session folder)")
    if not args.compose_only:
        if not args.file and not args.regenerate:
            p.error("the YAML file is required")
        if args.dry_run:
            return args
        if args.ray:
            if not args.comfyui:
                p.error("--ray needs --comfyui DIR: the ComfyUI each Ray actor starts (the same path on every node)")
            if not args.collect:
                p.error("--ray needs --collect DIR: the images are made on the cluster's nodes")
            if args.ray_cpu_servers < 0:
                p.error("--ray-cpu-servers must be 1 or more")
        elif args.ray_cpu_servers:
            p.error("--ray-cpu-servers goes with --ray")
        if not (args.comfyui or args.server):
            p.error("one of --comfyui DIR or --server URL is required")
    if args.server:
        args.server = [server_url(s) for s in args.server]
        if len(set(args.server)) < len(args.server):
            p.error("--server: the same server is given twice")
    return args


def server_url(text: str) -> str:
    """``127.0.0.1:8188`` -> ``http://127.0.0.1:8188``; a URL with a scheme is kept."""
    text = text.strip().rstrip("/")
    return text if urllib.parse.urlsplit(text).scheme in ("http", "https") else "http://" + text


# ----------------------------------------------------------------------------- output

def plural(n: int, word: str) -> str:
    return f"{n:,} {word}" + ("" if n == 1 else "s")


def duration(seconds: float) -> str:
    s = round(seconds)
    if seconds < 60:
        return f"{seconds:.1f}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s // 3600}h {s % 3600 // 60:02d}m"


def error(text: str) -> None:
    print(f"error: {text}", file=sys.stderr, flush=True)


def note(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class Progress:
    """One status line on stderr (bar, jobs, the running job's step, ETA) when it is a terminal;
    saved files are printed above it on stdout."""

    def __init__(self, total: int, start: int):
        self.total, self.start, self.done, self.t0 = total, start, start, time.monotonic()
        self.step = ""
        self.tty = sys.stderr.isatty()

    def show(self) -> None:
        if not self.tty:
            return
        frac = self.done / self.total if self.total else 1.0
        ran = self.done - self.start
        eta = "--:--"
        if ran > 0:
            left = (time.monotonic() - self.t0) / ran * (self.total - self.done)
            eta = f"{int(left // 60):02d}:{int(left % 60):02d}"
        step = f" · job {self.done + 1}: {self.step}" if self.step and self.done < self.total else ""
        print(f"\r\033[K[{'#' * int(frac * 30):<30}] {self.done}/{self.total} {frac:4.0%}{step} · ETA {eta}",
              end="", file=sys.stderr, flush=True)

    def event(self, kind: str, data: dict, skip_nodes: set[str]) -> None:
        """ComfyUI's ``progress`` events of the sampler (not our saver's session progress)."""
        if kind == "progress" and str(data.get("node")) not in skip_nodes:
            self.step = f"step {data.get('value')}/{data.get('max')}"
            self.show()

    def job_done(self) -> None:
        self.done += 1
        self.step = ""
        self.show()

    def println(self, text: str, stream=None) -> None:
        self.clear()
        print(text, file=stream or RESULTS, flush=True)
        self.show()

    def clear(self) -> None:
        if self.tty:
            print("\r\033[K", end="", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- checks

def prompt_files(path: str) -> list[Path]:
    """The file itself, or every .yaml/.yml under a folder (recursively, sorted)."""
    p = Path(path)
    if not p.is_dir():
        return [p]
    return sorted(f for f in p.rglob("*") if f.suffix.lower() in (".yaml", ".yml") and f.is_file())


def check_file(args: argparse.Namespace, path: Path) -> tuple[PromptMedia, dict, str, dict | None]:
    """Everything that needs no ComfyUI: the YAML, the preset, max_jobs, the workflow.
    Returns (media, API prompt with an empty file name, OOM node id, UI twin or None)."""
    media = load_prompt_media_file(str(path), args.preset)
    next(iter_jobs(media, args.mode, args.variation_seed, args.seed, args.max_jobs), None)   # max_jobs
    workflow_path = template_path(args.workflow, TEMPLATES)
    prompt, nodes = session_prompt(read_json(workflow_path, "API workflow"), file="", preset=args.preset,
                                   mode=args.mode, variation_seed=args.variation_seed, seed=args.seed,
                                   max_jobs=args.max_jobs, root=args.root, compose=args.compose)
    # the model: --model, else the preset's 'model:' (unless the workflow feeds the loader itself)
    set_model_files(prompt, nodes, model=args.model or media.settings.model or None,
                    text_encoders=args.text_encoders, vae=args.vae, option=model_label(args, media),
                    linked_ok=not args.model)
    twin = ui_twin_path(workflow_path)
    return media, prompt, nodes.oom, read_json(twin, "UI workflow") if twin else None


def model_label(args: argparse.Namespace, media: PromptMedia) -> str:
    """Where the model name came from, for messages: the option typed, or the file's field."""
    if args.model:
        return getattr(args, "model_option", "--model")
    return f"{media.source_name}: {media.model_at[2]}"


def file_labels(args: argparse.Namespace, media: PromptMedia, prompt: dict) -> dict[tuple[str, str], str]:
    """How to name each model file input in a message: the option (or file field) that set it,
    else the node and input with the option that would set it."""
    nodes = workflow_nodes(prompt)
    given = {"--model": args.model or media.settings.model, "--text-encoders": args.text_encoders, "--vae": args.vae}
    labels = {}
    for option, targets in (("--model", nodes.models), ("--vae", nodes.vaes),
                            ("--text-encoders", [t for group in nodes.text_encoders for t in group])):
        for target in targets:
            labels[target.key] = ((model_label(args, media) if option == "--model" else option) if given[option]
                                  else f"{target.label} in the workflow (set it with {option})")
    return labels


class CheckFailed(Exception):
    def __init__(self, message: str, code: int = EXIT_BAD_INPUT):
        super().__init__(message)
        self.code = code


def check_server(client: ComfyClient, prompt: dict, media: PromptMedia, args: argparse.Namespace) -> None:
    """The workflow's nodes exist there, its model files and the file's LoRAs are in its lists."""
    object_info = server_nodes(client, prompt)
    problems = check_model_files(prompt, workflow_nodes(prompt), object_info, file_labels(args, media, prompt))
    if problems:
        raise CheckFailed("\n  ".join(problems))
    if media.loras:
        loras = client.get("/models/loras")
        for i, lora in enumerate(media.loras):
            try:
                resolve_lora_name(lora.name, loras, field=f"loras[{i}].name", source=media.source_name)
            except LoraNameError as e:
                raise CheckFailed(f"{e}; put the file into ComfyUI's models/loras or change the name") from None


def server_nodes(client: ComfyClient, prompt: dict) -> dict:
    """The server's /object_info of every node class of ``prompt``; CheckFailed (no ComfyUI able to
    run it) when one is missing there."""
    object_info = {}
    for class_type in sorted({n["class_type"] for n in prompt.values()}):
        object_info.update(client.object_info(class_type))
        if class_type not in object_info:
            if class_type.startswith("PromptMedia"):
                raise CheckFailed(f"the Prompt Media extension is not installed in the ComfyUI at {client.base_url}: "
                                  + INSTALL_HELP, EXIT_NO_COMFYUI)
            raise CheckFailed(f"the ComfyUI at {client.base_url} has no {class_type} node, which the workflow needs "
                              "(update ComfyUI, or install the custom node that provides it)", EXIT_NO_COMFYUI)
    return object_info


def refusal_text(result: RunResult) -> str:
    """ComfyUI's validation errors of a refused prompt, each said once."""
    lines, seen = [], set()
    for nid, node in sorted(result.node_errors.items()):
        for e in node.get("errors", []):
            details, message = str(e.get("details") or ""), str(e.get("message") or "")
            prefix = f"{(e.get('extra_info') or {}).get('input_name')} - "   # a custom check, repeated per input
            text = details.removeprefix(prefix) if details.startswith(prefix) else \
                ": ".join(x for x in (message, details) if x)
            if text not in seen:
                seen.add(text)
                lines.append(f"{node.get('class_type')} (node {nid}): {text}")
    if not lines:
        err = (result.response or {}).get("error")
        lines.append(err.get("message", str(err)) if isinstance(err, dict) else str(err or result.response))
    return "\n  ".join(lines)


# ----------------------------------------------------------------------------- the run

def upload_prompt_file(client: ComfyClient, path: Path) -> str:
    """One upload per file name: reused when identical, replaced when the content changed,
    unless queued jobs still read the old one."""
    data = path.read_bytes()
    current = client.view(path.name, UPLOAD_FOLDER, "input")
    if current == data:
        return path.name
    if current is not None:
        queue = client.queue()
        users = [item for item in queue.get("queue_running", []) + queue.get("queue_pending", [])
                 if len(item) > 2 and any(n.get("class_type") == "PromptMediaLoader"
                                          and n.get("inputs", {}).get("file") == path.name
                                          for n in item[2].values() if isinstance(n, dict))]
        if users:
            raise CheckFailed(f"input/{UPLOAD_FOLDER}/{path.name} differs from {path} and "
                              f"{plural(len(users), 'queued job')} still read it: wait for them, or rename your file")
    return client.upload_input(path.name, data, subfolder=UPLOAD_FOLDER, overwrite=True)


class SessionRun:
    """One session on one or more servers: the session lookup, the jobs, collecting, Ctrl-C, the
    summary. The first server is the one asked where the session stands."""

    def __init__(self, servers: list[Server], args: argparse.Namespace, path: Path, media: PromptMedia,
                 prompt: dict, oom: str, ui_workflow: dict | None, collect: Path | None = None):
        self.servers = servers
        self.clients = [s.client for s in servers]
        self.client = self.clients[0]
        self.args, self.path, self.media = args, path, media
        self.folder: str | None = None
        self.complete = False               # nothing to do: --resume of a complete session
        self.prompt, self.oom, self.ui_workflow = prompt, oom, ui_workflow
        self.pool: ServerPool | None = None
        self.collect = CollectFolder(collect) if collect else None
        self.saved: list[str] = []
        self.saved_jobs: set[int] = set()
        self.folders: dict[str, str | None] = {}     # server URL -> the session's folder there
        self.uncollected: list[int] = []    # jobs saved on their server but not in the collect folder
        self.compose_locally = False        # the servers compose nothing: the folder is composed here
        self.t0 = time.monotonic()

    @property
    def several(self) -> bool:
        return len(self.clients) > 1

    def emit(self, event: str, **data) -> None:
        """One line of --events json on stdout."""
        if self.args.events == "json":
            print(json.dumps({"event": event, **data}, ensure_ascii=False), file=RESULTS, flush=True)

    def session_info(self, client: ComfyClient | None = None, open_new: bool = False) -> dict:
        """Where the session stands on ``client`` (default: the first server); ``open_new``: open a
        new session there first (its folder and numbers are fixed now, for every job wherever it
        runs)."""
        body = {"prompt": self.prompt, "node_id": self.oom} | ({"open": True} if open_new else {})
        status, info = (client or self.client).request("POST", "/prompt_media/session", body)
        if status != 200 or not isinstance(info, dict):
            raise CheckFailed(info.get("error") if isinstance(info, dict) else f"HTTP {status}: {info}",
                              EXIT_FAILED if status >= 500 else EXIT_BAD_INPUT)
        return info

    def plan_session(self, info: dict) -> None:
        """Every job saves into this session: its folder and first number go to the saver."""
        saver = self.prompt[node_of(self.prompt, "PromptMediaSessionSaver")]["inputs"]
        saver.update(session_folder=info["session_folder"], first_number=info["first_number"])

    def job_prompt(self, index: int) -> dict:
        """The prompt of job ``index`` (a copy: the pool's threads post jobs at the same time)."""
        prompt = copy.deepcopy(self.prompt)
        prompt[self.oom]["inputs"]["job_index"] = index
        return prompt

    def extra_data(self, index: int) -> dict | None:
        if self.ui_workflow is None:
            return None
        return {"extra_pnginfo": {"workflow": ui_workflow_for(self.ui_workflow, self.job_prompt(index))}}

    def start_index(self, info: dict) -> int | None:
        """Where this run starts; None when there is nothing to do (says why)."""
        total, last, folder = info["total"], info["last_index"], info["folder"]
        name = self.path.name
        if self.args.resume:
            if last is None:
                note(f"nothing to resume: no session of {name} with these settings is recorded under "
                     f"{self.args.root}; starting a new one")
                return 0
            if last + 1 >= total:
                note(f"{name}: the session in {folder} is complete ({plural(total, 'job')} saved); "
                     "run without --resume to start a new one")
                return None
            note(f"resuming the session in {folder} at job {last + 2} of {total}")
            return last + 1
        if last is not None and last + 1 < total:
            note(f"note: an unfinished session of {name} is in {folder} ({last + 1} of {total} jobs saved); "
                 "starting a new one (add --resume to continue that one)")
        return 0

    def jobs_to_run(self, info: dict) -> tuple[list[int] | None, bool]:
        """The jobs of this run (None when there is nothing to do: says why) and whether they start
        a new session. With --collect the folder says which jobs are done; else the server's
        record (one server)."""
        total = info["total"]
        if self.collect is None:
            start = self.start_index(info)
            return (None, False) if start is None else (list(range(start, total)), start == 0)
        try:
            held = self.collect.open(info["expansion_id"], info.get("first_number"))
        except CollectError as e:
            raise CheckFailed(str(e)) from None
        done = held.done()
        if not self.args.resume:
            if done:
                raise CheckFailed(f"--collect {self.collect.folder} holds {plural(len(done), 'job')} of an earlier "
                                  f"session of {self.path.name}: add --resume to continue it, or collect into an empty "
                                  "folder")
            return list(range(total)), True
        todo = [i for i in range(total) if i not in done]
        if not todo:
            note(f"{self.path.name}: the session in {self.collect.folder} is complete ({plural(total, 'job')} "
                 "collected); run without --resume to start a new one")
            return None, False
        note(f"resuming the session collected in {self.collect.folder}: {plural(len(todo), 'job')} of {total} to run")
        return todo, not done

    def run(self) -> int:
        args = self.args
        loader = node_of(self.prompt, "PromptMediaLoader")
        for client in self.clients:
            self.prompt[loader]["inputs"]["file"] = upload_prompt_file(client, self.path)
        info = self.session_info()
        total = info["total"]
        note(f"{self.path.name}: {info['description']}")
        if self.several and args.resume and self.collect is None:
            raise CheckFailed("--resume with several servers needs --collect DIR: the collected folder says "
                              "which jobs are done")
        todo, new = self.jobs_to_run(info)
        if new:
            info = self.session_info(open_new=True)
        start = todo[0] if todo else None
        self.emit("planned", file=str(self.path.resolve()), description=info["description"], jobs=total,
                  start_job=None if start is None else start + 1, folder=info["folder"],
                  servers=[{"name": s.name, "url": s.client.base_url} for s in self.servers])
        if todo is None:
            self.folder, self.complete = info["folder"], True
            self.emit("done", images=0, seconds=0.0, folder=info["folder"], complete=True)
            return EXIT_DONE
        self.plan_session(info)
        if self.collect is not None:
            try:
                self.collect.add_prompt_file(self.path)
            except OSError as e:
                raise CheckFailed(f"--collect {self.collect.folder}: {e}") from None
        if self.several:      # each server holds part of the session: it is composed where it is whole
            self.prompt[node_of(self.prompt, "PromptMediaSessionSaver")]["inputs"]["compose"] = "none"
        self.folders[self.client.base_url] = self.folder = info["folder"]
        code = self.run_pool(todo, total)
        if code is not None:
            return code
        return EXIT_FAILED if self.uncollected else EXIT_DONE

    def run_pool(self, todo, total: int) -> int | None:
        """Runs the jobs ``todo`` of ``total`` over the servers with a progress bar, then prints
        the summary; an exit code when the pool stopped early, else None."""
        progress = Progress(total, total - len(todo))
        skip = {self.oom, node_of(self.prompt, "PromptMediaSessionSaver")}
        self.pool = ServerPool(self.servers, todo, self.job_prompt, self.extra_data, lookahead=self.args.lookahead,
                               timeout=self.args.timeout, prepare=self.prepare, on_success=self.job_saved).start()
        progress.show()
        for event in self.pool.events():
            code = self.on_pool_event(event, progress, skip, total)
            if code is not None:
                return code
        progress.clear()
        self.summary()
        return None

    def prepare(self, client: ComfyClient) -> None:
        """A server that came back (a restarted Ray actor): the prompt file and the checks again."""
        upload_prompt_file(client, self.path)
        check_server(client, self.prompt, self.media, self.args)

    def on_pool_event(self, event: PoolEvent, progress: Progress, skip: set[str], total: int) -> int | None:
        """Report one event of the pool; an exit code when the session stops here."""
        job = None if event.index is None else event.index + 1
        server = {"server": event.server} if self.several else {}
        if event.kind == "queued":
            self.emit("queued", job=job, prompt_id=event.pid, **server)
        elif event.kind == "event":
            progress.event(event.data["type"], event.data, skip)
            if event.data["type"] == "execution_start":
                self.emit("started", job=job, prompt_id=event.data.get("prompt_id"), **server)
        elif event.kind == "retried":
            progress.println(f"job {job}: {event.reason} on {event.server}; it goes to another server", sys.stderr)
            self.emit("retried", job=job, reason=event.reason, **server)
        elif event.kind == "lost":
            if self.pool.live:
                progress.println(f"{event.server} stopped answering ({event.reason}); its jobs go to the other "
                                 "servers", sys.stderr)
            for index in event.data.get("jobs", []):
                self.emit("retried", job=index + 1, reason=f"server lost: {event.reason}", **server)
        elif event.kind == "back":
            progress.println(f"{event.server} is back at {event.url} and takes jobs again", sys.stderr)
        elif event.kind == "exhausted":
            progress.clear()
            what = "every server stopped answering" if self.several else "the server stopped answering"
            raise ComfyError(f"{what} ({event.reason})")
        elif event.kind == "result":
            return self.on_result(event, progress, total)
        return None

    def on_result(self, event: PoolEvent, progress: Progress, total: int) -> int | None:
        index, result = event.index, event.result
        if result.rejected:
            self.pool.stop()
            progress.clear()
            error(f"ComfyUI refused the prompt:\n  {refusal_text(result)}")
            self.emit("failed", job=index + 1, refused=True, error=refusal_text(result))
            return EXIT_BAD_INPUT
        if result.status != "success":
            self.pool.stop()
            progress.clear()
            where = f" on {event.server}" if self.several else ""
            error(f"job {index + 1} of {total} failed{where}: {result.error_summary().splitlines()[0]} "
                  "(the traceback is in ComfyUI's log)")
            self.emit("failed", job=index + 1, refused=False, prompt_id=result.prompt_id,
                      error=result.error_summary().splitlines()[0])
            self.say_saved("fix the cause and continue with --resume", failed=index)
            return EXIT_FAILED
        paths, collected = event.data["paths"], event.data.get("collected")
        if event.data.get("not_collected"):
            progress.println(f"error: job {index + 1} was saved but not collected: {event.data['not_collected']}",
                             sys.stderr)
            self.uncollected.append(index)
        self.saved += paths
        self.saved_jobs.add(index)
        self.emit("saved", job=index + 1, prompt_id=result.prompt_id, paths=paths,
                  **({"collected": collected} if collected is not None else {}),
                  **({"server": event.server} if self.several else {}))
        if self.args.events == "text":
            for path in collected if collected is not None else paths:
                progress.println(path)
        progress.job_done()
        return None

    def job_saved(self, client: ComfyClient, index: int, result: RunResult) -> dict:
        """In the server's thread, before the job counts as done: where its images are on that
        server ("paths") and, with --collect, their copies here ("collected"; "not_collected": why
        not). A ComfyError (the server is gone) sends the job to another server."""
        url = client.base_url
        if url not in self.folders:          # the session's folder as that server's machine sees it
            self.folders[url] = self.session_info(client)["folder"]
        if url == self.client.base_url:
            self.folder = self.folders[url]
        folder = self.folders[url]
        done = {"paths": [str(Path(folder) / i["filename"]) if folder else i["filename"] for i in result.images]}
        if self.collect is None:
            return done
        done["collected"] = []
        try:
            for image in result.images:
                name, subfolder, kind = image["filename"], image.get("subfolder", ""), image.get("type", "output")
                png = client.view(name, subfolder, kind)
                sidecar = client.view(Path(name).stem + ".json", subfolder, kind)
                where = f"{url} {subfolder}/".replace("\\", "/")
                if png is None or sidecar is None:
                    raise CollectError(f"{where}{name}: the {'image' if png is None else 'sidecar'} is not on the server")
                done["collected"].append(str(self.collect.add(name, png, sidecar, where)))
        except CollectError as e:
            done["not_collected"] = str(e)
        return done

    def stop(self, prefix: str = "") -> None:
        """Ctrl-C or a lost server: only this run's jobs leave the queues or stop; says what is saved."""
        if self.pool is not None:
            self.pool.stop()
        self.emit("interrupted" if prefix else "failed", images=len(self.saved))
        self.say_saved("continue with --resume", prefix)

    def say_saved(self, advice: str, prefix: str = "", failed: int | None = None) -> None:
        """Where the session stands now: the collect folder's or this run's count with several
        servers, else the server's own record."""
        if self.several or self.collect is not None:
            where = f" in {self.collect.folder}" if self.collect is not None else " on their servers"
            if self.collect is not None:
                advice = advice.replace("--resume", f"--resume --collect {self.collect.folder}")
            note(f"{prefix}{plural(len(self.saved_jobs), 'job')} of this run saved{where}; {advice}"
                 if self.saved_jobs else f"{prefix}no job of this run was saved")
            return
        info = self.session_info()
        last, total = info["last_index"], info["total"]
        if last is None or last + 1 >= total and not self.saved:
            note(f"{prefix}no job of this session was saved")
        elif failed is not None and last >= failed:
            # a look-ahead job ComfyUI started the moment the failed one ended, finished before the stop
            note(f"jobs up to {last + 1} of {total} are saved in {info['folder']}, but job {failed + 1} is missing "
                 f"(a job queued behind it ended before it could be stopped); --resume continues after job {last + 1}")
        else:
            saved = f"job 1 of {total} is" if last == 0 else f"jobs 1–{last + 1} of {total} are"
            note(f"{prefix}{saved} saved in {info['folder']}; {advice}")

    def summary(self) -> None:
        elapsed = time.monotonic() - self.t0
        note(f"done: {plural(len(self.saved), 'image')} in {duration(elapsed)}"
             + (f" on {plural(len(self.clients), 'server')}" if self.several else ""))
        folder = self.folder
        if self.collect is not None:
            folder = str(self.collect.folder)
            made = self.compose_here(folder)
        elif self.several or self.compose_locally:   # one output folder (one machine) holds the whole session
            shared = len(set(self.folders.values())) == 1 and folder and Path(folder).is_dir()
            made = self.compose_here(folder) if shared else []
        else:
            made = sorted(p for p in Path(folder).iterdir() if p.name.startswith(("contact_sheet", "session."))) \
                if folder and self.args.compose != "none" and Path(folder).is_dir() else []
        self.emit("done", images=len(self.saved), seconds=round(elapsed, 3), folder=folder,
                  composed=[str(p) for p in made])
        if self.uncollected:
            error(f"{plural(len(self.uncollected), 'job')} ({', '.join(str(i + 1) for i in sorted(self.uncollected))}) "
                  f"were saved on their servers but not collected; --resume --collect {folder} runs them again")
        if not folder:
            if self.several:
                note("  images are in each server's output folder; --collect DIR gathers them into one")
            return
        note(f"  {'collected' if self.collect is not None else 'session'} folder: {folder}")
        if self.args.compose == "none":
            return
        if Path(folder).is_dir():
            for p in made:
                note(f"  {'contact sheet' if p.name.startswith('contact_sheet') else 'animation'}: {p}")
            if not made:
                note("  contact sheet: none was written (see ComfyUI's log)")
        else:
            note("  (the folder is on the server's machine)")

    def compose_here(self, folder: str) -> list[Path]:
        """Compose a folder that holds the whole session, here (not on a server)."""
        if self.args.compose == "none":
            return []
        from core.contact_sheet import compose_session
        try:
            result = compose_session(folder, sheet=self.args.compose in ("sheet", "both"),
                                     animation=self.args.compose in ("animation", "both"))
        except (ValueError, OSError) as e:
            error(f"composing {folder} failed (the images are saved): {e}")
            return []
        return [Path(p) for p in result.written]


class RegenerationRun(SessionRun):
    """A --regenerate set as one session: each image a one-job file (core/regenerate.py), all of
    them in one new folder opened on the first server, numbered in the plan's order."""

    def __init__(self, servers: list[Server], args: argparse.Namespace, plan):
        from core.regenerate import regeneration_prompt
        workflow = read_json(WORKFLOW, "API workflow")
        twin = ui_twin_path(WORKFLOW)
        self.plan = plan
        self.prompts = [regeneration_prompt(workflow, job) for _sidecar, job in plan.jobs]
        self.medias = [load_prompt_media(job.yaml_text) for _sidecar, job in plan.jobs]   # checked by the plan
        oom = node_of(self.prompts[0], "PromptMediaOOM")
        super().__init__(servers, args, Path("--regenerate"), None, self.prompts[0], oom,
                         read_json(twin, "UI workflow") if twin else None, args.collect and Path(args.collect))
        self.compose_locally = True

    def check_jobs(self) -> None:
        """Each job against every server's lists (checkpoint, LoRAs, sampler, scheduler): one that
        cannot run there is skipped with the reason; the others go on."""
        from core.workflow import FileInput, choices
        reasons: dict[int, str] = {}
        for s in self.servers:
            object_info = server_nodes(s.client, self.prompts[0])
            loras = s.client.get("/models/loras") if any(media.loras for media in self.medias) else []
            lists = {name: choices(object_info, FileInput("", "KSampler", name)) for name in ("sampler_name", "scheduler")}
            for i, prompt in enumerate(self.prompts):
                if i in reasons:
                    continue
                problems = check_model_files(prompt, workflow_nodes(prompt), object_info,
                                             {(node_of(prompt, "CheckpointLoaderSimple"), "ckpt_name"):
                                              "parameters.model_name"})
                media = self.medias[i]
                for k, lora in enumerate(media.loras):
                    try:
                        resolve_lora_name(lora.name, loras)
                    except LoraNameError as e:
                        problems.append(f"parameters.loras[{k}].name: {e.message}; put the file into ComfyUI's "
                                        "models/loras")
                for name, value in (("sampler_name", media.settings.sampler_name),
                                    ("scheduler", media.settings.scheduler)):
                    if lists[name] is not None and value not in lists[name]:
                        problems.append(f"{name} {value!r} is not one of this ComfyUI's (update ComfyUI, or "
                                        f"--set {name.removesuffix('_name')}=...)")
                if problems:
                    reasons[i] = "; ".join(problems) + (f" (on {s.name})" if self.several else "")
        for i in sorted(reasons):
            self.plan.skipped.append((self.plan.jobs[i][1].parent["image"], reasons[i]))
        keep = [i for i in range(len(self.prompts)) if i not in reasons]
        self.plan.jobs = [self.plan.jobs[i] for i in keep]
        self.prompts = [self.prompts[i] for i in keep]
        self.medias = [self.medias[i] for i in keep]

    def run(self) -> int:
        self.check_jobs()
        for path, reason in self.plan.skipped:
            error(f"cannot regenerate {path}: {reason}")
            self.emit("skipped", source=path, reason=reason)
        if not self.prompts:
            raise CheckFailed("nothing to regenerate")
        if self.collect is not None:
            try:
                self.collect.open_empty()
            except CollectError as e:
                raise CheckFailed(str(e)) from None
        info = self.open_set(self.client)
        self.folders[self.client.base_url] = self.folder = info["folder"]
        for client in self.clients[1:]:      # the same numbers there (a no-op where the output folder is shared)
            planned = {"session_folder": info["session_folder"], "first_number": info["first_numbers"][0]}
            self.folders[client.base_url] = self.open_set(client, planned)["folder"]
        for prompt, first in zip(self.prompts, info["first_numbers"]):
            prompt[node_of(prompt, "PromptMediaSessionSaver")]["inputs"].update(
                session_folder=info["session_folder"], first_number=first, compose="none")
        total = len(self.prompts)
        note(f"regenerating {plural(total, 'image')}" + (f" ({len(self.plan.skipped)} skipped)" if self.plan.skipped
                                                          else "") + f" into {info['folder']}")
        self.emit("planned", regenerate=[job.parent["image"] for _sidecar, job in self.plan.jobs], jobs=total, start_job=1, folder=info["folder"],
                  skipped=len(self.plan.skipped), servers=[{"name": s.name, "url": s.client.base_url}
                                                           for s in self.servers])
        code = self.run_pool(range(total), total)
        if code is not None:
            return code
        return EXIT_FAILED if self.uncollected or self.plan.skipped else EXIT_DONE

    def job_prompt(self, index: int) -> dict:
        return copy.deepcopy(self.prompts[index])

    def emit(self, event: str, **data) -> None:
        """A job's saved or failed event also names the image it regenerates (``source``)."""
        if event in ("saved", "failed") and data.get("job"):
            data["source"] = self.plan.jobs[data["job"] - 1][1].parent["image"]
        super().emit(event, **data)

    def extra_data(self, index: int) -> dict | None:
        if self.ui_workflow is None:
            return None
        return {"extra_pnginfo": {"workflow": ui_workflow_for(self.ui_workflow, self.prompts[index])}}

    def prepare(self, client: ComfyClient) -> None:
        """Nothing to upload: each job carries its file."""

    def open_set(self, client: ComfyClient, planned: dict | None = None) -> dict:
        """The set's folder and numbers, opened on ``client`` (``planned``: as the first server
        opened it)."""
        status, info = client.request("POST", "/prompt_media/session_set",
                                      {"prompts": self.prompts, "node_id": self.oom, **(planned or {})})
        if status != 200 or not isinstance(info, dict):
            where = f"{client.base_url}: " if self.several else ""
            raise CheckFailed(where + (info.get("error") if isinstance(info, dict) else f"HTTP {status}: {info}"),
                              EXIT_FAILED if status >= 500 else EXIT_BAD_INPUT)
        return info

    def say_saved(self, advice: str, prefix: str = "", failed: int | None = None) -> None:
        total = len(self.prompts)
        folder = self.collect.folder if self.collect is not None else self.folder
        note(f"{prefix}{len(self.saved_jobs)} of {plural(total, 'image')} regenerated into {folder}"
             + ("" if len(self.saved_jobs) == total else "; run --regenerate again for the others"))

    def summary(self) -> None:
        """The session's summary, and how many images came out pixel-identical (read from the new
        sidecars where this machine sees them)."""
        super().summary()
        from core.session import session_sidecars
        from core.sidecar import load_generation_params
        if self.collect is not None:
            sidecars = session_sidecars(str(self.collect.folder))
        elif self.folder and Path(self.folder).is_dir():
            sidecars = [str(Path(p).with_suffix(".json")) for p in self.saved]
        else:
            return
        same = [((load_generation_params(p) or {}).get("regenerated_from") or {}).get("identical_pixels")
                for p in sidecars]
        note(f"  pixels: {same.count(True)} identical to their parent, {same.count(False)} different"
             + (f", {same.count(None)} not compared" if None in same else ""))


def node_of(prompt: dict, class_type: str) -> str:
    return next(k for k, v in prompt.items() if v.get("class_type") == class_type)


# ----------------------------------------------------------------------------- entry points

def compose_only(folder: str) -> int:
    """(Re)writes the contact sheet, animation and index.html of a session folder; prints their paths."""
    from core.contact_sheet import compose_session
    from core.session_page import write_session_page
    try:
        result = compose_session(folder, sheet=True, animation=True)
        page = write_session_page(folder) if result.images else None
    except (ValueError, OSError) as e:
        error(str(e))
        return EXIT_BAD_INPUT
    if not result.images:
        error(f"{folder}: no images with a prompt-media sidecar: nothing composed")
        return EXIT_BAD_INPUT
    for line in result.summary().splitlines()[1:]:        # skipped images, notes
        note(line)
    for written in [*result.written, page]:
        print(os.path.abspath(written))
    return EXIT_DONE


def host_token_counter(comfyui: str | None):
    """(count, description) with ComfyUI's own CLIP tokenizer (its comfy/sd1_tokenizer, through
    transformers from ComfyUI's environment), or None when it cannot be loaded here."""
    folder = Path(comfyui or "") / "comfy" / "sd1_tokenizer"
    if not comfyui or not folder.is_dir():
        return None
    try:
        from transformers import CLIPTokenizer
        tokenizer = CLIPTokenizer.from_pretrained(str(folder))
    except Exception:       # no transformers here, or files it cannot read: the estimate is used
        return None
    return (lambda text: len(tokenizer(text)["input_ids"])), "counted with ComfyUI's CLIP tokenizer"


def dry_run(args: argparse.Namespace, files: list[Path], folder_run: bool) -> int:
    """The plan of each session, without a server: a table, or JSON (a folder: {"files": [plan, ...]})."""
    import shutil

    from core.plan import plan_session, plan_table
    counter = host_token_counter(args.comfyui)
    plans, code = [], EXIT_DONE
    for path in files:
        try:
            media = load_prompt_media_file(str(path), args.preset)
            plan = plan_session(media, args.mode, args.variation_seed, args.seed, args.max_jobs, *(counter or ()))
        except PromptMediaError as e:
            error(str(e))
            code = EXIT_BAD_INPUT
            continue
        plans.append(plan.as_dict() | ({"file": str(path)} if folder_run else {}))
        if not args.json:
            print(("\n" if len(plans) > 1 else "") + plan_table(plan, shutil.get_terminal_size((120, 24)).columns))
        for warning in plan.warnings():
            note(f"warning: {path.name}: {warning}" if folder_run else f"warning: {warning}")
    if args.json:
        print(json.dumps({"files": plans} if folder_run else plans[0] if plans else {}, ensure_ascii=False, indent=1))
    return code


def start_comfyui(args: argparse.Namespace):
    from runner.comfy_server import InstalledComfyServer, device_args, gpu_present
    if not (Path(args.comfyui) / "main.py").is_file():
        raise CheckFailed(f"--comfyui {args.comfyui}: not a ComfyUI folder (it has no main.py)", EXIT_NO_COMFYUI)
    added, why = device_args(args.comfyui_arg, lambda: gpu_present(args.python))
    if why:
        note(why)
    server = InstalledComfyServer(args.comfyui, args.python, REPO, port=args.port,
                                  extra_args=args.comfyui_arg + added)
    note(f"starting ComfyUI in {args.comfyui} ...")
    return server


def start_ray(args: argparse.Namespace):
    """The Ray actors' servers (not started yet): --comfyui DIR on every node, on GPUs or CPUs."""
    from runner.comfy_server import device_args
    from runner.ray_cluster import RayServers
    extra = args.comfyui_arg
    if args.ray_cpu_servers:
        added, _ = device_args(extra + ([] if "--cpu" in extra else ["--cpu"]), lambda: False)
        extra = extra + ([] if "--cpu" in extra else ["--cpu"]) + added
    note(f"starting {'a local Ray instance' if args.ray == 'local' else f'on the Ray cluster at {args.ray}'} and "
         + (f"{plural(args.ray_cpu_servers, 'ComfyUI')} on CPUs" if args.ray_cpu_servers else "one ComfyUI per GPU")
         + f" from {args.comfyui} ...")
    return RayServers(args.ray, args.comfyui, args.python, cpu_servers=args.ray_cpu_servers, extra_args=extra)


def collect_folder(args: argparse.Namespace, path: Path, folder_run: bool) -> Path | None:
    """--collect DIR; a folder of files: each session in DIR/<the file's path without .yaml>."""
    if not args.collect:
        return None
    if not folder_run:
        return Path(args.collect)
    return Path(args.collect) / path.relative_to(args.file).with_suffix("")


def session_maker(args: argparse.Namespace, path: Path, media: PromptMedia, prompt: dict, oom: str,
                  ui_workflow: dict | None, folder_run: bool):
    """What runs one checked file once the servers are up: each server checked, then its session."""
    def make(servers: list[Server]) -> SessionRun:
        for s in servers:
            check_server(s.client, prompt, media, args)
        return SessionRun(servers, args, path, media, prompt, oom, ui_workflow, collect_folder(args, path, folder_run))
    return make


def regeneration_dry_run(args: argparse.Namespace, plan) -> int:
    """The --regenerate plan without a server: a table (or JSON) and the images that cannot be
    regenerated with the reason (checked here; the server checks models and LoRAs when it runs)."""
    import shutil
    if args.json:
        print(json.dumps(plan.as_dict(), ensure_ascii=False, indent=1))
    else:
        print(plan.table(shutil.get_terminal_size((120, 24)).columns))
    return EXIT_BAD_INPUT if not plan.jobs else EXIT_FAILED if plan.skipped else EXIT_DONE


RESULT_TEXT = {EXIT_DONE: "done", EXIT_FAILED: "failed", EXIT_BAD_INPUT: "bad input",
               EXIT_NO_COMFYUI: "no ComfyUI", EXIT_INTERRUPTED: "interrupted"}


def row(path: Path, code: int, session: SessionRun | None) -> tuple[Path, int, str, int, str | None]:
    """One line of the folder run's table: file, exit code, result, images, session folder."""
    text = "complete" if session and session.complete else RESULT_TEXT.get(code, str(code))
    return path, code, text, len(session.saved) if session else 0, session.folder if session else None


def folder_summary(rows: list[tuple[Path, int, str, int, str | None]], root: Path, elapsed: float) -> None:
    """The table after a folder run: each file's result, images and session folder."""
    results = {}
    for r in rows:
        results[r[2]] = results.get(r[2], 0) + 1
    note(f"folder run: {plural(len(rows), 'file')} ({', '.join(f'{n} {t}' for t, n in results.items())}), "
         f"{plural(sum(r[3] for r in rows), 'image')} in {duration(elapsed)}")
    names = [str(r[0].relative_to(root)) if r[0].is_relative_to(root) else str(r[0]) for r in rows]
    width = max([len(n) for n in names] + [4])
    note(f"  {'file':<{width}}  {'result':<11}  {'images':>6}  session folder")
    for name, (_, _, text, images, folder) in zip(names, rows):
        note(f"  {name:<{width}}  {text:<11}  {images:>6}  {folder or '-'}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.compose_only:
        return compose_only(args.compose_only)
    t0 = time.monotonic()
    rows: list[tuple[Path, int, str, int, str | None]] = []       # see row()
    checked = []               # (path, make: servers -> the run, checked on them)
    if args.regenerate:
        files, folder_run = [Path("--regenerate")], False
        from core.regenerate import RegenerateError, plan_regeneration
        try:
            plan = plan_regeneration(args.regenerate, args.settings, args.root, pixels=not args.dry_run)
        except RegenerateError as e:
            error(str(e))
            return EXIT_BAD_INPUT
        if args.dry_run:
            return regeneration_dry_run(args, plan)
        if not plan.jobs:
            for path, reason in plan.skipped:
                error(f"cannot regenerate {path}: {reason}")
            error("nothing to regenerate")
            return EXIT_BAD_INPUT
        checked.append((files[0], lambda servers: RegenerationRun(servers, args, plan)))
    else:
        files, folder_run = prompt_files(args.file), Path(args.file).is_dir()
        if folder_run and not files:
            error(f"{args.file}: no .yaml or .yml file in this folder")
            return EXIT_BAD_INPUT
        if args.dry_run:
            return dry_run(args, files, folder_run)
        for path in files:                                   # every file before ComfyUI starts
            try:
                checked.append((path, session_maker(args, path, *check_file(args, path), folder_run)))
            except (PromptMediaError, WorkflowError) as e:
                error(str(e))
                rows.append(row(path, EXIT_BAD_INPUT, None))
    server = session = current = cluster = None
    keep_log = False                  # a failed start names the log in the run's temporary folder
    try:
        if not checked:
            return EXIT_BAD_INPUT
        if args.ray:
            from runner.ray_cluster import RayError
            sys.stdout = sys.stderr         # Ray prints its own messages on stdout: keep it for the results
            try:
                cluster = start_ray(args)
                servers = cluster.start()
            except RayError as e:
                error(str(e))
                return EXIT_NO_COMFYUI
            note(f"{plural(len(servers), 'ComfyUI')} up on Ray: {', '.join(s.client.base_url for s in servers)}")
        elif args.comfyui:
            from runner.comfy_server import ServerError
            server = start_comfyui(args)
            try:
                server.start()
            except ServerError as e:
                error(str(e))
                keep_log = True
                return EXIT_NO_COMFYUI
            servers = [Server(server.url, server.client)]
            note(f"ComfyUI is up ({server.startup_s:.1f}s)")
        else:
            servers = [Server(url, ComfyClient(url)) for url in args.server]
            for s in servers:
                if not s.client.is_up():
                    error(f"no ComfyUI answers at {s.name} (start it, or use --comfyui DIR to have this "
                          "command start one)")
                    return EXIT_NO_COMFYUI
        for path, make in checked:
            session, current = None, path
            try:
                session = make(servers)
                code = session.run()
            except CheckFailed as e:
                error(str(e))
                if e.code == EXIT_NO_COMFYUI or not folder_run:
                    return e.code                            # the same for every file
                code = e.code
            rows.append(row(path, code, session))
            current = None
        return max(r[1] for r in rows)
    except CheckFailed as e:
        error(str(e))
        return e.code
    except ComfyError as e:
        error(f"lost contact with ComfyUI: {e}")
        if session is not None:
            try:
                session.stop()
            except (ComfyError, CheckFailed):
                pass
        if current is not None:
            rows.append(row(current, EXIT_FAILED, session))
        return EXIT_FAILED
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)     # let the clean-up finish
        print(file=sys.stderr)
        if session is not None:
            try:
                session.stop("interrupted: ")
            except (ComfyError, CheckFailed):
                note("interrupted")
        else:
            note("interrupted: nothing was queued")
        if current is not None:
            rows.append(row(current, EXIT_INTERRUPTED, session))
        return EXIT_INTERRUPTED
    finally:
        if server is not None:
            server.stop() if keep_log else server.remove_run_files()
        if cluster is not None:
            cluster.stop()
        if folder_run:
            folder_summary(sorted(rows, key=lambda r: files.index(r[0])), Path(args.file), time.monotonic() - t0)


if __name__ == "__main__":
    sys.exit(main())
