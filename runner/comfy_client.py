"""A small client for a running ComfyUI server: HTTP API + websocket, standard library only.

Used by the host tests, the headless runner and the benchmarks, so it must not import anything
outside the standard library (it runs under any python3, not only ComfyUI's).

    client = ComfyClient("http://127.0.0.1:8188")
    result = client.run(api_prompt, timeout=120)        # POST /prompt, wait for the end
    if result.rejected:   print(result.node_errors)     # 400 from validation
    elif result.error:    print(result.error_summary())  # execution_error: node, type, message
    else:                 print(result.images)           # [{filename, subfolder, type}, ...]

``run`` opens the websocket (``/ws?clientId=...``) *before* posting so no event is missed, then
waits for ComfyUI's end-of-prompt signal (``executing`` with ``node: None`` for our prompt id,
sent after the history entry is stored). If the websocket cannot be opened or goes quiet it falls
back to polling ``/history/<id>``. Websocket events are kept on the result because some facts
reach clients only that way (an ExecutionBlocker's message, progress, ``executed`` ui output).
"""
from __future__ import annotations

import base64
import json
import os
import socket
import struct
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from typing import Any, Iterator

DEFAULT_URL = "http://127.0.0.1:8188"
BLOCKED_TYPE = "ExecutionBlocked"     # exception_type ComfyUI gives an ExecutionBlocker's message


class ComfyError(RuntimeError):
    """The server could not be reached or answered something unusable."""


# ----------------------------------------------------------------------------- websocket

