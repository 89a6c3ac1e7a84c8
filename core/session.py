"""Session folders, image numbering and the on-disk session state.

Layout: ``<output>/<root>/YYYY/MM/DD/HHMM/`` (local time of the session start) holding
``{count:03d}_seed_{seed}.png`` + ``.json``; counts start at 001 and grow past 999 with more
digits. One state file per expansion, ``<output>/<root>/.prompt_media/sessions/<id>.json``,
remembers the session's folder so later jobs continue it, even across a ComfyUI restart:

- a job with index 0 opens a new session (a new folder at the current time; if that folder
  exists, e.g. the same minute, numbering continues after its highest count);
- a job with index > 0 continues the session recorded for its expansion, or opens one if none
  is recorded.

Names are claimed with an atomic no-replace link, so concurrent savers never overwrite.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from itertools import islice

from .atomic import discard, publish_bytes, publish_temp, remove_stale_temps, write_json, write_temp
from .paths import PathError, ensure_inside, path_inside

DEFAULT_ROOT = "collections/images"
STATE_DIR = os.path.join(".prompt_media", "sessions")
FOLDER_FORMAT = "%Y/%m/%d/%H%M"
STARTED_FORMAT = "%Y-%m-%dT%H:%M:%S"
MAX_CLAIM_ATTEMPTS = 100_000

NUMBERED_FILE = re.compile(r"^(\d+)_seed_(-?\d+)\.(?:png|json)$")
_EXPANSION_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


# --------------------------------------------------------------------------- naming

def image_name(count: int, seed: int) -> str:
    return f"{count:03d}_seed_{seed}.png"


def sidecar_name(count: int, seed: int) -> str:
    return f"{count:03d}_seed_{seed}.json"


def highest_count(folder: str) -> int:
    """The highest NNN among ``NNN_seed_*.png|json`` in ``folder``; 0 when none (or no folder)."""
    best = 0
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                m = NUMBERED_FILE.match(entry.name)
                if m:
                    best = max(best, int(m.group(1)))
    except FileNotFoundError:
        return 0
    return best


def session_folder(root_dir: str, started: datetime) -> str:
    return os.path.join(root_dir, *started.strftime(FOLDER_FORMAT).split("/"))


# --------------------------------------------------------------------------- user-named folders

def resolve_root(output_dir: str, root: str) -> str:
    """The absolute sessions root for the saver's ``root`` (relative to ``output_dir``), refusing
    anything that could leave it (see core.paths)."""
    if isinstance(root, str) and not root.strip():
        raise PathError(f"root is empty; use a folder relative to the output directory, "
                        f"e.g. {DEFAULT_ROOT!r}")
    return path_inside(output_dir, root, "root", where=f"the output directory ({output_dir})",
                       folder=True)


def session_folder_path(output_dir: str, folder: str) -> str:
    """The existing session folder user text names: relative to ``output_dir``, or absolute but
    inside it. Refuses '..', paths outside the output directory and symlinks pointing out."""
    text = (folder or "").strip()
    if not text:
        raise PathError("no session folder given")
    path = path_inside(output_dir, text, "folder", where=f"the output directory ({output_dir})",
                       absolute_ok=True, folder=True)
    if not os.path.isdir(path):
        raise PathError(f"session folder {text!r} does not exist in {output_dir}")
    return path


# --------------------------------------------------------------------------- session state

@dataclass
class Session:
    expansion_id: str
    root_dir: str          # absolute <output>/<root>
    folder: str            # absolute session folder
    started: datetime
    last_index: int = -1
    last_count: int = 0
    opened: bool = False   # True when this call opened the session (job 0 or none recorded)

    def state(self) -> dict:
        return {"expansion_id": self.expansion_id,
                "folder": os.path.relpath(self.folder, self.root_dir).replace(os.sep, "/"),
                "started": self.started.strftime(STARTED_FORMAT),
                "last_index": self.last_index, "last_count": self.last_count}


def state_path(root_dir: str, expansion_id: str) -> str:
    if not isinstance(expansion_id, str) or not _EXPANSION_ID.match(expansion_id):
        raise PathError(f"expansion_id {expansion_id!r} is not a plain identifier")
    return os.path.join(root_dir, STATE_DIR, f"{expansion_id}.json")


def load_session(root_dir: str, expansion_id: str) -> Session | None:
    """The session recorded for ``expansion_id``; None when none is recorded or the record is
    unusable (then a new session is opened: continuing into a wrong folder would be worse)."""
    path = state_path(root_dir, expansion_id)
    try:
        with open(path, "rb") as f:
            data = json.loads(f.read(1024 * 1024))
        full = path_inside(root_dir, data["folder"], "session folder", folder=True)
        return Session(expansion_id, root_dir, full,
                       datetime.strptime(data["started"], STARTED_FORMAT),
                       int(data.get("last_index", -1)), int(data.get("last_count", 0)))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def save_session(session: Session, *, durable: bool = True) -> None:
    """Record the session. ``durable=False`` (the per-image progress update) skips the fsyncs: a
    power loss may then roll back last_index/last_count, never the folder, and numbering rescans
    the folder anyway, so nothing is overwritten."""
    path = state_path(session.root_dir, session.expansion_id)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_json(path, session.state(), replace=True, durable=durable)


def open_or_continue(root_dir: str, expansion_id: str, job_index: int,
                     now: Callable[[], datetime] = datetime.now) -> Session:
    """The session a job saves into (see the module docstring); its folder exists on return.
    Temporary files a killed writer left in it (or in the state folder) are removed."""
    session = None if job_index <= 0 else load_session(root_dir, expansion_id)
    if session is None:
        started = now().replace(microsecond=0)
        session = Session(expansion_id, root_dir, session_folder(root_dir, started), started,
                          opened=True)
    ensure_inside(root_dir, session.folder, what="session folder")   # before creating anything
    os.makedirs(session.folder, exist_ok=True)
    ensure_inside(root_dir, session.folder, what="session folder")   # a link swapped in meanwhile
    remove_stale_temps(session.folder)
    remove_stale_temps(os.path.dirname(state_path(root_dir, expansion_id)))
    if session.opened:
        save_session(session)      # later jobs must find it even if this one fails midway
    return session


# --------------------------------------------------------------------------- publishing

def claim_and_publish(folder: str, data: bytes, seed: int, min_count: int = 1, *,
                      sync_dir: bool = True) -> tuple[int, str]:
    """Publish PNG ``data`` as ``NNN_seed_{seed}.png`` with the next free count (at least
    ``min_count``, above every numbered file in the folder); returns (count, path).

    The folder is rescanned before each attempt, so a count another process just took (under
    any seed) is skipped; the no-replace link makes overwriting impossible even in a race.
    ``sync_dir=False``: the caller fsyncs the folder later (e.g. with the sidecar's name).
    """
    tmp: str | None = write_temp(folder, data)
    try:
        count = max(1, min_count)
        for _ in range(MAX_CLAIM_ATTEMPTS):
            count = max(count, highest_count(folder) + 1)
            final = os.path.join(folder, image_name(count, seed))
            try:
                publish_temp(tmp, final, sync_dir=sync_dir)
            except FileExistsError:
                count += 1
                continue
            tmp = None
            return count, final
        raise RuntimeError(f"could not find a free image number in {folder} after "
                           f"{MAX_CLAIM_ATTEMPTS} attempts")
    finally:
        if tmp is not None:
            discard(tmp)


# --------------------------------------------------------------------------- prompt file copy

_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9._ -]+")
PROMPT_EXTENSIONS = (".yaml", ".yml")
MAX_COPY_NAME = 120         # characters (all ASCII here); leaves room for the _<sha8> variant
# Windows opens a device, not a file, for these names with any extension ("con.yaml", "nul.txt.yaml")
_WINDOWS_DEVICE = re.compile(r"^(con|prn|aux|nul|conin\$|conout\$|com[0-9]|lpt[0-9])$", re.I)


def prompt_copy_name(source_name: str) -> str:
    """A safe file name for the session's copy of the prompt file: its base name, only
    letters, digits and ``._ -``, no leading dot, not a Windows device name, at most
    MAX_COPY_NAME characters, a YAML extension."""
    base = re.split(r"[\\/]", str(source_name or ""))[-1]
    base = _UNSAFE_NAME_CHARS.sub("_", base).strip(" .") or "prompt_media.yaml"
    if not base.lower().endswith(PROMPT_EXTENSIONS):
        base += ".yaml"
    stem, ext = os.path.splitext(base)
    if _WINDOWS_DEVICE.match(stem.split(".")[0].strip()):
        stem = "_" + stem
    return stem[:MAX_COPY_NAME - len(ext)].rstrip(" .") + ext


def copy_prompt_file(folder: str, source_name: str, text: str) -> str:
    """Put the prompt file into the session folder once; returns the copy's path.

    An identical copy already there is reused; a different file of the same name (another
    session in the same minute) is kept, and ours gets a ``_<sha8>`` suffix. Never replaces.
    """
    data = text.encode("utf-8")
    digest = hashlib.sha256(data).hexdigest()
    name = prompt_copy_name(source_name)
    stem, ext = os.path.splitext(name)
    for candidate in (name, f"{stem}_{digest[:8]}{ext}"):
        path = os.path.join(folder, candidate)
        if _same_content(path, digest):      # every later job of a session: one small read
            return path
        try:
            publish_bytes(data, path)
            return path
        except FileExistsError:
            if _same_content(path, digest):
                return path
    raise FileExistsError(f"{folder}: {name} and its variant exist with other content; "
                          "the prompt file was not copied")


def _same_content(path: str, digest: str) -> bool:
    try:
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest() == digest
    except OSError:
        return False


# --------------------------------------------------------------------------- walking sessions

_DATED_PARTS = (re.compile(r"\d{4}"), re.compile(r"\d{2}"), re.compile(r"\d{2}"), re.compile(r"\d{4}"))


def session_folders(root_dir: str) -> Iterator[str]:
    """The session folders ``root_dir/YYYY/MM/DD/HHMM``, newest first, as absolute paths.
    Lazy: it lists only the folders it needs for the items taken (stop iterating to stop)."""
    def walk(folder: str, depth: int) -> Iterator[str]:
        try:
            names = sorted((n for n in os.listdir(folder) if _DATED_PARTS[depth].fullmatch(n)),
                           reverse=True)
        except OSError:            # missing, not a folder, unreadable: no sessions there
            return
        for name in names:
            path = os.path.join(folder, name)
            if depth == len(_DATED_PARTS) - 1:
                if os.path.isdir(path):
                    yield path
            else:
                yield from walk(path, depth + 1)

    yield from walk(os.path.abspath(root_dir), 0)


def session_sidecars(folder: str) -> list[str]:
    """The sidecars (``NNN_seed_S.json``) of a session folder, in count order."""
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    numbered = sorted((int(m.group(1)), n) for n in names
                      if (m := NUMBERED_FILE.match(n)) and n.endswith(".json"))
    return [os.path.join(folder, n) for _count, n in numbered]


def recent_sidecars(root_dir: str, limit: int = 500) -> list[str]:
    """Sidecar paths under ``root_dir``, newest session and highest count first; stops after
    ``limit`` (walks only the folders it needs)."""
    newest = (path for folder in session_folders(root_dir) for path in reversed(session_sidecars(folder)))
    return list(islice(newest, limit))
