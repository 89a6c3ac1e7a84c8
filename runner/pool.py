"""One session's jobs over one or more ComfyUI servers: each server pulls the next job when it
has room (its own look-ahead, runner/jobs.py), so a fast GPU does more jobs than a slow one.

    pool = ServerPool([Server(url, client), ...], range(start, total), prompt_for, lookahead=2)
    pool.start()
    for event in pool.events():          # in the calling thread: queued, event, result, retried, lost
        ...
    pool.stop()                          # our waiting jobs leave every queue, our running ones stop

A server that stops answering (killed, network gone) leaves the pool and the jobs it held go
back to the others; one that fails a job for want of memory keeps working, and that job goes
to another server. A server with ``revive`` (a Ray actor, restarted by Ray) comes back and pulls
jobs again. Any other failure (a refused prompt, an error in the graph) is the input's fault: no
job is posted after it, its result is passed on and the caller stops the pool. A job is retried
at most ``max_retries`` times; one that no live server may run any more, or the last retry's
failure, comes back as its failed result.
"""
from __future__ import annotations

import queue
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from .comfy_client import ComfyClient, ComfyError, RunResult
from .jobs import JobRunner

# an execution error that says the device ran out of memory: another server may have room
_OUT_OF_MEMORY = re.compile(r"out of memory|OutOfMemory|\bOOM\b", re.I)


def infrastructure_failure(result: RunResult) -> str | None:
    """Why a failed job may succeed on another server (the device ran out of memory), or None
    (its input is at fault, or it did not fail)."""
    if result.status != "error" or result.error is None:
        return None
    e = result.error
    text = f"{e.get('exception_type', '')}: {e.get('exception_message', '')}"
    if _OUT_OF_MEMORY.search(text):
        return f"out of memory ({str(e.get('exception_message', '')).strip().splitlines()[0][:200]})" \
            if str(e.get("exception_message", "")).strip() else "out of memory"
    return None


@dataclass
class Server:
    """A ComfyUI the pool runs jobs on. ``revive``: after it stopped answering, block until it
    is back and return its client (a restarted Ray actor's new ComfyUI), or None: it is gone."""
    name: str
    client: ComfyClient
    revive: Callable[[], ComfyClient | None] | None = None


@dataclass
class PoolEvent:
    """kind: "queued" (pid), "event" (a websocket event: kind in data["type"]), "result" (a
    job's final result), "retried" (reason; the job went back to the queue), "lost" (reason;
    the server left), "back" (a revived server pulls jobs again), "exhausted" (no server is
    left; jobs remain)."""
    kind: str
    server: str
    url: str = ""                       # the server's ComfyUI now (a revived one may have moved)
    index: int | None = None
    result: RunResult | None = None
    pid: str | None = None
    reason: str = ""
    data: dict = field(default_factory=dict)


