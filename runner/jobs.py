"""Queue a session's jobs on one ComfyUI and follow them on one websocket.

    runner = JobRunner(client, prompt_for=lambda i: ..., lookahead=2)
    for index, result in runner.run(range(start, total)):   # in job order
        if result.status != "success":
            runner.cancel()            # our queued jobs leave the queue, ours running is stopped
            break

Up to ``lookahead`` jobs wait in ComfyUI's queue behind the running one, so the next job starts
the moment one ends. ``cancel`` touches only this runner's prompts: other clients' jobs on the
same server keep running.
"""
from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator

from .comfy_client import ComfyClient, ComfyError, RunResult


class JobRunner:
    def __init__(self, client: ComfyClient, prompt_for: Callable[[int], dict],
                 extra_data_for: Callable[[int], dict | None] | None = None, *, lookahead: int = 0,
                 timeout: float = 3600.0, on_event: Callable[[int, str, dict], None] | None = None,
                 on_queued: Callable[[int, str], None] | None = None):
        self.client = client
        self.prompt_for, self.extra_data_for = prompt_for, extra_data_for
        self.lookahead, self.timeout = max(0, lookahead), timeout
        self.on_event, self.on_queued = on_event, on_queued
        self.queued: dict[str, int] = {}        # prompt id -> job index, posted and not yet ended

    def run(self, indexes: Iterable[int]) -> Iterator[tuple[int, RunResult]]:
        """(job index, result) for each job, in order. A refused job is yielded as a "rejected"
        result in its place and nothing after it is posted."""
        todo = iter(indexes)
        order: deque[tuple[int, RunResult]] = deque()
        try:
            ws = self.client.websocket()
        except ComfyError:
            ws = None                           # follow each job through /history instead

        def fill() -> None:
            while len(order) < 1 + self.lookahead and not (order and order[-1][1].rejected):
                index = next(todo, None)
                if index is None:
                    return
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
            if self.on_event and data.get("prompt_id") in self.queued:
                self.on_event(self.queued[data["prompt_id"]], kind, data)

        try:
            fill()
            while order:
                index, result = order[0]
                if not result.rejected:
                    t0 = time.monotonic()
                    others = {r.prompt_id: r for _, r in list(order)[1:] if r.prompt_id}
                    ws = self.client._wait(result, ws, t0 + self.timeout, forward, others)
                    result.wall_s = time.monotonic() - t0
                    self.queued.pop(result.prompt_id, None)
                order.popleft()
                if result.status == "success":
                    fill()                      # before yielding: the queue never runs dry
                yield index, result
        finally:
            if ws is not None:
                ws.close()

    def cancel(self, wait: float = 30.0) -> None:
        """Take this runner's waiting jobs out of ComfyUI's queue and stop its running one (then
        wait up to ``wait`` seconds for it to end)."""
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
