"""Host-tier fixtures: a real headless ComfyUI with this repository as a custom node.

Needs two environment variables (``scripts/test.sh`` sets them when it finds a host):

    COMFYUI_PATH    the ComfyUI source dir (has main.py)
    COMFYUI_PYTHON  the python that runs it (torch installed)

Without them every test under tests/host is skipped with the reason
"COMFYUI_PATH/COMFYUI_PYTHON not set: host tier skipped".

Fixtures (use them from any test module under tests/host; tests/browser/conftest.py can reuse
them with ``from prompt_media_pkg.tests.host.harness import *``):

``comfy_server`` (session)
    A started :class:`HostServer` (tests/comfy_host.py): one per test session, on a free
    127.0.0.1 port, with a fresh base dir holding custom_nodes/comfyui-prompt-media -> this repo
    and models/{checkpoints,loras}/ linked to the project's tiny test models
    (``checkpoints/tiny_sd15.ckpt``; ``loras/tiny_lora_attn``, ``tiny_lora_conv``,
    ``tiny_lora_diffusers`` ``.safetensors``). Startup fails the session clearly if our extension
    shows "IMPORT FAILED". Stopped at the end, also on errors; the base dir is deleted unless a
    test failed (then its path, with the server log, is printed) or PM_KEEP_BASE=1.
``comfy`` (function)
    A :class:`HostTest` over the session server: ``client`` (ComfyClient), ``run(prompt)`` /
    ``run_ok(prompt)``, ``put_yaml(name, text)`` into input/prompt_media/, ``prefix`` (an
    output subfolder unique to the test: use it as filename_prefix root so tests never see each
    other's files and ComfyUI's cache never skips a test's saver), ``output_files()``, ``log()``
    (the server log written during this test).
``make_comfy_server`` (function)
    Factory for extra servers a test owns, e.g. to stop and restart one mid-session:
    ``srv = make_comfy_server()``; ``srv.restart()``; every one is stopped after the test.
    ``make_comfy_server(base_dir=comfy_server.base)`` is NOT allowed while the session server
    runs (two servers on one sqlite db); give a fresh dir (the default) or stop first.
``checkpoint_only_server`` (session)
    A second started server whose models/ holds only the tiny checkpoint (no LoRAs): a fresh
    install as a user has it.
``test_models_dir`` (session)
    The models dir made by tests/fixtures/make_test_models.py (cached across runs).
``pinned_clock(server, datetime)`` (context manager, not a fixture)
    The Session Saver of that server reads the given time (session folder minute, sidecar
    timestamp) inside the block: tests/host/clock_extension, linked into every server made here.

Environment knobs: PM_TEST_PORTS ("8210-8219": pick ports from that range; default: any free
port), PM_TEST_BASE_PREFIX (default /tmp/pm-host-), PM_TEST_MODELS (model cache root),
PM_KEEP_BASE=1, PM_COMFY_ARGS (extra main.py flags, space separated).
"""
from __future__ import annotations

import os
import signal
import sys
import time
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import pytest

from prompt_media_pkg.runner.comfy_client import ComfyClient, RunResult

# host discovery, test models and the server factory are shared with benchmarks/
from prompt_media_pkg.tests.comfy_host import (
    EXTENSION_NAME,
    HostConfig,
    HostServer,
    ModelBuildError,
    ServerError,
    ServerFactory,
    build_test_models,
    host_config,
    port_range_from_env,
)

HOST_DIR = Path(__file__).resolve().parent
SKIP_REASON = "COMFYUI_PATH/COMFYUI_PYTHON not set: host tier skipped"
PROMPT_MEDIA_INPUT = "prompt_media"          # the loader's folder under ComfyUI's input/
CLOCK_EXTENSION = "prompt-media-test-clock"  # tests/host/clock_extension, linked beside the repo
DEFAULT_TIMEOUT = 300.0

__all__ = ["comfy_host", "test_models_dir", "comfy_server", "checkpoint_only_server", "comfy", "make_comfy_server",
           "pytest_collection_modifyitems", "pytest_runtest_makereport", "HostConfig", "HostTest", "SKIP_REASON", "EXTENSION_NAME",
           "pinned_clock"]


def _terminate_as_interrupt(signum, frame):
    # `timeout` (scripts/test.sh) sends SIGTERM: end like Ctrl-C so fixtures stop the servers
    raise KeyboardInterrupt(f"signal {signum}")


if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
    signal.signal(signal.SIGTERM, _terminate_as_interrupt)


def pytest_collection_modifyitems(config, items):
    """Skip every host test up front when no host is configured (so none of them even tries)."""
    try:
        configured = host_config() is not None
    except ServerError:
        return                                   # misconfigured: let comfy_host report the error
    if configured:
        return
    skip = pytest.mark.skip(reason=SKIP_REASON)
    for item in items:
        if HOST_DIR in Path(str(item.fspath)).resolve().parents:
            item.add_marker(skip)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Remember a failed test body so make_comfy_server keeps that test's base dir."""
    report = yield
    if report.when == "call" and report.failed:
        item.rep_call_failed = True
    return report


@pytest.fixture(scope="session")
def comfy_host() -> HostConfig:
    try:
        cfg = host_config()
    except ServerError as e:
        pytest.fail(str(e), pytrace=False)
    if cfg is None:
        pytest.skip(SKIP_REASON)
    return cfg