class JobQueue:
    """The session's jobs not done yet: pending (lowest index first) and in flight on a server."""

    def __init__(self, indexes: Iterable[int], max_retries: int):
        self.pending = sorted(indexes)
        self.in_flight: dict[int, str] = {}
        self.avoid: dict[int, set[str]] = {}      # job -> servers it ran out of memory on
        self.retries: dict[int, int] = {}
        self.max_retries = max_retries
        self.stopped = False
        self.cond = threading.Condition()

    def _takeable(self, server: str) -> int | None:
        return next((i for i in self.pending if server not in self.avoid.get(i, ())), None)

    def take(self, server: str) -> int | None:
        with self.cond:
            index = None if self.stopped else self._takeable(server)
            if index is not None:
                self.pending.remove(index)
                self.in_flight[index] = server
            return index

    def wait_for_work(self, server: str) -> bool:
        """Block until a job this server may run is pending (True), or nothing is left to do or
        the pool stopped (False)."""
        with self.cond:
            while True:
                if self.stopped:
                    return False
                if self._takeable(server) is not None:
                    return True
                if not self.pending and not self.in_flight:
                    return False
                self.cond.wait(1.0)

    def finish(self, index: int) -> None:
        with self.cond:
            self.in_flight.pop(index, None)
            self.cond.notify_all()

    def give_back(self, indexes: Iterable[int], avoid: str | None = None) -> list[int]:
        """Put jobs back to be run again (``avoid``: not on that server); returns those past
        their retries (not put back)."""
        over = []
        with self.cond:
            for index in indexes:
                self.in_flight.pop(index, None)
                self.retries[index] = self.retries.get(index, 0) + 1
                if self.retries[index] > self.max_retries:
                    over.append(index)
                    continue
                if avoid:
                    self.avoid.setdefault(index, set()).add(avoid)
                self.pending.append(index)
            self.pending.sort()
            self.cond.notify_all()
        return over

    def unrunnable(self, live: set[str]) -> list[int]:
        """Pending jobs every live server ran out of memory on (taken out of the queue)."""
        with self.cond:
            stuck = [i for i in self.pending if live and live <= self.avoid.get(i, set())]
            for index in stuck:
                self.pending.remove(index)
            self.cond.notify_all()
            return stuck

    def stop(self) -> None:
        with self.cond:
            self.stopped = True
            self.cond.notify_all()

    def finished(self) -> bool:
        with self.cond:
            return not self.pending and not self.in_flight


class _Source:
    """The job source one server's JobRunner reads: ``next()`` takes the next job it may run,
    StopIteration when there is none now (asked again at its next free place)."""

    def __init__(self, jobs: JobQueue, server: str):
        self.jobs, self.server = jobs, server

    def __iter__(self) -> _Source:
        return self

    def __next__(self) -> int:
        index = self.jobs.take(self.server)
        if index is None:
            raise StopIteration
        return index


def lost_result(reason: str) -> RunResult:
    """A job's failed result when its servers were lost (the reason as ComfyUI's error text)."""
    return RunResult("error", None, history={"status": {"status_str": "error", "messages": [
        ["execution_error", {"exception_type": "ServerLost", "exception_message": reason}]]}})


