"""Issue 9: the manual install. ``git clone`` of this repository's committed HEAD into a clean
``custom_nodes/`` under a folder name nobody else uses, then real ComfyUI starts on it.

A clone holds committed files only, so this catches a file that works in the working tree but
was never committed. The start-up log is compared with the log of the same ComfyUI started
without us: lines ComfyUI prints anyway (on this host the audio nodes fail to import for want of
torchaudio) are not ours; every line the clone adds must be free of warnings and errors.
"""
from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from prompt_media_pkg.tests.comfy_host import HostServer, fresh_base_dir, port_range_from_env
from prompt_media_pkg.tests.host.workflows import oom_id, session_prompt

REPO = Path(__file__).resolve().parents[2]
CLONE_NAME = "ComfyUI-Prompt-Media-clone"       # not the usual folder name: any name must work
OUR_NODES = {"PromptMediaLoader", "PromptMediaOOM", "PromptMediaLoraChain", "PromptMediaSessionSaver",
             "PromptMediaLoadParams", "PromptMediaContactSheet"}
TROUBLE = re.compile(r"warn|error|traceback|exception|import failed|cannot import|deprecat", re.I)
TINY_SESSION = """\
prompts: [a lighthouse]
seeds: [3]
steps: 1
width: 64
height: 64
"""


def repo_toplevel() -> Path:
    out = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--show-toplevel"],
                         capture_output=True, text=True, check=True)
    return Path(out.stdout.strip())


def normalised_lines(log: str, server: HostServer) -> list[str]:
    """Log lines with what differs between two runs (port, base dir, start banner) taken out."""
    lines = []
    for line in log.splitlines():
        if line.startswith("===== start "):
            continue
        lines.append(line.replace(str(server.base), "<BASE>").replace(str(server.port), "<PORT>").rstrip())
    return lines


class Installed:
    def __init__(self, server: HostServer, clone: Path, baseline: list[str]):
        self.server, self.clone, self.baseline = server, clone, baseline

    def added_log_lines(self) -> list[str]:
        """Start-up lines of the clone's run that the run without us did not print."""
        extra = Counter(normalised_lines(self.server.log_text(), self.server)) - Counter(self.baseline)
        return [line for line in extra.elements() if line.strip()]


@pytest.fixture(scope="module")
def installed(request, comfy_host, test_models_dir):
    prefix = os.environ.get("PM_TEST_BASE_PREFIX", "/tmp/pm-host-")
    ports = port_range_from_env(os.environ.get("PM_TEST_PORTS"))
    servers = []

    def server_on(base: Path) -> HostServer:
        # no extensions dict: nothing is symlinked in, custom_nodes/ holds what we put there
        server = HostServer(comfy_host.comfyui_path, comfy_host.python, base, ports=ports,
                             models_dir=test_models_dir)
        servers.append(server)
        return server

    try:
        bare = server_on(fresh_base_dir(prefix)).start()
        baseline = normalised_lines(bare.log_text(), bare)
        bare.stop()

        base = fresh_base_dir(prefix)
        clone = base / "custom_nodes" / CLONE_NAME
        clone.parent.mkdir(parents=True)
        subprocess.run(["git", "clone", "--quiet", str(repo_toplevel()), str(clone)], check=True,
                       capture_output=True, text=True)
        server = server_on(base).start()
        sys.stderr.write(f"\n[install] clone up on {server.url} in {server.startup_s:.1f}s "
                         f"(bare ComfyUI: {bare.startup_s:.1f}s)\n")
        yield Installed(server, clone, baseline)
    finally:
        keep = os.environ.get("PM_KEEP_BASE") == "1" or request.session.testsfailed > 0
        for server in servers:
            server.stop()
            if keep:
                sys.stderr.write(f"\n[install] kept base dir {server.base}\n")
            else:
                shutil.rmtree(server.base, ignore_errors=True)


