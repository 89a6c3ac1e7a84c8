"""Crash-safe file publication: nothing half-written is ever visible under a final name.

Bytes go to a hidden temporary file in the target folder (same filesystem), are flushed and
fsynced, and only then get their final name. Publishing never replaces an existing file:
``os.link(tmp, final)`` fails with FileExistsError when ``final`` exists, which is what lets
two processes saving into one folder pick different names instead of overwriting each other.

``durable=False`` leaves out the fsyncs: the temp file and the link still make a crashed or
killed process unable to leave a half-written file under a final name (the kernel keeps what
was written); only a power loss before the kernel writes it back could. :data:`FLUSHER` then
fsyncs the published files on a background thread, so a caller (the Session Saver, between
two jobs) does not wait for the disk.
"""
from __future__ import annotations

import atexit
import errno
import json
import logging
import os
import queue
import re
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any, BinaryIO

Content = bytes | Callable[[BinaryIO], None]   # the bytes, or a function writing them into a file

TEMP_PREFIX = ".pm-tmp-"     # hidden, and never matches a published name pattern
TEMP_SUFFIX = ".part"
FILE_MODE = 0o644            # what a plain open() gives under the usual umask; mkstemp gives 0600
# A temp file untouched this long was left by a killed writer. Our writers hold one for
# milliseconds (images, sidecars) up to the encoding time of an animation; far below this.
STALE_TEMP_SECONDS = 600
_TEMP_NAME = re.compile(r"^" + re.escape(TEMP_PREFIX) + r".*" + re.escape(TEMP_SUFFIX) + r"$")

# os.link failures that mean "this filesystem has no hard links", not "the name is taken".
_NO_HARDLINK_ERRNOS = {errno.EPERM, errno.EACCES, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV,
                       errno.EMLINK, errno.ENOSYS}


def open_temp(folder: str) -> tuple[int, str]:
    """A new hidden temporary file in ``folder``, readable like any published file: (fd, path)."""
    fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=TEMP_SUFFIX, dir=folder)
    if hasattr(os, "fchmod"):
        os.fchmod(fd, FILE_MODE)
    return fd, tmp


def write_temp(folder: str, data: Content, *, durable: bool = True) -> str:
    """Write ``data`` to a new temporary file in ``folder`` (fsynced when ``durable``); returns
    its path. ``data`` is the bytes, or a function that writes them into the open file (e.g.
    Pillow's ``save``, streaming a large sheet instead of holding it in memory).

    The caller owns the file and must publish or remove it (see :func:`discard`).
    """
    fd, tmp = open_temp(folder)
    try:
        with os.fdopen(fd, "wb") as f:
            if callable(data):
                data(f)
            else:
                f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
    except OSError as e:
        discard(tmp)
        if e.filename is None:     # "No space left on device" alone does not say where
            raise OSError(e.errno, e.strerror or str(e), folder) from e
        raise
    except BaseException:
        discard(tmp)
        raise
    return tmp


