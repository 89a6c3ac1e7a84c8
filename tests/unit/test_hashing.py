import hashlib
import json
import os

import pytest

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


# --------------------------------------------------------------------------- the persistent cache

def _spy_reads(monkeypatch, path):
    """The times ``path`` is opened from now on."""
    opened = []
    real_open = open

    def spy(file, *a, **k):
        if os.path.realpath(str(file)) == os.path.realpath(str(path)):
            opened.append(file)
        return real_open(file, *a, **k)
    monkeypatch.setattr("builtins.open", spy)
    return opened


def test_a_restart_does_not_read_an_unchanged_file_again(tmp_path, monkeypatch):
    model, cache = tmp_path / "model.safetensors", tmp_path / "user" / "prompt_media" / "hashes.json"
    model.write_bytes(os.urandom(3 * hashing.CHUNK_BYTES + 5))
    expected = hashlib.sha256(model.read_bytes()).hexdigest()
    hashing.clear_cache()
    assert hashing.sha256_file(str(model), str(cache)) == expected
    data = json.loads(cache.read_text())
    st = os.stat(model)
    assert data == {"format": "prompt-media-file-hashes", "version": 1, "files": {
        os.path.realpath(model): {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": expected}}}
    assert [p.name for p in cache.parent.iterdir()] == ["hashes.json"]        # no temp file left

    hashing.clear_cache()                                   # a restart: memory is gone
    opened = _spy_reads(monkeypatch, model)
    assert hashing.sha256_file(str(model), str(cache)) == expected
    assert opened == []                                     # answered from the cache file
    link = tmp_path / "link.safetensors"                    # the real path is the key
    link.symlink_to(model)
    hashing.clear_cache()
    assert hashing.sha256_file(str(link), str(cache)) == expected and opened == []


def test_a_changed_file_is_never_taken_from_the_cache(tmp_path, monkeypatch):
    model, cache = tmp_path / "m.bin", tmp_path / "hashes.json"
    model.write_bytes(b"a" * 100)
    hashing.clear_cache()
    first = hashing.sha256_file(str(model), str(cache))
    model.write_bytes(b"b" * 100)                           # same size, new mtime
    st = os.stat(model)
    os.utime(model, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000))
    hashing.clear_cache()
    opened = _spy_reads(monkeypatch, model)
    assert hashing.sha256_file(str(model), str(cache)) == hashlib.sha256(b"b" * 100).hexdigest() != first
    assert len(opened) == 1
    [entry] = json.loads(cache.read_text())["files"].values()
    assert entry["sha256"] == hashlib.sha256(b"b" * 100).hexdigest()       # the old one replaced


@pytest.mark.parametrize("content", [
    b"", b"{not json", b"\xff\xfe\x00", b"[1, 2]", b'{"files": {}}',
    b'{"format": "prompt-media-file-hashes", "version": 2, "files": {}}',
    b'{"format": "prompt-media-file-hashes", "version": 1, "files": []}',
])
def test_a_corrupt_or_foreign_cache_is_ignored_and_rebuilt(tmp_path, content, caplog):
    model, cache = tmp_path / "m.bin", tmp_path / "hashes.json"
    model.write_bytes(b"weights")
    cache.write_bytes(content)
    hashing.clear_cache()
    assert hashing.sha256_file(str(model), str(cache)) == hashlib.sha256(b"weights").hexdigest()
    data = json.loads(cache.read_text())
    assert data["format"] == "prompt-media-file-hashes" and list(data["files"]) == [os.path.realpath(model)]
    assert "ignoring" in caplog.text


def test_bad_entries_are_dropped_and_a_lying_entry_for_another_state_is_not_trusted(tmp_path):
    model, cache = tmp_path / "m.bin", tmp_path / "hashes.json"
    model.write_bytes(b"real weights")
    st = os.stat(model)
    real = os.path.realpath(model)
    cache.write_text(json.dumps({"format": "prompt-media-file-hashes", "version": 1, "files": {
        real: {"size": st.st_size + 1, "mtime_ns": st.st_mtime_ns, "sha256": "0" * 64},   # other size
        "/elsewhere/x.bin": {"size": 1, "mtime_ns": True, "sha256": "0" * 64},               # bool mtime
        "/elsewhere/y.bin": {"size": 1, "mtime_ns": 1, "sha256": "XYZ"}}}))
    hashing.clear_cache()
    assert hashing.sha256_file(str(model), str(cache)) == hashlib.sha256(b"real weights").hexdigest()
    assert list(json.loads(cache.read_text())["files"]) == [real]           # gone files pruned too


def test_entries_another_process_wrote_meanwhile_are_kept(tmp_path):
    a, b, cache = tmp_path / "a.bin", tmp_path / "b.bin", tmp_path / "hashes.json"
    a.write_bytes(b"a")
    b.write_bytes(b"b")
    hashing.clear_cache()
    hashing.sha256_file(str(a), str(cache))                 # this process read the cache (a only)
    other = json.loads(cache.read_text())                   # another process adds b
    st = os.stat(b)
    other["files"][os.path.realpath(b)] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns,
                                           "sha256": hashlib.sha256(b"b").hexdigest()}
    cache.write_text(json.dumps(other))
    c = tmp_path / "c.bin"
    c.write_bytes(b"c")
    hashing.sha256_file(str(c), str(cache))                 # our next write merges
    assert sorted(json.loads(cache.read_text())["files"]) == sorted(os.path.realpath(p) for p in (a, b, c))


def test_an_unwritable_cache_only_costs_time(tmp_path, caplog):
    model = tmp_path / "m.bin"
    model.write_bytes(b"x")
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    hashing.clear_cache()
    assert hashing.sha256_file(str(model), str(blocker / "hashes.json")) == hashlib.sha256(b"x").hexdigest()
    assert "cannot write the file hash cache" in caplog.text
