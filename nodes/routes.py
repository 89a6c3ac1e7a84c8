"""HTTP routes: where a session stands, for the OOM node's "Queue session" button and the CLI.

POST /prompt_media/session  {prompt: <API prompt>, node_id: <OOM node id>}
  -> {total, description, expansion_id, next_index, remaining, last_index, folder,
      session_folder, first_number, saved, queued, subfolder}
POST /prompt_media/session  {..., open: true, batch_size: 1}
  opens a new session now (folder and numbers reserved) and answers the same way: what
  run_session.py passes to the saver (session_folder, first_number) on every server
POST /prompt_media/session_set  {prompts: [<API prompt>, ...], node_id, session_folder?, first_number?}
  opens one new folder for several one-job sessions run as one set (run_session.py
  --regenerate), numbers reserved in the prompts' order -> {folder, session_folder, first_numbers};
  with session_folder and first_number: the set as the first server opened it (the same numbers)

The graph reading and the answer live in core/session_lookup.py; this is the aiohttp glue.
Registered by nodes/server_hooks.py at package load.
"""
from __future__ import annotations

import asyncio

from aiohttp import web

import folder_paths

from ..core.errors import PromptMediaError
from ..core.session import PlannedSession, resolve_root
from ..core.session_lookup import (
    SessionLookupError,
    open_planned_session,
    open_planned_set,
    queued_jobs,
    session_request,
    session_status,
)
from .gallery import saved_jobs
from .loader import load


def _queued_prompts() -> list[dict]:
    """The prompts running and waiting in ComfyUI's queue."""
    try:
        from server import PromptServer
        running, pending = PromptServer.instance.prompt_queue.get_current_queue_volatile()
    except (ImportError, AttributeError):
        return []
    return [item[2] for item in (*running, *pending) if len(item) > 2 and isinstance(item[2], dict)]


def session_info(prompt: dict, oom_id: str, open_new: bool = False, batch_size: int = 1) -> dict:
    request = session_request(prompt, oom_id)
    media = load(*request.source)
    output_dir = folder_paths.get_output_directory()
    root_dir = resolve_root(output_dir, request.root)
    if open_new:
        return open_planned_session(media, request, root_dir, batch_size)
    return session_status(media, request, root_dir, queued=queued_jobs(request, _queued_prompts()),
                          saved_jobs=saved_jobs, output_dir=output_dir)


async def post_session(request: web.Request) -> web.Response:
    try:
        body = await request.json()
        batch_size = body.get("batch_size", 1)
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        # in a worker thread: counting a big session's saved jobs reads its sidecars once
        info = await asyncio.get_running_loop().run_in_executor(
            None, session_info, body["prompt"], str(body["node_id"]), body.get("open") is True, batch_size)
        return web.json_response(info)
    except (PromptMediaError, SessionLookupError, KeyError, TypeError, ValueError) as e:  # incl. PathError
        return web.json_response({"error": str(e)}, status=400)
    except OSError as e:           # opening a session: the output folder cannot be written
        return web.json_response({"error": f"cannot open the session: {e}"}, status=500)


def open_set(body: dict) -> dict:
    prompts = body["prompts"]
    if not isinstance(prompts, list) or not prompts:
        raise ValueError("prompts must be a non-empty list of API prompts")
    requests = [session_request(prompt, str(body["node_id"])) for prompt in prompts]
    if len({r.root for r in requests}) > 1:
        raise ValueError("the prompts of one set must share the saver's root")
    planned = PlannedSession.parse(body.get("session_folder") or "", body.get("first_number") or 0)
    root_dir = resolve_root(folder_paths.get_output_directory(), requests[0].root)
    return open_planned_set([(load(*r.source), r) for r in requests], root_dir, planned=planned)


async def post_session_set(request: web.Request) -> web.Response:
    try:
        body = await request.json()
        info = await asyncio.get_running_loop().run_in_executor(None, open_set, body)
        return web.json_response(info)
    except (PromptMediaError, SessionLookupError, KeyError, TypeError, ValueError) as e:  # incl. PathError
        return web.json_response({"error": str(e)}, status=400)
    except OSError as e:
        return web.json_response({"error": f"cannot open the session: {e}"}, status=500)


def add_routes(routes: web.RouteTableDef) -> None:
    routes.post("/prompt_media/session")(post_session)
    routes.post("/prompt_media/session_set")(post_session_set)
