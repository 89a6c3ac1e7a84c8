import itertools
import os
import threading
from datetime import datetime

import pytest

from prompt_media_pkg.core import session as s
from prompt_media_pkg.core.paths import PathError

T0 = datetime(2025, 10, 13, 14, 58, 7)
T1 = datetime(2025, 10, 13, 15, 2, 0)


def test_names_grow_past_999():
    assert s.image_name(1, 42) == "001_seed_42.png"
    assert s.image_name(999, 1) == "999_seed_1.png"
    assert s.image_name(1000, 1) == "1000_seed_1.png"
    assert s.sidecar_name(12, 7) == "012_seed_7.json"


def test_highest_count(tmp_path):
    assert s.highest_count(str(tmp_path / "missing")) == 0
    assert s.highest_count(str(tmp_path)) == 0
    for name in ("001_seed_5.png", "1002_seed_3.json", "999_seed_1.png", "notes.txt",
                 "2000_other.png", ".pm-tmp-x.part", "prompt.yaml"):
        (tmp_path / name).write_bytes(b"")
    assert s.highest_count(str(tmp_path)) == 1002


def test_session_folder_layout(tmp_path):
    assert s.session_folder(str(tmp_path), T0) == os.path.join(str(tmp_path), "2025", "10", "13", "1458")


@pytest.mark.parametrize("root", ["../x", "a/../../x", "/etc", "\\\\server\\share", "//server/share",
                                  "C:\\x", "c:x", "a\0b", "", "  ", "./.", "a\\..\\..\\x"])
def test_root_escapes_refused(tmp_path, root):
    with pytest.raises(PathError):
        s.resolve_root(str(tmp_path), root)


def test_root_symlink_pointing_out_refused(tmp_path):
    out, elsewhere = tmp_path / "output", tmp_path / "elsewhere"
    out.mkdir(), elsewhere.mkdir()
    (out / "link").symlink_to(elsewhere)
    with pytest.raises(PathError, match="outside"):
        s.resolve_root(str(out), "link/images")


def test_root_resolves_inside(tmp_path):
    assert s.resolve_root(str(tmp_path), "collections/images") == str(tmp_path / "collections" / "images")
    assert s.resolve_root(str(tmp_path), "a\\b/./c") == str(tmp_path / "a" / "b" / "c")


def _publish(folder, seed, data=b"png"):
    return s.claim_and_publish(folder, data, seed)


def test_job_zero_opens_and_later_jobs_continue(tmp_path):
    root = str(tmp_path)
    first = s.open_or_continue(root, "exp1", 0, now=lambda: T0)
    assert first.opened and first.folder.endswith(os.path.join("2025", "10", "13", "1458"))
    assert _publish(first.folder, 11) == (1, os.path.join(first.folder, "001_seed_11.png"))
    first.last_index, first.last_count = 0, 1
    s.save_session(first)
    # job 1 a while later (even in another process: only the state file is shared)
    later = s.open_or_continue(root, "exp1", 1, now=lambda: T1)
    assert not later.opened and later.folder == first.folder and later.started == T0
    assert later.last_index == 0
    assert _publish(later.folder, 12)[0] == 2


def test_job_zero_again_starts_new_session(tmp_path):
    root = str(tmp_path)
    a = s.open_or_continue(root, "exp1", 0, now=lambda: T0)
    b = s.open_or_continue(root, "exp1", 0, now=lambda: T1)
    assert b.opened and b.folder != a.folder
    assert s.load_session(root, "exp1").folder == b.folder


def test_same_minute_second_session_continues_numbering(tmp_path):
    root = str(tmp_path)
    a = s.open_or_continue(root, "exp1", 0, now=lambda: T0)
    for seed in (1, 2, 3):
        _publish(a.folder, seed)
    b = s.open_or_continue(root, "exp2", 0, now=lambda: T0.replace(second=40))
    assert b.folder == a.folder
    assert _publish(b.folder, 1) == (4, os.path.join(a.folder, "004_seed_1.png"))
    assert sorted(os.listdir(a.folder)) == ["001_seed_1.png", "002_seed_2.png", "003_seed_3.png",
                                            "004_seed_1.png"]


