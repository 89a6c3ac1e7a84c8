#!/usr/bin/env python3
"""Run a whole prompt media session through ComfyUI from the command line.

    python run_session.py my_prompts.yaml --comfyui ~/ComfyUI --checkpoint model.safetensors
    python run_session.py my_prompts.yaml --server http://127.0.0.1:8188 --checkpoint model.safetensors
    python run_session.py my_prompts.yaml --server ... --checkpoint ... --resume
    python run_session.py --compose-only ~/ComfyUI/output/collections/images/2026/11/22/0142

With --comfyui it starts that ComfyUI (with this extension) and stops it afterwards; with --server
it uses one that is running. The YAML file is uploaded into ComfyUI's input/prompt_media/ and the
session is queued as one prompt per job through the project's API workflow
(workflows/api/prompt_media_session.json), so every image is saved as soon as it is made and an
interrupted session resumes with --resume. Progress is read from ComfyUI's websocket.

Runs with ComfyUI's python (it needs PyYAML and aiohttp, which ComfyUI's environment has). Exit codes: 0 done, 1 a job failed, 2 bad input (file or workflow refused),
3 ComfyUI did not start, 130 interrupted.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent
sys.path.insert(0, str(REPO))      # the CLI's own process only: `core`, `runner` as top-level packages

from core.errors import PromptMediaError  # noqa: E402
from core.schema import load_prompt_media_file  # noqa: E402
from runner.comfy_client import ComfyClient, ComfyError  # noqa: E402

WORKFLOW = REPO / "workflows" / "api" / "prompt_media_session.json"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="Exit codes: 0 done, 1 a job failed, 2 bad input, "
                                       "3 ComfyUI did not start, 130 interrupted.")
    p.add_argument("file", nargs="?", help="the prompt media YAML file")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--comfyui", metavar="DIR", help="start this ComfyUI checkout (and stop it after)")
    where.add_argument("--server", metavar="URL", help="use a running ComfyUI, e.g. http://127.0.0.1:8188")
    p.add_argument("--checkpoint", help="checkpoint file name as ComfyUI lists it (models/checkpoints)")
    p.add_argument("--preset", default="", help="a preset under the file's 'workflows:' section")
    p.add_argument("--mode", default="product", choices=("product", "cycle"))
    p.add_argument("--variation-seed", type=int, default=0, help="seeds the 'random' variation draws")
    p.add_argument("--seed", type=int, default=0, help="used when the file has no 'seeds'")
    p.add_argument("--max-jobs", type=int, default=10_000)
    p.add_argument("--root", default="collections/images", help="session root inside ComfyUI's output dir")
    p.add_argument("--compose", default="sheet", choices=("none", "sheet", "animation", "both"),
                   help="what to compose when the session ends")
    p.add_argument("--resume", action="store_true", help="continue the interrupted session of this file")
    p.add_argument("--workflow", default=str(WORKFLOW), help="API-format workflow to queue")
    p.add_argument("--python", default=sys.executable, help="python to start ComfyUI with (--comfyui)")
    p.add_argument("--port", type=int, default=None, help="port for --comfyui (default: a free one)")
    p.add_argument("--comfyui-arg", action="append", default=[], metavar="ARG",
                   help="extra argument for ComfyUI's main.py (repeatable), e.g. --comfyui-arg=--cpu")
    p.add_argument("--timeout", type=float, default=3600, help="seconds one job may take")
    p.add_argument("--compose-only", metavar="FOLDER", help="only (re)compose an existing session folder")
    args = p.parse_args(argv)
    if not args.compose_only:
        if not args.file:
            p.error("the YAML file is required")
        if not (args.comfyui or args.server):
            p.error("one of --comfyui DIR or --server URL is required")
        if not args.checkpoint:
            p.error("--checkpoint is required")
    return args


# ----------------------------------------------------------------------------- workflow

def node_id(prompt: dict, class_type: str) -> str:
    ids = [k for k, v in prompt.items() if v.get("class_type") == class_type]
    if len(ids) != 1:
        raise PromptMediaError(f"the workflow needs exactly one {class_type} node (has {len(ids)})",
                               source="workflow")
    return ids[0]


def build_prompt(workflow: dict, args: argparse.Namespace, uploaded_name: str) -> tuple[dict, str]:
    """The workflow with this run's settings; returns (prompt, OOM node id)."""
    prompt = copy.deepcopy(workflow)
    prompt[node_id(prompt, "CheckpointLoaderSimple")]["inputs"]["ckpt_name"] = args.checkpoint
    prompt[node_id(prompt, "PromptMediaLoader")]["inputs"].update(
        file=uploaded_name, preset=args.preset, yaml_text="")
    oom = node_id(prompt, "PromptMediaOOM")
    prompt[oom]["inputs"].update(mode=args.mode, run="one job per run", job_index=0,
                                 variation_seed=args.variation_seed, seed=args.seed,
                                 max_jobs=args.max_jobs)
    prompt[node_id(prompt, "PromptMediaSessionSaver")]["inputs"].update(root=args.root, compose=args.compose)
    return prompt, oom


