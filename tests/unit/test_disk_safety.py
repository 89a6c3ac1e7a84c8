"""Issue 7, crashes and full disks (unit tier): leftovers of a killed writer are cleaned by the
next session, and a write that fails midway (ENOSPC, EROFS) leaves no file under a final name.
The same cases against real ComfyUI (kill -9, a 200 KiB tmpfs, a read-only mount) are in
tests/host/test_crash_host.py."""
from __future__ import annotations

import errno
import os
import time
from datetime import datetime

import pytest

from prompt_media_pkg.core import atomic
from prompt_media_pkg.core import session as s
from prompt_media_pkg.core.generation_params import save_generation_params

T0 = datetime(2025, 10, 13, 14, 58, 7)
OLD = time.time() - atomic.STALE_TEMP_SECONDS - 5


def _age(path, when=OLD):
    os.utime(path, (when, when))


def test_stale_temps_removed_fresh_and_other_files_kept(tmp_path):
    stale = tmp_path / ".pm-tmp-abc.part"
    fresh = tmp_path / ".pm-tmp-def.part"                 # a live writer in another process
    published = tmp_path / "001_seed_1.png"
    lookalike = tmp_path / ".pm-tmp-x.txt"                 # not ours: other suffix
    folder_named_like_temp = tmp_path / ".pm-tmp-dir.part"
    for p in (stale, fresh, published, lookalike):
        p.write_bytes(b"x")
    folder_named_like_temp.mkdir()
    for p in (stale, published, lookalike, folder_named_like_temp):
        _age(p)
    assert atomic.remove_stale_temps(str(tmp_path)) == [str(stale)]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".pm-tmp-def.part", ".pm-tmp-dir.part", ".pm-tmp-x.txt", "001_seed_1.png"]
    assert atomic.remove_stale_temps(str(tmp_path / "missing")) == []


def test_stale_temp_symlink_is_not_followed(tmp_path):
    victim = tmp_path / "victim.png"
    victim.write_bytes(b"keep")
    folder = tmp_path / "s"
    folder.mkdir()
    (folder / ".pm-tmp-link.part").symlink_to(victim)
    _age(victim)
    atomic.remove_stale_temps(str(folder))
    assert victim.read_bytes() == b"keep"


def test_next_session_cleans_the_leftovers_of_a_killed_one(tmp_path):
    root = str(tmp_path)
    first = s.SessionBook().for_job(root, "exp", 0, 6, now=lambda: T0)
    state_dir = os.path.dirname(s.state_path(root, "exp"))
    left = [os.path.join(first.folder, ".pm-tmp-1.part"), os.path.join(state_dir, ".pm-tmp-2.part")]
    for p in left:
        open(p, "wb").write(b"half")
        _age(p)
    young = os.path.join(first.folder, ".pm-tmp-3.part")
    open(young, "wb").write(b"being written")
    s.SessionBook().for_job(root, "exp", 1, 6, now=lambda: T0)   # continuing (after a restart) cleans
    assert not any(os.path.exists(p) for p in left) and os.path.exists(young)
    _age(young)
    s.SessionBook().for_job(root, "exp", 0, 6, now=lambda: T0)   # a new session in the same minute too
    assert not os.path.exists(young)


@pytest.mark.parametrize("fail_at", ["write", "fsync", "link"])
@pytest.mark.parametrize("err", [errno.ENOSPC, errno.EROFS, errno.EIO])
def test_failed_write_leaves_no_final_file_and_no_temp(tmp_path, monkeypatch, fail_at, err):
    folder = tmp_path / "f"
    folder.mkdir()
    (folder / "001_seed_1.png").write_bytes(b"earlier image")

    def boom(*a, **k):
        raise OSError(err, os.strerror(err))

    if fail_at == "write":
        real_fdopen = os.fdopen

        class Full:
            def __init__(self, f):
                self.f = f

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                self.f.close()

            def write(self, data):      # a partial write, then the disk is full
                self.f.write(data[: len(data) // 2])
                self.f.flush()
                boom()

            def __getattr__(self, name):
                return getattr(self.f, name)

        monkeypatch.setattr(atomic.os, "fdopen", lambda fd, mode: Full(real_fdopen(fd, mode)))
    elif fail_at == "fsync":
        monkeypatch.setattr(atomic.os, "fsync", boom)
    else:
        monkeypatch.setattr(atomic.os, "link", boom)
    with pytest.raises(OSError) as e:
        s.publish_image(str(folder), "002_seed_7.png", b"\x89PNG" + b"x" * 1000)
    assert e.value.errno == err
    if fail_at != "link":                    # the error names the folder it could not write in
        assert str(folder) in str(e.value)
    with pytest.raises(OSError):
        save_generation_params(str(folder / "002_seed_7.png"), "p", "1", 2, "t", {"seed": 7})
    assert sorted(p.name for p in folder.iterdir()) == ["001_seed_1.png"]
    assert (folder / "001_seed_1.png").read_bytes() == b"earlier image"


def test_read_only_folder_refuses_before_anything_is_written(tmp_path, monkeypatch):
    """mkstemp on a read-only mount fails with EROFS: nothing to clean up, the error says so."""
    def ro(*a, **k):
        raise OSError(errno.EROFS, "Read-only file system", str(tmp_path))
    monkeypatch.setattr(atomic.tempfile, "mkstemp", ro)
    with pytest.raises(OSError, match="Read-only"):
        s.publish_image(str(tmp_path), "001_seed_1.png", b"png")
    assert list(tmp_path.iterdir()) == []
