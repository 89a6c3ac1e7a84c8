"""HTTP routes: where a session stands, for the OOM node's "Queue session" button and the CLI.

POST /prompt_media/session  {prompt: <API prompt>, node_id: <OOM node id>}
  -> {total, description, expansion_id, next_index, remaining, last_index, folder}

The graph reading and the answer live in core/session_lookup.py; this is the aiohttp glue.
Registered by nodes/server_hooks.py at package load.
"""
from __future__ import annotations

from aiohttp import web

import folder_paths

from ..core.errors import PromptMediaError
from ..core.session import resolve_root
from ..core.session_lookup import SessionLookupError, session_request, session_status
from .loader import load


def session_info(prompt: dict, oom_id: str) -> dict:
    request = session_request(prompt, oom_id)
    media = load(*request.source)
    return session_status(media, request, resolve_root(folder_paths.get_output_directory(), request.root))


async def post_session(request: web.Request) -> web.Response:
    try:
        body = await request.json()
        return web.json_response(session_info(body["prompt"], str(body["node_id"])))
    except (PromptMediaError, SessionLookupError, KeyError, TypeError, ValueError) as e:  # incl. PathError
        return web.json_response({"error": str(e)}, status=400)


def add_routes(routes: web.RouteTableDef) -> None:
    routes.post("/prompt_media/session")(post_session)