# ----------------------------------------------------------------------------- output

class Progress:
    """One status line on stderr: bar, count, ETA; saved files are printed above it on stdout."""

    def __init__(self, total: int, start: int):
        self.total, self.start, self.t0 = total, start, time.monotonic()
        self.tty = sys.stderr.isatty()

    def show(self, done: int) -> None:
        frac = done / self.total if self.total else 1.0
        bar = "#" * int(frac * 30)
        ran = done - self.start
        eta = "--:--"
        if ran > 0:
            left = (time.monotonic() - self.t0) / ran * (self.total - done)
            eta = f"{int(left // 60):02d}:{int(left % 60):02d}"
        line = f"[{bar:<30}] {done}/{self.total} {frac:4.0%} ETA {eta}"
        print(("\r" + line) if self.tty else line, end="" if self.tty else "\n", file=sys.stderr, flush=True)

    def println(self, text: str) -> None:
        if self.tty:
            print("\r\033[K", end="", file=sys.stderr)
        print(text, flush=True)


def run_session(client: ComfyClient, args: argparse.Namespace) -> int:
    path = Path(args.file)
    try:
        load_prompt_media_file(str(path), args.preset)      # fail fast, with file:line
        workflow = json.loads(Path(args.workflow).read_text(encoding="utf-8"))
    except PromptMediaError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    # into input/prompt_media/, where the loader lists files
    name = client.upload_input(path.name, path.read_bytes(), subfolder="prompt_media")
    try:
        prompt, oom = build_prompt(workflow, args, name)
    except PromptMediaError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    status, info = client.request("POST", "/prompt_media/session", {"prompt": prompt, "node_id": oom})
    if status != 200:
        print(f"error: {info.get('error') if isinstance(info, dict) else info}", file=sys.stderr)
        return 2
    start = info["next_index"] if args.resume else 0
    if args.resume and info["last_index"] is None:
        print("nothing to resume: no session of this file is recorded; starting a new one", file=sys.stderr)
    print(f"{path.name}: {info['description']}" + (f", resuming at job {start + 1}" if start else ""),
          file=sys.stderr)
    progress = Progress(info["total"], start)
    progress.show(start)
    for index in range(start, info["total"]):
        prompt[oom]["inputs"]["job_index"] = index
        result = client.run(prompt, timeout=args.timeout)
        if result.rejected or result.error or result.status != "success":
            progress.println(f"job {index + 1} of {info['total']} failed: {result.error_summary()}")
            print(f"resume with: --resume (jobs before {index + 1} are saved)", file=sys.stderr)
            return 2 if result.rejected else 1
        for image in result.images:
            progress.println(str(Path(image.get("subfolder", "")) / image["filename"]))
        progress.show(index + 1)
    print(file=sys.stderr)
    return 0


def compose_only(folder: str) -> int:
    """(Re)writes the contact sheet and animation of a session folder; prints their paths."""
    from core.contact_sheet import compose_session
    try:
        result = compose_session(folder, sheet=True, animation=True)
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for line in result.summary().splitlines()[1:]:        # skipped images and notes
        print(line, file=sys.stderr)
    if not result.images:
        return 2
    for written in result.sheets + ([result.animation] if result.animation else []):
        print(os.path.abspath(written))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.compose_only:
        return compose_only(args.compose_only)
    server = None
    try:
        if args.comfyui:
            from runner.comfy_server import InstalledComfyServer, ServerError
            server = InstalledComfyServer(args.comfyui, args.python, REPO, port=args.port, extra_args=args.comfyui_arg)
            print(f"starting ComfyUI in {args.comfyui} ...", file=sys.stderr)
            try:
                server.start()
            except ServerError as e:
                print(f"error: {e}", file=sys.stderr)
                return 3
            client = server.client
        else:
            client = ComfyClient(args.server)
            if not client.is_up():
                print(f"error: no ComfyUI answers at {args.server}", file=sys.stderr)
                return 3
        return run_session(client, args)
    except KeyboardInterrupt:
        try:
            client.interrupt()
        except (ComfyError, OSError, NameError):
            pass
        print("\ninterrupted: finished images are saved; continue with --resume", file=sys.stderr)
        return 130
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    sys.exit(main())
