"""Session folders, image numbers and the on-disk session state.

Layout: ``<output>/<root>/YYYY/MM/DD/HHMM/`` (local time of the session start) holding
``{count:03d}_seed_{seed}.png`` + ``.json``; counts grow past 999 with more digits.

An image's number is fixed by the plan, not by the order images arrive: job ``j``'s batch image
``b`` is ``first + j * batch_size + b`` (core/plan.py names it). ``first`` is the session's base
number, reserved when the session opens: ``jobs * batch_size`` numbers right after every earlier
session of that folder (same minute) and every numbered file in it, recorded in an append-only
log ``<root>/.prompt_media/numbers/YYYY-MM-DD-HHMM/NNNN.json`` (one file per session, each
published with a no-replace link, so concurrent openers never get overlapping ranges).

One state file per expansion, ``<root>/.prompt_media/sessions/<id>.json``, records the session
last opened for it (folder, started, first, batch_size, jobs), once, when it opens. How far it
got is not written per job: it is what the folder holds (a job is saved when all its sidecars
are there, see :func:`saved_jobs`), so it never runs ahead of or lags behind the images, and
saving a job costs no state write. Which session a job saves into:

- a planned session (run_session.py passes its folder and first number to the saver): that one,
  on every server, reserved there too if it was opened elsewhere;
- job 0: a new session (a new folder at the current time, or after the numbers already
  reserved in that minute's folder);
- a later job: the session this ComfyUI process opened for the expansion while it is unfinished
  (another ComfyUI sharing the output folder may have opened a newer one since), else the one
  recorded on disk (e.g. after a restart), else a new one.

Images are published with an atomic no-replace link, so nothing is ever overwritten.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from itertools import islice

from .atomic import discard, publish_bytes, publish_temp, remove_stale_temps, write_json, write_temp
from .paths import PathError, ensure_inside, path_inside

DEFAULT_ROOT = "collections/images"
STATE_DIR = os.path.join(".prompt_media", "sessions")
NUMBERS_DIR = os.path.join(".prompt_media", "numbers")
GALLERY_DIR = os.path.join(".prompt_media", "gallery")
FOLDER_FORMAT = "%Y/%m/%d/%H%M"
STARTED_FORMAT = "%Y-%m-%dT%H:%M:%S"

NUMBERED_FILE = re.compile(r"^(\d+)_seed_(-?\d+)\.(?:png|json)$")
PLANNED_FOLDER = re.compile(r"^\d{4}/\d{2}/\d{2}/\d{4}$")
_EXPANSION_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_RESERVATION = re.compile(r"^(\d+)\.json$")


class NumberingError(ValueError):
    """A planned name or number range is taken by another session (nothing was overwritten)."""


# --------------------------------------------------------------------------- naming

def image_name(count: int, seed: int) -> str:
    return f"{count:03d}_seed_{seed}.png"


def image_count(name: str) -> int | None:
    """The count of a session image name (``NNN_seed_S.png``); None for any other name."""
    m = NUMBERED_FILE.match(name) if isinstance(name, str) else None
    return int(m.group(1)) if m and name.endswith(".png") else None


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


# --------------------------------------------------------------------------- planned sessions

@dataclass(frozen=True)
class PlannedSession:
    """A session's identity fixed before it runs (run_session.py passes it to every server):
    its folder under the root (``YYYY/MM/DD/HHMM``) and its first image number."""
    folder: str
    first: int

    @classmethod
    def parse(cls, folder: str, first: int) -> PlannedSession | None:
        """From the saver's ``session_folder`` / ``first_number`` inputs; None when unset (empty
        folder, first 0); ValueError for a folder that is not ``YYYY/MM/DD/HHMM`` (a real time)."""
        folder = (folder or "").strip().replace("\\", "/")
        if not folder and not first:
            return None
        if not folder:
            raise ValueError(f"first_number {first!r} needs session_folder (both are set by run_session.py); "
                             "set first_number to 0 to let the saver open sessions")
        if not PLANNED_FOLDER.match(folder):
            raise ValueError(f"session_folder {folder!r} is not a session folder like 2026/11/22/1458 "
                             "(YYYY/MM/DD/HHMM under the root); leave it empty to let the saver open sessions")
        try:
            datetime.strptime(folder, FOLDER_FORMAT)
        except ValueError:
            raise ValueError(f"session_folder {folder!r} is not a real date and time") from None
        if not isinstance(first, int) or isinstance(first, bool) or first < 1:
            raise ValueError(f"first_number {first!r} must be 1 or more with session_folder {folder!r}")
        return cls(folder, first)

    @property
    def started(self) -> datetime:
        """A planned session started at its folder's minute (the same on every server)."""
        return datetime.strptime(self.folder, FOLDER_FORMAT)


