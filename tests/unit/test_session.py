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


def _job(book, root, index, now=T0, exp="exp1", jobs=6, batch_size=1, planned=None):
    return book.for_job(root, exp, index, jobs, batch_size, now=lambda: now, planned=planned)


def test_job_zero_opens_and_later_jobs_continue(tmp_path):
    root = str(tmp_path)
    first = _job(s.SessionBook(), root, 0)
    assert first.opened and first.folder.endswith(os.path.join("2025", "10", "13", "1458"))
    assert (first.first, first.batch_size, first.jobs) == (1, 1, 6)
    assert s.publish_image(first.folder, "001_seed_11.png", b"png")
    assert s.saved_jobs(first) == set()                    # an image without its sidecar: not saved
    (tmp_path / first.relative_folder / "001_seed_11.json").write_text("{}")
    # job 1 a while later in another process (a new book): the state file and the folder are shared
    later = _job(s.SessionBook(), root, 1, now=T1)
    assert not later.opened and later.folder == first.folder and later.started == T0
    assert (later.last_index, later.last_count, later.first) == (0, 1, 1)


def test_how_far_a_session_got_is_read_from_its_folder(tmp_path):
    sess = _job(s.SessionBook(), str(tmp_path), 0, jobs=4, batch_size=2, exp="exp2")
    other = _job(s.SessionBook(), str(tmp_path), 0, jobs=1)                    # after it: number 9
    folder = tmp_path / sess.relative_folder
    for name in ("001_seed_1.json", "002_seed_1.json", "004_seed_1.json", "005_seed_1.png",
                 "007_seed_1.json", "008_seed_1.json", f"{other.first:03d}_seed_1.json", "notes.json"):
        (folder / name).write_text("{}")
    assert s.saved_jobs(sess) == {0, 3}          # job 1 lacks an image's sidecar, job 2 has none
    assert s.load_session(str(tmp_path), "exp2").last_index == 3


def test_job_zero_again_starts_new_session(tmp_path):
    root = str(tmp_path)
    book = s.SessionBook()
    a = _job(book, root, 0)
    b = _job(book, root, 0, now=T1)
    assert b.opened and b.folder != a.folder and b.first == 1
    assert s.load_session(root, "exp1").folder == b.folder
    assert _job(book, root, 1, now=T1) is b


def test_same_minute_sessions_get_consecutive_number_ranges(tmp_path):
    """The later session's numbers start after all of the earlier one's, even those it has not
    saved yet, and the ranges stay fixed across a restart (a new book)."""
    root = str(tmp_path)
    a = _job(s.SessionBook(), root, 0, jobs=12)
    s.publish_image(a.folder, "001_seed_1.png", b"png")
    b = _job(s.SessionBook(), root, 0, now=T0.replace(second=40), exp="exp2", jobs=3, batch_size=2)
    c = _job(s.SessionBook(), root, 0, now=T0.replace(second=50), exp="exp1", jobs=1)
    assert b.folder == c.folder == a.folder
    assert (a.first, b.first, c.first) == (1, 13, 19)
    assert s.load_session(root, "exp2").first == 13           # kept across resume
    assert _job(s.SessionBook(), root, 2, exp="exp2", jobs=3, batch_size=2).first == 13


def test_numbers_start_after_files_already_in_the_folder(tmp_path):
    folder = tmp_path / "2025" / "10" / "13" / "1458"
    folder.mkdir(parents=True)
    (folder / "999_seed_1.png").write_bytes(b"")          # e.g. saved by an older version
    assert _job(s.SessionBook(), str(tmp_path), 0).first == 1000


def test_a_process_continues_its_own_session_when_another_opened_a_newer_one(tmp_path):
    """Two ComfyUIs sharing an output folder, the same file queued on both: each finishes its
    own session; a restarted one (a new book) follows the record on disk."""
    root = str(tmp_path)
    server_a, server_b = s.SessionBook(), s.SessionBook()
    a = _job(server_a, root, 0)
    b = _job(server_b, root, 0)
    assert (a.first, b.first) == (1, 7)
    assert _job(server_a, root, 1) is a and _job(server_b, root, 1) is b
    assert server_a.current(root, "exp1") is a and s.load_session(root, "exp1").first == 7
    a.last_index = 5                                       # a finished: a later job follows the record
    assert _job(server_a, root, 3).first == 7 and server_a.current(root, "exp1").first == 7
    assert _job(s.SessionBook(), root, 3).first == 7


def test_planned_session_is_the_same_on_every_server(tmp_path):
    shared, elsewhere = str(tmp_path / "shared"), str(tmp_path / "other")
    opened = _job(s.SessionBook(), shared, 0, jobs=4)
    planned = s.PlannedSession.parse("2025/10/13/1458", opened.first)
    # a second server on the same output folder, any job first: the same session, not a new one
    on_b = _job(s.SessionBook(), shared, 3, now=T1, jobs=4, planned=planned)
    assert (on_b.folder, on_b.first, on_b.opened) == (opened.folder, 1, False)
    # a server with its own output folder: the same folder name and numbers, reserved there
    on_c = _job(s.SessionBook(), elsewhere, 2, now=T1, jobs=4, planned=planned)
    assert on_c.relative_folder == "2025/10/13/1458" and on_c.first == 1 and on_c.started == T0.replace(second=0)
    assert _job(s.SessionBook(), elsewhere, 0, now=T1, exp="exp2", jobs=2).first == 1   # another minute
    other = _job(s.SessionBook(), elsewhere, 0, exp="exp2", jobs=2)                     # same minute
    assert other.folder == on_c.folder and other.first == 5


