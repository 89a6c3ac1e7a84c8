"""The host this repository is tested and benchmarked against: ComfyUI + its python, the
project's tiny test models, and throw-away servers with this repository linked in.

Shared by the host/browser fixtures (tests/host/harness.py) and the benchmarks (benchmarks/), so
both start ComfyUI exactly the same way:

    host = host_config()                       # COMFYUI_PATH / COMFYUI_PYTHON (or arguments)
    models = build_test_models(host)           # cached tiny checkpoint + 3 LoRAs
    factory = ServerFactory(host, models, base_prefix="/tmp/pm-bench-", ports=range(8250, 8260))
    server = factory()                         # a started HostServer on a fresh base dir
    factory.close(keep=False)                  # stops every server it made, removes their dirs

The product's own server handling (starting, stopping, logs, a user's installation for the CLI)
is runner/comfy_server.py; this module only adds the throw-away layout tests need.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from prompt_media_pkg.runner.comfy_server import ATTENTION_FLAG, EXTENSION_NAME, ComfyServer, ServerError, free_port

REPO = Path(__file__).resolve().parents[1]
MAKE_MODELS = REPO / "tests" / "fixtures" / "make_test_models.py"

__all__ = ["EXTENSION_NAME", "REPO", "HostConfig", "HostServer", "ModelBuildError", "ServerError", "ServerFactory",
           "build_test_models", "fresh_base_dir", "host_config", "port_range_from_env", "setup_host_dir"]


class ModelBuildError(RuntimeError):
    """tests/fixtures/make_test_models.py failed."""


@dataclass(frozen=True)
class HostConfig:
    comfyui_path: Path
    python: Path


def setup_host_dir() -> Path:
    """Where scripts/setup_test_host.sh lays out the host (ComfyUI/ and venv/)."""
    return Path(os.environ.get("PM_HOST_DIR") or Path.home() / ".cache" / "prompt-media" / "host")


def host_config(comfyui_path: str | None = None, python: str | None = None) -> HostConfig | None:
    """The host from the arguments, else COMFYUI_PATH / COMFYUI_PYTHON, else the one
    scripts/setup_test_host.sh laid out (unless PM_NO_HOST_AUTODETECT=1); None when none is
    named; raises ServerError when the one named is unusable."""
    path = comfyui_path or os.environ.get("COMFYUI_PATH", "")
    python = python or os.environ.get("COMFYUI_PYTHON", "")
    laid_out = setup_host_dir()
    if not path and not python and os.environ.get("PM_NO_HOST_AUTODETECT") != "1" \
            and (laid_out / "ComfyUI" / "main.py").is_file() and (laid_out / "venv" / "bin" / "python").exists():
        path, python = str(laid_out / "ComfyUI"), str(laid_out / "venv" / "bin" / "python")
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


def port_range_from_env(value: str | None) -> range | None:
    """'8210-8219' -> range(8210, 8220); '' / None -> None."""
    if not value:
        return None
    m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+))?\s*", value)
    if not m:
        raise ServerError(f"port range {value!r}: expected PORT or FIRST-LAST")
    first = int(m.group(1))
    return range(first, int(m.group(2) or first) + 1)


class HostServer(ComfyServer):
    """A throw-away headless CPU ComfyUI on its own base dir (``--base-directory``):

        server = HostServer(comfyui_path, python, base_dir, extensions={EXTENSION_NAME: REPO},
                            models_dir=cache_dir)      # holds checkpoints/ and loras/
        server.start()            # waits for /system_stats; raises ServerError with the log tail
        server.restart()          # same port, same base dir (output, input, user db survive)
        server.stop()

    custom_nodes/ gets a symlink per extension, models/<folder>/ a symlink per model file (so a
    test may add files of its own there without touching the shared model cache); the sqlite db
    is the base dir's own."""

    def __init__(self, comfyui_path: str | os.PathLike, python: str | os.PathLike, base_dir: str | os.PathLike,
                 *, models_dir: str | os.PathLike | None = None, **kwargs):
        super().__init__(comfyui_path, python, base_dir, **kwargs)
        self.models_dir = Path(models_dir) if models_dir else None

    @property
    def input_dir(self) -> Path:
        return self.base / "input"

    @property
    def output_dir(self) -> Path:
        return self.base / "output"

    def prepare(self) -> None:
        """Lay out the base dir: folders, extension links, model links (idempotent)."""
        for sub in ("custom_nodes", "models", "input", "output", "temp", "user"):
            (self.base / sub).mkdir(parents=True, exist_ok=True)
        for name, src in self.extensions.items():
            link = self.base / "custom_nodes" / name
            if link.is_symlink() or link.exists():
                if link.is_symlink() and link.resolve() == src:
                    continue
                link.unlink()
            link.symlink_to(src, target_is_directory=True)
        if self.models_dir:
            for folder in sorted(p for p in self.models_dir.iterdir() if p.is_dir()):
                dest = self.base / "models" / folder.name
                dest.mkdir(exist_ok=True)
                for f in sorted(folder.iterdir()):
                    if not (dest / f.name).exists():
                        (dest / f.name).symlink_to(f.resolve())

    def command(self) -> list[str]:
        return [self.python, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(self.port),
                "--base-directory", str(self.base), "--disable-auto-launch",
                # the default db lives in the ComfyUI checkout, whose user/ may not exist
                "--database-url", f"sqlite:///{self.base}/user/comfyui.db",
                ATTENTION_FLAG, *self.extra_args]

    def environment(self) -> dict[str, str]:
        # a fixed thread count: torch's default (one per core) spins against other processes on
        # a shared machine and makes per-job times swing from 0.3 s to 13 s
        threads = os.environ.get("PM_SERVER_THREADS", "1")
        return dict(os.environ, OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)

    def restart(self) -> HostServer:
        """Stop and start again on the same port and base dir (a ComfyUI restart)."""
        self.stop()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:        # the old socket may linger briefly
            try:
                free_port(range(self.port, self.port + 1))
                break
            except ServerError:
                time.sleep(0.2)
        return self.start()

    def output_files(self, subfolder: str = "", pattern: str = "*") -> list[Path]:
        """Files under output/<subfolder> (recursive), sorted."""
        root = self.output_dir / subfolder
        return sorted(p for p in root.rglob(pattern) if p.is_file()) if root.exists() else []


class ServerFactory:
    """Makes HostServers for this repo + the test models; stops every one it made on close()."""

    def __init__(self, host: HostConfig, models: Path, *, base_prefix: str = "/tmp/pm-host-",
                 ports: range | None = None, extra_args: list[str] | None = None,
                 extensions: dict[str, Path] | None = None):
        self.host, self.models = host, models
        self.extensions = {EXTENSION_NAME: REPO, **(extensions or {})}   # custom_nodes/ links
        self.base_prefix, self.ports, self.extra_args = base_prefix, ports, list(extra_args or [])
        self.servers: list[tuple[HostServer, bool]] = []

    def __call__(self, base_dir: str | os.PathLike | None = None, *, extra_args: list[str] | None = None,
                 start: bool = True) -> HostServer:
        owned = base_dir is None
        server = HostServer(
            self.host.comfyui_path, self.host.python, base_dir or fresh_base_dir(self.base_prefix),
            ports=self.ports, extensions=self.extensions, models_dir=self.models,
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