class ServerPool:
    def __init__(self, servers: list[Server], indexes: Iterable[int], prompt_for: Callable[[int], dict],
                 extra_data_for: Callable[[int], dict | None] | None = None, *, lookahead: int = 0,
                 timeout: float = 3600.0, prepare: Callable[[ComfyClient], None] | None = None,
                 on_success: Callable[[ComfyClient, int, RunResult], dict] | None = None, max_retries: int = 3):
        self.servers = servers
        self.jobs = JobQueue(indexes, max_retries)
        self.prompt_for, self.extra_data_for = prompt_for, extra_data_for
        self.lookahead, self.timeout = lookahead, timeout
        self.prepare = prepare                 # a revived server: upload files, check it (raises to give up)
        # in the server's thread, before a job counts as done (e.g. fetching its files: a
        # ComfyError there sends the job to another server); its dict is the result event's data
        self.on_success = on_success
        self.out: queue.Queue[PoolEvent] = queue.Queue()
        self.live = {s.name for s in servers}
        self.runners: dict[str, JobRunner] = {}
        self.failed_results: dict[int, RunResult] = {}   # a job's last out-of-memory result
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def start(self) -> ServerPool:
        for server in self.servers:
            t = threading.Thread(target=self._work, args=(server,), name=f"pool {server.name}", daemon=True)
            self._threads.append(t)
            t.start()
        return self

    def events(self) -> Iterator[PoolEvent]:
        """Every event, in the calling thread, until every job is done (a server still coming
        back is not waited for) or every server's thread has ended."""
        while True:
            try:
                yield self.out.get(timeout=0.2)
            except queue.Empty:
                if self.out.empty() and (self.jobs.finished() or not any(t.is_alive() for t in self._threads)):
                    return

    def stop(self) -> None:
        """No more jobs are posted; this pool's waiting jobs leave every server's queue and its
        running ones are stopped (each waited for, so what is saved is settled)."""
        self.jobs.stop()
        with self._lock:
            runners = list(self.runners.values())
        for runner in runners:
            try:
                runner.cancel()
            except ComfyError:
                pass                                 # that server is gone: nothing of ours runs there

    def join(self, timeout: float = 60.0) -> None:
        for t in self._threads:
            t.join(timeout)

    # -- one thread per server
    def _emit(self, kind: str, server: Server, client: ComfyClient | None = None, **kw) -> None:
        self.out.put(PoolEvent(kind, server.name, (client or server.client).base_url, **kw))

    def _work(self, server: Server) -> None:
        client = server.client
        while self.jobs.wait_for_work(server.name):
            runner = JobRunner(
                client, self.prompt_for, self.extra_data_for, lookahead=self.lookahead, timeout=self.timeout,
                on_event=lambda index, kind, data: self._emit("event", server, index=index, data=dict(data, type=kind)),
                on_queued=lambda index, pid: self._emit("queued", server, index=index, pid=pid),
                continue_after=lambda result: result.status == "success" or infrastructure_failure(result) is not None)
            with self._lock:
                self.runners[server.name] = runner
            try:
                for index, result in runner.run(_Source(self.jobs, server.name)):
                    self._done(server, client, index, result)
            except ComfyError as e:
                client = self._lost(server, runner, str(e))
                if client is None:
                    return
            finally:
                with self._lock:
                    self.runners.pop(server.name, None)
            if runner.cancelled:
                return

    def _done(self, server: Server, client: ComfyClient, index: int, result: RunResult) -> None:
        reason = infrastructure_failure(result)
        if reason is None:
            if result.status == "success":
                try:
                    done = self.on_success(client, index, result) if self.on_success else None
                except ComfyError:
                    self.jobs.give_back([index])     # its files went with the server: run it again
                    raise
                self._emit("result", server, client, index=index, result=result, data=done or {})
            else:
                self._fail(server, index, result)    # the input is at fault
            self.jobs.finish(index)                  # after its result is out: events() ends on the last
            return
        self.failed_results[index] = result
        if self.jobs.give_back([index], avoid=server.name):
            self._fail(server, index, result)        # past its retries
            return
        self._emit("retried", server, index=index, reason=reason)
        self._give_up_stuck(server)

    def _give_up_stuck(self, server: Server) -> None:
        with self._lock:
            live = set(self.live)
        for index in self.jobs.unrunnable(live):
            self._fail(server, index, self.failed_results[index])

    def _fail(self, server: Server, index: int, result: RunResult) -> None:
        """A job failed for good: nothing more is posted; the caller gets its result."""
        self.jobs.stop()
        self._emit("result", server, index=index, result=result)

    def _lost(self, server: Server, runner: JobRunner, reason: str) -> ComfyClient | None:
        """The server stopped answering: its jobs go back to the others; a revived server's new
        client, else None (it has left the pool)."""
        taken = list(runner.taken)
        try:
            runner.cancel(wait=0)                # a blip, not a death: nothing of ours may run there twice
        except ComfyError:
            pass
        over = self.jobs.give_back(taken)
        self._emit("lost", server, reason=reason, data={"jobs": taken})
        for index in over:
            self._fail(server, index, self.failed_results.get(index) or lost_result(reason))
        client = None
        if server.revive is not None and not self.jobs.stopped and not self.jobs.finished():
            try:
                client = server.revive()
                if client is not None and self.prepare is not None:
                    self.prepare(client)
            except Exception as e:               # any failure to come back: it has left the pool
                self._emit("lost", server, reason=f"could not come back: {e}")
                client = None
        if client is not None:
            self._emit("back", server, client)
            return client
        with self._lock:
            self.live.discard(server.name)
            live = set(self.live)
        if not live:
            self._emit("exhausted", server, reason=reason)
            self.jobs.stop()
        else:
            self._give_up_stuck(server)
        return None
