"""Issue 16 in real ComfyUI: what run_session.py says (exact text, stream, exit code) when things go
wrong against a running server, and that Ctrl-C stops only this run's jobs on a shared server.

The server here is ``checkpoint_only_server``: only the tiny checkpoint, no LoRAs, as a fresh
ComfyUI with one checkpoint has it.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from prompt_media_pkg.runner.comfy_client import ComfyClient
from prompt_media_pkg.tests.comfy_host import HostServer, fresh_base_dir
from prompt_media_pkg.tests.host.workflows import TEST_CHECKPOINT, loader_oom_txt2img

REPO = Path(__file__).resolve().parents[2]
SMALL = "prompts: [a red fox, a blue bird]\nseeds: [3]\nsteps: 1\nwidth: 64\nheight: 64\n"


def cli(*args: str, cwd: Path | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "run_session.py"), *args], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd)


def cli_popen(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(REPO / "run_session.py"), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.fixture
def server(checkpoint_only_server):
    return checkpoint_only_server


@pytest.fixture
def yaml_file(tmp_path):
    def write(name: str, text: str = SMALL) -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path
    return write


def host_port(server) -> str:
    return server.url.removeprefix("http://")


def history_ids(client: ComfyClient) -> set[str]:
    return set(client.history())


def test_server_without_a_scheme_runs_and_prints_absolute_paths_and_a_summary(server, yaml_file, request):
    root = f"pmtest/{request.node.name}"
    done = cli(str(yaml_file("scheme.yaml")), "--server", host_port(server), "--checkpoint", TEST_CHECKPOINT,
               "--root", root)
    assert done.returncode == 0, done.stderr
    images = sorted((server.output_dir / root).rglob("*.png"))
    folder = images[0].parent
    assert done.stdout.splitlines() == [str(p) for p in images] and len(images) == 2
    lines = done.stderr.splitlines()
    assert lines[0] == "scheme.yaml: 2 jobs · 2 prompts × 1 variation × 1 seed"
    assert lines[1].startswith("done: 2 images in ") and lines[1].endswith("s")
    assert lines[2:] == [f"  session folder: {folder}", f"  contact sheet: {folder / 'contact_sheet.jpg'}"]
    assert (folder / "scheme.yaml").is_file()
    # the PNG carries the UI workflow with the job's widget values, so the editor restores the graph
    from PIL import Image
    with Image.open(images[1]) as im:
        workflow = json.loads(im.info["workflow"])
    widgets = {n["type"]: n.get("widgets_values") for n in workflow["nodes"]}
    assert widgets["CheckpointLoaderSimple"] == [TEST_CHECKPOINT]
    assert widgets["PromptMediaLoader"][0] == "scheme.yaml"
    assert widgets["PromptMediaOOM"][:4] == ["product", "one job per run", 1, "increment"]   # the 2nd job
    assert widgets["PromptMediaSessionSaver"] == [root, "", "sheet"]


def test_an_edited_file_replaces_its_upload_and_the_session_keeps_its_name(server, yaml_file, request):
    root = f"pmtest/{request.node.name}"
    path = yaml_file("edited.yaml")
    assert cli(str(path), "--server", server.url, "--checkpoint", TEST_CHECKPOINT, "--root", root,
               "--compose", "none").returncode == 0
    path.write_text(SMALL.replace("a blue bird", "a green frog"), encoding="utf-8")
    again = cli(str(path), "--server", server.url, "--checkpoint", TEST_CHECKPOINT, "--root", root,
                "--compose", "none")
    assert again.returncode == 0, again.stderr
    uploads = sorted(p.name for p in (server.input_dir / "prompt_media").glob("edited*"))
    assert uploads == ["edited.yaml"]
    assert (server.input_dir / "prompt_media" / "edited.yaml").read_text(encoding="utf-8") == path.read_text()
    copies = sorted(p.name for p in (server.output_dir / root).rglob("edited*.yaml"))
    assert copies[0] == "edited.yaml"            # a second session in the same minute adds a _<sha8> copy


def test_a_missing_lora_is_said_once_before_anything_is_queued(server, yaml_file):
    before = history_ids(server.client)
    path = yaml_file("lora.yaml", SMALL + "loras:\n  - {name: my_style_lora, strength_model: 0.8}\n")
    result = cli(str(path), "--server", server.url, "--checkpoint", TEST_CHECKPOINT)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == ("error: lora.yaml: loras[0].name: LoRA 'my_style_lora' not found in the loras folder "
                             "(the loras folder is empty); put the file into ComfyUI's models/loras or change the "
                             "name\n")
    assert history_ids(server.client) == before


def test_an_unknown_checkpoint_names_the_closest_ones(server, yaml_file):
    result = cli(str(yaml_file("ckpt.yaml")), "--server", server.url, "--checkpoint", "tiny_sd.ckpt")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == ("error: --checkpoint: checkpoint 'tiny_sd.ckpt' not found in ComfyUI's "
                             f"models/checkpoints (closest: {TEST_CHECKPOINT})\n")


def test_a_refused_prompt_is_said_once_without_resume_advice(server, yaml_file, tmp_path):
    api = tmp_path / "wf" / "api" / "refused.json"
    api.parent.mkdir(parents=True)
    workflow = json.loads((REPO / "workflows" / "api" / "prompt_media_session.json").read_text())
    workflow["7"]["inputs"]["batch_size"] = 0                      # below EmptyLatentImage's minimum
    api.write_text(json.dumps(workflow))
    result = cli(str(yaml_file("refused.yaml")), "--server", server.url, "--checkpoint", TEST_CHECKPOINT,
                 "--workflow", str(api))
    assert (result.returncode, result.stdout) == (2, "")
    lines = result.stderr.splitlines()
    assert lines[0] == "refused.yaml: 2 jobs · 2 prompts × 1 variation × 1 seed"
    assert lines[1] == "error: ComfyUI refused the prompt:"
    assert len(lines) == 3 and lines[2].startswith("  EmptyLatentImage (node 7): ") and "batch_size" in lines[2]
    assert "resume" not in result.stderr


def test_resume_says_what_it_continues_or_that_there_is_nothing(server, yaml_file, request):
    root = f"pmtest/{request.node.name}"
    path = yaml_file("resume.yaml")
    fresh = cli(str(path), "--server", server.url, "--checkpoint", TEST_CHECKPOINT, "--root", root,
                "--compose", "none", "--resume")
    assert fresh.returncode == 0, fresh.stderr
    assert fresh.stderr.splitlines()[1] == ("nothing to resume: no session of resume.yaml with these settings is "
                                            f"recorded under {root}; starting a new one")
    done = cli(str(path), "--server", server.url, "--checkpoint", TEST_CHECKPOINT, "--root", root,
               "--compose", "none", "--resume")
    folder = Path(fresh.stdout.splitlines()[0]).parent
    assert (done.returncode, done.stdout) == (0, "")
    assert done.stderr.splitlines()[1] == (f"resume.yaml: the session in {folder} is complete (2 jobs saved); "
                                           "run without --resume to start a new one")


def test_a_comfyui_without_the_extension_says_how_to_install_it(comfy_host, checkpoint_only_server, yaml_file):
    bare = HostServer(comfy_host.comfyui_path, comfy_host.python, fresh_base_dir("/tmp/pm-host-bare-"))
    try:
        bare.start()
        result = cli(str(yaml_file("bare.yaml")), "--server", bare.url, "--checkpoint", TEST_CHECKPOINT)
    finally:
        bare.stop()
    assert (result.returncode, result.stdout) == (3, "")
    assert result.stderr == (
        f"error: the Prompt Media extension is not installed in the ComfyUI at {bare.url}: install it with "
        "ComfyUI-Manager (search \"Prompt Media\") or `git clone https://github.com/MyImaginationAI/comfyui-prompt-media` "
        "into ComfyUI/custom_nodes/, then restart ComfyUI; or run with --comfyui DIR, which adds it for the run only\n")


# ----------------------------------------------------------------------------- Ctrl-C on a shared server

def other_clients_job(client: ComfyClient, steps: int, prefix: str) -> str:
    """A job of another client (its own client id): the core sampler graph, ``steps`` long."""
    prompt = loader_oom_txt2img("", prefix=prefix, previews=False,
                                yaml_text=f"prompts: [other]\nseeds: [{steps}]\nsteps: {steps}\nwidth: 64\nheight: 64\n")
    status, resp = client.post_prompt(prompt)
    assert status == 200, resp
    return resp["prompt_id"]


def ours(client: ComfyClient, yaml_name: str, where: str) -> list[str]:
    """Prompt ids in the queue (queue_running / queue_pending) that load ``yaml_name``."""
    return [item[1] for item in client.queue()[where]
            if any(n.get("inputs", {}).get("file") == yaml_name for n in item[2].values())]


def wait_for(condition, timeout: float = 120.0, what: str = ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


def test_ctrl_c_stops_only_this_runs_jobs_on_a_shared_server(server, yaml_file, request):
    other = ComfyClient(server.url)                  # another client id
    root = f"pmtest/{request.node.name}"
    long_yaml = SMALL.replace("steps: 1", "steps: 5000")

    # 1. another client's long job runs; ours waits behind it; another job waits behind ours
    running = other_clients_job(other, 5000, f"{root}/other")
    wait_for(lambda: running in other.running_prompt_ids(), what="the other job to start")
    cli_run = cli_popen(str(yaml_file("shared.yaml", long_yaml)), "--server", server.url, "--checkpoint",
                        TEST_CHECKPOINT, "--root", root)
    mine = wait_for(lambda: ours(other, "shared.yaml", "queue_pending"), what="our job to be queued")
    behind = other_clients_job(other, 1, f"{root}/other")
    cli_run.send_signal(signal.SIGINT)
    _, err = cli_run.communicate(timeout=60)
    assert cli_run.returncode == 130, err
    assert err.splitlines()[-1] == "interrupted: no job of this session was saved"
    assert other.running_prompt_ids() == [running]            # the other client's job still runs
    assert other.pending_prompt_ids() == [behind]             # ours left the queue, theirs did not
    assert not set(mine) & history_ids(other)
    other.interrupt(running)
    assert other.wait(behind, timeout=120).status == "success"

    # 2. ours runs with its look-ahead (2 jobs) waiting; another client's job waits behind them:
    #    only ours stop
    cli_run = cli_popen(str(yaml_file("shared.yaml", long_yaml.replace("seeds: [3]", "seeds: [3, 4]"))),
                        "--server", server.url, "--checkpoint", TEST_CHECKPOINT, "--root", root)
    (mine,) = wait_for(lambda: ours(other, "shared.yaml", "queue_running"), what="our job to start")
    lookahead = wait_for(lambda: len(ours(other, "shared.yaml", "queue_pending")) == 2 and
                         ours(other, "shared.yaml", "queue_pending"), what="the look-ahead in the queue")
    behind = other_clients_job(other, 1, f"{root}/other")
    cli_run.send_signal(signal.SIGINT)
    _, err = cli_run.communicate(timeout=60)
    assert cli_run.returncode == 130, err
    assert not set(lookahead) & set(other.pending_prompt_ids())
    assert other.wait(mine, timeout=120).status == "interrupted"
    assert other.wait(behind, timeout=120).status == "success"
    assert not set(lookahead) & history_ids(other)                  # never ran
    assert err.splitlines()[-1] == "interrupted: no job of this session was saved"


def test_plan_names_are_the_saved_names_and_events_tell_each_step(server, yaml_file, request):
    root = f"pmtest/{request.node.name}"
    path = yaml_file("planned.yaml", SMALL.replace("seeds: [3]", "seeds: [3, 9]"))
    plan = json.loads(cli(str(path), "--dry-run", "--json").stdout)
    run = cli(str(path), "--server", server.url, "--checkpoint", TEST_CHECKPOINT, "--root", root,
              "--events", "json", "--compose", "none")
    assert run.returncode == 0, run.stderr
    events = [json.loads(line) for line in run.stdout.splitlines()]
    saved = [Path(p).name for e in events if e["event"] == "saved" for p in e["paths"]]
    assert saved == [job["filename"] for job in plan["jobs"]] == \
        ["001_seed_3.png", "002_seed_3.png", "003_seed_9.png", "004_seed_9.png"]
    assert sorted(p.name for p in (server.output_dir / root).rglob("*.png")) == saved
    kinds = [e["event"] for e in events]
    assert kinds[0] == "planned" and kinds[-1] == "done" and events[-1]["images"] == 4
    for job in range(1, 5):
        assert [e["event"] for e in events if e.get("job") == job] == ["queued", "started", "saved"]


def test_a_folder_of_files_runs_one_session_per_file_and_sums_up(server, tmp_path, request):
    root = f"pmtest/{request.node.name}"
    folder = tmp_path / "batch"
    (folder / "sub").mkdir(parents=True)
    (folder / "one.yaml").write_text(SMALL, encoding="utf-8")
    (folder / "sub" / "two.yml").write_text(SMALL.replace("a blue bird", "a green frog").replace("[3]", "[4]"),
                                            encoding="utf-8")
    (folder / "sub" / "broken.yaml").write_text("prompts: []\n", encoding="utf-8")
    run = cli(str(folder), "--server", server.url, "--checkpoint", TEST_CHECKPOINT, "--root", root,
              "--compose", "none")
    assert run.returncode == 2, run.stderr                         # broken.yaml; the others ran
    images = sorted((server.output_dir / root).rglob("*.png"))
    assert len(images) == 4 and run.stdout.splitlines() == [str(p) for p in sorted(images, key=lambda p: p.name)]
    copies = {p.name for p in (server.output_dir / root).rglob("*.y*ml")}
    assert copies == {"one.yaml", "two.yml"}                       # one session per file
    summary = run.stderr[run.stderr.index("folder run:"):].splitlines()
    assert summary[0].startswith("folder run: 3 files (2 done, 1 bad input), 4 images in ")
    assert [line.split()[:3] for line in summary[2:]] == [["one.yaml", "done", "2"], ["sub/broken.yaml", "bad", "input"],
                                                          ["sub/two.yml", "done", "2"]]


def test_the_readme_command_starts_comfyui_on_the_cpu_and_leaves_nothing_behind(comfy_host, test_models_dir,
                                                                                  tmp_path, yaml_file):
    """``python run_session.py FILE --comfyui DIR --checkpoint NAME`` with ComfyUI's python, as the
    README's first command (its own base directory here, so the shared checkout stays untouched)."""
    from prompt_media_pkg.runner.comfy_server import gpu_present
    base, tmp = tmp_path / "comfy-base", tmp_path / "tmp"
    for sub in ("models/checkpoints", "custom_nodes", "user"):
        (base / sub).mkdir(parents=True)
    tmp.mkdir()
    (base / "models" / "checkpoints" / TEST_CHECKPOINT).symlink_to(
        (test_models_dir / "checkpoints" / TEST_CHECKPOINT).resolve())
    run = subprocess.run(
        [str(comfy_host.python), str(REPO / "run_session.py"), str(yaml_file("readme.yaml")), "--comfyui",
         str(comfy_host.comfyui_path), f"--comfyui-arg=--base-directory={base}",
         f"--comfyui-arg=--database-url=sqlite:///{base}/user/comfyui.db", "--checkpoint", TEST_CHECKPOINT],
        capture_output=True, text=True, timeout=900, env={**os.environ, "TMPDIR": str(tmp)})
    assert run.returncode == 0, run.stderr
    lines = run.stderr.splitlines()
    if not gpu_present(str(comfy_host.python)):
        assert lines[0] == ("no GPU found (torch sees no CUDA, ROCm, MPS or XPU device): adding --cpu "
                            "--use-pytorch-cross-attention to ComfyUI's arguments (PyTorch's attention is about "
                            "2.5x faster on the CPU than ComfyUI's default)")
    assert f"starting ComfyUI in {comfy_host.comfyui_path} ..." in lines
    images = sorted((base / "output" / "collections" / "images").rglob("*.png"))
    assert run.stdout.splitlines() == [str(p) for p in images] and len(images) == 2
    assert (images[0].parent / "contact_sheet.jpg").is_file()
    assert not list(tmp.glob("prompt-media-run-*"))          # (torch may leave its own cache there)