# --------------------------------------------------------------------------- number reservations

def numbers_dir(root_dir: str, folder: str) -> str:
    """The reservation log of a session folder: ``<root>/.prompt_media/numbers/YYYY-MM-DD-HHMM``."""
    relative = os.path.relpath(folder, root_dir).replace(os.sep, "/")
    return os.path.join(root_dir, NUMBERS_DIR, relative.replace("/", "-"))


def gallery_index_path(folder: str) -> str | None:
    """Where the gallery keeps its index of a session folder ``<root>/YYYY/MM/DD/HHMM``:
    ``<root>/.prompt_media/gallery/YYYY-MM-DD-HHMM.index``, beside the folder's number
    reservations (not among the images, and writing it leaves the folder's mtime alone). None
    for a folder that is not a dated session folder of a saver root (one holding
    ``.prompt_media/``): no state folder is made anywhere else."""
    split = dated_split(folder)
    if split is None:
        return None
    root = os.path.abspath(folder)
    for _ in range(4):
        root = os.path.dirname(root)
    if not os.path.isdir(os.path.join(root, os.path.dirname(GALLERY_DIR))):
        return None
    return os.path.join(root, GALLERY_DIR, "-".join(split[1]) + ".index")


def _read_json(path: str) -> dict | None:
    try:
        with open(path, "rb") as f:
            data = json.loads(f.read(1024 * 1024))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _reservations(log_dir: str) -> list[tuple[int, int, int, str, tuple[str, ...]]]:
    """(slot, first, images, expansion_id, parts) of every reservation in ``log_dir``, in slot
    order (an unreadable one keeps its slot and holds no numbers: we never write one)."""
    try:
        names = os.listdir(log_dir)
    except FileNotFoundError:
        return []
    out = []
    for name in names:
        m = _RESERVATION.match(name)
        if not m:
            continue
        r = _read_json(os.path.join(log_dir, name)) or {}
        try:
            parts = r.get("parts") or ()
            out.append((int(m.group(1)), int(r["first"]), int(r["images"]), str(r["expansion_id"]),
                        tuple(str(p) for p in parts) if isinstance(parts, list) else ()))
        except (KeyError, TypeError, ValueError):   # not ours / edited by hand: holds no numbers
            out.append((int(m.group(1)), 0, 0, "", ()))
    return sorted(out)


def _part_holds(start: int, count: int, parts: tuple[str, ...], expansion_id: str, first: int, images: int) -> bool:
    """True when a set's reservation (``parts``: its sessions in order, equal shares of its
    numbers) holds exactly ``first``..``first + images - 1`` for ``expansion_id``."""
    if not parts or count % len(parts) or images != count // len(parts):
        return False
    index, offset = divmod(first - start, images)
    return offset == 0 and 0 <= index < len(parts) and parts[index] == expansion_id


