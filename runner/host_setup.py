"""The host this repository is tested and benchmarked against: ComfyUI + its python, the
project's tiny test models, and servers with this repository linked in.

Shared by the host/browser test fixtures (tests/host/harness.py) and the benchmarks
(benchmarks/), so both start ComfyUI exactly the same way:

    host = host_config()                       # COMFYUI_PATH / COMFYUI_PYTHON (or arguments)
    models = build_test_models(host)           # cached tiny checkpoint + 3 LoRAs
    factory = ServerFactory(host, models, base_prefix="/tmp/pm-bench-", ports=range(8250, 8260))
    server = factory()                         # a started ComfyServer on a fresh base dir
    factory.close(keep=False)                  # stops every server it made, removes their dirs
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .comfy_server import EXTENSION_NAME, ComfyServer, ServerError

REPO = Path(__file__).resolve().parents[1]
MAKE_MODELS = REPO / "tests" / "fixtures" / "make_test_models.py"


class ModelBuildError(RuntimeError):
    """tests/fixtures/make_test_models.py failed."""


@dataclass(frozen=True)
class HostConfig:
    comfyui_path: Path
    python: Path


def host_config(comfyui_path: str | None = None, python: str | None = None) -> HostConfig | None:
    """The host from the arguments, else COMFYUI_PATH / COMFYUI_PYTHON; None when neither names
    one; raises ServerError when the one named is unusable."""
    path = comfyui_path or os.environ.get("COMFYUI_PATH", "")
    python = python or os.environ.get("COMFYUI_PYTHON", "")
    if not path or not python:
        return None
    if not (Path(path) / "main.py").is_file():
        raise ServerError(f"COMFYUI_PATH={path!r} is not a ComfyUI source dir (no main.py)")
    if not os.access(python, os.X_OK):
        raise ServerError(f"COMFYUI_PYTHON={python!r} is not an executable")
    return HostConfig(Path(path), Path(python))


def build_test_models(host: HostConfig) -> Path:
    """The models dir of make_test_models.py (built once, then reused from its cache)."""
    env = dict(os.environ, COMFYUI_PATH=str(host.comfyui_path))
    proc = subprocess.run([str(host.python), str(MAKE_MODELS)], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise ModelBuildError(f"make_test_models.py failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    return Path(proc.stdout.strip().splitlines()[-1])


def fresh_base_dir(prefix: str) -> Path:
    """A new empty directory named ``<prefix>XXXXXX``."""
    parent, name = os.path.split(prefix)
    os.makedirs(parent or ".", exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=name, dir=parent or None))


class ServerFactory:
    """Makes ComfyServers for this repo + the test models; stops every one it made on close()."""

    def __init__(self, host: HostConfig, models: Path, *, base_prefix: str = "/tmp/pm-host-",
                 ports: range | None = None, extra_args: list[str] | None = None):
        self.host, self.models = host, models
        self.base_prefix, self.ports, self.extra_args = base_prefix, ports, list(extra_args or [])
        self.servers: list[tuple[ComfyServer, bool]] = []

    def __call__(self, base_dir: str | os.PathLike | None = None, *, extra_args: list[str] | None = None,
                 start: bool = True) -> ComfyServer:
        owned = base_dir is None
        server = ComfyServer(
            self.host.comfyui_path, self.host.python, base_dir or fresh_base_dir(self.base_prefix),
            ports=self.ports, extensions={EXTENSION_NAME: REPO}, models_dir=self.models,
            extra_args=extra_args if extra_args is not None else self.extra_args)
        self.servers.append((server, owned))
        if start:
            server.start()
        return server

    def close(self, keep: bool) -> list[Path]:
        """Stop every server; remove the base dirs this factory created unless ``keep``.
        Returns the kept base dirs."""
        kept = []
        for server, owned in self.servers:
            server.stop()
            if owned and not keep:
                shutil.rmtree(server.base, ignore_errors=True)
            elif owned:
                kept.append(server.base)
        self.servers.clear()
        return kept