@pytest.fixture(scope="session")
def test_models_dir(comfy_host) -> Path:
    t0 = time.monotonic()
    try:
        path = build_test_models(comfy_host)
    except ModelBuildError as e:
        pytest.fail(str(e), pytrace=False)
    sys.stderr.write(f"\n[host] test models {path} ({time.monotonic() - t0:.1f}s)\n")
    return path


def _factory(host: HostConfig, models: Path) -> ServerFactory:
    return ServerFactory(host, models, base_prefix=os.environ.get("PM_TEST_BASE_PREFIX", "/tmp/pm-host-"),
                         ports=port_range_from_env(os.environ.get("PM_TEST_PORTS")),
                         extra_args=os.environ.get("PM_COMFY_ARGS", "").split(),
                         extensions={CLOCK_EXTENSION: HOST_DIR / "clock_extension"})


@contextmanager
def pinned_clock(server: HostServer, when: datetime):
    """The Session Saver of ``server`` reads ``when`` as the time (its session folder's minute and
    sidecar timestamps) until the block ends (tests/host/clock_extension)."""
    _set_clock(server, when.isoformat(timespec="seconds"))
    try:
        yield
    finally:
        if server.running():
            _set_clock(server, None)


def _set_clock(server: HostServer, value: str | None) -> None:
    status, body = server.client.request("POST", "/prompt_media_test/clock", {"now": value})
    assert status == 200, f"POST /prompt_media_test/clock {value!r}: {status} {body}"


def _keep(session) -> bool:
    return os.environ.get("PM_KEEP_BASE") == "1" or session.testsfailed > 0


def _serve(request, host: HostConfig, models: Path):
    """A started server of its own factory for a session-scoped fixture; stopped at the end."""
    factory = _factory(host, models)
    try:
        server = factory()
    except ServerError as e:
        factory.close(keep=True)
        pytest.fail(str(e), pytrace=False)
    sys.stderr.write(f"[host] ComfyUI up on {server.url} in {server.startup_s:.1f}s (base {server.base})\n")
    try:
        yield server
    finally:
        for base in factory.close(keep=_keep(request.session)):
            sys.stderr.write(f"\n[host] kept base dir {base} (log {base}/comfyui-*.log)\n")


@pytest.fixture(scope="session")
def comfy_server(request, comfy_host, test_models_dir) -> HostServer:
    yield from _serve(request, comfy_host, test_models_dir)


@pytest.fixture(scope="session")
def checkpoint_only_server(request, comfy_host, test_models_dir, tmp_path_factory) -> HostServer:
    """A started server like ``comfy_server`` whose models are only the tiny checkpoint: what a
    fresh ComfyUI with one checkpoint has (no test LoRAs)."""
    models = tmp_path_factory.mktemp("checkpoint-only-models")
    (models / "checkpoints").mkdir()
    for ckpt in (test_models_dir / "checkpoints").iterdir():
        (models / "checkpoints" / ckpt.name).symlink_to(ckpt.resolve())
    yield from _serve(request, comfy_host, models)


@pytest.fixture
def make_comfy_server(request, comfy_host, test_models_dir):
    factory = _factory(comfy_host, test_models_dir)
    try:
        yield factory
    finally:
        failed = getattr(request.node, "rep_call_failed", False)
        for base in factory.close(keep=failed or os.environ.get("PM_KEEP_BASE") == "1"):
            sys.stderr.write(f"\n[host] kept base dir {base}\n")


class HostTest:
    """Per-test helpers over a running server (see the module docstring)."""

    def __init__(self, server: HostServer, name: str):
        self.server = server
        self.client: ComfyClient = server.client
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)[:80]
        self.prefix = f"pmtest/{safe}_{time.strftime('%H%M%S')}_{os.getpid() % 1000}"
        self._log_mark = server.log_mark()

    @property
    def prompt_media_dir(self) -> Path:
        return self.server.input_dir / PROMPT_MEDIA_INPUT

    def put_yaml(self, name: str, text: str) -> str:
        """Write input/prompt_media/<name> (atomically); returns the name for the loader's file."""
        path = self.prompt_media_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
        return name

    def run(self, prompt: dict, timeout: float = DEFAULT_TIMEOUT, **kw) -> RunResult:
        return self.client.run(prompt, timeout=timeout, **kw)

    def run_ok(self, prompt: dict, timeout: float = DEFAULT_TIMEOUT, **kw) -> RunResult:
        """run() and assert it ended in success (the error, node and log tail otherwise)."""
        result = self.run(prompt, timeout=timeout, **kw)
        assert result.status == "success", (f"{result.error_summary()}\n--- server log during this test ---\n"
                                            f"{self.log()[-3000:]}")
        return result

    def output_files(self, subfolder: str | None = None, pattern: str = "*") -> list[Path]:
        """Files under output/<subfolder> (default: this test's prefix folder), sorted."""
        return self.server.output_files(self.prefix if subfolder is None else subfolder, pattern)

    def image_paths(self, result: RunResult) -> list[Path]:
        """Full paths of the images a run reported (type "output" only)."""
        return [self.server.output_dir / i.get("subfolder", "") / i["filename"]
                for i in result.images if i.get("type", "output") == "output"]

    def log(self) -> str:
        """The server log written since this test started."""
        return self.server.log_since(self._log_mark)


@pytest.fixture
def comfy(request, comfy_server) -> HostTest:
    if not comfy_server.running():            # a test may have stopped it: bring it back
        comfy_server.start()
    return HostTest(comfy_server, request.node.name)
