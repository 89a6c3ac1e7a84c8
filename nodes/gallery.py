"""HTTP routes of the Prompt Media sidebar tab (js/gallery.js): aiohttp glue over core.gallery
(sessions, the grid, stars and tags) and core.regenerate (Regenerate / Vary). Every folder a
request names goes through core.session.session_folder_path (inside the output directory, no
'..', no symlink out) and every image name must be a session image name; file reading runs in a
worker thread so a big session never stalls the server.

GET  /prompt_media/sessions                        -> {sessions: [{folder, title, sources, done, total, state, thumb}]}
GET  /prompt_media/session_view?folder=F           -> the grid (core.gallery.FolderIndex.view) + marks + state
GET  /prompt_media/image?folder=F&name=N           -> core.gallery.image_details
POST /prompt_media/marks {folder, name, star?, tags?}  -> {images: {name: {star, tags}}}
POST /prompt_media/regenerate {folder, name, changes}  -> {prompt: <API prompt>, description}
"""
from __future__ import annotations

import asyncio
import json
import os
import time
from itertools import islice

from aiohttp import web

import folder_paths

from ..core.gallery import (
    Gallery,
    GalleryError,
    compact_json,
    image_count,
    image_details,
    newest_first,
    read_marks,
    session_roots,
    update_marks,
)
from ..core.paths import PathError
from ..core.regenerate import RegenerateError, regeneration_job, regeneration_prompt
from ..core.session import DEFAULT_ROOT, session_folder_path, session_folders
from ..core.sidecar import GenerationParamsError, read_sidecar

WORKFLOW = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        "workflows", "api", "prompt_media_session.json")
SESSIONS_LISTED = 100

_gallery: Gallery | None = None
_recently_saved: dict[str, float] = {}      # absolute folder -> when this server last saved into it


def gallery() -> Gallery:
    global _gallery
    output_dir = folder_paths.get_output_directory()
    if _gallery is None or _gallery.output_dir != output_dir:
        _gallery = Gallery(output_dir)
    return _gallery


def saved_jobs(folder: str, expansion_id: str) -> set[int]:
    """The job indexes of one session (expansion) that have an image in ``folder`` (for Queue
    session: what is left to do)."""
    return {im.job_index for im in gallery().index(folder).images()
            if im.expansion_id == expansion_id and im.job_index is not None}


def note_saved(folder: str) -> None:
    """Called by the Session Saver after each image: the session list shows it running."""
    _recently_saved[os.path.abspath(folder)] = time.monotonic()


def _queue_busy() -> bool:
    try:
        from server import PromptServer
        return PromptServer.instance.prompt_queue.get_tasks_remaining() > 0
    except (ImportError, AttributeError):
        return False


def _running(folder: str) -> bool:
    saved = _recently_saved.get(os.path.abspath(folder))
    return saved is not None and _queue_busy() and time.monotonic() - saved < 3600


def _folder(text) -> str:
    if not isinstance(text, str):
        raise GalleryError("folder must be text")
    return session_folder_path(folder_paths.get_output_directory(), text)


def _image(folder: str, name) -> str:
    if image_count(name) is None:
        raise GalleryError(f"{name!r} is not a session image name (NNN_seed_S.png)")
    return os.path.join(folder, name)


def list_sessions() -> list[dict]:
    g = gallery()
    folders = []
    for root in session_roots(g.output_dir, DEFAULT_ROOT):
        root_dir = os.path.join(g.output_dir, *root.split("/"))
        folders += [g.relative(f) for f in islice(session_folders(root_dir), SESSIONS_LISTED)]
    out = []
    for rel in newest_first(folders)[:SESSIONS_LISTED]:
        folder = os.path.join(g.output_dir, *rel.split("/"))
        try:
            out.append(g.summary(folder, running=_running(folder)))
        except OSError:
            continue                 # removed meanwhile
    return out


def session_view(text: str) -> bytes:
    """{"view": the grid (cached JSON, see core.gallery.FolderIndex.view), "marks", "state"}."""
    folder = _folder(text)
    g = gallery()
    view = g.index(folder).view(g.relative(folder))
    extra = compact_json({"marks": read_marks(folder), "state": g.summary(folder, running=_running(folder))["state"]})
    return b'{"view":' + view + b"," + extra[1:]


def one_image(text: str, name) -> dict:
    path = _image(_folder(text), name)
    sidecar = read_sidecar(path)
    if sidecar is None:
        raise GalleryError(f"{name} has no sidecar")
    return image_details(sidecar)


def regenerate(body: dict) -> dict:
    folder = _folder(body.get("folder"))
    path = _image(folder, body.get("name"))
    sidecar = read_sidecar(path)
    if sidecar is None:
        raise GalleryError(f"{body.get('name')} has no sidecar")
    changes = body.get("changes") or {}
    if not isinstance(changes, dict):
        raise GalleryError("changes must be an object")
    image = os.path.relpath(path, folder_paths.get_output_directory()).replace(os.sep, "/")
    job = regeneration_job(sidecar, image, changes)
    with open(WORKFLOW, encoding="utf-8") as f:
        workflow = json.load(f)
    return {"prompt": regeneration_prompt(workflow, job), "description": job.description}


REFUSED = (GalleryError, PathError, GenerationParamsError, RegenerateError, KeyError, TypeError, ValueError)


async def _answer(work, *args) -> web.Response:
    try:
        result = await asyncio.get_running_loop().run_in_executor(None, work, *args)
    except REFUSED as e:
        return web.json_response({"error": str(e)}, status=400)
    if isinstance(result, bytes):                # already JSON
        return web.Response(body=result, content_type="application/json")
    return web.json_response(result)


async def get_sessions(request: web.Request) -> web.Response:
    return await _answer(lambda: {"sessions": list_sessions()})


async def get_session_view(request: web.Request) -> web.Response:
    return await _answer(session_view, request.rel_url.query.get("folder", ""))


async def get_image(request: web.Request) -> web.Response:
    q = request.rel_url.query
    return await _answer(one_image, q.get("folder", ""), q.get("name", ""))


async def _body(request: web.Request) -> dict:
    try:
        body = await request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise GalleryError("the request body must be a JSON object")
    return body


async def post_marks(request: web.Request) -> web.Response:
    try:
        body = await _body(request)
    except GalleryError as e:
        return web.json_response({"error": str(e)}, status=400)

    def work():
        folder = _folder(body.get("folder"))
        return {"images": update_marks(folder, body.get("name"), star=body.get("star"), tags=body.get("tags"))}
    return await _answer(work)


async def post_regenerate(request: web.Request) -> web.Response:
    try:
        body = await _body(request)
    except GalleryError as e:
        return web.json_response({"error": str(e)}, status=400)
    return await _answer(regenerate, body)


def add_routes(routes: web.RouteTableDef) -> None:
    routes.get("/prompt_media/sessions")(get_sessions)
    routes.get("/prompt_media/session_view")(get_session_view)
    routes.get("/prompt_media/image")(get_image)
    routes.post("/prompt_media/marks")(post_marks)
    routes.post("/prompt_media/regenerate")(post_regenerate)

