"""Issue 7, paths (unit tier): text from a YAML file, a workflow or a sidecar never makes the
pure core read or write outside the folder it names. The node-level checks that need ComfyUI's
folder_paths are in tests/host/test_hostile_host.py."""
from __future__ import annotations

import os
from datetime import datetime

import pytest

from prompt_media_pkg.core import session as s
from prompt_media_pkg.core.lora_names import LoraNameError, plan_chain, resolve_lora_name
from prompt_media_pkg.core.paths import PathError, relative_parts
from prompt_media_pkg.core.session import session_folder_path

T0 = datetime(2025, 10, 13, 14, 58, 7)

# (text, words the refusal must contain)
ESCAPES = [
    ("..", "'..'"),
    ("../x", "'..'"),
    ("a/../../x", "'..'"),
    ("a\\..\\..\\x", "'..'"),
    ("./../x", "'..'"),
    ("/etc", "absolute"),
    ("/tmp/x", "absolute"),
    ("//server/share", "absolute"),
    ("\\\\server\\share\\x", "absolute"),
    ("\\x", "absolute"),
    ("C:\\x", "absolute"),
    ("C:/x", "absolute"),
    ("c:x", "absolute"),
    ("  /tmp/x", "absolute"),            # leading blanks do not hide it
    ("a\0b", "NUL byte"),
    ("x.yaml\0.png", "NUL byte"),
]


@pytest.fixture
def tree(tmp_path):
    """<tmp>/base/output (the folder under attack), <tmp>/canary (must stay untouched)."""
    out, canary = tmp_path / "base" / "output", tmp_path / "canary"
    out.mkdir(parents=True), canary.mkdir()
    (canary / "secret.json").write_text('{"plugin": "x"}')
    return out, canary


