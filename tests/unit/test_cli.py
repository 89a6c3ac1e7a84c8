"""run_session.py without ComfyUI: the checks made before any server is involved (exact message,
stream, exit code), --help, the UI workflow sent for the PNGs, and the device flags for --comfyui."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from prompt_media_pkg.core.workflow import session_prompt, set_model_files
from prompt_media_pkg.runner.comfy_server import ATTENTION_FLAG, device_args
from prompt_media_pkg.runner.workflow import ui_twin_path, ui_workflow_for

REPO = Path(__file__).resolve().parents[2]
API = REPO / "workflows" / "api" / "prompt_media_session.json"
NO_SERVER = "127.0.0.1:9"            # discard port: nothing answers


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "run_session.py"), *args], capture_output=True, text=True,
                          timeout=120, cwd=cwd)


@pytest.fixture
def work(tmp_path):
    (tmp_path / "ok.yaml").write_text("prompts: [a, b, c]\nseeds: [1, 2]\nvariations:\n"
                                      "  v: {type: sequential, values: [x, y]}\n", encoding="utf-8")
    (tmp_path / "bad.yaml").write_text("prompts: [a]\nvariations:\n  v: {type: randm, values: [x]}\n",
                                       encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize("args, message", [
    (["bad.yaml"], "error: bad.yaml:3:13: variations.v.type: 'randm' is not one of sequential, random, static\n"),
    (["ok.yaml", "--preset", "draft"],
     ("error: ok.yaml:1:1: workflows: preset 'draft' not found; the file's presets: none (the file has no "
      "'workflows:' section)\n")),
    (["ok.yaml", "--max-jobs", "5"],
     ("error: ok.yaml: max_jobs: expands to 12 jobs · 3 prompts × 2 variations × 2 seeds, more than max_jobs=5; "
      "raise max_jobs or split the file\n")),
    (["missing.yaml"], "error: missing.yaml: cannot read file: No such file or directory\n"),
])
def test_the_file_is_checked_before_any_server_is_asked(work, args, message):
    # the server named does not exist: these errors come first, with exit 2
    result = cli(*args, "--server", NO_SERVER, "--checkpoint", "x.safetensors", cwd=work)
    assert (result.returncode, result.stdout, result.stderr) == (2, "", message)


def test_no_comfyui_at_a_server_without_scheme(work):
    result = cli("ok.yaml", "--server", NO_SERVER, "--checkpoint", "x.safetensors", cwd=work)
    assert (result.returncode, result.stdout) == (3, "")
    assert result.stderr == (f"error: no ComfyUI answers at http://{NO_SERVER} (start it, or use --comfyui DIR to "
                             "have this command start one)\n")


def test_comfyui_folder_without_main_py(work):
    result = cli("ok.yaml", "--comfyui", str(work), "--checkpoint", "x.safetensors", cwd=work)
    assert (result.returncode, result.stdout) == (3, "")
    assert result.stderr == f"error: --comfyui {work}: not a ComfyUI folder (it has no main.py)\n"


def test_compose_only_on_a_missing_or_empty_folder(work):
    missing = cli("--compose-only", str(work / "nope"), cwd=work)
    assert (missing.returncode, missing.stdout) == (2, "")
    assert missing.stderr == f"error: session folder '{work / 'nope'}' does not exist or is not a folder\n"
    empty = cli("--compose-only", str(work), cwd=work)
    assert (empty.returncode, empty.stdout) == (2, "")
    assert empty.stderr == f"error: {work}: no images with a prompt-media sidecar: nothing composed\n"


def test_help_gives_every_option_a_text_and_its_default(work):
    text = cli("--help", cwd=work).stdout
    options = text.split("\noptions:\n", 1)[1]
    entries = [e for e in options.split("\n  -") if e.strip()]
    for entry in entries[1:]:                     # after -h
        flat = " ".join(entry.split())
        assert "default" in flat or "required" in flat, flat
    assert "--compose-only FOLDER" in text and "--compose FOLDER" not in text
    assert "(default: collections/images)" in " ".join(text.split())


def test_the_ui_twin_gets_the_api_prompts_widget_values():
    assert ui_twin_path(API) == REPO / "workflows" / "prompt_media_session.json"
    prompt, nodes = session_prompt(json.loads(API.read_text()), file="f.yaml", preset="p", mode="cycle",
                                   variation_seed=4, seed=9, max_jobs=50, root="r", compose="none")
    set_model_files(prompt, nodes, model="m.safetensors")
    prompt[nodes.oom]["inputs"]["job_index"] = 7
    ui = json.loads(ui_twin_path(API).read_text())
    out = ui_workflow_for(ui, prompt)
    widgets = {n["type"]: n.get("widgets_values") for n in out["nodes"]}
    assert widgets["CheckpointLoaderSimple"] == ["m.safetensors"]
    assert widgets["PromptMediaLoader"] == ["f.yaml", "p", ""]
    # control-after-generate values stay in place after job_index and seed
    assert widgets["PromptMediaOOM"] == ["cycle", "one job per run", 7, "increment", 4, 9, "fixed", 50]
    assert widgets["PromptMediaSessionSaver"] == ["r", "", "none"]
    assert widgets["KSampler"] == {n["type"]: n.get("widgets_values") for n in ui["nodes"]}["KSampler"]  # linked
    assert ui_twin_path(Path("/somewhere/else.json")) is None


@pytest.mark.parametrize("given, gpu, added", [
    ([], False, ["--cpu", ATTENTION_FLAG]),
    ([], True, []),
    ([], None, []),                                   # the probe failed: ComfyUI decides
    (["--cpu"], None, [ATTENTION_FLAG]),
    (["--cpu", "--use-split-cross-attention"], None, []),
    (["--directml"], False, []),
    (["--cuda-device=1"], False, []),
])
def test_device_flags_for_a_comfyui_this_command_starts(given, gpu, added):
    probed = []
    got, note = device_args(given, lambda: probed.append(1) or gpu)
    assert got == added
    assert (note is None) == (not added)
    if "--cpu" in given or "--directml" in given or "--cuda-device=1" in given:
        assert probed == []                           # a device flag given: no probe
    if added == ["--cpu", ATTENTION_FLAG]:
        assert note.startswith("no GPU found (torch sees no CUDA, ROCm, MPS or XPU device): adding --cpu "
                               f"{ATTENTION_FLAG} to ComfyUI's arguments")


def test_dry_run_needs_no_server_and_names_every_file(work):
    table = cli("ok.yaml", "--dry-run", cwd=work)
    assert (table.returncode, table.stderr) == (0, "")
    lines = table.stdout.splitlines()
    assert lines[0] == "ok.yaml: 12 jobs · 3 prompts × 2 variations × 2 seeds · 512x512, 20 steps, cfg 8.0, euler/normal"
    assert lines[-1] == "12 jobs, 12 images; LoRAs: none; negative: none"
    plan = json.loads(cli("ok.yaml", "--dry-run", "--json", cwd=work).stdout)
    assert [j["filename"] for j in plan["jobs"]][:3] == ["001_seed_1.png", "002_seed_1.png", "003_seed_1.png"]
    assert plan["jobs"][11]["filename"] == "012_seed_2.png" and plan["totals"]["jobs"] == 12
    misuse = cli("ok.yaml", "--json", "--server", NO_SERVER, "--checkpoint", "x", cwd=work)
    assert misuse.returncode == 2 and misuse.stderr.endswith("error: --json goes with --dry-run\n")


def test_dry_run_of_a_folder_plans_each_file_and_reports_the_bad_one(work):
    (work / "sub").mkdir()
    (work / "sub" / "more.yml").write_text("prompts: [z]\nseeds: [4]\n", encoding="utf-8")
    (work / "notes.txt").write_text("not a prompt file", encoding="utf-8")
    result = cli(str(work), "--dry-run", "--json", cwd=work)
    assert result.returncode == 2                                   # bad.yaml
    assert result.stderr == "error: bad.yaml:3:13: variations.v.type: 'randm' is not one of sequential, random, static\n"
    plans = json.loads(result.stdout)["files"]
    assert [Path(p["file"]).name for p in plans] == ["ok.yaml", "more.yml"]      # sorted, recursive
    assert plans[1]["jobs"][0]["filename"] == "001_seed_4.png"
    empty = work / "empty"
    empty.mkdir()
    none = cli(str(empty), "--dry-run", cwd=work)
    assert (none.returncode, none.stderr) == (2, f"error: {empty}: no .yaml or .yml file in this folder\n")


@pytest.mark.parametrize("args, message", [
    (["--server", "127.0.0.1:9", "--server", "http://127.0.0.1:9"], "--server: the same server is given twice"),
    (["--ray", "local", "--collect", "out"], "--ray needs --comfyui DIR: the ComfyUI each Ray actor starts"),
    (["--ray", "local", "--comfyui", "."], "--ray needs --collect DIR: the images are made on the cluster's nodes"),
    (["--server", "127.0.0.1:9", "--ray-cpu-servers", "2"], "--ray-cpu-servers goes with --ray"),
])
def test_server_options_that_do_not_go_together(work, args, message):
    result = cli("ok.yaml", *args, "--checkpoint", "x.safetensors", cwd=work)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.splitlines()[-1] == f"run_session.py: error: {message}" + (
        " (the same path on every node)" if "--comfyui DIR" in message else "")


def test_a_second_server_that_does_not_answer_stops_before_anything_is_queued(work):
    result = cli("ok.yaml", "--server", NO_SERVER, "--server", "127.0.0.1:7", "--checkpoint", "x.safetensors",
                 cwd=work)
    assert (result.returncode, result.stdout) == (3, "")
    assert result.stderr.startswith(f"error: no ComfyUI answers at http://{NO_SERVER} ")


def test_ray_missing_says_how_to_install_it(monkeypatch):
    from prompt_media_pkg.runner import ray_cluster
    monkeypatch.setitem(sys.modules, "ray", None)          # `import ray` raises ImportError
    with pytest.raises(ray_cluster.RayError, match=r"--ray needs Ray in the python that runs run_session.py "
                                                   r"\(.*\): pip install ray$"):
        ray_cluster.import_ray()


def test_nothing_imports_ray_without_the_ray_option():
    probe = (f"import sys; sys.path.insert(0, {str(REPO)!r}); import run_session, runner.pool, core.collect; "
             "print(sorted(m for m in sys.modules if m == 'ray' or m.startswith('ray.')))")
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout == "[]\n"
