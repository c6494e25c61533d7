"""OpenAI-compatible chat completions over HTTP (ollama, LM Studio, any `--openai-endpoint`):
streaming with httpx, our own message history per session, entries from the stream.

These are models, not agents: no tools, just a conversation. The run is a thread that POSTs
`{base}/chat/completions` with `stream: true` and keeps, as raw "stdout" lines, a first
`{"type": "aura.request", ...}` line, then each SSE `data:` payload exactly as received (chunks,
then `[DONE]`), or the whole JSON body when the server does not stream, or an `aura.error` line
(HTTP status, timeout, connection refused). `ChatNormalizer` derives entries from those lines:
content deltas grow one assistant message (`<think>…</think>` inside content, or
`reasoning_content` / `reasoning` deltas, become thinking), usage becomes token usage.

History: each session's conversation is kept in `<data dir>/chat-history/<aura session id>.json`
(`endpoint`, `model`, `messages`); a follow-up loads its parent's file (the parent's id is the
resume id, as the agent session id is the aura session id) and writes its own, so two follow-ups
of one session do not mix. The endpoint and model are remembered there, so a follow-up needs
neither flag.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import httpx

from aura_core.executors.base import (
    Availability,
    LaunchSpec,
    RawLine,
    RunRequest,
    SetupRequired,
)
from aura_core.executors.entries import (
    NO_API_KEY,
    NOT_LOGGED_IN,
    AssistantMessage,
    JsonlNormalizer,
    SetupKind,
    SystemMessage,
    Thinking,
    TokenUsage,
    as_dict,
    as_list,
    as_str,
    to_int,
)
from aura_core.executors.models import choose_model, discover
from aura_core.executors.settings import interactive, setting
from aura_core.paths import data_dir

CONNECT_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 300.0  # between two chunks; a local model may think for a long time
THINK_OPEN, THINK_CLOSE = "<think>", "</think>"


def history_path(session_id: str) -> Path:
    return data_dir() / "chat-history" / f"{session_id}.json"


def load_history(session_id: str) -> dict[str, Any]:
    try:
        data = json.loads(history_path(session_id).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def save_history(session_id: str, data: dict[str, Any]) -> None:
    path = history_path(session_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False))
    os.replace(tmp, path)


def normalize_base(url: str) -> str:
    """`http://h:1/v1`, `http://h:1/v1/`, `http://h:1/v1/chat/completions` -> `http://h:1/v1`."""
    base = url.strip().rstrip("/")
    for suffix in ("/chat/completions", "/completions", "/models"):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
    return base


def split_think(text: str) -> tuple[str, str]:
    """(answer, reasoning) of a whole reply with `<think>` sections."""
    answer: list[str] = []
    thinking: list[str] = []
    inside, rest = False, text
    while rest:
        tag = THINK_CLOSE if inside else THINK_OPEN
        at = rest.find(tag)
        if at < 0:
            (thinking if inside else answer).append(rest)
            break
        (thinking if inside else answer).append(rest[:at])
        rest = rest[at + len(tag) :]
        inside = not inside
    return "".join(answer).strip(), "".join(thinking).strip()


# ---- the run ------------------------------------------------------------------------------


class HttpChatRun:
    """One chat turn as an AgentRun (no process: pid and pgid are None)."""

    pid: int | None = None
    pgid: int | None = None

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        messages: list[dict[str, Any]],
        session_id: str,
        history: dict[str, Any],
        headers: dict[str, str] | None = None,
        timeout: float = READ_TIMEOUT_S,
        warnings: list[str] | None = None,
    ) -> None:
        self.spec = LaunchSpec(argv=[], warnings=list(warnings or []))
        self.base_url = base_url
        self.model = model
        self.messages = messages
        self.session_id = session_id
        self.history = history
        self.headers = headers or {}
        self.timeout = timeout
        self.interrupted = False
        self.code: int | None = None
        self._lines: list[RawLine] = []
        self._cond = threading.Condition()
        self._done = False
        self._response: httpx.Response | None = None
        self._thread = threading.Thread(target=self._run, name="http-chat", daemon=True)
        self._thread.start()

    def _emit(self, obj: Any) -> None:
        text = obj if isinstance(obj, str) else json.dumps(obj, ensure_ascii=False)
        with self._cond:
            self._lines.append(("stdout", text.encode()))
            self._cond.notify_all()

    def batches(self, tick: float = 0.2) -> Iterator[list[RawLine]]:
        while True:
            with self._cond:
                if not self._lines and not self._done:
                    self._cond.wait(tick)
                batch, self._lines = self._lines, []
                done = self._done
            yield batch
            if done and not batch:
                return

    def wait(self) -> int:
        self._thread.join()
        return 130 if self.interrupted else (self.code if self.code is not None else 1)

    def interrupt(self) -> None:
        self.interrupted = True
        response = self._response
        if response is not None:
            try:
                response.close()
            except Exception:
                pass

    def _run(self) -> None:
        try:
            self.code = self._turn()
        except Exception as exc:  # a client bug: keep it in the log
            self._emit({"type": "aura.error", "message": f"aura HTTP client error: {exc!r}"})
            self.code = 1
        finally:
            with self._cond:
                self._done = True
                self._cond.notify_all()

    def _turn(self) -> int:
        url = self.base_url + "/chat/completions"
        body = {"model": self.model, "messages": self.messages, "stream": True,
                "stream_options": {"include_usage": True}}  # fmt: skip
        prompt = self.messages[-1]["content"] if self.messages else ""
        self._emit(
            {
                "type": "aura.request",
                "session": self.session_id,
                "url": url,
                "model": self.model,
                "history": len(self.messages) - 1,
                "prompt": prompt,
            }
        )
        timeout = httpx.Timeout(self.timeout, connect=min(CONNECT_TIMEOUT_S, self.timeout))
        parts: list[str] = []
        try:
            with (
                httpx.Client(timeout=timeout) as client,
                client.stream("POST", url, json=body, headers=self.headers) as response,
            ):
                self._response = response
                if response.status_code >= 400:
                    raw = response.read().decode("utf-8", "replace")
                    self._emit(_http_error(response.status_code, raw))
                    return 1
                ctype = response.headers.get("content-type", "")
                if "text/event-stream" in ctype:
                    for line in response.iter_lines():
                        if not line.startswith("data:"):
                            continue
                        payload = line[5:].strip()
                        self._emit(payload)
                        if payload == "[DONE]":
                            break
                        parts.append(_delta_text(payload))
                else:  # a server that ignores `stream`: one JSON completion
                    raw = response.read().decode("utf-8", "replace")
                    try:
                        data = json.loads(raw)
                    except ValueError:
                        self._emit({"type": "aura.error", "message": f"not JSON: {raw[:500]}"})
                        return 1
                    self._emit(data)
                    choices = as_list(as_dict(data).get("choices"))
                    message = as_dict(as_dict(choices[0]).get("message")) if choices else {}
                    parts.append(as_str(message.get("content")))
        except httpx.TimeoutException:
            if self.interrupted:
                return 130
            self._emit({"type": "aura.error", "message": f"{url}: no answer in {self.timeout:g} s"})
            return 1
        except (httpx.HTTPError, OSError) as exc:
            if self.interrupted:
                return 130
            self._emit({"type": "aura.error", "message": f"{url}: {exc or type(exc).__name__}"})
            return 1
        if self.interrupted:
            return 130
        answer, _thinking = split_think("".join(parts))
        self.history["messages"] = [*self.messages, {"role": "assistant", "content": answer}]
        save_history(self.session_id, self.history)
        return 0


def _http_error(status: int, raw: str) -> dict[str, Any]:
    message = raw.strip()[:1000]
    try:
        data = json.loads(raw)
        err = data.get("error") if isinstance(data, dict) else None
        if isinstance(err, dict):
            message = as_str(err.get("message")) or message
        elif isinstance(err, str):
            message = err
    except ValueError:
        pass
    return {"type": "aura.error", "status": status, "message": message or f"HTTP {status}"}


def _delta_text(payload: str) -> str:
    try:
        data = json.loads(payload)
    except ValueError:
        return ""
    if not isinstance(data, dict):
        return ""
    choices = as_list(data.get("choices"))
    return as_str(as_dict(as_dict(choices[0]).get("delta")).get("content")) if choices else ""


# ---- entries -------------------------------------------------------------------------------


class ChatNormalizer(JsonlNormalizer):
    """Entries from an HttpChatRun's lines."""

    agent = "model"

    def __init__(self) -> None:
        super().__init__()
        self._answer: int | None = None
        self._thinking: int | None = None
        self._inside = False  # within <think> in content
        self._pending = ""  # a tag cut between two chunks
        self.model: str | None = None

    def on_text(self, stream: str, text: str) -> None:
        if text.strip() == "[DONE]":
            return
        self.on_raw(stream, text)

    def on_event(self, obj: dict[str, Any]) -> None:
        kind = obj.get("type")
        if kind == "aura.request":
            self.set_session_id(obj.get("session"))
            self.model = as_str(obj.get("model")) or None
            history = to_int(obj.get("history")) or 0
            tail = f" · {history} earlier messages" if history else ""
            self.append(SystemMessage(f"model {self.model} at {as_str(obj.get('url'))}{tail}"))
            return
        if kind == "aura.error":
            status = to_int(obj.get("status"))
            msg = as_str(obj.get("message")) or "request failed"
            text = f"HTTP {status}: {msg}" if status else msg
            setup: SetupKind | None = None
            if status in (401, 403):
                setup = NO_API_KEY if "key" in msg.lower() else NOT_LOGGED_IN
            self.error(text, setup)
            return
        if "error" in obj and not obj.get("choices"):
            err = obj.get("error")
            self.error(as_str(as_dict(err).get("message")) or as_str(err))
            return
        for choice in as_list(obj.get("choices")):
            c = as_dict(choice)
            delta = as_dict(c.get("delta"))
            message = as_dict(c.get("message"))
            src = delta or message
            reasoning = as_str(src.get("reasoning_content") or src.get("reasoning"))
            if reasoning:
                self._think(reasoning)
            content = as_str(src.get("content"))
            if content:
                self._content(content)
        usage = as_dict(obj.get("usage"))
        if usage:
            self._flush()
            self._answer = self._thinking = None
            details = as_dict(usage.get("completion_tokens_details"))
            cached = as_dict(usage.get("prompt_tokens_details"))
            self.append(
                TokenUsage(
                    input_tokens=to_int(usage.get("prompt_tokens")),
                    output_tokens=to_int(usage.get("completion_tokens")),
                    reasoning_tokens=to_int(details.get("reasoning_tokens")),
                    cache_read_tokens=to_int(cached.get("cached_tokens")),
                    total_tokens=to_int(usage.get("total_tokens")),
                    model=as_str(obj.get("model")) or self.model,
                )
            )

    def _grow(self, cls: type[AssistantMessage] | type[Thinking], text: str) -> None:
        if not text:
            return
        at = self._answer if cls is AssistantMessage else self._thinking
        if at is not None and at == len(self.entries) - 1:
            entry = self.entries[at]
            assert isinstance(entry, (AssistantMessage, Thinking))
            entry.add(text)
            self.replace(at)
            return
        if cls is AssistantMessage and not text.strip() and at is None:
            return  # leading whitespace after </think>
        at = self.append(cls(text.lstrip("\n") if at is None else text))
        if cls is AssistantMessage:
            self._answer, self._thinking = at, None
        else:
            self._thinking, self._answer = at, None

    def _think(self, text: str) -> None:
        self._grow(Thinking, text)

    def _content(self, text: str) -> None:
        rest = self._pending + text
        self._pending = ""
        while rest:
            tag = THINK_CLOSE if self._inside else THINK_OPEN
            at = rest.find(tag)
            if at >= 0:
                self._grow(Thinking if self._inside else AssistantMessage, rest[:at])
                rest = rest[at + len(tag) :]
                self._inside = not self._inside
                continue
            keep = _partial_tag(rest, tag)
            self._grow(Thinking if self._inside else AssistantMessage, rest[: len(rest) - keep])
            self._pending = rest[len(rest) - keep :]
            break

    def _flush(self) -> None:
        if self._pending:
            pending, self._pending = self._pending, ""
            self._grow(Thinking if self._inside else AssistantMessage, pending)

    def on_finish(self) -> None:
        self._flush()


