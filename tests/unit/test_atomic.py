import errno
import json
import os

import pytest

from prompt_media_pkg.core import atomic


def _names(folder):
    return sorted(os.listdir(folder))


def test_publish_bytes_writes_complete_file_and_no_temp(tmp_path):
    final = tmp_path / "001_seed_1.png"
    atomic.publish_bytes(b"abc" * 1000, str(final))
    assert final.read_bytes() == b"abc" * 1000
    assert _names(tmp_path) == ["001_seed_1.png"]


def test_publish_never_replaces_existing_file(tmp_path):
    final = tmp_path / "a.png"
    final.write_bytes(b"original")
    with pytest.raises(FileExistsError):
        atomic.publish_bytes(b"new", str(final))
    assert final.read_bytes() == b"original"
    assert _names(tmp_path) == ["a.png"]          # the temp file is cleaned up


def test_failure_mid_write_leaves_no_final_file(tmp_path, monkeypatch):
    def broken_fsync(fd):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(atomic.os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="No space"):
        atomic.publish_bytes(b"x" * 10_000, str(tmp_path / "b.png"))
    assert _names(tmp_path) == []


def test_serialisation_failure_leaves_nothing(tmp_path):
    with pytest.raises(ValueError):
        atomic.write_json(str(tmp_path / "c.json"), {"cfg": float("nan")})
    with pytest.raises(TypeError):
        atomic.write_json(str(tmp_path / "c.json"), {"x": object()})
    assert _names(tmp_path) == []


def test_fallback_without_hard_links(tmp_path, monkeypatch):
    def no_link(src, dst):
        raise PermissionError(errno.EPERM, "Operation not permitted")
    monkeypatch.setattr(atomic.os, "link", no_link)
    final = tmp_path / "d.png"
    atomic.publish_bytes(b"data", str(final))
    assert final.read_bytes() == b"data"
    with pytest.raises(FileExistsError):
        atomic.publish_bytes(b"other", str(final))
    assert final.read_bytes() == b"data"
    assert _names(tmp_path) == ["d.png"]


def test_publish_temp_keeps_temp_on_conflict_for_retry(tmp_path):
    (tmp_path / "1.png").write_bytes(b"taken")
    tmp = atomic.write_temp(str(tmp_path), b"mine")
    with pytest.raises(FileExistsError):
        atomic.publish_temp(tmp, str(tmp_path / "1.png"))
    assert os.path.exists(tmp)
    atomic.publish_temp(tmp, str(tmp_path / "2.png"))
    assert not os.path.exists(tmp)
    assert (tmp_path / "2.png").read_bytes() == b"mine"


def test_write_json_replace_for_state_files(tmp_path):
    path = str(tmp_path / "state.json")
    atomic.write_json(path, {"a": 1}, replace=True)
    atomic.write_json(path, {"a": 2}, replace=True)
    assert json.loads(open(path).read()) == {"a": 2}
    with pytest.raises(FileExistsError):
        atomic.write_json(path, {"a": 3})
    assert _names(tmp_path) == ["state.json"]


def test_json_accepts_number_likes(tmp_path):
    class NumpyLike:
        def item(self):
            return 7
    path = str(tmp_path / "n.json")
    atomic.write_json(path, {"seed": NumpyLike(), "t": (1, 2)})
    assert json.loads(open(path).read()) == {"seed": 7, "t": [1, 2]}


def test_published_files_are_readable_like_plain_files(tmp_path):
    # mkstemp makes private 0600 files; a published image must be readable like SaveImage's.
    from prompt_media_pkg.core.atomic import FILE_MODE, publish_bytes
    final = publish_bytes(b"png", str(tmp_path / "001_seed_1.png"))
    assert os.stat(final).st_mode & 0o777 == FILE_MODE