def test_unrecorded_expansion_opens_a_session(tmp_path):
    sess = s.open_or_continue(str(tmp_path), "never_seen", 5, now=lambda: T0)
    assert sess.opened and os.path.isdir(sess.folder)


def test_corrupt_or_escaping_state_opens_new_session(tmp_path):
    root = str(tmp_path)
    path = s.state_path(root, "exp1")
    os.makedirs(os.path.dirname(path))
    for bad in ('{"folder": "../../etc", "started": "2025-10-13T14:58:07"}', "{trunc", "[]",
                '{"folder": "/abs", "started": "2025-10-13T14:58:07"}'):
        with open(path, "w") as f:
            f.write(bad)
        assert s.load_session(root, "exp1") is None
        assert s.open_or_continue(root, "exp1", 3, now=lambda: T1).opened


def test_bad_expansion_id_refused(tmp_path):
    with pytest.raises(PathError):
        s.state_path(str(tmp_path), "../../x")


def test_count_continues_past_999(tmp_path):
    (tmp_path / "999_seed_1.png").write_bytes(b"")
    assert _publish(str(tmp_path), 5)[1].endswith("1000_seed_5.png")
    assert _publish(str(tmp_path), 5)[1].endswith("1001_seed_5.png")


def test_claim_skips_taken_names_never_overwrites(tmp_path, monkeypatch):
    folder = str(tmp_path)
    # another process publishes 001 between our scan and our link: we must take 002
    real_scan = s.highest_count
    calls = []

    def racing_scan(f):
        calls.append(1)
        if len(calls) == 1:
            with open(os.path.join(f, "001_seed_9.png"), "wb") as fh:
                fh.write(b"theirs")
            return 0
        return real_scan(f)
    monkeypatch.setattr(s, "highest_count", racing_scan)
    count, path = s.claim_and_publish(folder, b"ours", 9)
    assert count == 2 and open(path, "rb").read() == b"ours"
    assert open(os.path.join(folder, "001_seed_9.png"), "rb").read() == b"theirs"
    assert sorted(os.listdir(folder)) == ["001_seed_9.png", "002_seed_9.png"]


def test_concurrent_savers_get_distinct_names(tmp_path):
    folder = str(tmp_path)
    results, errors = [], []

    def worker(n):
        try:
            for i in range(20):
                results.append(s.claim_and_publish(folder, f"{n}-{i}".encode(), n)[1])
        except Exception as e:          # pragma: no cover - reported below
            errors.append(e)
    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert not errors
    assert len(set(results)) == 80 and len(os.listdir(folder)) == 80
    contents = {open(p, "rb").read() for p in results}
    assert len(contents) == 80          # nothing overwritten


def test_state_written_atomically(tmp_path, monkeypatch):
    root = str(tmp_path)
    sess = s.open_or_continue(root, "exp1", 0, now=lambda: T0)
    import prompt_media_pkg.core.atomic as atomic

    def broken_fsync(fd):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(atomic.os, "fsync", broken_fsync)
    sess.last_index = 7
    with pytest.raises(OSError):
        s.save_session(sess)
    monkeypatch.undo()
    assert s.load_session(root, "exp1").last_index == -1     # the old state is intact
    assert os.listdir(os.path.dirname(s.state_path(root, "exp1"))) == ["exp1.json"]


