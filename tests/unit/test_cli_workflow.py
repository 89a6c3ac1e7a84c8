"""Issue 14.4 without ComfyUI: run_session.py takes any API workflow holding our loader, OOM node
and saver (a file, or a shipped template by name) and refuses one it cannot drive before anything
is queued, naming the missing node; model options for loaders the workflow lacks are refused."""
from __future__ import annotations

import json

from prompt_media_pkg.tests.unit.test_cli import NO_SERVER, REPO, cli

API = REPO / "workflows" / "api"


def test_a_workflow_without_a_session_node_is_refused_naming_it(tmp_path):
    (tmp_path / "ok.yaml").write_text("prompts: [a]\n", encoding="utf-8")
    workflow = json.loads((API / "flux_schnell.json").read_text(encoding="utf-8"))
    del workflow["10"]                                     # the Session Saver
    (tmp_path / "no_saver.json").write_text(json.dumps(workflow), encoding="utf-8")
    result = cli("ok.yaml", "--server", NO_SERVER, "--workflow", "no_saver.json", cwd=tmp_path)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == ("error: workflow: cannot run a session: the workflow has no Session Saver "
                             "(PromptMediaSessionSaver) node\n")


def test_template_names_and_model_options_are_checked_before_any_server(tmp_path):
    (tmp_path / "ok.yaml").write_text("prompts: [a]\n", encoding="utf-8")
    typo = cli("ok.yaml", "--server", NO_SERVER, "--workflow", "flux-schnel", cwd=tmp_path)
    assert typo.returncode == 2
    assert typo.stderr.startswith("error: workflow: --workflow: 'flux-schnel' is neither a workflow file nor a "
                                  "shipped template (templates: flux-dev, flux-schnell, prompt-media-session, sd35)")
    vae = cli("ok.yaml", "--server", NO_SERVER, "--checkpoint", "m", "--vae", "ae", cwd=tmp_path)
    assert (vae.returncode, vae.stderr) == (2, "error: workflow: --vae: the workflow has no VAE loader (VAELoader) "
                                               "to set; its VAE comes from the checkpoint\n")
    encoders = cli("ok.yaml", "--server", NO_SERVER, "--workflow", "flux-dev", "--text-encoders", "clip_l",
                   cwd=tmp_path)
    assert encoders.stderr == ("error: workflow: --text-encoders: DualCLIPLoader (node 11) takes 2 text encoders, "
                               "got 1\n")
    # a shipped template by name gets as far as the server (none answers here)
    reached = cli("ok.yaml", "--server", NO_SERVER, "--workflow", "flux-schnell", cwd=tmp_path)
    assert reached.returncode == 3 and "no ComfyUI answers" in reached.stderr