def files_under(path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


@pytest.mark.parametrize("text, words", ESCAPES)
def test_relative_parts_refuses_every_escape_form_by_name(text, words):
    with pytest.raises(PathError) as err:
        relative_parts(text, "file", "input/prompt_media/")
    assert words in str(err.value) and str(err.value).startswith("file ")


def test_relative_parts_keeps_ordinary_names():
    assert relative_parts("sub\\dir/./x.yaml", "file", "f") == ["sub", "dir", "x.yaml"]
    assert relative_parts("a..b/c...yaml", "file", "f") == ["a..b", "c...yaml"]   # dots inside names are fine
    with pytest.raises(PathError, match="must be text"):
        relative_parts(["x"], "file", "f")


@pytest.mark.parametrize("root, words", ESCAPES + [("", "empty"), ("  ", "empty"), ("./.", "names no folder")])
def test_saver_root_refused_with_a_clear_message(tree, root, words):
    out, canary = tree
    with pytest.raises(PathError) as err:
        s.resolve_root(str(out), root)
    assert words in str(err.value) and "root" in str(err.value)


def test_root_through_a_symlink_pointing_out_is_refused(tree):
    out, canary = tree
    (out / "link").symlink_to(canary)
    with pytest.raises(PathError, match="outside"):
        s.resolve_root(str(out), "link/images")
    (out / "inner").mkdir()
    (out / "ok").symlink_to(out / "inner")             # a link that stays inside is fine
    assert s.resolve_root(str(out), "ok/images") == str(out / "ok" / "images")


def test_session_never_creates_folders_through_a_dated_symlink_pointing_out(tree):
    """A link planted where the YYYY folder goes must not make os.makedirs create
    MM/DD/HHMM outside (it did: the check ran after makedirs)."""
    out, canary = tree
    root = s.resolve_root(str(out), "collections/images")
    os.makedirs(root)
    os.symlink(canary, os.path.join(root, "2025"))
    with pytest.raises(PathError, match="outside"):
        s.SessionBook().for_job(root, "exp", 0, 6, now=lambda: T0)
    assert files_under(canary) == ["secret.json"]


def test_recorded_session_folder_pointing_out_is_not_continued(tree):
    out, canary = tree
    root = s.resolve_root(str(out), "r")
    first = s.SessionBook().for_job(root, "exp", 0, 6, now=lambda: T0)
    state = s.state_path(root, "exp")
    for folder in ("../../../canary", "/tmp", "C:/x", "a\0b", "link"):
        if folder == "link":
            os.symlink(canary, os.path.join(root, "link"))
        text = open(state).read().replace(f'"{first.state()["folder"]}"', '"{}"'.format(folder.replace("\0", "\\u0000")))
        with open(state, "w") as f:
            f.write(text)
        assert s.load_session(root, "exp") is None, folder          # refused: a new session opens
        again = s.SessionBook().for_job(root, "exp", 3, 6, now=lambda: T0)
        assert again.opened and again.folder == first.folder
        first = again
    assert files_under(canary) == ["secret.json"]


@pytest.mark.parametrize("expansion_id", ["../x", "a/b", "", "x" * 200, "a\0b", "C:x", ".."])
def test_expansion_id_is_never_a_path(tmp_path, expansion_id):
    with pytest.raises(PathError, match="plain identifier"):
        s.state_path(str(tmp_path), expansion_id)


# --------------------------------------------------------------------------- the copied prompt file

@pytest.mark.parametrize("source, expected", [
    ("../../evil.yaml", "evil.yaml"),
    ("..\\..\\evil.yaml", "evil.yaml"),
    ("/etc/passwd", "passwd.yaml"),
    ("C:\\Users\\x\\p.yml", "p.yml"),
    ("\\\\server\\share\\p.yaml", "p.yaml"),
    ("a:b.yaml", "a_b.yaml"),                  # NTFS alternate data stream
    ("x\0.yaml", "x_.yaml"),
    (".hidden.yaml", "hidden.yaml"),
    ("..", "prompt_media.yaml"),
    ("", "prompt_media.yaml"),
    ("con.yaml", "_con.yaml"),                 # Windows device names, any case, any extension
    ("NUL.yaml", "_NUL.yaml"),
    ("com1.yml", "_com1.yml"),
    ("lpt9.txt", "_lpt9.txt.yaml"),
    ("aux.tar.yaml", "_aux.tar.yaml"),
    ("console.yaml", "console.yaml"),          # only the exact device names
    ("trailing. .", "trailing.yaml"),
    ("prompt*?<>|\".yaml", "prompt_.yaml"),
    ("emoji 🐱.yaml", "emoji _.yaml"),
])
def test_prompt_copy_name_is_a_safe_plain_name(source, expected):
    assert s.prompt_copy_name(source) == expected


def test_prompt_copy_name_is_bounded():
    name = s.prompt_copy_name("x" * 1000 + ".yaml")
    assert len(name) == s.MAX_COPY_NAME and name.endswith(".yaml")
    assert len(s.prompt_copy_name("é" * 300 + ".yml").encode()) <= s.MAX_COPY_NAME


@pytest.mark.parametrize("source", ["../../evil.yaml", "/tmp/evil.yaml", "con.yaml", "a:b.yaml",
                                    "x" * 400 + ".yaml", "..\\..\\evil.yaml"])
def test_prompt_copy_lands_inside_the_session_folder(tree, source):
    out, canary = tree
    folder = out / "2025" / "10" / "13" / "1458"
    folder.mkdir(parents=True)
    path = s.copy_prompt_file(str(folder), source, "prompts: [a]\n")
    assert os.path.dirname(path) == str(folder) and open(path).read() == "prompts: [a]\n"
    assert files_under(canary) == ["secret.json"]
    assert not (out / "evil.yaml").exists() and not (out.parent / "evil.yaml").exists()


# --------------------------------------------------------------------------- LoRA names

AVAILABLE = ["tiny_lora_attn.safetensors", "styles/Foo.safetensors"]


@pytest.mark.parametrize("name", ["../../../etc/passwd", "/etc/passwd", "../tiny_lora_attn.safetensors",
                                  "..\\..\\x.safetensors", "C:\\loras\\x.safetensors",
                                  "\\\\server\\share\\x.safetensors", "x\0.safetensors",
                                  "/tmp/comfybase/models/loras/tiny_lora_attn.safetensors",
                                  "styles/../../Foo.safetensors"])
def test_lora_names_resolve_only_to_listed_files(name):
    """Names are looked up in the host's list, never joined onto a folder: an escape is just
    a name that is not in the list."""
    with pytest.raises(LoraNameError, match="not found|ambiguous"):
        resolve_lora_name(name, AVAILABLE)
    with pytest.raises(LoraNameError):
        plan_chain([{"name": name, "strength_model": 1.0, "strength_clip": 1.0}], {}, "shared", AVAILABLE)


@pytest.mark.parametrize("name, expected", [
    ("tiny_lora_attn", "tiny_lora_attn.safetensors"),
    ("/tiny_lora_attn.safetensors", "tiny_lora_attn.safetensors"),
    ("foo", "styles/Foo.safetensors"),
    ("styles\\Foo", "styles/Foo.safetensors"),
])
def test_lora_names_that_resolve_are_the_entry_they_name(name, expected):
    assert resolve_lora_name(name, AVAILABLE) == expected


# --------------------------------------------------------------------------- contact sheet folder

@pytest.mark.parametrize("folder", ["../canary", "..", "/", "C:\\x", "\\\\server\\share", "a\0b",
                                    "x/../../canary"])
def test_contact_sheet_folder_outside_output_is_refused(tree, folder):
    out, canary = tree
    with pytest.raises(PathError):
        session_folder_path(str(out), folder)


def test_contact_sheet_folder_absolute_outside_or_through_a_link_is_refused(tree):
    out, canary = tree
    with pytest.raises(PathError, match="outside"):
        session_folder_path(str(out), str(canary))
    (out / "link").symlink_to(canary)
    for text in ("link", str(out / "link")):
        with pytest.raises(PathError, match="outside"):
            session_folder_path(str(out), text)
    (out / "ok").mkdir()
    assert session_folder_path(str(out), str(out / "ok")) == str(out / "ok")