def test_copy_prompt_file_once_never_replacing(tmp_path):
    folder = str(tmp_path)
    p1 = s.copy_prompt_file(folder, "sub/quick.yaml", "prompts: [a]\n")
    assert p1 == str(tmp_path / "quick.yaml")
    assert s.copy_prompt_file(folder, "sub/quick.yaml", "prompts: [a]\n") == p1      # identical: reused
    p2 = s.copy_prompt_file(folder, "quick.yaml", "prompts: [b]\n")                  # same name, other text
    assert p2 != p1 and p2.startswith(str(tmp_path / "quick_")) and p2.endswith(".yaml")
    assert open(p1).read() == "prompts: [a]\n" and open(p2).read() == "prompts: [b]\n"
    assert s.prompt_copy_name("../../etc/passwd") == "passwd.yaml"
    assert s.prompt_copy_name("prompt_media.yaml") == "prompt_media.yaml"
    assert s.prompt_copy_name("..") == "prompt_media.yaml"


def test_recent_sidecars_newest_first(tmp_path):
    root = str(tmp_path)
    for folder, names in {"2025/10/13/1458": ["001_seed_1.json", "002_seed_1.json", "002_seed_1.png"],
                          "2025/10/14/0900": ["001_seed_5.json", "010_seed_5.json"],
                          "2024/01/01/0000": ["001_seed_9.json"], "notes": ["001_seed_3.json"]}.items():
        os.makedirs(tmp_path / folder, exist_ok=True)
        for n in names:
            (tmp_path / folder / n).write_text("{}")
    rel = [os.path.relpath(p, root).replace(os.sep, "/") for p in s.recent_sidecars(root)]
    assert rel == ["2025/10/14/0900/010_seed_5.json", "2025/10/14/0900/001_seed_5.json",
                   "2025/10/13/1458/002_seed_1.json", "2025/10/13/1458/001_seed_1.json",
                   "2024/01/01/0000/001_seed_9.json"]
    assert len(s.recent_sidecars(root, limit=2)) == 2
    assert s.recent_sidecars(str(tmp_path / "missing")) == []


def test_session_folders_newest_first(tmp_path):
    root = tmp_path / "collections" / "images"
    for rel in ("2025/10/12/1430", "2025/10/12/0905", "2025/09/30/2359", "2024/01/01/0000"):
        (root / rel).mkdir(parents=True)
    (root / ".prompt_media" / "sessions").mkdir(parents=True)
    (root / "2025" / "10" / "notes").mkdir()
    (root / "2025" / "10" / "12" / "1500").write_text("a file, not a session")
    found = [os.path.relpath(f, tmp_path).replace(os.sep, "/") for f in s.session_folders(str(root))]
    assert found == ["collections/images/2025/10/12/1430", "collections/images/2025/10/12/0905",
                     "collections/images/2025/09/30/2359", "collections/images/2024/01/01/0000"]
    assert list(itertools.islice(s.session_folders(str(root)), 2)) == \
        [str(root / "2025" / "10" / "12" / "1430"), str(root / "2025" / "10" / "12" / "0905")]
    assert list(s.session_folders(str(tmp_path / "missing"))) == []


def test_session_folders_walk_only_what_is_taken(tmp_path, monkeypatch):
    for rel in ("2025/10/12/1430", "2025/10/11/0905", "2024/01/01/0000"):
        (tmp_path / rel).mkdir(parents=True)
    listed = []
    real_listdir = os.listdir
    monkeypatch.setattr(s.os, "listdir", lambda p: listed.append(p) or real_listdir(p))
    assert next(s.session_folders(str(tmp_path))) == str(tmp_path / "2025" / "10" / "12" / "1430")
    assert str(tmp_path / "2024") not in listed and str(tmp_path / "2025" / "10" / "11") not in listed


def test_session_sidecars_in_count_order(tmp_path):
    for name in ("010_seed_5.json", "002_seed_1.json", "002_seed_1.png", "1000_seed_3.json",
                 "notes.json", "contact_sheet.jpg", ".pm-tmp-x.part"):
        (tmp_path / name).write_text("{}")
    assert [os.path.basename(p) for p in s.session_sidecars(str(tmp_path))] == \
        ["002_seed_1.json", "010_seed_5.json", "1000_seed_3.json"]
    assert s.session_sidecars(str(tmp_path / "missing")) == []
