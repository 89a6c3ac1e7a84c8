"""Start and stop a ComfyUI process: the CLI's ``--comfyui`` (InstalledComfyServer).

    server = InstalledComfyServer(comfyui_path, python, extension_dir, extra_args=["--cpu"])
    server.start()            # waits for /system_stats; raises ServerError with the log tail
    server.client.run(prompt)
    server.stop()             # TERM, then KILL, of its own process group only

ComfyServer is the process itself; a subclass says how its folder is laid out (``prepare``) and
how ComfyUI is started (``command``). The log is ``<base>/comfyui-<port>.log``; ``log_mark()`` /
``log_since(mark)`` read what happened since. The tests' throw-away servers are
tests/comfy_host.py's HostServer.
"""
from __future__ import annotations

import atexit
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from .comfy_client import ComfyClient

ATTENTION_FLAG = "--use-pytorch-cross-attention"   # 2.5x faster than ComfyUI's CPU default
ATTENTION_FLAGS = ("--use-split-cross-attention", "--use-quad-cross-attention", ATTENTION_FLAG,
                   "--use-sage-attention", "--use-flash-attention")
# flags that choose the device themselves: then the CLI does not probe for a GPU
DEVICE_FLAGS = ("--cpu", "--directml", "--cuda-device", "--oneapi-device-selector")
# torch sees a device ComfyUI runs on without flags (NVIDIA/AMD, Apple, Intel)
GPU_PROBE = ("import sys, torch\n"
             "mps = getattr(torch.backends, 'mps', None)\n"
             "xpu = getattr(torch, 'xpu', None)\n"
             "found = (torch.cuda.is_available() or (mps is not None and mps.is_available())\n"
             "         or (xpu is not None and xpu.is_available()))\n"
             "sys.stdout.write('gpu' if found else 'cpu')\n")
EXTENSION_NAME = "comfyui-prompt-media"              # this repository's folder name in custom_nodes/


class ServerError(RuntimeError):
    """ComfyUI did not come up, or an extension failed to import."""


def free_port(candidates: range | None = None, host: str = "127.0.0.1") -> int:
    """A port nobody listens on: the first free one of ``candidates``, else one the OS picks."""
    for port in candidates or ():
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)   # as aiohttp binds: TIME_WAIT is free
            try:
                s.bind((host, port))
            except OSError:
                continue
            return port
    if candidates:
        raise ServerError(f"no free port in {candidates.start}-{candidates.stop - 1}")
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


_RUNNING: set = set()          # servers this process started and has not stopped yet


@atexit.register
def _stop_leftovers() -> None:
    """A crashed or interrupted caller must not leave ComfyUI running in its own session."""
    for server in list(_RUNNING):
        server.stop(timeout=5.0)


