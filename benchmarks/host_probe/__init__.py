"""Benchmark-only ComfyUI extension (linked into benchmark servers, never shipped). It tells a
job's shared work and the host's housekeeping apart from the rest:

- every garbage collection, so ComfyUI's own timed ``gc.collect()`` (main.py's prompt worker runs
  one every 10 s of wall time, ~0.4 s of CPU on this heap, whichever graph runs) can be taken
  off the job it happens to land on;
- the CPU time (``time.thread_time`` of the prompt worker) spent inside the core nodes both
  benchmark graphs run on the same inputs (CLIPTextEncode, EmptyLatentImage, KSampler,
  VAEDecode), per prompt id, so what is left of a job's CPU time is what differs.

GET /prompt_media_bench/probe -> {"collections": [{start, end, cpu_s, generation, timed}, ...],
                                  "shared_cpu_s": {prompt_id: seconds}}
(start/end: time.perf_counter(), the machine's monotonic clock, comparable across processes).
"""
import functools
import gc
import sys
import time

from aiohttp import web

from server import PromptServer

import nodes as core_nodes

SHARED_NODES = ("CLIPTextEncode", "EmptyLatentImage", "KSampler", "VAEDecode")
COLLECTIONS: list[dict] = []
SHARED_CPU_S: dict[str, float] = {}
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


def _timed(method):
    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        started = time.thread_time()
        try:
            return method(*args, **kwargs)
        finally:
            prompt_id = PromptServer.instance.last_prompt_id
            SHARED_CPU_S[prompt_id] = SHARED_CPU_S.get(prompt_id, 0.0) + time.thread_time() - started
    return wrapper


gc.callbacks.append(_on_gc)
for _name in SHARED_NODES:
    _cls = core_nodes.NODE_CLASS_MAPPINGS[_name]
    setattr(_cls, _cls.FUNCTION, _timed(getattr(_cls, _cls.FUNCTION)))


@PromptServer.instance.routes.get("/prompt_media_bench/probe")
async def probe(request):
    return web.json_response({"collections": COLLECTIONS, "shared_cpu_s": SHARED_CPU_S})


NODE_CLASS_MAPPINGS: dict = {}