def reserve_numbers(root_dir: str, folder: str, expansion_id: str, images: int, started: datetime,
                    first: int | None = None, parts: list[str] | None = None) -> int:
    """Reserve ``images`` consecutive numbers in ``folder`` for a session; returns the first.

    ``first=None``: right after every earlier reservation of the folder and every numbered file
    in it. ``first=N``: exactly N (a session planned elsewhere); returns N at once when this
    session already holds it (or a set's reservation holds it for this session: see ``parts``),
    raises NumberingError when another session holds any of them. ``parts``: a set of sessions
    reserved as one (``--regenerate``: one session per image): their expansion ids in order,
    each holding an equal share of the numbers, so each session's own reservation later finds
    its share here.
    Lock-free: each reservation is a new numbered file in the log published with a no-replace
    link, computed from all the earlier ones; losing the race for a slot means reading it and
    going after it."""
    log_dir = numbers_dir(root_dir, folder)
    os.makedirs(log_dir, exist_ok=True)
    images = max(1, int(images))
    while True:
        slots = _reservations(log_dir)
        end = 1
        for _slot, start, count, owner, held_for in slots:
            if first is not None and (owner == expansion_id and start == first
                                      or _part_holds(start, count, held_for, expansion_id, first, images)):
                return first
            if first is not None and start < first + images and first < start + count:
                raise NumberingError(
                    f"numbers {first}-{first + images - 1} of {folder} are already reserved by another "
                    f"session (expansion {owner}, numbers {start}-{start + count - 1}); nothing was "
                    "written. Start a new session, or plan this one in another folder")
            end = max(end, start + count)
        start = first if first is not None else max(end, highest_count(folder) + 1)
        slot = slots[-1][0] + 1 if slots else 1
        record = {"first": start, "images": images, "expansion_id": expansion_id,
                  "started": started.strftime(STARTED_FORMAT)} | ({"parts": list(parts)} if parts else {})
        try:
            write_json(os.path.join(log_dir, f"{slot:04d}.json"), record)
            return start
        except FileExistsError:      # another session took this slot first: go after it
            continue


# --------------------------------------------------------------------------- session state

@dataclass
class Session:
    expansion_id: str
    root_dir: str          # absolute <output>/<root>
    folder: str            # absolute session folder
    started: datetime
    last_index: int = -1   # the highest job index saved (in memory; on disk: the folder)
    last_count: int = 0    # the highest number saved (in memory; on disk: the folder)
    first: int = 1         # the number of job 0's first image
    batch_size: int = 1    # images per job
    jobs: int = 0          # the session's job count
    opened: bool = False   # True when this call opened the session

    @property
    def relative_folder(self) -> str:
        return os.path.relpath(self.folder, self.root_dir).replace(os.sep, "/")

    @property
    def finished(self) -> bool:
        return self.jobs > 0 and self.last_index >= self.jobs - 1

    def is_planned(self, planned: PlannedSession) -> bool:
        return self.relative_folder == planned.folder and self.first == planned.first

    def state(self) -> dict:
        return {"expansion_id": self.expansion_id, "folder": self.relative_folder,
                "started": self.started.strftime(STARTED_FORMAT), "first": self.first,
                "batch_size": self.batch_size, "jobs": self.jobs}

    def saved(self, job_index: int, batch_index: int) -> None:
        self.last_index = max(self.last_index, job_index)
        self.last_count = max(self.last_count, self.first + job_index * self.batch_size + batch_index)

    def holds(self, sidecar: dict, job_index: int, batch_index: int) -> bool:
        """True when ``sidecar`` records image ``batch_index`` of job ``job_index`` of this session."""
        oom, session = sidecar.get("oom") or {}, sidecar.get("session") or {}
        params = sidecar.get("parameters") or {}
        return (oom.get("expansion_id") == self.expansion_id and session.get("first") == self.first
                and oom.get("index") == job_index and params.get("batch_index", 0) == batch_index)


def state_path(root_dir: str, expansion_id: str) -> str:
    if not isinstance(expansion_id, str) or not _EXPANSION_ID.match(expansion_id):
        raise PathError(f"expansion_id {expansion_id!r} is not a plain identifier")
    return os.path.join(root_dir, STATE_DIR, f"{expansion_id}.json")


