"""Benchmark-only ComfyUI extension (linked into benchmark servers, never shipped): logs every
garbage collection in the server, so a benchmark can tell ComfyUI's own timed ``gc.collect()``
(main.py's prompt worker runs one every 10 s of wall time; about 0.3 s of CPU on this heap, the
same whichever graph runs) apart from the job it happens to land on.

GET /prompt_media_bench/gc -> {"collections": [{start, end, cpu_s, generation, timed}, ...]}
(start/end: time.perf_counter(), the machine's monotonic clock, comparable across processes).
"""
import gc
import sys
import time

from aiohttp import web

from server import PromptServer

COLLECTIONS: list[dict] = []
_current: dict = {}


def _on_gc(phase: str, info: dict) -> None:
    if phase == "start":
        try:
            caller = sys._getframe(1).f_code.co_name     # the frame that called gc.collect(), if any
        except ValueError:
            caller = ""
        _current.update(start=time.perf_counter(), cpu=time.thread_time(), timed=caller == "prompt_worker")
    elif _current:
        COLLECTIONS.append({"start": _current["start"], "end": time.perf_counter(),
                            "cpu_s": time.thread_time() - _current["cpu"],
                            "generation": info["generation"], "timed": _current["timed"]})
        _current.clear()


gc.callbacks.append(_on_gc)


@PromptServer.instance.routes.get("/prompt_media_bench/gc")
async def collections(request):
    return web.json_response({"collections": COLLECTIONS})


NODE_CLASS_MAPPINGS: dict = {}
