"""``run_session.py --ray``: one ComfyUI per GPU of a Ray cluster (or per CPU, ``--ray-cpu-servers``),
each a Ray actor that starts the node's ``--comfyui DIR`` with this extension; the session's jobs
go to them like to ``--server``s (runner/pool.py), and ``--collect`` brings the results to the
driver.

    servers = RayServers("local", comfyui, python, cpu_servers=2, extra_args=["--cpu"]).start()  # [pool.Server]
    ...
    servers.stop()

Each actor restarts when it dies (Ray reruns its constructor: a new ComfyUI) and the pool sends
its jobs elsewhere meanwhile, then to it again. A ComfyUI that dies takes its actor with it (and a
killed actor its ComfyUI), so Ray's restart covers both. The repository travels to the nodes as
the job's working directory; ComfyUI and the python that runs it must be at the same paths on
every node. Ray is imported only here, and only with --ray: nothing else needs it.
"""
from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

from .comfy_client import ComfyClient
from .comfy_server import InstalledComfyServer
from .pool import Server

REPO = Path(__file__).resolve().parents[1]
INSTALL_HINT = "pip install ray"
LOCAL_OBJECT_STORE = 128 * 1024 * 1024   # bytes: only small answers travel through it
ACTOR_RESTARTS = 3                       # a ComfyUI that keeps dying is given up after this many
# what the nodes do not need of the repository
SHIPPED_EXCLUDES = ["tests/", "benchmarks/", "docs/"]


class RayError(RuntimeError):
    """Ray is missing, or the cluster cannot run the servers (the message says what to do)."""


def import_ray():
    try:
        import ray
    except ImportError:
        raise RayError(f"--ray needs Ray in the python that runs run_session.py ({sys.executable}): "
                       f"{INSTALL_HINT}") from None
    return ray


class ComfyUIActor:
    """One ComfyUI in a Ray worker (made a Ray actor by RayServers): started from ``comfyui`` with
    this extension (the repository copy Ray shipped), on the node's address."""

    def __init__(self, comfyui: str, python: str, extra_args: list[str]):
        import ray
        args = list(extra_args)
        if "--database-url" in (Path(comfyui) / "comfy" / "cli_args.py").read_text(errors="replace"):
            args += ["--database-url", "sqlite:///:memory:"]    # several servers from one folder
        self.server = InstalledComfyServer(comfyui, python, REPO, extra_args=args,
                                           host=ray.util.get_node_ip_address(), die_with_parent=True)
        self.stopping = False
        self.server.start()
        threading.Thread(target=self._watch, daemon=True).start()

    def _watch(self) -> None:
        while self.server.running() or self.stopping:
            time.sleep(0.5)
        os._exit(1)                     # ComfyUI died: this actor dies too, and Ray restarts it

    def url(self) -> str:
        if not self.server.running():
            os._exit(1)
        return self.server.url

    def stop(self) -> None:
        """Stop ComfyUI and remove its run folder (the actor is killed next)."""
        self.stopping = True
        self.server.remove_run_files()


class RayServers:
    def __init__(self, address: str, comfyui: str, python: str, *, cpu_servers: int = 0,
                 extra_args: list[str] | None = None, startup_timeout: float = 600.0):
        self.ray = import_ray()
        self.address, self.comfyui, self.python = address, comfyui, python
        self.cpu_servers = cpu_servers
        self.extra_args = list(extra_args or [])
        self.startup_timeout = startup_timeout
        self.actors: list = []
        self.started_here = False

    def start(self) -> list[Server]:
        """Connect (``local``: start a Ray instance on this machine), start the actors, wait for
        every ComfyUI; raises RayError."""
        ray = self.ray
        runtime_env = {"working_dir": str(REPO), "excludes": SHIPPED_EXCLUDES}
        try:
            if self.address == "local":
                ray.init(runtime_env=runtime_env, include_dashboard=False, logging_level="error",
                         log_to_driver=False, object_store_memory=LOCAL_OBJECT_STORE)
                self.started_here = True
            else:
                ray.init(address=self.address, runtime_env=runtime_env, logging_level="error",
                         log_to_driver=False)
        except Exception as e:           # ConnectionError, RuntimeError, ValueError: no cluster there
            raise RayError(f"--ray {self.address}: {e}") from None
        resources = ray.cluster_resources()
        if self.cpu_servers:
            count, options = self.cpu_servers, {"num_cpus": 1}
            if resources.get("CPU", 0) < count:
                raise RayError(f"--ray-cpu-servers {count}: the cluster has {resources.get('CPU', 0):g} CPUs")
        else:
            count, options = int(resources.get("GPU", 0)), {"num_gpus": 1}
            if not count:
                raise RayError(f"the Ray cluster at {self.address} has no GPU; --ray-cpu-servers N runs N ComfyUIs "
                               "on its CPUs")
        actor_class = ray.remote(max_restarts=ACTOR_RESTARTS, max_task_retries=-1, **options)(ComfyUIActor)
        self.actors = [actor_class.remote(self.comfyui, self.python, self.extra_args) for _ in range(count)]
        try:
            urls = ray.get([a.url.remote() for a in self.actors], timeout=self.startup_timeout)
        except ray.exceptions.GetTimeoutError:
            raise RayError(f"the ComfyUIs of the Ray actors did not answer within {self.startup_timeout:.0f}s") from None
        except ray.exceptions.RayActorError as e:
            raise RayError(f"a ComfyUI actor could not start: {_cause(e)}") from None
        return [Server(f"actor {i + 1}", ComfyClient(url), revive=self._reviver(actor))
                for i, (actor, url) in enumerate(zip(self.actors, urls))]

    def _reviver(self, actor):
        def revive() -> ComfyClient | None:
            """The actor's ComfyUI once Ray has restarted it; None when it is gone for good."""
            deadline = time.monotonic() + self.startup_timeout
            while time.monotonic() < deadline:
                try:
                    client = ComfyClient(self.ray.get(actor.url.remote(), timeout=self.startup_timeout))
                except self.ray.exceptions.RayActorError:
                    return None          # past its restarts, or its ComfyUI cannot start any more
                except self.ray.exceptions.GetTimeoutError:
                    return None
                if client.is_up():
                    return client
                time.sleep(1.0)          # the old ComfyUI just died; its actor is about to
            return None
        return revive

    def stop(self) -> None:
        """Kill the actors (their ComfyUIs die with them); shut down a Ray instance started here."""
        try:
            self.ray.get([actor.stop.remote() for actor in self.actors], timeout=30)
        except Exception:                # a dead actor: its ComfyUI died with it
            pass
        for actor in self.actors:
            try:
                self.ray.kill(actor, no_restart=True)
            except Exception:            # already gone
                pass
        self.actors = []
        if self.ray.is_initialized():
            self.ray.shutdown()


def _cause(error: Exception) -> str:
    text = str(error)
    for marker in ("ServerError: ", "RayError: "):
        if marker in text:
            return text[text.index(marker) + len(marker):].strip()
    return text.strip().splitlines()[-1] if text.strip() else type(error).__name__


__all__ = ["ComfyUIActor", "RayError", "RayServers", "import_ray"]
