import hashlib
import os

from prompt_media_pkg.core import hashing


def test_sha256_file_cached_by_path_size_mtime(tmp_path, monkeypatch):
    f = tmp_path / "model.ckpt"
    f.write_bytes(b"weights" * 1000)
    hashing.clear_cache()
    expected = hashlib.sha256(f.read_bytes()).hexdigest()
    assert hashing.sha256_file(str(f)) == expected

    opened = []
    real_open = open
    monkeypatch.setattr("builtins.open", lambda *a, **k: opened.append(a[0]) or real_open(*a, **k))
    assert hashing.sha256_file(str(f)) == expected
    assert opened == []                       # second call: not read again

    f.write_bytes(b"other weights")           # size (and mtime) change: hashed again
    assert hashing.sha256_file(str(f)) == hashlib.sha256(b"other weights").hexdigest()
    assert opened


def test_same_size_new_mtime_rehashes(tmp_path):
    f = tmp_path / "a.bin"
    f.write_bytes(b"aaaa")
    hashing.clear_cache()
    first = hashing.sha256_file(str(f))
    f.write_bytes(b"bbbb")
    st = os.stat(f)
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert hashing.sha256_file(str(f)) != first


def test_bytes_and_short():
    h = hashing.sha256_bytes(b"")
    assert h == hashlib.sha256(b"").hexdigest()
    assert hashing.short_hash(h) == h[:10]
    assert hashing.short_hash(None) is None
