"""A scripted fake model server, so real agent CLIs can run end to end with no network.

It speaks four wire formats on one port (127.0.0.1, random port), logs every request, and answers
main requests from a script, one turn per request:

- Anthropic Messages (claude): `POST /v1/messages` (SSE or JSON), plus `HEAD /` and side requests.
- OpenAI Responses (codex): `POST /v1/responses` (SSE).
- Gemini (gemini-cli): `POST /v1beta/models/<m>:streamGenerateContent?alt=sse` and
  `:generateContent` / `:countTokens`.
- OpenAI chat completions (qwen, opencode, copilot, droid, lms-style endpoints):
  `POST /v1/chat/completions` (SSE with `[DONE]`, or JSON), and `GET /v1/models`.

A script is a list of turns: a `str` (or `Text`) is a text reply; `Shell(cmd)` is a call of the
shell tool that the client offers (its name and argument key are read from the request's tool
list); `ToolCall(name, args)` calls a named tool; `Fail(status)` answers with an HTTP error.
After a tool call the client sends the tool result in a new request, which gets the next turn.
Agents also send side requests (titles, next-speaker checks, memory): by default a request that
offers no tools is a side request, answered with `side_text` without using up the script.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

ANTHROPIC = "anthropic"
RESPONSES = "responses"
GEMINI = "gemini"
CHAT = "chat"
OTHER = "other"


@dataclass(frozen=True)
class Text:
    """A text reply, optionally preceded by a thinking / reasoning block."""

    text: str
    thinking: str | None = None


@dataclass(frozen=True)
class Shell:
    """Call the client's shell tool with this command."""

    command: str
    text: str | None = None  # text sent before the call, in the same reply


@dataclass(frozen=True)
class ToolCall:
    """Call a tool by its exact name with these arguments."""

    name: str
    args: dict[str, Any]
    text: str | None = None


@dataclass(frozen=True)
class Fail:
    """Answer with an HTTP error (e.g. 401 to look like a bad key, 500 for a server error)."""

    status: int = 500
    message: str = "scripted failure"


@dataclass(frozen=True)
class Slow:
    """Answer `turn` only after `seconds` (to test clients' timeouts)."""

    seconds: float
    turn: Text | str = "late"


Turn = str | Text | Shell | ToolCall | Fail | Slow

# tool names agents use for "run a shell command", with the argument key they take
SHELL_TOOLS: dict[str, str] = {
    "Bash": "command",
    "bash": "command",
    "exec_command": "cmd",
    "shell": "command",
    "local_shell": "command",
    "run_shell_command": "command",
    "Execute": "command",
    "execute": "command",
    "shell_command": "command",
    "run_command": "command",
}


@dataclass
class Request:
    """One request as received."""

    method: str
    path: str  # without the query
    query: dict[str, list[str]]
    headers: dict[str, str]
    raw: bytes
    body: Any  # parsed JSON, or None
    wire: str  # ANTHROPIC / RESPONSES / GEMINI / CHAT / OTHER
    main: bool  # answered from the script
    turn: Turn | None = None  # what it was answered with (main requests)

    def text(self) -> str:
        """The body as text, for `in` checks (e.g. that a resumed run sent the old prompt)."""
        return self.raw.decode("utf-8", "replace")


@dataclass
class _Reply:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def _tool_names(wire: str, body: Any) -> dict[str, dict[str, Any]]:
    """Offered tool name -> its parameter schema, across the wire formats' tool shapes."""
    out: dict[str, dict[str, Any]] = {}
    if not isinstance(body, dict):
        return out
    for tool in body.get("tools") or []:
        if not isinstance(tool, dict):
            continue
        if wire == GEMINI:
            for decl in tool.get("functionDeclarations") or tool.get("function_declarations") or []:
                if isinstance(decl, dict) and decl.get("name"):
                    schema = decl.get("parameters") or decl.get("parametersJsonSchema") or {}
                    out[str(decl["name"])] = schema if isinstance(schema, dict) else {}
            continue
        fn: dict[str, Any] = tool["function"] if isinstance(tool.get("function"), dict) else tool
        name = fn.get("name") or tool.get("type")
        if name:
            schema = fn.get("parameters") or fn.get("input_schema") or {}
            out[str(name)] = schema if isinstance(schema, dict) else {}
    return out