class WebSocket:
    """Minimal RFC 6455 client: handshake, text/binary frames in, masked frames out.

    No extensions (ComfyUI does not compress unless asked). ``recv`` keeps a byte buffer so a
    timeout in the middle of a frame loses nothing.
    """

    def __init__(self, url: str, timeout: float = 10.0):
        u = urllib.parse.urlsplit(url)
        if u.scheme != "ws":
            raise ComfyError(f"only ws:// URLs are supported, got {url!r}")
        host, port = u.hostname or "127.0.0.1", u.port or 80
        path = u.path or "/"
        if u.query:
            path += "?" + u.query
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self._buf = b""
        self._parts: list[bytes] = []
        self._part_opcode = 0
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                           "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        while b"\r\n\r\n" not in self._buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ComfyError("websocket handshake: connection closed")
            self._buf += chunk
        head, self._buf = self._buf.split(b"\r\n\r\n", 1)
        status = head.split(b"\r\n", 1)[0]
        if b" 101 " not in status + b" ":
            raise ComfyError(f"websocket handshake refused: {status.decode(errors='replace')}")

    def _send(self, opcode: int, payload: bytes = b"") -> None:
        mask = os.urandom(4)
        n = len(payload)
        head = bytes([0x80 | opcode])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 1 << 16:
            head += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack("!Q", n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(head + mask + masked)

    def send_text(self, text: str) -> None:
        self._send(0x1, text.encode())

    def _frame(self) -> tuple[bool, int, bytes] | None:
        """One complete frame from the buffer, or None when more bytes are needed."""
        b = self._buf
        if len(b) < 2:
            return None
        fin, opcode, masked, n = b[0] & 0x80, b[0] & 0x0F, b[1] & 0x80, b[1] & 0x7F
        pos = 2
        if n == 126:
            if len(b) < 4:
                return None
            n, pos = struct.unpack("!H", b[2:4])[0], 4
        elif n == 127:
            if len(b) < 10:
                return None
            n, pos = struct.unpack("!Q", b[2:10])[0], 10
        mask = b""
        if masked:
            mask, pos = b[pos:pos + 4], pos + 4
        if len(b) < pos + n:
            return None
        payload, self._buf = b[pos:pos + n], b[pos + n:]
        if masked:
            payload = bytes(x ^ mask[i % 4] for i, x in enumerate(payload))
        return bool(fin), opcode, payload

    def recv(self, timeout: float | None) -> tuple[str, Any]:
        """Next message as ("text", str) / ("binary", bytes) / ("close", b"").

        Raises ``TimeoutError`` when nothing complete arrives within ``timeout`` seconds.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            frame = self._frame()
            if frame is None:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise TimeoutError("no websocket message")
                self.sock.settimeout(left)
                try:
                    chunk = self.sock.recv(1 << 16)
                except socket.timeout:
                    raise TimeoutError("no websocket message") from None
                if not chunk:
                    return "close", b""
                self._buf += chunk
                continue
            fin, opcode, payload = frame
            if opcode == 0x9:                       # ping
                self._send(0xA, payload)
                continue
            if opcode == 0xA:                       # pong
                continue
            if opcode == 0x8:
                return "close", payload
            if opcode in (0x1, 0x2):
                self._part_opcode, self._parts = opcode, [payload]
            elif opcode == 0x0:
                self._parts.append(payload)
            if not fin:
                continue
            data = b"".join(self._parts)
            self._parts = []
            if self._part_opcode == 0x1:
                return "text", data.decode("utf-8", errors="replace")
            return "binary", data

    def close(self) -> None:
        try:
            self._send(0x8, struct.pack("!H", 1000))
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self) -> "WebSocket":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# ----------------------------------------------------------------------------- results

@dataclass
class RunResult:
    """What happened to one posted prompt.

    status: "success" | "error" | "interrupted" | "rejected" (400 from validation) | "timeout".
    A prompt stopped by an ExecutionBlocker with a message ends with status "success"; the
    message is in ``blocked`` (ComfyUI sends it as an ``execution_error`` event of type
    "ExecutionBlocked" that never reaches /history).
    """
    status: str
    prompt_id: str | None = None
    http_status: int = 200
    response: Any = None                       # the body of POST /prompt
    history: dict = field(default_factory=dict)  # the /history/<id> entry
    events: list = field(default_factory=list)   # [(type, data)] websocket events of this prompt
    wall_s: float = 0.0

    @property
    def rejected(self) -> bool:
        return self.status == "rejected"

    @property
    def node_errors(self) -> dict:
        return (self.response or {}).get("node_errors") or {} if self.rejected else {}

    @property
    def outputs(self) -> dict:
        return self.history.get("outputs") or {}

    @property
    def images(self) -> list[dict]:
        """Every image an output node reported, in node id order: {filename, subfolder, type}."""
        out = []
        for node_id in sorted(self.outputs, key=_node_sort_key):
            out += [i for i in self.outputs[node_id].get("images", []) if isinstance(i, dict)]
        return out

    def messages(self, kind: str) -> list[dict]:
        """History status messages and websocket events of one kind (duplicates removed)."""
        seen, out = set(), []
        hist = [(k, d) for k, d in (self.history.get("status") or {}).get("messages", [])]
        for k, d in hist + list(self.events):
            if k != kind:
                continue
            key = json.dumps({x: y for x, y in d.items() if x != "timestamp"}, sort_keys=True, default=str)
            if key not in seen:
                seen.add(key)
                out.append(d)
        return out

    @property
    def error(self) -> dict | None:
        """The real execution_error (node_id, node_type, exception_type, exception_message,
        traceback), ignoring ExecutionBlocker messages."""
        errs = [m for m in self.messages("execution_error") if m.get("exception_type") != BLOCKED_TYPE]
        return errs[0] if errs else None

    @property
    def blocked(self) -> list[str]:
        """Messages of ExecutionBlockers hit while running (websocket only)."""
        return [m.get("exception_message", "") for m in self.messages("execution_error")
                if m.get("exception_type") == BLOCKED_TYPE]

    def ui_text(self, node_id: str) -> list[str]:
        """``{"ui": {"text": [...]}}`` of one node (e.g. PreviewAny, our OOM node)."""
        out = self.outputs.get(str(node_id)) or {}
        if not out:
            for d in self.messages("executed"):
                if str(d.get("node")) == str(node_id):
                    out = d.get("output") or {}
        return list(out.get("text") or [])

    def error_summary(self) -> str:
        if self.rejected:
            lines = [f"rejected (HTTP {self.http_status}): {json.dumps((self.response or {}).get('error'))}"]
            for nid, ne in self.node_errors.items():
                for e in ne.get("errors", []):
                    lines.append(f"  node {nid} ({ne.get('class_type')}): {e.get('message')}: {e.get('details')}")
            return "\n".join(lines)
        e = self.error
        if e:
            tb = "".join((e.get("traceback") or [])[-3:]).rstrip()
            return (f"execution error in node {e.get('node_id')} ({e.get('node_type')}): "
                    f"{e.get('exception_type')}: {e.get('exception_message')}\n{tb}")
        return f"status {self.status}"


def _node_sort_key(node_id: str):
    return (0, int(node_id), "") if str(node_id).isdigit() else (1, 0, str(node_id))


# ----------------------------------------------------------------------------- client

class ComfyClient:
    """HTTP + websocket access to one ComfyUI server (``base_url`` like http://127.0.0.1:8188)."""

    def __init__(self, base_url: str = DEFAULT_URL, client_id: str | None = None, timeout: float = 30.0):
        self.base_url = base_url.rstrip("/")
        self.client_id = client_id or uuid.uuid4().hex
        self.timeout = timeout

    # -- plain HTTP
    def request(self, method: str, path: str, body: Any = None, timeout: float | None = None) -> tuple[int, Any]:
        """(status, parsed JSON or raw text). HTTP error statuses are returned, not raised."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base_url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"} if data else {})
        try:
            with urllib.request.urlopen(req, timeout=timeout or self.timeout) as r:
                return r.status, _parse(r.read())
        except urllib.error.HTTPError as e:
            return e.code, _parse(e.read())
        except (urllib.error.URLError, OSError) as e:
            raise ComfyError(f"{method} {self.base_url}{path}: {e}") from e

    def upload_input(self, name: str, data: bytes, subfolder: str = "") -> str:
        """Put a file into ComfyUI's input/<subfolder>/ through its own upload route; returns the
        name it got (an identical file is reused; a different one of that name gets a new name,
        nothing is overwritten)."""
        boundary = uuid.uuid4().hex
        body = b""
        for field_name, filename, value in (("subfolder", None, subfolder.encode()),
                                            ("type", None, b"input"), ("image", name, data)):
            disposition = f'form-data; name="{field_name}"' + (f'; filename="{filename}"' if filename else "")
            body += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + value + b"\r\n"
        body += f"--{boundary}--\r\n".encode()
        req = urllib.request.Request(self.base_url + "/upload/image", data=body, method="POST",
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as r:
                resp = _parse(r.read())
        except urllib.error.HTTPError as e:
            raise ComfyError(f"uploading {name}: HTTP {e.code}: {_parse(e.read())}") from e
        except (urllib.error.URLError, OSError) as e:
            raise ComfyError(f"uploading {name}: {e}") from e
        if not isinstance(resp, dict) or "name" not in resp:
            raise ComfyError(f"uploading {name}: unexpected answer {resp!r}")
        return resp["name"]

    def get(self, path: str, **kw) -> Any:
        status, body = self.request("GET", path, **kw)
        if status != 200:
            raise ComfyError(f"GET {path}: HTTP {status}: {str(body)[:500]}")
        return body

    def system_stats(self) -> dict:
        return self.get("/system_stats")

    def object_info(self, node_class: str | None = None) -> dict:
        """All node definitions, or ``{node_class: definition}`` for one class."""
        return self.get("/object_info" + (f"/{urllib.parse.quote(node_class)}" if node_class else ""))

    def queue(self) -> dict:
        return self.get("/queue")

    def history(self, prompt_id: str | None = None, max_items: int | None = None) -> dict:
        if prompt_id:
            return self.get(f"/history/{urllib.parse.quote(prompt_id)}")
        return self.get("/history" + (f"?max_items={max_items}" if max_items else ""))

    def interrupt(self) -> None:
        self.request("POST", "/interrupt", {})

    def is_up(self) -> bool:
        try:
            return self.request("GET", "/system_stats", timeout=2)[0] == 200
        except ComfyError:
            return False

    # -- prompts
    def post_prompt(self, prompt: dict, extra_data: dict | None = None) -> tuple[int, dict]:
        """POST /prompt. (200, {"prompt_id", "number", ...}) or (400, {"error", "node_errors"})."""
        body = {"prompt": prompt, "client_id": self.client_id}
        if extra_data:
            body["extra_data"] = extra_data
        status, resp = self.request("POST", "/prompt", body)
        return status, resp if isinstance(resp, dict) else {"raw": resp}

    def websocket(self, timeout: float = 10.0) -> WebSocket:
        u = urllib.parse.urlsplit(self.base_url)
        return WebSocket(f"ws://{u.netloc}/ws?clientId={self.client_id}", timeout=timeout)

    def events(self, ws: WebSocket, timeout: float) -> Iterator[tuple[str, dict]]:
        """(type, data) of JSON events until ``timeout`` seconds pass without one (binary
        preview frames are skipped)."""
        while True:
            kind, data = ws.recv(timeout)
            if kind == "close":
                return
            if kind == "text":
                try:
                    msg = json.loads(data)
                except ValueError:
                    continue
                yield msg.get("type", ""), msg.get("data") or {}

    def run(self, prompt: dict, timeout: float = 300.0, extra_data: dict | None = None,
            use_websocket: bool = True) -> RunResult:
        """Post ``prompt`` and wait for its end; never raises for rejected/failed prompts."""
        t0 = time.monotonic()
        ws = None
        if use_websocket:
            try:
                ws = self.websocket()
            except (OSError, ComfyError):
                ws = None                      # fall back to polling /history
        try:
            status, resp = self.post_prompt(prompt, extra_data)
            if status != 200 or "prompt_id" not in resp:
                return RunResult("rejected", None, status, resp, wall_s=time.monotonic() - t0)
            result = RunResult("timeout", resp["prompt_id"], status, resp)
            self._wait(result, ws, t0 + timeout)
            result.wall_s = time.monotonic() - t0
            return result
        finally:
            if ws is not None:
                ws.close()

    def wait(self, prompt_id: str, timeout: float = 300.0) -> RunResult:
        """Wait for an already queued prompt by polling /history (no websocket events)."""
        result = RunResult("timeout", prompt_id)
        t0 = time.monotonic()
        self._wait(result, None, t0 + timeout)
        result.wall_s = time.monotonic() - t0
        return result

    def _wait(self, result: RunResult, ws: WebSocket | None, deadline: float) -> None:
        pid = result.prompt_id
        while time.monotonic() < deadline:
            if ws is not None:
                try:
                    for kind, data in self.events(ws, timeout=min(2.0, max(0.05, deadline - time.monotonic()))):
                        if data.get("prompt_id") not in (None, pid):
                            continue
                        if data.get("prompt_id") == pid:
                            result.events.append((kind, data))
                        if kind == "executing" and data.get("node") is None and data.get("prompt_id") == pid:
                            break                  # sent after the history entry is stored
                    else:
                        ws = None                  # socket closed: poll from now on
                except TimeoutError:
                    pass                           # quiet: check the history below
                except OSError:
                    ws = None
            entry = self._finished_entry(pid)
            if entry is not None:
                result.history = entry
                result.status = _status_of(entry)
                return
            if ws is None:
                time.sleep(0.1)

    def _finished_entry(self, pid: str) -> dict | None:
        status, hist = self.request("GET", f"/history/{urllib.parse.quote(pid)}")
        if status == 200 and isinstance(hist, dict) and pid in hist:
            return hist[pid]
        return None


def _status_of(entry: dict) -> str:
    st = entry.get("status") or {}
    kinds = [k for k, _ in st.get("messages", [])]
    if "execution_interrupted" in kinds:
        return "interrupted"
    if st.get("status_str") == "error" or "execution_error" in kinds:
        return "error"
    return "success"


def _parse(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", errors="replace")