def discard(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def remove_stale_temps(folder: str, max_age: float = STALE_TEMP_SECONDS) -> list[str]:
    """Remove our temporary files in ``folder`` not modified for ``max_age`` seconds (what a
    writer killed mid-save leaves behind); younger ones may belong to a live writer in another
    process and are kept. Returns the removed paths; never raises for a file it cannot remove."""
    removed = []
    cutoff = time.time() - max_age
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        if not _TEMP_NAME.match(entry.name):
            continue
        try:
            if entry.is_file(follow_symlinks=False) and entry.stat(follow_symlinks=False).st_mtime < cutoff:
                os.unlink(entry.path)
                removed.append(entry.path)
        except OSError:        # gone already (another cleaner), or not ours to remove
            continue
    return removed


def publish_temp(tmp: str, final: str, *, sync_dir: bool = True) -> None:
    """Give the complete file ``tmp`` the new name ``final``; on success ``tmp`` is gone.

    Raises FileExistsError if ``final`` exists (it is never replaced) and leaves ``tmp`` in
    place, so the caller can retry under another name or :func:`discard` it. ``sync_dir=False``
    leaves the folder's fsync to the caller (one fsync can cover several new names).
    """
    try:
        os.link(tmp, final)
    except FileExistsError:
        raise
    except OSError as e:
        if e.errno not in _NO_HARDLINK_ERRNOS:
            raise
        _reserve_and_replace(tmp, final)
    else:
        discard(tmp)
    if sync_dir:
        fsync_dir(os.path.dirname(final) or ".")


def _reserve_and_replace(tmp: str, final: str) -> None:
    """Fallback without hard links (FAT, some network shares): reserve the name exclusively,
    then move the complete temp file over our own reservation. The reservation is empty for
    that moment, never partial."""
    fd = os.open(final, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)   # FileExistsError if taken
    os.close(fd)
    try:
        os.replace(tmp, final)
    except BaseException:
        discard(final)
        raise


def publish_bytes(data: Content, final: str, *, durable: bool = True) -> str:
    """Write ``data`` (see :func:`write_temp`) under the new name ``final`` atomically;
    FileExistsError if it exists. ``durable=False``: no fsync (see the module docstring)."""
    tmp = write_temp(os.path.dirname(final) or ".", data, durable=durable)
    try:
        publish_temp(tmp, final, sync_dir=durable)
    except BaseException:
        discard(tmp)
        raise
    return final


def replace_bytes(data: Content, final: str, *, durable: bool = True) -> str:
    """Write ``data`` (see :func:`write_temp`) as ``final``, atomically replacing it: only for
    files we derive ourselves (session state, contact sheets), never an image or a sidecar.

    ``durable=False`` skips both fsyncs: still never half-written for a crashed process (the
    rename is atomic), but a power loss may bring back the previous version."""
    tmp = write_temp(os.path.dirname(final) or ".", data, durable=durable)
    try:
        os.replace(tmp, final)
    except BaseException:
        discard(tmp)
        raise
    if durable:
        fsync_dir(os.path.dirname(final) or ".")
    return final


def fsync_dir(folder: str) -> None:
    """Make a new directory entry durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _json_default(value: Any) -> Any:
    # numpy / torch scalars and other number-likes that reach a sidecar from a graph
    item = getattr(value, "item", None)
    if callable(item):
        return item()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable: {value!r:.80}")


def json_bytes(obj: Any) -> bytes:
    """Strict JSON (no NaN/Infinity), UTF-8, indented for people reading sidecars."""
    return (json.dumps(obj, ensure_ascii=False, indent=2, allow_nan=False, default=_json_default)
            + "\n").encode("utf-8")


def write_json(path: str, obj: Any, *, replace: bool = False, durable: bool = True) -> str:
    """Write ``obj`` as JSON atomically. ``replace=False`` refuses to replace an existing file
    (FileExistsError); ``replace=True`` atomically swaps it (our own state files only).
    ``durable=False``: no fsync (see the module docstring)."""
    data = json_bytes(obj)          # serialise first: a bad value never leaves a temp file behind
    return replace_bytes(data, path, durable=durable) if replace else publish_bytes(data, path, durable=durable)


# --------------------------------------------------------------------------- background durability

log = logging.getLogger(__name__)


class Flusher:
    """Makes published files durable off the caller's thread: one daemon thread fsyncs the files
    handed to :meth:`add`, then each folder they are in (their new names). Files are complete
    under their names before they get here; this only moves the moment they survive a power
    loss to a few milliseconds later. At most ``max_pending`` calls wait: a caller faster than
    the disk then waits in :meth:`add`, so the window stays bounded."""

    def __init__(self, max_pending: int = 16):
        self._queue: queue.Queue[tuple[str, ...]] = queue.Queue(max_pending)
        self._thread: threading.Thread | None = None
        self._start = threading.Lock()

    def add(self, *paths: str) -> None:
        """fsync ``paths`` and their folders soon (one wake-up of the thread per call)."""
        with self._start:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="prompt-media-fsync", daemon=True)
                self._thread.start()
        self._queue.put(paths)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every file added so far is fsynced; False if ``timeout`` passed first."""
        q = self._queue
        with q.all_tasks_done:
            return q.all_tasks_done.wait_for(lambda: not q.unfinished_tasks, timeout)

    def _run(self) -> None:
        while True:
            batches = [self._queue.get()]
            while True:                              # what else is waiting: one folder fsync for all
                try:
                    batches.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                folders = dict.fromkeys(_fsync_file(path) for paths in batches for path in paths)
                for folder in folders:
                    if folder is not None:
                        fsync_dir(folder)
            except Exception as e:        # never kill the thread: later files still need it
                log.warning("prompt-media: background fsync failed: %s", e)
            finally:
                for _ in batches:
                    self._queue.task_done()


def _fsync_file(path: str) -> str | None:
    """fsync one published file; its folder, or None when it is gone (removed meanwhile)."""
    try:
        fd = os.open(path, os.O_RDWR if os.name == "nt" else os.O_RDONLY)   # Windows flushes writable handles only
    except FileNotFoundError:
        return None
    try:
        os.fsync(fd)
    except OSError as e:
        log.warning("prompt-media: fsync of %s failed: %s", path, e)
    finally:
        os.close(fd)
    return os.path.dirname(path) or "."


FLUSHER = Flusher()
atexit.register(FLUSHER.wait, 10.0)         # a clean exit flushes what is pending (the kernel would, too)
