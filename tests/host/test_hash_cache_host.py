"""Issue 15 item 4 in real ComfyUI: model and LoRA hashes are computed once, ever: after a
restart, an unchanged file is not read again for its sha256; a changed one is."""
from __future__ import annotations

import hashlib
import json
import os

from prompt_media_pkg.tests.host.workflows import TEST_CHECKPOINT, session_prompt

YAML = """\
prompt_settings: {prefix: "tiny test <lora:tiny_lora_attn:0.7>", negative: "blurry"}
prompts: [a red fox, a blue bird]
loras: [{name: tiny_lora_conv, strength: 0.4}]
seeds: [5]
steps: 1
width: 64
height: 64
"""
HASHED = "[Prompt Media] hashed "


def hashed_files(log: str) -> list[str]:
    return sorted(os.path.basename(line.split(HASHED, 1)[1].split(" (", 1)[0])
                  for line in log.splitlines() if HASHED in line)


def test_after_a_restart_unchanged_files_are_not_hashed_again(make_comfy_server, test_models_dir):
    server = make_comfy_server()
    (server.input_dir / "prompt_media").mkdir(parents=True, exist_ok=True)
    (server.input_dir / "prompt_media" / "hash.yaml").write_text(YAML, encoding="utf-8")
    cache = server.base / "user" / "prompt_media" / "file_hashes.json"

    def run(job_index: int) -> dict:
        result = server.client.run(session_prompt("hash.yaml", "hash_test", job_index), timeout=300)
        assert result.status == "success", result.error_summary()
        [image] = result.images
        side = server.output_dir / image["subfolder"] / image["filename"].replace(".png", ".json")
        return json.loads(side.read_text(encoding="utf-8"))

    mark = server.log_mark()
    side = run(0)
    assert hashed_files(server.log_since(mark)) == sorted([TEST_CHECKPOINT, "tiny_lora_attn.safetensors",
                                                          "tiny_lora_conv.safetensors"])
    files = json.loads(cache.read_text(encoding="utf-8"))["files"]
    for lora in side["parameters"]["loras"]:
        real = os.path.realpath(server.base / "models" / "loras" / lora["lora_name"])
        assert files[real]["sha256"] == lora["sha256"] == hashlib.sha256(open(real, "rb").read()).hexdigest()

    server.restart()
    mark = server.log_mark()
    side = run(1)
    assert hashed_files(server.log_since(mark)) == []        # nothing read for its hash again
    assert [lora["sha256"] for lora in side["parameters"]["loras"]] == [files[os.path.realpath(
        server.base / "models" / "loras" / lora["lora_name"])]["sha256"] for lora in side["parameters"]["loras"]]
    assert side["parameters"]["model_sha256"] == files[os.path.realpath(
        server.base / "models" / "checkpoints" / TEST_CHECKPOINT)]["sha256"]

    # a LoRA replaced in place (new content, same name) is hashed again, once; so is a touched one
    server.stop()
    conv = server.base / "models" / "loras" / "tiny_lora_conv.safetensors"
    data = conv.read_bytes()
    conv.unlink()                                             # the test models are shared: unlink the link
    conv.write_bytes(data)                                    # same bytes, a new file (new mtime)
    server.start()
    mark = server.log_mark()
    side = run(0)
    assert hashed_files(server.log_since(mark)) == ["tiny_lora_conv.safetensors"]
    assert json.loads(cache.read_text(encoding="utf-8"))["files"][os.path.realpath(conv)]["sha256"] == \
        hashlib.sha256(data).hexdigest()
