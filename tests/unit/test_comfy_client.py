"""runner/comfy_client.py without ComfyUI: websocket framing against a tiny local server, and
how RunResult reads ComfyUI's messages (blocked vs real errors, rejections)."""
from __future__ import annotations

import base64
import hashlib
import json
import socket
import struct
import threading

import pytest

from prompt_media_pkg.runner.comfy_client import BLOCKED_TYPE, RunResult, WebSocket

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    n = len(payload)
    head = bytes([(0x80 if fin else 0) | opcode])
    if n < 126:
        head += bytes([n])
    elif n < 1 << 16:
        head += bytes([126]) + struct.pack("!H", n)
    else:
        head += bytes([127]) + struct.pack("!Q", n)
    return head + payload


def read_client_frame(conn: socket.socket) -> tuple[int, bytes]:
    def exact(n):
        buf = b""
        while len(buf) < n:
            buf += conn.recv(n - len(buf))
        return buf
    b0, b1 = exact(2)
    assert b1 & 0x80, "client frames must be masked"
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", exact(2))[0]
    elif n == 127:
        n = struct.unpack("!Q", exact(8))[0]
    mask = exact(4)
    return b0 & 0x0F, bytes(x ^ mask[i % 4] for i, x in enumerate(exact(n)))


@pytest.fixture
def ws_server():
    """Accepts one websocket client, sends the frames given to it (in small chunks), records pongs."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    state = {"send": [], "pong": None, "done": threading.Event()}
    ready = threading.Event()

    def serve():
        conn, _ = srv.accept()
        req = b""
        while b"\r\n\r\n" not in req:
            req += conn.recv(1024)
        key = [ln.split(b":", 1)[1].strip() for ln in req.split(b"\r\n") if ln.lower().startswith(b"sec-websocket-key")][0]
        accept = base64.b64encode(hashlib.sha1(key + GUID.encode()).digest())
        conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n")
        ready.wait(5)
        data = b"".join(state["send"])
        for i in range(0, len(data), 7):          # split frames across TCP reads
            conn.sendall(data[i:i + 7])
        if state.get("expect_pong"):
            state["pong"] = read_client_frame(conn)
        state["close"] = read_client_frame(conn)
        conn.close()
        state["done"].set()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield srv.getsockname()[1], state, ready
    t.join(5)
    srv.close()


def test_websocket_reads_text_binary_fragmented_and_long_frames(ws_server):
    port, state, ready = ws_server
    long_text = json.dumps({"type": "executed", "data": {"x": "y" * 70_000}})
    state["send"] = [
        frame(0x1, b'{"type": "status"}'),
        frame(0x2, b"\x00\x00\x00\x01PNGDATA"),
        frame(0x9, b"hi"),                                   # ping: answered with a pong
        frame(0x1, b'{"type": "exec', fin=False), frame(0x0, b'uting"}'),
        frame(0x1, b"m" * 300),                              # 16-bit length
        frame(0x1, long_text.encode()),                      # 64-bit length
    ]
    state["expect_pong"] = True
    ws = WebSocket(f"ws://127.0.0.1:{port}/ws?clientId=abc", timeout=5)
    ready.set()
    assert ws.recv(5) == ("text", '{"type": "status"}')
    assert ws.recv(5) == ("binary", b"\x00\x00\x00\x01PNGDATA")
    assert ws.recv(5) == ("text", '{"type": "executing"}')
    assert ws.recv(5) == ("text", "m" * 300)
    assert ws.recv(5) == ("text", long_text)
    with pytest.raises(TimeoutError):
        ws.recv(0.2)
    ws.close()
    assert state["done"].wait(5)
    assert state["pong"] == (0xA, b"hi")
    assert state["close"][0] == 0x8


def test_websocket_refused_handshake_is_an_error():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)

    def serve():
        conn, _ = srv.accept()
        conn.recv(1024)
        conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
        conn.close()

    threading.Thread(target=serve, daemon=True).start()
    with pytest.raises(Exception, match="refused"):
        WebSocket(f"ws://127.0.0.1:{srv.getsockname()[1]}/ws")
    srv.close()


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
