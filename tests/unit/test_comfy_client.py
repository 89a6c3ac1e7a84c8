"""runner/comfy_client.py without ComfyUI: the websocket and /history fallback of ``run`` against
a small aiohttp stand-in for ComfyUI's routes, and how RunResult reads ComfyUI's messages (blocked vs
real errors, rejections)."""
from __future__ import annotations

import asyncio
import json
import socket
import threading

import pytest
from aiohttp import web

from prompt_media_pkg.runner.comfy_client import (
    BLOCKED_TYPE,
    ComfyClient,
    ComfyError,
    RunResult,
    WebSocket,
)


class FakeComfy:
    """POST /prompt, GET /history/<id> and /ws as ComfyUI answers them, on a thread of its own.
    ``events`` is what /ws sends after a prompt is posted; ``ws_status`` refuses the upgrade."""

    def __init__(self, events=(), ws_status=None):
        self.events, self.ws_status = list(events), ws_status
        self.history: dict = {}
        self.sockets: list = []
        self.loop = asyncio.new_event_loop()
        app = web.Application()
        app.router.add_post("/prompt", self.prompt)
        app.router.add_get("/history/{pid}", self.get_history)
        app.router.add_get("/ws", self.ws)
        self.runner = web.AppRunner(app)
        self.loop.run_until_complete(self.runner.setup())
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        self.loop.run_until_complete(site.start())
        self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
        self.posted = asyncio.Event()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    async def prompt(self, request):
        self.history["p1"] = {"status": {"status_str": "success", "messages": []},
                              "outputs": {"9": {"images": [{"filename": "a.png", "subfolder": "", "type": "output"}]}}}
        self.posted.set()
        return web.json_response({"prompt_id": "p1", "number": 0, "node_errors": {}})

    async def get_history(self, request):
        pid = request.match_info["pid"]
        return web.json_response({pid: self.history[pid]} if pid in self.history else {})

    async def ws(self, request):
        if self.ws_status:
            return web.Response(status=self.ws_status)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.sockets.append(ws)
        await ws.send_bytes(b"\x00\x00\x00\x01preview")
        if self.events:
            await self.posted.wait()
        for event in self.events:
            await ws.send_str(json.dumps(event))
        async for _ in ws:                    # stays open, like ComfyUI's, until closed
            pass
        return ws

    def drop_sockets(self):
        """Close every /ws connection from the server's side (the client answers the close)."""
        async def drop():
            for ws in self.sockets:
                await ws.close()
        asyncio.run_coroutine_threadsafe(drop(), self.loop)

    def close(self):
        if self.loop.is_running():
            async def stop():
                for ws in self.sockets:
                    await ws.close()
                await self.runner.cleanup()
            asyncio.run_coroutine_threadsafe(stop(), self.loop).result(10)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)


@pytest.fixture
def fake_comfy():
    servers = []

    def make(**kw):
        servers.append(FakeComfy(**kw))
        return servers[-1]
    yield make
    for s in servers:
        s.close()


def test_run_keeps_this_prompts_events_and_ends_on_its_end_signal(fake_comfy):
    srv = fake_comfy(events=[
        {"type": "executing", "data": {"node": "3", "prompt_id": "other"}},
        {"type": "progress", "data": {"value": 1, "max": 2, "node": "3", "prompt_id": "p1"}},
        {"type": "execution_error", "data": {"prompt_id": "p1", "node_id": "4", "exception_type": BLOCKED_TYPE,
                                             "exception_message": "stop here"}},
        {"type": "executing", "data": {"node": None, "prompt_id": "p1"}},
    ])
    result = ComfyClient(srv.url).run({"1": {}}, timeout=10)
    assert result.status == "success" and result.prompt_id == "p1"
    assert [k for k, _ in result.events] == ["progress", "execution_error", "executing"]
    assert result.blocked == ["stop here"] and result.error is None
    assert [i["filename"] for i in result.images] == ["a.png"]
    assert result.wall_s < 5                   # ended on the websocket signal, not a timeout


def test_run_falls_back_to_history_when_the_websocket_is_refused(fake_comfy):
    srv = fake_comfy(ws_status=404)
    with pytest.raises(ComfyError, match="404"):
        ComfyClient(srv.url).websocket()
    result = ComfyClient(srv.url).run({"1": {}}, timeout=10)
    assert result.status == "success" and result.events == []
    assert [i["filename"] for i in result.images] == ["a.png"]


def test_websocket_with_a_wrong_accept_key_is_refused():
    """The handshake's Sec-WebSocket-Accept is checked (the hand-written client did not)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)

    def serve():
        conn, _ = srv.accept()
        conn.recv(4096)
        conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     b"Sec-WebSocket-Accept: bm90IHRoZSByaWdodCBrZXk=\r\n\r\n")
        conn.recv(4096)
        conn.close()

    threading.Thread(target=serve, daemon=True).start()
    with pytest.raises(ComfyError):
        WebSocket(f"ws://127.0.0.1:{srv.getsockname()[1]}/ws", timeout=5)
    srv.close()


def test_websocket_recv_times_out_and_reports_close(fake_comfy):
    srv = fake_comfy()
    with ComfyClient(srv.url).websocket() as ws:
        assert ws.recv(5) == ("binary", b"\x00\x00\x00\x01preview")
        with pytest.raises(TimeoutError):
            ws.recv(0.2)
        srv.drop_sockets()                    # after a timeout the socket still reads
        assert ws.recv(5)[0] == "close"


def _blocked(node):
    return ("execution_error", {"prompt_id": "p", "node_id": node, "node_type": "X",
                                "exception_type": BLOCKED_TYPE, "exception_message": "Execution Blocked: done"})


def test_run_result_separates_blockers_from_errors():
    history = {"status": {"status_str": "success", "completed": True,
                          "messages": [["execution_start", {"prompt_id": "p", "timestamp": 1}],
                                       ["execution_success", {"prompt_id": "p", "timestamp": 2}]]},
               "outputs": {"10": {"images": [{"filename": "b.png", "subfolder": "s", "type": "output"}]},
                           "9": {"images": [{"filename": "a.png", "subfolder": "s", "type": "output"}],
                                 "text": ["hello"]}}}
    r = RunResult("success", "p", history=history, events=[_blocked("4"), _blocked("4"), _blocked("7")])
    assert r.error is None
    assert r.blocked == ["Execution Blocked: done", "Execution Blocked: done"]   # one per node
    assert [i["filename"] for i in r.images] == ["a.png", "b.png"]              # node id order, numeric
    assert r.ui_text("9") == ["hello"]


def test_run_result_reports_real_errors_and_rejections():
    err = {"prompt_id": "p", "node_id": "7", "node_type": "KSampler", "exception_type": "RuntimeError",
           "exception_message": "boom", "traceback": ["line 1\n", "line 2\n"]}
    r = RunResult("error", "p", history={"status": {"status_str": "error", "messages": [["execution_error", err]]}})
    assert r.error["node_type"] == "KSampler"
    assert "node 7 (KSampler): RuntimeError: boom" in r.error_summary()

    body = {"error": {"type": "prompt_outputs_failed_validation"},
            "node_errors": {"2": {"class_type": "PromptMediaLoader",
                                  "errors": [{"message": "Custom validation failed", "details": "f.yaml:3:5: x"}]}}}
    rej = RunResult("rejected", None, 400, body)
    assert rej.rejected and rej.node_errors["2"]["class_type"] == "PromptMediaLoader"
    assert "node 2 (PromptMediaLoader): Custom validation failed: f.yaml:3:5: x" in rej.error_summary()
