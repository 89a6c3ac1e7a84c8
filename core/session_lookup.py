"""Where a session stands, for the OOM node's "Queue session" button and the CLI.

:func:`session_request` reads what the lookup needs from a posted API prompt (the OOM node, the
loader feeding it, the saver it feeds); :func:`session_status` answers from the expansion and
the recorded session state. The HTTP route (nodes/routes.py) only loads the file in between.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterable
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
    nodes_of_class,
    source_of,
)
from .expand import count_jobs, describe, expansion_id
from .schema import PromptMedia
from .session import DEFAULT_ROOT, SESSIONS, PlannedSession, Session, open_session, open_set


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


def queued_jobs(request: SessionRequest, prompts: Iterable[dict]) -> set[int]:
    """The job indexes of ``request``'s session among ``prompts`` (those running or waiting in
    ComfyUI's queue): any OOM node of the same loader source, mode, seeds and saver root."""
    out: set[int] = set()
    for prompt in prompts:
        for oom_id, oom in nodes_of_class(prompt, OOM_CLASS):
            try:
                same = session_request(prompt, oom_id) == request
            except (SessionLookupError, TypeError, ValueError):
                continue
            index = input_value(prompt, oom, "job_index")
            if same and isinstance(index, int) and not isinstance(index, bool):
                out.add(index)
    return out


def session_status(media: PromptMedia, request: SessionRequest, root_dir: str,
                   session: Session | None = None, *, queued: Iterable[int] = (),
                   saved_jobs: Callable[[str, str], set[int]] | None = None,
                   output_dir: str | None = None) -> dict:
    """Where the session stands: {total, description, expansion_id, next_index, remaining,
    last_index, folder, session_folder, first_number, saved, queued, subfolder}. ``root_dir`` is
    the saver's root resolved inside the output directory. ``session``: the one to describe
    (default: the one a later job would continue on this server); session_folder and
    first_number are what run_session.py passes to the saver to continue exactly this session
    (on any server). ``queued``: the session's job indexes in ComfyUI's queue;
    ``saved_jobs(folder, expansion_id)``: the job indexes with an image in the session folder
    (without it, the recorded last job counts as the saved ones); ``subfolder``: the session
    folder inside ``output_dir`` (what /view and the gallery take).

    Queue session continues after the last job saved or queued; a finished session (everything
    saved, nothing queued) or one never started begins again at job 0, in a new folder."""
    exp_id = expansion_id(media, request.mode, request.variation_seed, request.seed)
    total = count_jobs(media, request.mode, request.seed)
    if session is None:
        session = SESSIONS.current(root_dir, exp_id)
    last = session.last_index if session and session.last_index >= 0 else None
    queued = {i for i in queued if 0 <= i < total}
    if session is not None and saved_jobs is not None:
        saved = {i for i in saved_jobs(session.folder, exp_id) if 0 <= i < total}
    else:
        saved = set(range(last + 1)) if last is not None else set()
    reached = max(saved | queued, default=-1) + 1
    if reached >= total and not queued:
        next_index = 0                       # finished (or never started): a new session
    else:
        next_index = reached
    relative = None
    if session is not None and output_dir is not None:
        relative = os.path.relpath(session.folder, output_dir).replace(os.sep, "/")
    return {"total": total, "description": describe(media, request.mode, request.seed),
            "expansion_id": exp_id, "next_index": next_index, "remaining": max(total - next_index, 0),
            "last_index": last, "folder": session.folder if session else None,
            "session_folder": session.relative_folder if session else None,
            "first_number": session.first if session else None,
            "saved": len(saved), "queued": len(queued), "subfolder": relative}


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



def open_planned_set(jobs: list[tuple[PromptMedia, SessionRequest]], root_dir: str, batch_size: int = 1,
                     now=datetime.now, planned: PlannedSession | None = None) -> dict:
    """Open one new session folder (this minute, or ``planned``: the set as another server opened
    it) for a set of one-job sessions run as one, in order (run_session.py --regenerate: one
    per image), their numbers reserved together (core/session.open_set). Answers {folder,
    session_folder, first_numbers} (each session's number, in order)."""
    parts = []
    for media, request in jobs:
        if count_jobs(media, request.mode, request.seed) != 1:
            raise SessionLookupError(f"a set holds one-job sessions; {media.source_name} expands to "
                                     f"{count_jobs(media, request.mode, request.seed)} jobs")
        parts.append(expansion_id(media, request.mode, request.variation_seed, request.seed))
    if not parts:
        raise SessionLookupError("no sessions to open")
    folder, first = open_set(root_dir, parts, batch_size, now, planned)
    return {"folder": folder, "session_folder": os.path.relpath(folder, root_dir).replace(os.sep, "/"),
            "first_numbers": [first + k * batch_size for k in range(len(parts))]}
