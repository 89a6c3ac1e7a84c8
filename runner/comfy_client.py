"""A small client for a running ComfyUI server: its HTTP API (urllib) and websocket (aiohttp).

Used by the host tests, the headless runner and the benchmarks. It needs aiohttp, which ComfyUI's
own environment ships (the CLI runs with ComfyUI's python; the test venv pins it).

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

import asyncio
import json
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp

DEFAULT_URL = "http://127.0.0.1:8188"
BLOCKED_TYPE = "ExecutionBlocked"     # exception_type ComfyUI gives an ExecutionBlocker's message


class ComfyError(RuntimeError):
    """The server could not be reached or answered something unusable."""


# ----------------------------------------------------------------------------- websocket

class WebSocket:
    """ComfyUI's ``/ws`` through aiohttp's client, used synchronously: each call runs this
    socket's own event loop until it returns (aiohttp checks the handshake and answers pings)."""

    def __init__(self, url: str, timeout: float = 10.0):
        self._loop = asyncio.new_event_loop()
        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        try:
            self._loop.run_until_complete(asyncio.wait_for(self._connect(url), timeout))
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as e:
            self.close()
            raise ComfyError(f"websocket {url}: {e or type(e).__name__}") from e

    async def _connect(self, url: str) -> None:
        self._session = aiohttp.ClientSession()
        self._ws = await self._session.ws_connect(url, max_msg_size=0)     # 0: no size limit

    def recv(self, timeout: float | None) -> tuple[str, Any]:
        """Next message as ("text", str) / ("binary", bytes) / ("close", b"").

        Raises ``TimeoutError`` when nothing arrives within ``timeout`` seconds.
        """
        try:
            msg = self._loop.run_until_complete(self._ws.receive(timeout))
        except asyncio.TimeoutError:          # not the builtin TimeoutError before Python 3.11
            raise TimeoutError("no websocket message") from None
        except aiohttp.ClientError:
            return "close", b""
        if msg.type == aiohttp.WSMsgType.TEXT:
            return "text", msg.data
        if msg.type == aiohttp.WSMsgType.BINARY:
            return "binary", msg.data
        return "close", b""                   # CLOSE, CLOSING, CLOSED or ERROR

    def close(self) -> None:
        if self._loop.is_closed():
            return
        try:
            for task in asyncio.all_tasks(self._loop):    # a receive cut short by Ctrl-C
                task.cancel()
            if self._ws is not None:
                self._loop.run_until_complete(self._ws.close())
            if self._session is not None:
                self._loop.run_until_complete(self._session.close())
        except (aiohttp.ClientError, asyncio.CancelledError, OSError, RuntimeError):
            pass
        finally:
            self._loop.close()

    def __enter__(self) -> WebSocket:
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
    ended: bool = False                          # its end-of-prompt event arrived

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
    def request_bytes(self, method: str, path: str, data: bytes | None = None, headers: dict | None = None,
                      timeout: float | None = None) -> tuple[int, bytes]:
        """(status, body). HTTP error statuses are returned, not raised; no answer is a ComfyError."""
        req = urllib.request.Request(self.base_url + path, data=data, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=timeout or self.timeout) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()
        except (urllib.error.URLError, OSError) as e:
            raise ComfyError(f"{method} {self.base_url}{path}: {getattr(e, 'reason', e)}") from e

    def request(self, method: str, path: str, body: Any = None, timeout: float | None = None) -> tuple[int, Any]:
        """(status, parsed JSON or raw text). HTTP error statuses are returned, not raised."""
        data = json.dumps(body).encode() if body is not None else None
        status, raw = self.request_bytes(method, path, data, {"Content-Type": "application/json"} if data else None,
                                         timeout)
        return status, _parse(raw)

    def upload_input(self, name: str, data: bytes, subfolder: str = "", overwrite: bool = False) -> str:
        """Put a file into ComfyUI's input/<subfolder>/ through its own upload route; returns the
        name it got. ``overwrite``: that name, replaced; else an identical file is reused and a
        different one of that name gets a new name (``name (1).yaml``)."""
        boundary = uuid.uuid4().hex
        fields = [("subfolder", None, subfolder.encode()), ("type", None, b"input")]
        if overwrite:
            fields.append(("overwrite", None, b"true"))
        body = b""
        for field_name, filename, value in fields + [("image", name, data)]:
            disposition = f'form-data; name="{field_name}"' + (f'; filename="{filename}"' if filename else "")
            body += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + value + b"\r\n"
        body += f"--{boundary}--\r\n".encode()
        try:
            status, raw = self.request_bytes("POST", "/upload/image", body,
                                             {"Content-Type": f"multipart/form-data; boundary={boundary}"})
        except ComfyError as e:
            raise ComfyError(f"uploading {name}: {e}") from e
        resp = _parse(raw)
        if status != 200:
            raise ComfyError(f"uploading {name}: HTTP {status}: {resp}")
        if not isinstance(resp, dict) or "name" not in resp:
            raise ComfyError(f"uploading {name}: unexpected answer {resp!r}")
        return resp["name"]

    def view(self, filename: str, subfolder: str = "", kind: str = "output") -> bytes | None:
        """A file through ComfyUI's /view (``kind``: output, input or temp); None when missing."""
        query = urllib.parse.urlencode({"filename": filename, "subfolder": subfolder, "type": kind})
        status, raw = self.request_bytes("GET", f"/view?{query}")
        return raw if status == 200 else None

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

    def interrupt(self, prompt_id: str | None = None) -> None:
        """Stop the running prompt; with ``prompt_id`` only when that prompt is the one running
        (recent ComfyUI checks the id itself; an older one would stop whatever runs, so the
        queue is asked first)."""
        if prompt_id is None:
            self.request("POST", "/interrupt", {})
        elif prompt_id in self.running_prompt_ids():
            self.request("POST", "/interrupt", {"prompt_id": prompt_id})

    def delete_queued(self, prompt_ids) -> None:
        """Take these prompts out of the queue (those not started yet; others are not touched)."""
        if prompt_ids:
            self.request("POST", "/queue", {"delete": list(prompt_ids)})

    def running_prompt_ids(self) -> list[str]:
        return [item[1] for item in self.queue().get("queue_running", []) if len(item) > 1]

    def pending_prompt_ids(self) -> list[str]:
        return [item[1] for item in self.queue().get("queue_pending", []) if len(item) > 1]

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
        scheme = "wss" if u.scheme == "https" else "ws"
        return WebSocket(f"{scheme}://{u.netloc}{u.path}/ws?clientId={self.client_id}", timeout=timeout)

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
            use_websocket: bool = True, on_event: Callable[[str, dict], None] | None = None) -> RunResult:
        """Post ``prompt`` and wait for its end; never raises for rejected/failed prompts.
        ``on_event(type, data)`` sees each websocket event of this prompt as it arrives."""
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
            self.follow(result, ws, t0 + timeout, on_event)
            result.wall_s = time.monotonic() - t0
            return result
        finally:
            if ws is not None:
                ws.close()

    def wait(self, prompt_id: str, timeout: float = 300.0) -> RunResult:
        """Wait for an already queued prompt by polling /history (no websocket events)."""
        result = RunResult("timeout", prompt_id)
        t0 = time.monotonic()
        self.follow(result, None, t0 + timeout)
        result.wall_s = time.monotonic() - t0
        return result

    def follow(self, result: RunResult, ws: WebSocket | None, deadline: float,
               on_event: Callable[[str, dict], None] | None = None,
               others: dict[str, RunResult] | None = None,
               stop: Callable[[], bool] | None = None) -> WebSocket | None:
        """Wait for ``result``'s prompt to end (its history entry is read then), until
        ``deadline`` (time.monotonic) or until ``stop()`` is true (checked every 2 s at most; the
        status stays "timeout"). Events of the prompts in ``others`` (queued behind it, on the same
        websocket) are kept on their results. Returns the websocket, or None once it closed (the
        caller polls from then on). Raises ComfyError when the server stops answering."""
        pid = result.prompt_id
        ours = dict(others or {}, **{pid: result})
        while time.monotonic() < deadline and not (stop is not None and stop()):
            if ws is not None and not result.ended:
                try:
                    for kind, data in self.events(ws, timeout=min(2.0, max(0.05, deadline - time.monotonic()))):
                        if stop is not None and stop():
                            break
                        target = ours.get(data.get("prompt_id"))
                        if target is None:
                            continue
                        target.events.append((kind, data))
                        if on_event is not None:
                            on_event(kind, data)
                        if kind == "executing" and data.get("node") is None:
                            target.ended = True    # sent after the history entry is stored
                        if result.ended:
                            break
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
                return ws
            if ws is None or result.ended:
                time.sleep(0.1)
        return ws

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