def _partial_tag(text: str, tag: str) -> int:
    """How many trailing chars of `text` could start `tag` (held until the next chunk)."""
    for n in range(min(len(tag) - 1, len(text)), 0, -1):
        if tag.startswith(text[-n:]):
            return n
    return 0


# ---- the executors' shared part ----------------------------------------------------------------


def ask(question: str) -> str:
    sys.stderr.write(question)
    sys.stderr.flush()
    line = sys.stdin.readline()
    if not line:
        raise SetupRequired("no answer (end of input)")
    return line.strip()


class ChatExecutor:
    """Base of ollama, lms and the custom endpoint: HTTP chat with our own history."""

    name: ClassVar[str] = ""
    binary: ClassVar[str | None] = None
    install_hint: ClassVar[str] = ""
    kind: ClassVar[str] = "openai"  # model discovery flavour
    key_env: ClassVar[tuple[str, ...]] = ()

    def default_base(self, request: RunRequest) -> str | None:
        return None

    def resolve_base(self, request: RunRequest, history: dict[str, Any]) -> str:
        url = request.options.openai_endpoint or as_str(history.get("endpoint"))
        url = url or self.default_base(request) or ""
        if not url:
            raise SetupRequired(f"{self.name}: no endpoint")
        return normalize_base(url)

    def headers(self, request: RunRequest) -> dict[str, str]:
        key = setting(request, "api_key")
        for var in self.key_env:
            key = key or request.env.get(var) or os.environ.get(var, "").strip() or None
        return {"Authorization": f"Bearer {key}"} if key else {}

    def start(self, request: RunRequest) -> HttpChatRun:
        o = request.options
        parent = load_history(request.resume_id) if request.resume_id else {}
        if request.resume_id and not parent:
            raise SetupRequired(
                f"{self.name}: the conversation of session {request.resume_id[:8]} was not kept "
                f"(no {history_path(request.resume_id)}); start a new session"
            )
        base = self.resolve_base(request, parent)
        headers = self.headers(request)
        flags = ("yolo", "force", "trust", "allow_all_tools")
        warnings = [
            f"--{w.replace('_', '-')} means nothing to {self.name}; ignored"
            for w in flags
            if getattr(o, w)
        ]
        if o.params:
            warnings.append(f"--param means nothing to {self.name}; ignored")
        model = request.model or as_str(parent.get("model")) or None
        if model is None:
            try:
                models = discover(self.kind, base, refresh=o.refresh_model_cache, headers=headers)
            except httpx.HTTPError as exc:
                raise SetupRequired(
                    f"{self.name}: could not list models at {base} ({exc}); pass --model NAME"
                ) from None
            model, note = choose_model(models, executor=self.name, ask=interactive())
            if note:
                warnings.append(note)
            request.model = model  # recorded on the session
        messages = [m for m in as_list(parent.get("messages")) if isinstance(m, dict)]
        messages.append({"role": "user", "content": request.full_prompt})
        history: dict[str, Any] = {"endpoint": base, "model": model, "executor": self.name,
                   "parent": request.resume_id, "messages": []}  # fmt: skip
        timeout = float(setting(request, "timeout") or READ_TIMEOUT_S)
        return HttpChatRun(
            base_url=base,
            model=model,
            messages=messages,
            session_id=request.session_id,
            history=history,
            headers=headers,
            timeout=timeout,
            warnings=warnings,
        )

    def normalizer(self) -> ChatNormalizer:
        return ChatNormalizer()

    def availability(self, override: str | None = None) -> Availability:
        raise NotImplementedError


def probe(url: str, timeout: float = 1.0) -> dict[str, Any] | None:
    """GET a small JSON document (a local server's version or model list); None if no answer."""
    try:
        response = httpx.get(url, timeout=timeout)
        if response.status_code >= 400:
            return None
        data = response.json()
        return data if isinstance(data, dict) else {"data": data}
    except (httpx.HTTPError, ValueError, OSError):
        return None
