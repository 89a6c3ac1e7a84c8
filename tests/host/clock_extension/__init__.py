"""A test-only ComfyUI extension that the host harness links in beside this repository.

    POST /prompt_media_test/clock {"now": "2001-02-03T04:05:06"}   pin the Session Saver's clock
    POST /prompt_media_test/clock {"now": null}                    the real clock again

The saver reads the time through its module attribute ``clock`` (session folders, sidecar
timestamps); pinning it lets a test put two sessions in one minute without racing the wall clock.
"""
import sys
from datetime import datetime

from aiohttp import web

from server import PromptServer


def _saver_modules() -> list:
    return [m for name, m in list(sys.modules.items())
            if name.endswith("nodes.saver") and hasattr(m, "PromptMediaSessionSaver") and hasattr(m, "clock")]


@PromptServer.instance.routes.post("/prompt_media_test/clock")
async def pin_clock(request: web.Request) -> web.Response:
    when = (await request.json()).get("now")
    savers = _saver_modules()
    if not savers:
        return web.json_response({"error": "the Session Saver's module is not loaded"}, status=500)
    pinned = datetime.fromisoformat(when) if when else None
    for module in savers:
        module.clock = (lambda: pinned) if pinned else datetime.now
    return web.json_response({"now": when, "modules": len(savers)})


NODE_CLASS_MAPPINGS: dict = {}