def test_planned_numbers_held_by_another_session_are_refused(tmp_path):
    root = str(tmp_path)
    _job(s.SessionBook(), root, 0, exp="exp2", jobs=5)                         # holds 1-5
    with pytest.raises(s.NumberingError, match=r"numbers 3-6 .* reserved by another session"):
        _job(s.SessionBook(), root, 0, jobs=4, planned=s.PlannedSession.parse("2025/10/13/1458", 3))
    assert _job(s.SessionBook(), root, 0, jobs=4, planned=s.PlannedSession.parse("2025/10/13/1458", 6)).first == 6


@pytest.mark.parametrize("folder, first, message", [
    ("2025/10/13", 1, "not a session folder"), ("../2025/10/13/1458", 1, "not a session folder"),
    ("2025/13/40/2599", 1, "not a real date"), ("2025/10/13/1458", 0, "must be 1 or more"),
    ("", 4, "needs session_folder"), ("2025/10/13/1458", True, "must be 1 or more")])
def test_planned_session_inputs_are_checked(folder, first, message):
    with pytest.raises(ValueError, match=message):
        s.PlannedSession.parse(folder, first)


def test_planned_session_unset():
    assert s.PlannedSession.parse("", 0) is None and s.PlannedSession.parse("  ", 0) is None
    assert s.PlannedSession.parse("2025\\10\\13\\1458", 2) == s.PlannedSession("2025/10/13/1458", 2)


def test_unrecorded_expansion_opens_a_session(tmp_path):
    sess = _job(s.SessionBook(), str(tmp_path), 5, exp="never_seen")
    assert sess.opened and os.path.isdir(sess.folder)


def test_corrupt_escaping_or_unnumbered_state_opens_new_session(tmp_path):
    root = str(tmp_path)
    path = s.state_path(root, "exp1")
    os.makedirs(os.path.dirname(path))
    for bad in ('{"folder": "../../etc", "started": "2025-10-13T14:58:07", "first": 1}', "{trunc", "[]",
                '{"folder": "/abs", "started": "2025-10-13T14:58:07", "first": 1}',
                '{"folder": "2025/10/13/1458", "started": "2025-10-13T14:58:07", "last_index": 2}'):
        with open(path, "w") as f:
            f.write(bad)
        assert s.load_session(root, "exp1") is None
        assert _job(s.SessionBook(), root, 3, now=T1).opened


def test_bad_expansion_id_refused(tmp_path):
    with pytest.raises(PathError):
        s.state_path(str(tmp_path), "../../x")
    with pytest.raises(PathError):
        _job(s.SessionBook(), str(tmp_path), 0, exp="../x")
    assert os.listdir(tmp_path) == []


def test_publish_image_never_overwrites(tmp_path):
    folder = str(tmp_path)
    assert s.publish_image(folder, "001_seed_9.png", b"theirs")
    assert not s.publish_image(folder, "001_seed_9.png", b"ours")
    assert open(os.path.join(folder, "001_seed_9.png"), "rb").read() == b"theirs"
    assert os.listdir(folder) == ["001_seed_9.png"]                  # no temp left behind


def test_concurrent_openers_get_disjoint_ranges(tmp_path):
    """Sessions opened at once (threads here; processes share nothing else but the files) in one
    folder: every range is disjoint and each starts right after another, no gap."""
    root = str(tmp_path)
    ranges, errors = [], []

    def worker(n):
        try:
            for i in range(10):
                sess = s.open_session(root, f"exp{n}_{i}", n + 1, now=lambda: T0)
                ranges.append((sess.first, sess.first + n + 1))
        except Exception as e:          # pragma: no cover - reported below
            errors.append(e)
    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert not errors and len(ranges) == 40
    ranges.sort()
    assert ranges[0][0] == 1 and all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))


def test_state_written_atomically(tmp_path, monkeypatch):
    root = str(tmp_path)
    sess = _job(s.SessionBook(), root, 0)
    import prompt_media_pkg.core.atomic as atomic

    def broken_fsync(fd):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(atomic.os, "fsync", broken_fsync)
    sess.jobs = 7
    with pytest.raises(OSError):
        s.save_session(sess)
    monkeypatch.undo()
    assert s.load_session(root, "exp1").jobs == 6           # the old state is intact
    assert os.listdir(os.path.dirname(s.state_path(root, "exp1"))) == ["exp1.json"]


def test_session_holds_only_its_own_images(tmp_path):
    sess = _job(s.SessionBook(), str(tmp_path), 0)
    mine = {"oom": {"expansion_id": "exp1", "index": 2}, "session": {"first": 1},
            "parameters": {"batch_index": 0}}
    assert sess.holds(mine, 2, 0)
    assert not sess.holds(mine, 3, 0) and not sess.holds(mine, 2, 1)
    assert not sess.holds(mine | {"session": {"first": 7}}, 2, 0)               # a same-minute session
    assert not sess.holds(mine | {"oom": {"expansion_id": "exp2", "index": 2}}, 2, 0)
    assert not sess.holds({}, 2, 0)


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