class ComfyServer:
    """A ComfyUI process with its log in ``base_dir``; subclasses define prepare() and command()."""

    def __init__(self, comfyui_path: str | os.PathLike, python: str | os.PathLike, base_dir: str | os.PathLike,
                 *, port: int | None = None, ports: range | None = None,
                 extensions: dict[str, str | os.PathLike] | None = None, extra_args: list[str] | None = None,
                 startup_timeout: float = 180.0, host: str = "127.0.0.1", die_with_parent: bool = False):
        self.comfyui_path = Path(comfyui_path)
        self.host = host                       # the address ComfyUI listens on
        self.die_with_parent = die_with_parent   # Linux: ComfyUI is killed when this process dies
        self.python = str(python)
        self.base = Path(base_dir)
        self.port = port
        self.ports = ports
        self.extensions = {k: Path(v).resolve() for k, v in (extensions or {}).items()}
        self.extra_args = list(extra_args or [])
        self.startup_timeout = startup_timeout
        self.proc: subprocess.Popen | None = None
        self.startup_s: float | None = None

    # -- paths
    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.base / f"comfyui-{self.port}.log"

    @property
    def client(self) -> ComfyClient:
        return ComfyClient(self.url)

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    # -- lifecycle
    def prepare(self) -> None:
        """Lay out what ComfyUI needs before it starts."""
        raise NotImplementedError

    def command(self) -> list[str]:
        """ComfyUI's command line, run in ``comfyui_path``."""
        raise NotImplementedError

    def environment(self) -> dict[str, str] | None:
        """ComfyUI's environment; None: this process's own."""
        return None

    def start(self) -> ComfyServer:
        if self.running():
            return self
        self.prepare()
        if self.port is None:
            self.port = free_port(self.ports, self.host)
        t0 = time.monotonic()
        log = open(self.log_path, "ab")
        log.write(f"\n===== start {time.strftime('%H:%M:%S')} port {self.port} =====\n".encode())
        log.flush()
        self._log_start = log.tell()
        # own session/process group: stop() can end ComfyUI and anything it spawned, and a
        # Ctrl-C in the test terminal does not hit it before our cleanup runs
        self.proc = subprocess.Popen(self.command(), cwd=self.comfyui_path, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True, env=self.environment(),
                                     preexec_fn=_kill_with_parent if self.die_with_parent else None)
        _RUNNING.add(self)
        log.close()
        client = ComfyClient(self.url)
        while not client.is_up():
            if self.proc.poll() is not None:
                raise ServerError(f"ComfyUI exited during startup (code {self.proc.returncode}); "
                                  f"log {self.log_path}:\n{self.log_tail()}")
            if time.monotonic() - t0 > self.startup_timeout:
                self.stop()
                raise ServerError(f"ComfyUI not answering after {self.startup_timeout:.0f}s; "
                                  f"log {self.log_path}:\n{self.log_tail()}")
            time.sleep(0.25)
        self.startup_s = time.monotonic() - t0
        failed = self.failed_extensions()
        if failed:
            detail = self.log_since(self._log_start)
            self.stop()
            raise ServerError(f"custom node(s) {', '.join(failed)} failed to import (IMPORT FAILED); "
                              f"log {self.log_path}:\n{_import_traceback(detail, failed)}")
        return self

    def stop(self, timeout: float = 15.0) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
                try:
                    os.killpg(self.proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.proc.wait(wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        self.proc = None
        _RUNNING.discard(self)

    def __enter__(self) -> ComfyServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- log
    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_mark(self) -> int:
        """Current end of the log; pass it to log_since() later."""
        try:
            return self.log_path.stat().st_size
        except FileNotFoundError:
            return 0

    def log_since(self, mark: int) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(mark)
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def failed_extensions(self) -> list[str]:
        """Our extensions ComfyUI reported as IMPORT FAILED in this run's log."""
        text = self.log_since(self._log_start)
        return [name for name in self.extensions
                if re.search(r"\(IMPORT FAILED\): .*custom_nodes[/\\]" + re.escape(name) + r"\s*$", text, re.M)]


def _kill_with_parent() -> None:
    """In the child before exec: the kernel sends it SIGKILL when the process that started it dies
    (Linux prctl PR_SET_PDEATHSIG; elsewhere nothing), so a killed Ray actor leaves no ComfyUI."""
    if sys.platform.startswith("linux"):
        import ctypes
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)      # PR_SET_PDEATHSIG = 1


def _import_traceback(log: str, names: list[str]) -> str:
    """The traceback ComfyUI printed for a failed custom node (up to its "Cannot import" line),
    else the log tail."""
    blocks = re.findall(r"Traceback \(most recent call last\):\n(?:.*\n)*?Cannot import [^\n]*", log)
    hits = [b[b.rindex("Traceback (most recent"):] for b in blocks if any(n in b for n in names)]
    return "\n\n".join(hits)[-6000:] if hits else "\n".join(log.splitlines()[-40:])


class InstalledComfyServer(ComfyServer):
    """A user's own ComfyUI installation, started as it is configured (its models, input, output,
    device), for the command-line runner. Nothing in the installation is changed: when this
    extension is not installed in its custom_nodes/, it is added for this run only, through an
    ``--extra-model-paths-config`` file (a ``custom_nodes`` entry) in a temporary folder that also
    holds the log."""

    def __init__(self, comfyui_path, python, extension_dir, extension_name: str = EXTENSION_NAME, *,
                 port=None, extra_args=None, startup_timeout: float = 300.0, **kwargs):
        import tempfile
        super().__init__(comfyui_path, python, tempfile.mkdtemp(prefix="prompt-media-run-"), port=port,
                         extensions={extension_name: extension_dir}, extra_args=extra_args,
                         startup_timeout=startup_timeout, **kwargs)
        self.already_installed = _installed_in(self.comfyui_path / "custom_nodes", Path(extension_dir))

    @property
    def input_dir(self) -> Path:
        return self.comfyui_path / "input"

    @property
    def output_dir(self) -> Path:
        return self.comfyui_path / "output"

    def start(self) -> InstalledComfyServer:
        try:
            return super().start()
        except ServerError as e:
            gpu = GPU_FAILURE.search(self.log_since(self._log_start) if hasattr(self, "_log_start") else "")
            if gpu and "--cpu" not in self.extra_args:
                raise ServerError(f"ComfyUI could not use a GPU ({gpu.group(0).strip()}); to run on the CPU "
                                  f"add --comfyui-arg=--cpu\n{e}") from e
            raise

    def remove_run_files(self) -> None:
        """Stop ComfyUI and remove this run's temporary folder (its log and extension link)."""
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)

    def prepare(self) -> None:
        if self.already_installed:
            return
        nodes_dir = self.base / "custom_nodes"
        nodes_dir.mkdir(parents=True, exist_ok=True)
        for name, src in self.extensions.items():
            link = nodes_dir / name
            if not link.is_symlink():
                link.symlink_to(src, target_is_directory=True)
        (self.base / "extra_paths.yaml").write_text(
            f"prompt_media_run:\n  custom_nodes: {json.dumps(str(nodes_dir))}\n", encoding="utf-8")

    def command(self) -> list[str]:
        cmd = [self.python, "main.py", "--listen", self.host, "--port", str(self.port),
               "--disable-auto-launch"]
        if not self.already_installed:
            cmd += ["--extra-model-paths-config", str(self.base / "extra_paths.yaml")]
        return cmd + self.extra_args

    def failed_extensions(self) -> list[str]:
        if self.already_installed:      # installed under whatever folder name the user chose
            text = self.log_since(self._log_start)
            return ["prompt-media"] if re.search(r"\(IMPORT FAILED\): .*prompt.media", text, re.I) else []
        return super().failed_extensions()