def test_clone_imports_with_no_warning_of_ours_in_the_log(installed):
    log = installed.server.log_text()
    ours = [l for l in log.splitlines() if CLONE_NAME in l]
    assert ours and all(re.match(r"^\s+[\d.]+ seconds: \S+$", l) for l in ours), ours  # the import-time line only
    assert "IMPORT FAILED" not in "\n".join(ours)
    added = installed.added_log_lines()
    assert [l for l in added if TROUBLE.search(l)] == [], "\n".join(added)


def test_object_info_lists_every_node_with_description_category_and_tooltips(installed):
    info = installed.server.client.object_info()
    ours = {name: node for name, node in info.items() if node.get("python_module", "").endswith(CLONE_NAME)}
    assert set(ours) == OUR_NODES
    problems = []
    for name, node in ours.items():
        if not node.get("description", "").strip():
            problems.append(f"{name}: no description")
        if not node["category"].startswith("Prompt Media"):
            problems.append(f"{name}: category {node['category']!r}")
        if not node["display_name"].strip() or node["display_name"] == name:
            problems.append(f"{name}: no display name")
        for section in ("required", "optional"):
            for input_name, spec in node["input"].get(section, {}).items():
                options = spec[1] if len(spec) > 1 else {}
                if not options.get("tooltip", "").strip():
                    problems.append(f"{name}.{input_name}: no tooltip")
        tips = node.get("output_tooltips") or []
        if len(tips) != len(node["output"]) or not all(t and t.strip() for t in tips):
            problems.append(f"{name}: output tooltips {tips!r} for outputs {node['output_name']!r}")
    assert problems == []


def test_requirements_install_nothing(installed):
    requirements = (installed.clone / "requirements.txt").read_text(encoding="utf-8")
    assert [l for l in requirements.splitlines() if l.strip() and not l.lstrip().startswith("#")] == []
    # what ComfyUI-Manager runs after a clone, with ComfyUI's own python; offline and dry
    pip = subprocess.run([str(installed.server.python), "-m", "pip", "install", "--dry-run", "--no-index",
                          "-r", "requirements.txt"], cwd=installed.clone, capture_output=True, text=True)
    assert pip.returncode == 0, pip.stderr
    assert "Would install" not in pip.stdout


def test_front_end_files_template_and_examples_are_there_under_any_folder_name(installed):
    client, server = installed.server.client, installed.server
    scripts = client.get("/extensions")
    assert {f"/extensions/{CLONE_NAME}/lora_chain.js", f"/extensions/{CLONE_NAME}/oom_session.js"} <= set(scripts)
    assert sorted(client.get("/workflow_templates").get(CLONE_NAME)) == ["flux_dev", "flux_schnell",
                                                                       "prompt_media_session", "sd35"]
    # the first start gave input/prompt_media/ the example files, so the template runs as shipped
    examples = sorted(p.name for p in (installed.clone / "example_prompts").glob("*.yaml"))
    copied = sorted(p.name for p in (server.input_dir / "prompt_media").glob("*.yaml"))
    assert examples and copied == examples


def test_the_clone_runs_a_job_of_the_shipped_workflow(installed):
    server = installed.server
    (server.input_dir / "prompt_media" / "tiny_install.yaml").write_text(TINY_SESSION, encoding="utf-8")
    prompt = session_prompt("tiny_install.yaml", "install_test/images")
    mark = server.log_mark()
    result = server.client.run(copy.deepcopy(prompt), timeout=300)
    assert result.status == "success", result.error_summary()
    images = sorted((server.output_dir / "install_test" / "images").rglob("*.png"))
    assert [p.name for p in images] == ["001_seed_3.png"]
    assert images[0].with_suffix(".json").is_file()
    assert result.ui_text(oom_id(prompt))                       # the OOM node reported its job
    assert [l for l in server.log_since(mark).splitlines() if TROUBLE.search(l)] == []
