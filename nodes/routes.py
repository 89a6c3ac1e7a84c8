"""HTTP routes: where a session stands, for the OOM node's "Queue session" button and the CLI.

POST /prompt_media/session  {prompt: <API prompt>, node_id: <OOM node id>}
  -> {total, description, expansion_id, next_index, remaining, last_index, folder}
"""
from __future__ import annotations

from aiohttp import web

import folder_paths
from server import PromptServer

from ..core.errors import PromptMediaError
from ..core.expand import count_jobs, describe, expansion_id
from ..core.session import DEFAULT_ROOT, load_session, resolve_root
from .loader import constant_source, load


class SessionLookupError(ValueError):
    pass


def _constant(node: dict, name: str, default=None):
    value = node.get("inputs", {}).get(name, default)
    if isinstance(value, list):   # a link: this lookup needs the value written in the graph
        raise SessionLookupError(f"{node.get('class_type')}.{name} is linked; the session lookup "
                                 "needs it as a widget value")
    return value


def _linked_node(prompt: dict, node: dict, input_name: str) -> dict:
    link = node.get("inputs", {}).get(input_name)
    if not (isinstance(link, list) and len(link) == 2 and str(link[0]) in prompt):
        raise SessionLookupError(f"{node.get('class_type')}.{input_name} is not connected")
    return prompt[str(link[0])]


def session_info(prompt: dict, oom_id: str) -> dict:
    oom = prompt.get(oom_id)
    if not oom or oom.get("class_type") != "PromptMediaOOM":
        raise SessionLookupError(f"node {oom_id} is not an OOM Variations node")
    loader = _linked_node(prompt, oom, "prompt_media")
    if loader.get("class_type") != "PromptMediaLoader":
        raise SessionLookupError("OOM Variations.prompt_media must come from a Prompt Media Loader")
    source = constant_source(loader)
    if source is None:
        raise SessionLookupError("the Prompt Media Loader's file/yaml_text/preset are linked; the "
                                 "session lookup needs them as widget values")
    media = load(*source)
    mode = _constant(oom, "mode", "product")
    seed = int(_constant(oom, "seed", 0))
    exp_id = expansion_id(media, mode, int(_constant(oom, "variation_seed", 0)), seed)
    total = count_jobs(media, mode, seed)
    # the saver fed by this OOM node decides where the session lives
    root = DEFAULT_ROOT
    for node in prompt.values():
        link = node.get("inputs", {}).get("job")
        if node.get("class_type") == "PromptMediaSessionSaver" and isinstance(link, list) \
                and str(link[0]) == oom_id:
            root = _constant(node, "root", DEFAULT_ROOT)
            break
    session = load_session(resolve_root(folder_paths.get_output_directory(), root), exp_id)
    last = session.last_index if session and session.last_index >= 0 else None
    # a finished (or never started) session: the button starts a new one
    next_index = last + 1 if last is not None and last + 1 < total else 0
    return {"total": total, "description": describe(media, mode, seed), "expansion_id": exp_id,
            "next_index": next_index, "remaining": total - next_index, "last_index": last,
            "folder": session.folder if session else None}


@PromptServer.instance.routes.post("/prompt_media/session")
async def post_session(request: web.Request) -> web.Response:
    try:
        body = await request.json()
        return web.json_response(session_info(body["prompt"], str(body["node_id"])))
    except (PromptMediaError, SessionLookupError, KeyError, TypeError, ValueError) as e:  # incl. PathError
        return web.json_response({"error": str(e)}, status=400)