def gpu_present(python: str) -> bool | None:
    """Whether ComfyUI started with ``python`` would find a GPU; None when unknown. A GPU device
    node (NVIDIA, AMD ROCm, WSL) or macOS answers at once; otherwise torch is asked (a few
    seconds: it is imported once)."""
    if sys.platform == "darwin" or shutil.which("nvidia-smi") or \
            any(os.path.exists(p) for p in ("/dev/nvidiactl", "/dev/kfd", "/dev/dxg")):
        return True
    return torch_sees_gpu(python)


def torch_sees_gpu(python: str, timeout: float = 180.0) -> bool | None:
    """Whether ``python``'s torch has a GPU ComfyUI would use; None when the probe fails."""
    try:
        out = subprocess.run([python, "-c", GPU_PROBE], capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return {"gpu": True, "cpu": False}.get(out.stdout.strip())


def _has_flag(args: list[str], flags) -> bool:
    return any(a.split("=", 1)[0] in flags for a in args)


def device_args(extra_args: list[str], gpu: Callable[[], bool | None]) -> tuple[list[str], str | None]:
    """Flags to add to ComfyUI's own for the device, and a note saying so (None: nothing added).

    No device flag given and no GPU found: ``--cpu`` (ComfyUI would stop with a CUDA error)
    plus PyTorch attention; ``--cpu`` given: PyTorch attention unless an attention flag is."""
    if _has_flag(extra_args, DEVICE_FLAGS) and "--cpu" not in extra_args:
        return [], None
    add = []
    if "--cpu" not in extra_args:
        if gpu() is not False:
            return [], None
        add.append("--cpu")
    if not _has_flag(extra_args, ATTENTION_FLAGS):
        add.append(ATTENTION_FLAG)
    if not add:
        return [], None
    why = "no GPU found (torch sees no CUDA, ROCm, MPS or XPU device)" if "--cpu" in add else "ComfyUI runs on the CPU"
    return add, (f"{why}: adding {' '.join(add)} to ComfyUI's arguments"
                 + (" (PyTorch's attention is about 2.5x faster on the CPU than ComfyUI's default)"
                    if ATTENTION_FLAG in add else ""))


# a line of ComfyUI's start-up log saying it could not use a GPU
GPU_FAILURE = re.compile(r"^.*(Torch not compiled with CUDA|no NVIDIA driver|CUDA driver|CUDA error|"
                         r"cudaGetDeviceCount|No CUDA GPUs).*$", re.M | re.I)


def _installed_in(custom_nodes: Path, extension_dir: Path) -> bool:
    """Is this extension (this checkout, or any copy with our registry name) already there?"""
    if not custom_nodes.is_dir():
        return False
    for entry in custom_nodes.iterdir():
        try:
            if entry.resolve() == extension_dir.resolve():
                return True
            pyproject = entry / "pyproject.toml"
            if pyproject.is_file() and re.search(r'^name\s*=\s*"prompt-media"\s*$',
                                                 pyproject.read_text(errors="replace"), re.M):
                return True
        except OSError:
            continue
    return False