def load_session(root_dir: str, expansion_id: str) -> Session | None:
    """The session recorded for ``expansion_id``, with how far it got (from its folder); None
    when none is recorded or the record is unusable (then a new session is opened: continuing
    into a wrong folder would be worse). A record without ``first`` (written before numbers
    were planned) is unusable too."""
    path = state_path(root_dir, expansion_id)
    data = _read_json(path)
    if data is None:
        return None
    try:
        full = path_inside(root_dir, data["folder"], "session folder", folder=True)
        first, batch_size, jobs = int(data["first"]), int(data.get("batch_size", 1)), int(data.get("jobs", 0))
        if first < 1 or batch_size < 1:
            return None
        session = Session(expansion_id, root_dir, full, datetime.strptime(data["started"], STARTED_FORMAT),
                          first=first, batch_size=batch_size, jobs=jobs)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    done = saved_jobs(session)
    if done:
        session.last_index = max(done)
        session.last_count = first + (session.last_index + 1) * batch_size - 1
    return session


def saved_jobs(session: Session) -> set[int]:
    """The job indexes whose every image has its sidecar in the session folder (the sidecar is
    published after its image), read from the file names of the session's own numbers."""
    end = session.first + max(session.jobs, 1) * session.batch_size
    images: dict[int, int] = {}
    try:
        with os.scandir(session.folder) as entries:
            for entry in entries:
                m = NUMBERED_FILE.match(entry.name)
                if m and entry.name.endswith(".json") and session.first <= int(m.group(1)) < end:
                    job = (int(m.group(1)) - session.first) // session.batch_size
                    images[job] = images.get(job, 0) + 1
    except OSError:
        return set()
    return {job for job, n in images.items() if n >= session.batch_size}


def save_session(session: Session) -> None:
    """Record the session (once, when it opens; durably: later jobs and restarts rely on it)."""
    path = state_path(session.root_dir, session.expansion_id)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_json(path, session.state(), replace=True)


def _prepare_folder(root_dir: str, folder: str, expansion_id: str) -> None:
    """Create the session folder safely and remove temporary files a killed writer left in it
    (and in the state folder)."""
    ensure_inside(root_dir, folder, what="session folder")   # before creating anything
    os.makedirs(folder, exist_ok=True)
    ensure_inside(root_dir, folder, what="session folder")   # a link swapped in meanwhile
    remove_stale_temps(folder)
    remove_stale_temps(os.path.dirname(state_path(root_dir, expansion_id)))


def open_session(root_dir: str, expansion_id: str, jobs: int, batch_size: int = 1,
                 now: Callable[[], datetime] = datetime.now, planned: PlannedSession | None = None) -> Session:
    """A new session: its folder (now's minute, or the planned one) exists, its numbers are
    reserved and it is recorded durably before anything is saved into it."""
    state_path(root_dir, expansion_id)                        # a bad id fails before anything is made
    started = planned.started if planned else now().replace(microsecond=0)
    folder = os.path.join(root_dir, *planned.folder.split("/")) if planned else session_folder(root_dir, started)
    _prepare_folder(root_dir, folder, expansion_id)
    jobs, batch_size = max(1, int(jobs)), max(1, int(batch_size))
    first = reserve_numbers(root_dir, folder, expansion_id, jobs * batch_size, started,
                            planned.first if planned else None)
    session = Session(expansion_id, root_dir, folder, started, first=first, batch_size=batch_size,
                      jobs=jobs, opened=True)
    save_session(session)      # later jobs must find it even if this one fails midway
    return session


def open_set(root_dir: str, parts: list[str], batch_size: int = 1, now: Callable[[], datetime] = datetime.now,
             planned: PlannedSession | None = None) -> tuple[str, int]:
    """One folder (now's minute, or the planned one) and one reservation for a set of sessions
    run as one (run_session.py --regenerate: a one-job session per image), each holding
    ``batch_size`` numbers in ``parts``' order (their expansion ids); returns (folder, first).
    Each session opens itself when its job is saved (:func:`open_session` with the folder and its
    number planned), finding its share in this reservation: one log entry for the whole set,
    however large. ``planned``: the set as opened on another server."""
    set_id = hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]
    started = planned.started if planned else now().replace(second=0, microsecond=0)
    folder = os.path.join(root_dir, *planned.folder.split("/")) if planned else session_folder(root_dir, started)
    _prepare_folder(root_dir, folder, set_id)
    first = reserve_numbers(root_dir, folder, set_id, len(parts) * max(1, int(batch_size)), started,
                            planned.first if planned else None, parts=parts)
    return folder, first


