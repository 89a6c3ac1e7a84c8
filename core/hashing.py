"""SHA-256 of bytes and of files; file hashes are cached so a multi-GB checkpoint is read once.

The cache key is (real path, size, mtime_ns): a file replaced or touched is hashed again, an
unchanged one never is (for the life of the process).
"""
from __future__ import annotations

import hashlib
import os
import threading

CHUNK_BYTES = 4 * 1024 * 1024

_cache: dict[tuple[str, int, int], str] = {}
_lock = threading.Lock()
_path_locks: dict[str, threading.Lock] = {}


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _file_key(path: str) -> tuple[str, int, int]:
    real = os.path.realpath(path)
    st = os.stat(real)
    return real, st.st_size, st.st_mtime_ns


def sha256_file(path: str) -> str:
    """Hex sha256 of the file's content, from the cache when the file has not changed."""
    key = _file_key(path)
    with _lock:
        hit = _cache.get(key)
        if hit is not None:
            return hit
        path_lock = _path_locks.setdefault(key[0], threading.Lock())
    with path_lock:                      # two threads asking for one big file hash it once
        with _lock:
            hit = _cache.get(key)
        if hit is not None:
            return hit
        digest = hashlib.sha256()
        with open(key[0], "rb") as f:
            while chunk := f.read(CHUNK_BYTES):
                digest.update(chunk)
        result = digest.hexdigest()
        if _file_key(path) == key:       # changed while we read it: do not cache a mixed hash
            with _lock:
                _cache[key] = result
        return result


def short_hash(sha256_hex: str | None) -> str | None:
    """The 10-character form A1111 and Civitai show ("AutoV2")."""
    return sha256_hex[:10] if sha256_hex else None


def clear_cache() -> None:
    with _lock:
        _cache.clear()
