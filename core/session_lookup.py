"""Where a session stands, for the OOM node's "Queue session" button and the CLI.

:func:`session_request` reads what the lookup needs from a posted API prompt (the OOM node, the
loader feeding it, the saver it feeds); :func:`session_status` answers from the expansion and
the recorded session state. The HTTP route (nodes/routes.py) only loads the file in between.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .api_prompt import (
    LOADER_CLASS,
    OOM_CLASS,
    SAVER_CLASS,
    Linked,
    class_of,
    consumers,
    get_node,
    input_value,
    loader_source,
    source_of,
)
from .expand import count_jobs, describe, expansion_id
from .schema import PromptMedia
from .session import DEFAULT_ROOT, SESSIONS, Session, open_session


class SessionLookupError(ValueError):
    pass


@dataclass(frozen=True)
class SessionRequest:
    source: tuple[str, str, str]      # the loader's (file, yaml_text, preset)
    mode: str
    seed: int
    variation_seed: int
    root: str                         # the saver's root (inside the output directory)


def _constant(prompt: dict, node: dict, name: str, default):
    v = input_value(prompt, node, name, default)
    if isinstance(v, Linked):
        raise SessionLookupError(f"{class_of(node)}.{name} is linked; the session lookup "
                                 "needs it as a widget value")
    return v


def session_request(prompt: dict, oom_id: str) -> SessionRequest:
    oom = get_node(prompt, oom_id)
    if class_of(oom) != OOM_CLASS:
        raise SessionLookupError(f"node {oom_id} is not an OOM Variations node")
    feeding = source_of(prompt, oom, "prompt_media")
    if feeding is None:
        raise SessionLookupError(f"{OOM_CLASS}.prompt_media is not connected")
    if class_of(feeding[2]) != LOADER_CLASS:
        raise SessionLookupError("OOM Variations.prompt_media must come from a Prompt Media Loader")
    source = loader_source(prompt, feeding[2])
    if source is None:
        raise SessionLookupError("the Prompt Media Loader's file/yaml_text/preset are linked; the "
                                 "session lookup needs them as widget values")
    # the saver fed by this OOM node decides where the session lives
    savers = consumers(prompt, oom_id, input_name="job", class_type=SAVER_CLASS)
    root = _constant(prompt, savers[0][1], "root", DEFAULT_ROOT) if savers else DEFAULT_ROOT
    return SessionRequest(source, _constant(prompt, oom, "mode", "product"),
                          int(_constant(prompt, oom, "seed", 0)),
                          int(_constant(prompt, oom, "variation_seed", 0)), root)


def session_status(media: PromptMedia, request: SessionRequest, root_dir: str,
                   session: Session | None = None) -> dict:
    """{total, description, expansion_id, next_index, remaining, last_index, folder,
    session_folder, first_number}; root_dir is the saver's root resolved inside the output
    directory. ``session``: the one to describe (default: the one a later job would continue
    on this server). session_folder and first_number are what run_session.py passes to the
    saver to continue exactly this session (on any server)."""
    exp_id = expansion_id(media, request.mode, request.variation_seed, request.seed)
    total = count_jobs(media, request.mode, request.seed)
    if session is None:
        session = SESSIONS.current(root_dir, exp_id)
    last = session.last_index if session and session.last_index >= 0 else None
    # a finished (or never started) session: the button starts a new one
    next_index = last + 1 if last is not None and last + 1 < total else 0
    return {"total": total, "description": describe(media, request.mode, request.seed),
            "expansion_id": exp_id, "next_index": next_index, "remaining": total - next_index,
            "last_index": last, "folder": session.folder if session else None,
            "session_folder": session.relative_folder if session else None,
            "first_number": session.first if session else None}


def open_planned_session(media: PromptMedia, request: SessionRequest, root_dir: str, batch_size: int = 1,
                         now=datetime.now) -> dict:
    """Open a new session for run_session.py: its folder (this minute) and numbers reserved and
    recorded here before any job runs; answers like :func:`session_status`. A planned session
    starts at its folder's minute, so every server records the same start."""
    exp_id = expansion_id(media, request.mode, request.variation_seed, request.seed)
    total = count_jobs(media, request.mode, request.seed)
    minute = now().replace(second=0, microsecond=0)
    session = SESSIONS.remember(open_session(root_dir, exp_id, total, batch_size, lambda: minute))
    return session_status(media, request, root_dir, session)