def _shell_call(wire: str, body: Any, command: str) -> tuple[str, dict[str, Any]]:
    """Pick the offered shell tool and build its arguments."""
    tools = _tool_names(wire, body)
    for name, key in SHELL_TOOLS.items():
        if name in tools:
            props = tools[name].get("properties") or {}
            if isinstance(props, dict) and props and key not in props:
                key = "cmd" if "cmd" in props else "command" if "command" in props else key
            return name, {key: command}
    # nothing recognisable offered: fall back on the wire format's usual name
    default = {ANTHROPIC: "Bash", RESPONSES: "exec_command", GEMINI: "run_shell_command"}
    name = default.get(wire, "bash")
    return name, {SHELL_TOOLS.get(name, "command"): command}


def _sse(events: list[tuple[str | None, Any]]) -> bytes:
    parts = []
    for event, data in events:
        payload = data if isinstance(data, str) else json.dumps(data)
        parts.append((f"event: {event}\n" if event else "") + f"data: {payload}\n\n")
    return "".join(parts).encode()


class ModelServer:
    """The server; use as a context manager or call start()/stop()."""

    def __init__(
        self,
        script: list[Turn] | None = None,
        *,
        tool_less_is_side: bool = True,
        side_text: str = "Fake title",
        done_text: str = "Nothing left in the script.",
        model: str = "fake-model",
        input_tokens: int = 10,
        output_tokens: int = 5,
        models: list[str] | None = None,
        side_markers: tuple[str, ...] = (),
        force_json: bool = False,
    ) -> None:
        self.script: list[Turn] = list(script or [])
        self.tool_less_is_side = tool_less_is_side
        self.side_text = side_text
        self.done_text = done_text
        self.model = model
        self.input_tokens = input_tokens
        self.output_tokens = output_tokens
        # GET /v1/models and ollama's GET /api/tags list these (default: [model])
        self.models = list(models) if models is not None else [model]
        # a main-wire request whose body holds one of these is a side request (e.g. qwen's
        # memory-extraction subagent, which offers tools but is not the conversation)
        self.side_markers = side_markers
        self.force_json = force_json  # answer chat requests with JSON even when asked to stream
        self.requests: list[Request] = []
        self._cursor = 0
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> ModelServer:
        server = self

        class Handler(_Handler):
            model_server = server

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="model-server", daemon=True
        )
        self._thread.start()
        self.wait_ready()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> ModelServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_ready(self, timeout: float = 5.0) -> None:
        """Agents retry for a long time against a dead endpoint: make sure we answer first."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(self.url + "/v1/models", timeout=1) as resp:
                    resp.read()
                with self._lock:  # the probe is not the agent's
                    self.requests = [r for r in self.requests if r.path != "/v1/models"]
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- script -------------------------------------------------------------------------------
    def add(self, *turns: Turn) -> None:
        """Append turns (e.g. for a follow-up run)."""
        with self._lock:
            self.script.extend(turns)

    @property
    def remaining(self) -> int:
        return len(self.script) - self._cursor

    def main_requests(self, wire: str | None = None) -> list[Request]:
        return [r for r in self.requests if r.main and (wire is None or r.wire == wire)]

    def _next_turn(self) -> Turn:
        with self._lock:
            if self._cursor < len(self.script):
                turn = self.script[self._cursor]
                self._cursor += 1
                return turn
        return self.done_text

    # -- dispatch -----------------------------------------------------------------------------
    def handle(self, method: str, target: str, headers: dict[str, str], raw: bytes) -> _Reply:
        parts = urlsplit(target)
        path, query = parts.path, parse_qs(parts.query)
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
        wire = OTHER
        if method == "POST":
            if path.endswith("/messages") and "count_tokens" not in path:
                wire = ANTHROPIC
            elif path.endswith("/responses"):
                wire = RESPONSES
            elif ":streamGenerateContent" in path or ":generateContent" in path:
                wire = GEMINI
            elif path.endswith("/chat/completions"):
                wire = CHAT
        offers_tools = bool(_tool_names(wire, body))
        main = wire != OTHER and (offers_tools or not self.tool_less_is_side)
        if main and self.side_markers:
            text = raw.decode("utf-8", "replace")
            main = not any(marker in text for marker in self.side_markers)
        req = Request(method, path, query, dict(headers), raw, body, wire, main)
        with self._lock:
            self.requests.append(req)
        if wire == OTHER:
            return self._other(method, path)
        turn: Turn = self._next_turn() if main else self.side_text
        req.turn = turn if main else None
        if isinstance(turn, Slow):
            time.sleep(turn.seconds)
            turn = turn.turn
        if isinstance(turn, Fail):
            err = {
                "error": {"type": "scripted_error", "message": turn.message, "code": turn.status}
            }
            return _Reply(turn.status, json.dumps(err).encode())
        stream = self._wants_stream(wire, path, query, body)
        if self.force_json and wire == CHAT:
            stream = False
        return _Render(self, wire, body, stream, next(self._ids)).reply(turn)

    @staticmethod
    def _wants_stream(wire: str, path: str, query: dict[str, list[str]], body: Any) -> bool:
        if wire == GEMINI:
            return ":streamGenerateContent" in path
        if wire == RESPONSES:
            return not isinstance(body, dict) or body.get("stream", True) is not False
        return isinstance(body, dict) and bool(body.get("stream"))

    def _other(self, method: str, path: str) -> _Reply:
        if path.rstrip("/").endswith("/models") and method == "GET":
            data = {
                "object": "list",
                "data": [{"id": m, "object": "model", "owned_by": "tests"} for m in self.models],
                "models": [{"name": f"models/{m}"} for m in self.models],
            }
            return _Reply(200, json.dumps(data).encode())
        if path == "/api/tags" and method == "GET":  # ollama's model list
            tags = {"models": [{"name": m, "model": m, "size": 1} for m in self.models]}
            return _Reply(200, json.dumps(tags).encode())
        if path == "/api/version" and method == "GET":
            return _Reply(200, b'{"version": "0.0.0-fake"}')
        if path.endswith(":countTokens"):
            return _Reply(200, b'{"totalTokens": 10}')
        if path.endswith("/count_tokens"):
            return _Reply(200, b'{"input_tokens": 10}')
        return _Reply(200, b"{}")


class _Render:
    """Builds one reply for one turn in one wire format."""

    def __init__(self, server: ModelServer, wire: str, body: Any, stream: bool, n: int) -> None:
        self.s = server
        self.wire = wire
        self.body = body
        self.stream = stream
        self.n = n
        model = body.get("model") if isinstance(body, dict) else None
        self.model = str(model or server.model)

    def reply(self, turn: Turn) -> _Reply:
        text: str | None
        thinking: str | None = None
        call: tuple[str, dict[str, Any]] | None = None
        if isinstance(turn, str):
            text = turn
        elif isinstance(turn, Text):
            text, thinking = turn.text, turn.thinking
        elif isinstance(turn, Shell):
            text, call = turn.text, _shell_call(self.wire, self.body, turn.command)
        elif isinstance(turn, ToolCall):
            text, call = turn.text, (turn.name, turn.args)
        else:  # pragma: no cover - Fail is handled by the caller
            raise TypeError(turn)
        render = {
            ANTHROPIC: self._anthropic,
            RESPONSES: self._responses,
            GEMINI: self._gemini,
            CHAT: self._chat,
        }[self.wire]
        return render(text, thinking, call)

    # Anthropic Messages -------------------------------------------------------------------------
    def _anthropic(
        self, text: str | None, thinking: str | None, call: tuple[str, dict[str, Any]] | None
    ) -> _Reply:
        msg_id = f"msg_fake{self.n:06d}"
        blocks: list[dict[str, Any]] = []
        if thinking:
            blocks.append({"type": "thinking", "thinking": thinking, "signature": "fake-sig"})
        if text:
            blocks.append({"type": "text", "text": text})
        if call:
            blocks.append(
                {
                    "type": "tool_use",
                    "id": f"toolu_fake{self.n:06d}",
                    "name": call[0],
                    "input": call[1],
                }
            )
        stop = "tool_use" if call else "end_turn"
        usage = {
            "input_tokens": self.s.input_tokens,
            "output_tokens": self.s.output_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        }
        if not self.stream:
            message = {
                "id": msg_id,
                "type": "message",
                "role": "assistant",
                "model": self.model,
                "content": blocks,
                "stop_reason": stop,
                "stop_sequence": None,
                "usage": usage,
            }
            return _Reply(200, json.dumps(message).encode())
        start: dict[str, Any] = {
            "id": msg_id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {**usage, "output_tokens": 1},
        }
        ev: list[tuple[str | None, Any]] = [
            ("message_start", {"type": "message_start", "message": start})
        ]
        for i, block in enumerate(blocks):
            kind = block["type"]
            if kind == "thinking":
                first: dict[str, Any] = {"type": "thinking", "thinking": "", "signature": ""}
                deltas = [
                    {"type": "thinking_delta", "thinking": c} for c in _chunks(block["thinking"])
                ]
                deltas.append({"type": "signature_delta", "signature": block["signature"]})
            elif kind == "text":
                first = {"type": "text", "text": ""}
                deltas = [{"type": "text_delta", "text": c} for c in _chunks(block["text"])]
            else:
                first = {**block, "input": {}}
                deltas = [
                    {"type": "input_json_delta", "partial_json": c}
                    for c in _chunks(json.dumps(block["input"]))
                ]
            ev.append(
                (
                    "content_block_start",
                    {"type": "content_block_start", "index": i, "content_block": first},
                )
            )
            for d in deltas:
                ev.append(
                    ("content_block_delta", {"type": "content_block_delta", "index": i, "delta": d})
                )
            ev.append(("content_block_stop", {"type": "content_block_stop", "index": i}))
        ev.append(
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop, "stop_sequence": None},
                    "usage": {"output_tokens": self.s.output_tokens},
                },
            )
        )
        ev.append(("message_stop", {"type": "message_stop"}))
        return _Reply(200, _sse(ev), "text/event-stream", {"request-id": f"req_fake{self.n}"})

    # OpenAI Responses -----------------------------------------------------------------------------
    def _responses(
        self, text: str | None, thinking: str | None, call: tuple[str, dict[str, Any]] | None
    ) -> _Reply:
        resp_id = f"resp_fake{self.n:06d}"
        items: list[dict[str, Any]] = []
        ev: list[tuple[str | None, Any]] = []
        base = {"id": resp_id, "object": "response", "model": self.model, "status": "in_progress"}
        ev.append(
            ("response.created", {"type": "response.created", "response": {**base, "output": []}})
        )
        idx = 0
        if thinking:
            rid = f"rs_fake{self.n:06d}"
            item = {
                "type": "reasoning",
                "id": rid,
                "summary": [{"type": "summary_text", "text": thinking}],
            }
            ev.append(
                (
                    "response.output_item.added",
                    {
                        "type": "response.output_item.added",
                        "output_index": idx,
                        "item": {**item, "summary": []},
                    },
                )
            )
            for c in _chunks(thinking):
                ev.append(
                    (
                        "response.reasoning_summary_text.delta",
                        {
                            "type": "response.reasoning_summary_text.delta",
                            "item_id": rid,
                            "output_index": idx,
                            "summary_index": 0,
                            "delta": c,
                        },
                    )
                )
            ev.append(
                (
                    "response.output_item.done",
                    {"type": "response.output_item.done", "output_index": idx, "item": item},
                )
            )
            items.append(item)
            idx += 1
        if text:
            mid = f"msg_fake{self.n:06d}"
            item = {
                "type": "message",
                "id": mid,
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": text, "annotations": []}],
            }
            ev.append(
                (
                    "response.output_item.added",
                    {
                        "type": "response.output_item.added",
                        "output_index": idx,
                        "item": {**item, "content": [], "status": "in_progress"},
                    },
                )
            )
            for c in _chunks(text):
                ev.append(
                    (
                        "response.output_text.delta",
                        {
                            "type": "response.output_text.delta",
                            "item_id": mid,
                            "output_index": idx,
                            "content_index": 0,
                            "delta": c,
                        },
                    )
                )
            ev.append(
                (
                    "response.output_item.done",
                    {"type": "response.output_item.done", "output_index": idx, "item": item},
                )
            )
            items.append(item)
            idx += 1
        if call:
            item = {
                "type": "function_call",
                "id": f"fc_fake{self.n:06d}",
                "call_id": f"call_fake{self.n:06d}",
                "name": call[0],
                "arguments": json.dumps(call[1]),
                "status": "completed",
            }
            ev.append(
                (
                    "response.output_item.added",
                    {"type": "response.output_item.added", "output_index": idx, "item": item},
                )
            )
            ev.append(
                (
                    "response.output_item.done",
                    {"type": "response.output_item.done", "output_index": idx, "item": item},
                )
            )
            items.append(item)
        usage = {
            "input_tokens": self.s.input_tokens,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": self.s.output_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": self.s.input_tokens + self.s.output_tokens,
        }
        done = {**base, "status": "completed", "output": items, "usage": usage}
        if not self.stream:
            return _Reply(200, json.dumps(done).encode())
        ev.append(("response.completed", {"type": "response.completed", "response": done}))
        return _Reply(200, _sse(ev), "text/event-stream")

    # Gemini ---------------------------------------------------------------------------------------
    def _gemini(
        self, text: str | None, thinking: str | None, call: tuple[str, dict[str, Any]] | None
    ) -> _Reply:
        usage = {
            "promptTokenCount": self.s.input_tokens,
            "candidatesTokenCount": self.s.output_tokens,
            "totalTokenCount": self.s.input_tokens + self.s.output_tokens,
        }
        chunks: list[list[dict[str, Any]]] = []
        if thinking:
            chunks.append([{"text": thinking, "thought": True}])
        if text:
            chunks.extend([[{"text": c}] for c in _chunks(text)])
        if call:
            chunks.append([{"functionCall": {"name": call[0], "args": call[1]}}])
        if not chunks:
            chunks.append([{"text": ""}])

        def frame(parts: list[dict[str, Any]], last: bool) -> dict[str, Any]:
            cand: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
            if last:
                cand["finishReason"] = "STOP"
            return {"candidates": [cand], "usageMetadata": usage, "modelVersion": self.model}

        if not self.stream:
            parts = [p for c in chunks for p in c]
            if text and not call and not thinking:
                parts = [{"text": text}]
            return _Reply(200, json.dumps(frame(parts, True)).encode())
        ev: list[tuple[str | None, Any]] = [
            (None, frame(c, i == len(chunks) - 1)) for i, c in enumerate(chunks)
        ]
        return _Reply(200, _sse(ev), "text/event-stream")

    # OpenAI chat completions ----------------------------------------------------------------------
    def _chat(
        self, text: str | None, thinking: str | None, call: tuple[str, dict[str, Any]] | None
    ) -> _Reply:
        cid = f"chatcmpl-fake{self.n:06d}"
        created = int(time.time())
        usage = {
            "prompt_tokens": self.s.input_tokens,
            "completion_tokens": self.s.output_tokens,
            "total_tokens": self.s.input_tokens + self.s.output_tokens,
        }
        finish = "tool_calls" if call else "stop"
        tool_calls = (
            [
                {
                    "index": 0,
                    "id": f"call_fake{self.n:06d}",
                    "type": "function",
                    "function": {"name": call[0], "arguments": json.dumps(call[1])},
                }
            ]
            if call
            else None
        )
        if not self.stream:
            message: dict[str, Any] = {"role": "assistant", "content": text or None}
            if thinking:
                message["reasoning_content"] = thinking
            if tool_calls:
                message["tool_calls"] = [
                    {k: v for k, v in t.items() if k != "index"} for t in tool_calls
                ]
            data = {
                "id": cid,
                "object": "chat.completion",
                "created": created,
                "model": self.model,
                "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                "usage": usage,
            }
            return _Reply(200, json.dumps(data).encode())

        def chunk(delta: dict[str, Any], fin: str | None = None, **extra: Any) -> dict[str, Any]:
            return {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": self.model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": fin}],
                **extra,
            }

        ev: list[tuple[str | None, Any]] = [(None, chunk({"role": "assistant", "content": ""}))]
        if thinking:
            ev.extend((None, chunk({"reasoning_content": c})) for c in _chunks(thinking))
        if text:
            ev.extend((None, chunk({"content": c})) for c in _chunks(text))
        if tool_calls:
            ev.append((None, chunk({"tool_calls": tool_calls})))
        ev.append((None, chunk({}, finish)))
        ev.append((None, {**chunk({}), "choices": [], "usage": usage}))
        ev.append((None, "[DONE]"))
        return _Reply(200, _sse(ev), "text/event-stream")


def _chunks(text: str, size: int = 12) -> list[str]:
    """Split text so clients really have to join deltas."""
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


class _Handler(BaseHTTPRequestHandler):
    model_server: ModelServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # requests are recorded on the server; keep test output clean

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            raw = self._read_chunked()
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            reply = self.model_server.handle(self.command, self.path, headers, raw)
        except Exception as exc:  # a bug in the script must not hang the agent
            reply = _Reply(500, json.dumps({"error": {"message": repr(exc)}}).encode())
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        for k, v in reply.headers.items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(reply.body)

    def _read_chunked(self) -> bytes:
        out = bytearray()
        while True:
            size = int(self.rfile.readline().strip().split(b";")[0] or b"0", 16)
            if size == 0:
                self.rfile.readline()
                return bytes(out)
            out += self.rfile.read(size)
            self.rfile.readline()

    do_GET = _serve
    do_POST = _serve
    do_HEAD = _serve
    do_PUT = _serve
    do_DELETE = _serve
    do_PATCH = _serve
    do_OPTIONS = _serve