def continue_session(root_dir: str, expansion_id: str) -> Session | None:
    """The session recorded on disk, its folder made safe (see _prepare_folder); None if none."""
    session = load_session(root_dir, expansion_id)
    if session is not None:
        _prepare_folder(root_dir, session.folder, expansion_id)
    return session


class SessionBook:
    """Which session a job saves into (see the module docstring), remembering the sessions this
    process opened or continued. One per process (``SESSIONS``): the saver and the session route
    must agree."""

    def __init__(self):
        self._own: dict[tuple[str, str], Session] = {}
        self._lock = threading.Lock()

    def current(self, root_dir: str, expansion_id: str) -> Session | None:
        """The session a later job of ``expansion_id`` would continue here, without opening one."""
        own = self._own.get((root_dir, expansion_id))
        if own is not None and not own.finished:
            return own
        return load_session(root_dir, expansion_id) or own

    def remember(self, session: Session) -> Session:
        self._own[(session.root_dir, session.expansion_id)] = session
        return session

    def for_job(self, root_dir: str, expansion_id: str, job_index: int, jobs: int, batch_size: int = 1,
                now: Callable[[], datetime] = datetime.now, planned: PlannedSession | None = None) -> Session:
        with self._lock:        # the saver runs on ComfyUI's one worker thread; the route may not
            key = (root_dir, expansion_id)
            own = self._own.get(key)
            if planned is not None:
                if own is not None and own.is_planned(planned):
                    return own
                recorded = load_session(root_dir, expansion_id)
                if recorded is not None and recorded.is_planned(planned):
                    _prepare_folder(root_dir, recorded.folder, expansion_id)
                    return self.remember(recorded)
                return self.remember(open_session(root_dir, expansion_id, jobs, batch_size, now, planned))
            if job_index > 0:
                if own is not None and not own.finished:
                    return own
                recorded = continue_session(root_dir, expansion_id)
                if recorded is not None:
                    return self.remember(recorded)
            return self.remember(open_session(root_dir, expansion_id, jobs, batch_size, now))


SESSIONS = SessionBook()


# --------------------------------------------------------------------------- publishing

def publish_image(folder: str, name: str, data: bytes, *, durable: bool = True) -> bool:
    """Publish PNG ``data`` as ``folder/name`` (a planned name); False, with nothing written,
    when that name exists. ``durable=False``: no fsync, the caller makes it durable later (see
    core.atomic.FLUSHER)."""
    tmp = write_temp(folder, data, durable=durable)
    try:
        publish_temp(tmp, os.path.join(folder, name), sync_dir=durable)
    except FileExistsError:
        discard(tmp)
        return False
    except BaseException:
        discard(tmp)
        raise
    return True


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


def dated_split(path: str) -> tuple[str, list[str]] | None:
    """('<root>', [YYYY, MM, DD, HHMM]) for a session folder path ending in its dated part
    ('/' or the OS separator), else None."""
    parts = [p for p in re.split(r"[\\/]+", path) if p]
    if len(parts) < 4 or not all(rx.fullmatch(p) for rx, p in zip(_DATED_PARTS, parts[-4:])):
        return None
    return "/".join(parts[:-4]), parts[-4:]


def folder_title(path: str) -> str:
    """'2025-10-12 14:30' for a session folder …/2025/10/12/1430, else the folder's own name."""
    split = dated_split(path)
    if split is None:
        return os.path.basename(os.path.normpath(path))
    y, m, d, hm = split[1]
    return f"{y}-{m}-{d} {hm[:2]}:{hm[2:]}"


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