def test_a_writer_function_streams_into_the_temp_file(tmp_path):
    """Pillow's save(file) writes straight into the temp file; the old file stays until the
    new one is complete, and a failing writer leaves neither a half file nor a temp."""
    final = str(tmp_path / "sheet.jpg")
    atomic.replace_bytes(lambda f: f.write(b"old sheet"), final)
    atomic.replace_bytes(lambda f: [f.write(b"new "), f.write(b"sheet")], final)
    assert open(final, "rb").read() == b"new sheet" and _names(tmp_path) == ["sheet.jpg"]

    def failing(f):
        f.write(b"half a sheet")
        raise OSError(errno.ENOSPC, "No space left on device")
    with pytest.raises(OSError, match=str(tmp_path)):            # names the folder
        atomic.replace_bytes(failing, final)
    assert open(final, "rb").read() == b"new sheet" and _names(tmp_path) == ["sheet.jpg"]
    with pytest.raises(FileExistsError):
        atomic.publish_bytes(lambda f: f.write(b"x"), final)     # publishing never replaces
    assert atomic.publish_bytes(lambda f: f.write(b"x"), str(tmp_path / "new.png")).endswith("new.png")


def _count_fsyncs(monkeypatch):
    calls = []
    real = os.fsync
    monkeypatch.setattr(atomic.os, "fsync", lambda fd: calls.append(fd) or real(fd))
    return calls


def test_non_durable_publish_is_complete_and_never_replaces_but_skips_fsync(tmp_path, monkeypatch):
    calls = _count_fsyncs(monkeypatch)
    final = tmp_path / "001_seed_1.png"
    atomic.publish_bytes(b"png" * 100, str(final), durable=False)
    atomic.write_json(str(tmp_path / "001_seed_1.json"), {"a": 1}, durable=False)
    assert final.read_bytes() == b"png" * 100 and _names(tmp_path) == ["001_seed_1.json", "001_seed_1.png"]
    with pytest.raises(FileExistsError):
        atomic.publish_bytes(b"other", str(final), durable=False)
    assert calls == [] and final.read_bytes() == b"png" * 100
    atomic.publish_bytes(b"x", str(tmp_path / "durable.png"))
    assert len(calls) == 2                                   # the file's data, then the folder


def test_flusher_fsyncs_files_then_their_folders_off_the_callers_thread(tmp_path, monkeypatch):
    import threading
    synced, threads = [], set()
    real = os.fsync

    def fsync(fd):
        synced.append(os.fstat(fd).st_ino)
        threads.add(threading.current_thread().name)
        real(fd)
    monkeypatch.setattr(atomic.os, "fsync", fsync)
    files = [tmp_path / "a" / "001_seed_1.png", tmp_path / "a" / "001_seed_1.json", tmp_path / "b" / "x.png"]
    for f in files:
        f.parent.mkdir(exist_ok=True)
        f.write_bytes(b"data")
    flusher = atomic.Flusher()
    flusher.add(*map(str, files[:2]))
    flusher.add(str(files[2]), str(tmp_path / "b" / "removed meanwhile.png"))
    assert flusher.wait(10)
    inodes = [f.stat().st_ino for f in files]
    assert set(inodes) <= set(synced)
    assert {(tmp_path / "a").stat().st_ino, (tmp_path / "b").stat().st_ino} <= set(synced)
    for f, ino in zip(files, inodes):                       # each folder after its files
        assert synced.index(f.parent.stat().st_ino) > synced.index(ino)
    assert threads == {"prompt-media-fsync"}


def test_flusher_survives_a_failing_fsync(tmp_path, monkeypatch, caplog):
    f = tmp_path / "a.png"
    f.write_bytes(b"data")

    def broken(fd):
        raise OSError(errno.EIO, "I/O error")
    monkeypatch.setattr(atomic.os, "fsync", broken)
    flusher = atomic.Flusher()
    flusher.add(str(f))
    assert flusher.wait(10)
    monkeypatch.undo()
    flusher.add(str(f))                                     # the thread still works
    assert flusher.wait(10)
    assert "fsync of" in caplog.text and "I/O error" in caplog.text
