"""Queue a session's jobs on one ComfyUI and follow them on one websocket.

    runner = JobRunner(client, prompt_for=lambda i: ..., lookahead=2)
    for index, result in runner.run(range(start, total)):   # in job order
        if result.status != "success":
            runner.cancel()            # our queued jobs leave the queue, ours running is stopped
            break

Up to ``lookahead`` jobs wait in ComfyUI's queue behind the running one, so the next job starts
the moment one ends. ``cancel`` touches only this runner's prompts: other clients' jobs on the
same server keep running. ``cancel`` may be called from another thread while ``run`` waits:
nothing is posted after it, and ``run`` ends without yielding the jobs it took out of the queue.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator

from .comfy_client import ComfyClient, ComfyError, RunResult


def succeeded(result: RunResult) -> bool:
    return result.status == "success"


class JobRunner:
    def __init__(self, client: ComfyClient, prompt_for: Callable[[int], dict],
                 extra_data_for: Callable[[int], dict | None] | None = None, *, lookahead: int = 0,
                 timeout: float = 3600.0, on_event: Callable[[int, str, dict], None] | None = None,
                 on_queued: Callable[[int, str], None] | None = None,
                 continue_after: Callable[[RunResult], bool] = succeeded):
        self.client = client
        self.prompt_for, self.extra_data_for = prompt_for, extra_data_for
        self.lookahead, self.timeout = max(0, lookahead), timeout
        self.on_event, self.on_queued = on_event, on_queued
        self.continue_after = continue_after      # post more jobs after this result (else the caller stops)
        self.queued: dict[str, int] = {}        # prompt id -> job index, posted and not yet ended
        self.taken: list[int] = []              # job indexes taken from ``indexes`` and not yielded yet
        self.cancelled = False
        self._lock = threading.Lock()           # posting a job vs. cancel() from another thread

    def run(self, indexes: Iterable[int]) -> Iterator[tuple[int, RunResult]]:
        """(job index, result) for each job, in order. A refused job is yielded as a "rejected"
        result in its place and nothing after it is posted. ``indexes`` is read with
        ``next(it, None)`` whenever there is room, so a source that runs dry and fills up again
        (jobs shared by several servers) is asked again at the next free place. Raises ComfyError
        when the server stops answering (``taken`` says which jobs it held)."""
        todo = iter(indexes)
        order: deque[tuple[int, RunResult]] = deque()
        try:
            ws = self.client.websocket()
        except ComfyError:
            ws = None                           # follow each job through /history instead

        def fill() -> None:
            while len(order) < 1 + self.lookahead and not (order and order[-1][1].rejected):
                with self._lock:
                    if self.cancelled:
                        return
                    index = next(todo, None)
                    if index is None:
                        return
                    self.taken.append(index)
                    extra = self.extra_data_for(index) if self.extra_data_for else None
                    status, resp = self.client.post_prompt(self.prompt_for(index), extra)
                    if status != 200 or "prompt_id" not in resp:
                        order.append((index, RunResult("rejected", None, status, resp)))
                        return
                    pid = resp["prompt_id"]
                    self.queued[pid] = index
                order.append((index, RunResult("timeout", pid, status, resp)))
                if self.on_queued:
                    self.on_queued(index, pid)

        def forward(kind: str, data: dict) -> None:
            index = self.queued.get(data.get("prompt_id"))
            if self.on_event and index is not None:
                self.on_event(index, kind, data)

        try:
            fill()
            while order:
                index, result = order[0]
                if not result.rejected:
                    t0 = time.monotonic()
                    others = {r.prompt_id: r for _, r in list(order)[1:] if r.prompt_id}
                    ws = self.client.follow(result, ws, t0 + self.timeout, forward, others,
                                            stop=lambda: self.cancelled)
                    result.wall_s = time.monotonic() - t0
                    if self.cancelled and result.status == "timeout":
                        return                  # cancelled while it waited or ran: not finished
                    self.queued.pop(result.prompt_id, None)
                order.popleft()
                if self.continue_after(result):
                    fill()                      # before yielding: the queue never runs dry
                self.taken.remove(index)
                yield index, result
        finally:
            if ws is not None:
                ws.close()

    def cancel(self, wait: float = 30.0) -> None:
        """Take this runner's waiting jobs out of ComfyUI's queue and stop its running one (then
        wait up to ``wait`` seconds for it to end). Nothing is posted after this."""
        with self._lock:
            self.cancelled = True
            ours = list(self.queued)
            self.queued.clear()
        if not ours:
            return
        self.client.delete_queued(ours)          # first: none of them may start after the interrupt
        now_running = set(self.client.running_prompt_ids())
        running = [pid for pid in ours if pid in now_running]
        for pid in running:
            self.client.interrupt(pid)           # by id: only if it is still the one running
        for pid in running:                      # its end, so what is saved is settled
            self.client.wait(pid, timeout=wait)
