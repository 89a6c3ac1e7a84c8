"""Issue 9: pyproject.toml as the Comfy registry reads it, through ComfyUI's own parser
(``comfy_config.config_parser``, run with ComfyUI's python in the ComfyUI folder), checked
against the registry's published rules for the fields it requires."""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# docs.comfy.org/registry/specifications: < 100 characters; letters, digits, '-', '_', '.'; no two
# special characters in a row; starts with a letter; "ComfyUI" does not belong in it
NODE_ID = re.compile(r"^[A-Za-z](?:[A-Za-z0-9]|[-_.](?=[A-Za-z0-9]))*$")
SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$")
GITHUB = re.compile(r"^https://github\.com/([\w.-]+)/([\w.-]+)$")
PARSE = ("import json, sys\n"
         "from comfy_config import config_parser\n"
         "print(json.dumps(config_parser.extract_node_configuration(sys.argv[1]).model_dump()))\n")


@pytest.fixture(scope="module")
def config(comfy_host) -> dict:
    out = subprocess.run([str(comfy_host.python), "-c", PARSE, str(REPO)], cwd=comfy_host.comfyui_path,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_name_is_a_valid_registry_node_id(config):
    name = config["project"]["name"]
    assert name == "prompt-media"
    assert NODE_ID.match(name) and len(name) < 100 and "comfyui" not in name.lower()


def test_version_is_semver_and_has_a_changelog_entry(config):
    version = config["project"]["version"]
    assert SEMVER.match(version), version
    changelog = (REPO / "CHANGELOG.md").read_text(encoding="utf-8")
    assert re.search(rf"^## \[{re.escape(version)}\] - \d{{4}}-\d{{2}}-\d{{2}}$", changelog, re.M), \
        f"CHANGELOG.md has no '## [{version}] - YYYY-MM-DD' section"


def test_urls_point_at_one_github_repository(config):
    urls = config["project"]["urls"]
    owner_repo = GITHUB.match(urls["repository"])
    assert owner_repo, urls["repository"]
    for key in ("documentation", "issues"):
        assert urls[key].startswith(urls["repository"]), (key, urls[key])


def test_comfy_section_has_publisher_display_name_and_an_icon_that_exists(config):
    comfy, urls = config["tool_comfy"], config["project"]["urls"]
    assert re.fullmatch(r"[a-z0-9][a-z0-9-]*", comfy["publisher_id"]), comfy["publisher_id"]
    assert comfy["display_name"] == "Prompt Media"
    owner, repo = GITHUB.match(urls["repository"]).groups()
    icon = re.fullmatch(rf"https://raw\.githubusercontent\.com/{owner}/{repo}/main/(.+)", comfy["icon"])
    assert icon, f"Icon {comfy['icon']!r} is not a file of {urls['repository']} on main"
    path = REPO / icon.group(1)
    assert path.is_file(), f"Icon points at {icon.group(1)}, which is not in the repository"
    from PIL import Image  # the registry shows icons square, at most 400 px
    with Image.open(path) as im:
        assert im.width == im.height <= 400, im.size


def test_license_is_the_gpl3_file(config):
    license_ = config["project"]["license"]
    assert license_["file"] == "LICENSE"
    text = (REPO / license_["file"]).read_text(encoding="utf-8")
    assert "GNU GENERAL PUBLIC LICENSE" in text and "Version 3, 29 June 2007" in text


def test_no_dependencies_beyond_comfyui(config):
    assert config["project"]["dependencies"] == []
