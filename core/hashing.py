"""SHA-256 of bytes and of files; a file is hashed once, ever.

File hashes are kept in memory and, given a ``cache_file``, in a JSON file that survives
restarts (like A1111's ``cache.json``), both keyed by (real path, size, mtime_ns): a file that
was replaced or touched is hashed again, an unchanged one never is. The cache file is written
atomically; one that is unreadable, corrupt or not ours is ignored (and replaced by the next
write), and an entry is trusted only while the file's size and mtime are exactly the recorded
ones. So the first image after a restart does not wait on a multi-GB model hashed before.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
import time

from .atomic import write_json

log = logging.getLogger(__name__)

CHUNK_BYTES = 4 * 1024 * 1024
CACHE_FORMAT = "prompt-media-file-hashes"
CACHE_VERSION = 1
MAX_CACHE_BYTES = 64 * 1024 * 1024       # ~300,000 entries; anything larger is not ours
_SHA256 = re.compile(r"[0-9a-f]{64}")

FileKey = tuple[str, int, int]           # (real path, size, mtime_ns)

_cache: dict[FileKey, str] = {}
_lock = threading.Lock()
_path_locks: dict[str, threading.Lock] = {}


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _file_key(path: str) -> FileKey:
    real = os.path.realpath(path)
    st = os.stat(real)
    return real, st.st_size, st.st_mtime_ns


class HashCacheFile:
    """The persistent part: ``{"format", "version", "files": {real path: {size, mtime_ns,
    sha256}}}``, read once per process, rewritten whole (merged with what another process may
    have added meanwhile) after each new hash, which happens once per file and change."""

    def __init__(self, path: str):
        self.path = path
        self.entries: dict[str, tuple[int, int, str]] | None = None   # None until read
        self._lock = threading.Lock()

    def _read(self) -> dict[str, tuple[int, int, str]]:
        try:
            if os.path.getsize(self.path) > MAX_CACHE_BYTES:
                raise ValueError(f"larger than {MAX_CACHE_BYTES // 2**20} MiB")
            with open(self.path, "rb") as f:
                data = json.loads(f.read())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as e:            # ValueError: bad JSON / UTF-8 / too large
            log.warning("[Prompt Media] ignoring the file hash cache %s (%s); it is rebuilt", self.path, e)
            return {}
        ours = isinstance(data, dict) and data.get("format") == CACHE_FORMAT \
            and data.get("version") == CACHE_VERSION and isinstance(data.get("files"), dict)
        if not ours:
            log.warning("[Prompt Media] ignoring %s: not a Prompt Media file hash cache (version "
                        "%s); it is rebuilt", self.path, CACHE_VERSION)
            return {}
        entries = {}
        for real, e in data["files"].items():
            if isinstance(e, dict) and all(isinstance(e.get(k), int) and not isinstance(e.get(k), bool)
                                           for k in ("size", "mtime_ns")) \
                    and isinstance(e.get("sha256"), str) and _SHA256.fullmatch(e["sha256"]):
                entries[real] = (e["size"], e["mtime_ns"], e["sha256"])
        return entries

    def get(self, key: FileKey) -> str | None:
        with self._lock:
            if self.entries is None:
                self.entries = self._read()
            hit = self.entries.get(key[0])
        return hit[2] if hit is not None and hit[:2] == key[1:] else None

    def put(self, key: FileKey, sha256: str) -> None:
        with self._lock:
            entries = self._read()                     # what another process may have added
            entries.update(self.entries or {})
            entries[key[0]] = (key[1], key[2], sha256)
            self.entries = {real: e for real, e in entries.items() if _unchanged(real, e)}
            data = {"format": CACHE_FORMAT, "version": CACHE_VERSION,
                    "files": {real: {"size": size, "mtime_ns": mtime, "sha256": sha}
                              for real, (size, mtime, sha) in sorted(self.entries.items())}}
            try:
                os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
                write_json(self.path, data, replace=True, durable=False)   # a lost cache is only slower
            except OSError as e:
                log.warning("[Prompt Media] cannot write the file hash cache %s: %s", self.path, e)


def _unchanged(real: str, entry: tuple[int, int, str]) -> bool:
    """An entry worth keeping: its file still exists with the recorded size and mtime."""
    try:
        st = os.stat(real)
    except OSError:
        return False
    return (st.st_size, st.st_mtime_ns) == entry[:2]


_cache_files: dict[str, HashCacheFile] = {}


def _cache_file(path: str) -> HashCacheFile:
    with _lock:
        return _cache_files.setdefault(path, HashCacheFile(path))


def sha256_file(path: str, cache_file: str | None = None) -> str:
    """Hex sha256 of the file's content: from memory, else from ``cache_file`` (when given),
    else read (and remembered in both) when the file has not changed."""
    key = _file_key(path)
    with _lock:
        hit = _cache.get(key)
        if hit is not None:
            return hit
        path_lock = _path_locks.setdefault(key[0], threading.Lock())
    with path_lock:                      # two threads asking for one big file hash it once
        with _lock:
            hit = _cache.get(key)
        if hit is None and cache_file:
            hit = _cache_file(cache_file).get(key)
        if hit is not None:
            with _lock:
                _cache[key] = hit
            return hit
        t0 = time.monotonic()
        digest = hashlib.sha256()
        with open(key[0], "rb") as f:
            while chunk := f.read(CHUNK_BYTES):
                digest.update(chunk)
        result = digest.hexdigest()
        log.info("[Prompt Media] hashed %s (%.0f MB in %.1f s)", key[0], key[1] / 1e6, time.monotonic() - t0)
        if _file_key(path) == key:       # changed while we read it: do not cache a mixed hash
            with _lock:
                _cache[key] = result
            if cache_file:
                _cache_file(cache_file).put(key, result)
        return result


def short_hash(sha256_hex: str | None) -> str | None:
    """The 10-character form A1111 and Civitai show ("AutoV2")."""
    return sha256_hex[:10] if sha256_hex else None


def clear_cache() -> None:
    """Forget every hash this process knows (memory only: as after a restart)."""
    with _lock:
        _cache.clear()
        _cache_files.clear()
