"""opencode through its server's HTTP API: `opencode serve`, or a server already running.

aura starts `opencode serve --hostname 127.0.0.1 --port 0` in the workspace (its own process
group; `--port 0` tries 4096, then any free port, and the URL is read from its line
`opencode server listening on http://HOST:PORT`), or attaches to the server given by the `url`
or `host` + `port` settings. Then, verified against opencode-ai 1.18.33 (its OpenAPI document is
`GET /doc`; every call carries `?directory=<workspace>`):

- `POST /session {permission?: [{permission, pattern, action}]}` -> Session `{id: "ses_..."}`, or
  `GET /session/{id}` to continue one (resume), `PATCH /session/{id} {permission}` for its rules;
- `GET /event`: server-sent events `data: {"id":"evt_...","type":...,"properties":{...}}`, first
  `server.connected`; then `message.updated {info: {id, role, ...}}`, `message.part.updated
  {part: {type: text | reasoning | tool | step-start | step-finish | patch, ...}}`,
  `message.part.delta {partID, field, delta}`, `session.status {status: {type: busy | idle}}`,
  `session.idle`, `session.error`, `permission.asked {id: "per_...", permission, patterns,
  metadata, always, tool: {messageID, callID}}`, `permission.replied {requestID, reply}`;
- `POST /session/{id}/prompt_async {parts: [{type: "text", text}], model?, agent?, variant?}`
  -> 204 at once; the turn is over when the session goes idle (`session.idle`);
- `POST /permission/{requestID}/reply {reply: once | always | reject, message?}` -> true; a
  rejection with a message is handed to the model as the tool's error and the turn goes on;
- `POST /session/{id}/abort` to cancel (then the signal ladder for a server we started).

Every event of our session (and its sub-agent sessions) and every request we send, with its
response, becomes a raw "stdout" JSON line in order; ours carry a leading `"aura"` key, so the
stored transcript tells itself apart from `run --format json` and ACP and re-parses. The server's
own output is kept as "stderr" lines.
"""

from __future__ import annotations

import contextlib
import json
import re
import signal
import socket
import threading
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx

from aura_core.executors.acp import DualNormalizer, Policy
from aura_core.executors.base import ApprovalRequest, LaunchSpec, ask_person
from aura_core.executors.duplex import LineQueue
from aura_core.executors.entries import (
    CREATED,
    DENIED,
    FAILED,
    PENDING_APPROVAL,
    SUCCESS,
    AssistantMessage,
    EntryPatch,
    SystemMessage,
    Thinking,
    ToolUse,
    as_dict,
    as_list,
    as_str,
    describe_action,
)
from aura_core.executors.opencode import OpencodeNormalizer, opencode_action
from aura_core.executors.process import ProcessRun
from aura_core.procinfo import kill_group

MARK = '{"aura":'  # our transcript lines start so; opencode's events never do
STARTUP_TIMEOUT_S = 60.0  # `opencode serve` prints its URL after ~1-3 s; first runs migrate data
CONNECT_TIMEOUT_S = 30.0  # the event stream says server.connected
HTTP_TIMEOUT_S = 30.0
CANCEL_GRACE_S = 3.0  # after the abort request, before giving up on the session going idle
STOP_GRACE_S = 1.0  # after SIGTERM, before the signal ladder
LISTENING = re.compile(rb"listening on (https?://\S+)")
ASK_RULES = [
    {"permission": p, "pattern": "*", "action": "ask"} for p in ("edit", "bash", "webfetch")
]
DROPPED = {"server.heartbeat"}
READ_ONLY_REASON = "aura runs this agent read-only (--auto-approve false, nobody to ask)"


class ServerError(Exception):
    """The server refused a request of ours (the response is in the transcript)."""


def _line(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


class OpencodeServerRun(LineQueue):
    """One prompt turn in an opencode server, as an AgentRun."""

    label = "opencode server"

    def __init__(
        self,
        cwd: Path,
        *,
        prompt: str,
        policy: Policy,
        spec: LaunchSpec | None = None,
        env: dict[str, str] | None = None,
        url: str | None = None,
        resume_id: str | None = None,
        model: str | None = None,
        agent: str | None = None,
        variant: str | None = None,
        rules: list[dict[str, str]] | None = None,
        warnings: list[str] | None = None,
    ) -> None:
        super().__init__()
        # the runner shows spec.warnings before the run
        self.spec = spec or LaunchSpec(argv=[], warnings=list(warnings or []))
        if spec is None and not url:
            raise ValueError("either a server to start or the URL of one")
        self.cwd = Path(cwd)
        self.prompt = prompt
        self.policy = policy
        self.resume_id = resume_id
        self.model = model
        self.agent = agent
        self.variant = variant
        self.rules = rules
        self.url = url.rstrip("/") if url else None
        self.session_id: str | None = None
        self.interrupted = False
        self._code: int | None = None
        self._family: set[str] = set()  # our session and its sub-agent sessions
        self._calls: dict[str, tuple[str, Any]] = {}  # callID -> (tool, input), for questions
        self._url_known = threading.Event()
        self._server_gone = threading.Event()
        self._connected = threading.Event()
        self._stream_gone = threading.Event()
        self._idle = threading.Event()
        self._busy = False
        self._prompted = False
        self._turn_done = False
        self._error: str | None = None
        self._aborting = threading.Event()
        self._events: socket.socket | None = None  # the event stream's connection
        self._http: httpx.Client | None = None
        self.proc: ProcessRun | None = None
        self.pid: int | None = None
        self.pgid: int | None = None
        if spec is not None:
            self.proc = ProcessRun(spec, self.cwd, env or {})
            self.pid, self.pgid = self.proc.pid, self.proc.pgid
            self._reader = threading.Thread(target=self._read_server, name="oc-serve", daemon=True)
            self._reader.start()
        else:
            self._url_known.set()
            self._server_gone.set()
        self._driver = threading.Thread(target=self._drive, name="oc-drive", daemon=True)
        self._driver.start()

    # -- AgentRun -----------------------------------------------------------------------------
    def wait(self) -> int:
        self._driver.join()
        if self.proc is not None:
            self.proc.wait()
        return self._code if self._code is not None else 1

    def interrupt(self) -> None:
        self.interrupted = True
        if self._aborting.is_set():
            return
        self._aborting.set()
        threading.Thread(target=self._abort, name="oc-abort", daemon=True).start()

    def _abort(self) -> None:
        if self.session_id and self._prompted and not self._idle.is_set():
            with contextlib.suppress(ServerError, httpx.HTTPError):
                self.call("POST", f"/session/{self.session_id}/abort")
            self._idle.wait(CANCEL_GRACE_S)
        self._idle.set()  # the driver stops waiting; a server we started is stopped
        self._url_known.set()
        self._connected.set()

    # -- the server process -------------------------------------------------------------------
    def _read_server(self) -> None:
        assert self.proc is not None
        try:
            for batch in self.proc.batches():
                for _stream, data in batch:
                    self._emit("stderr", data)  # its log, not the conversation
                    found = LISTENING.search(data)
                    if found and self.url is None:
                        self.url = found.group(1).decode().rstrip("/")
                        self._url_known.set()
        finally:
            self._server_gone.set()
            self._url_known.set()
            self._connected.set()
            self._idle.set()

    def _stop_server(self) -> None:
        proc = self.proc
        if proc is None:
            return
        # SIGTERM starts its graceful stop (SIGINT alone does not; an open connection holds
        # it up); a second signal, the ladder's, ends it
        if proc.pgid is not None:
            kill_group(proc.pgid, signal.SIGTERM)
        if not self._server_gone.wait(STOP_GRACE_S):
            proc.interrupt()
            self._server_gone.wait(STOP_GRACE_S + 5)

    # -- HTTP ---------------------------------------------------------------------------------
    def _client(self, timeout: httpx.Timeout) -> httpx.Client:
        assert self.url is not None
        host = urlsplit(self.url).hostname or ""
        local = host in ("127.0.0.1", "localhost", "::1")
        return httpx.Client(
            base_url=self.url,
            params={"directory": str(self.cwd)},
            timeout=timeout,
            trust_env=not local,  # no proxy between us and a server on this machine
        )

    def call(self, method: str, path: str, body: Any = None, *, ok: tuple[int, ...] = ()) -> Any:
        """One request and its response, both kept in the transcript. Raises ServerError on a
        status >= 400 unless it is in `ok`."""
        if self._http is None:
            self._http = self._client(httpx.Timeout(HTTP_TIMEOUT_S, connect=10.0))
        sent: dict[str, Any] = {"aura": "request", "method": method, "path": path}
        if body is not None:
            sent["body"] = body
        self._emit("stdout", _line(sent))
        try:
            resp = self._http.request(method, path, json=body)
        except httpx.HTTPError as exc:
            failed = {"aura": "response", "method": method, "path": path, "error": str(exc)}
            self._emit("stdout", _line(failed))
            raise
        data: Any = None
        if resp.content:
            try:
                data = resp.json()
            except ValueError:
                data = resp.text[:4000]
        got: dict[str, Any] = {"aura": "response", "method": method, "path": path}
        got["status"] = resp.status_code
        if data is not None:
            got["body"] = data
        self._emit("stdout", _line(got))
        if resp.status_code >= 400 and resp.status_code not in ok:
            raise ServerError(f"{method} {path}: {resp.status_code}")
        return data if resp.status_code < 400 else None

    # -- the event stream ---------------------------------------------------------------------
    def _listen(self) -> None:
        timeout = httpx.Timeout(HTTP_TIMEOUT_S, read=None)
        try:
            with self._client(timeout) as client:
                self._emit("stdout", _line({"aura": "request", "method": "GET", "path": "/event"}))
                with client.stream("GET", "/event") as resp:
                    stream = resp.extensions.get("network_stream")
                    if stream is not None:
                        self._events = stream.get_extra_info("socket")
                    if resp.status_code >= 400:
                        resp.read()
                        self._error = f"GET /event: {resp.status_code} {resp.text[:200]}"
                        return
                    data: list[str] = []
                    for raw in resp.iter_lines():
                        if raw.startswith("data:"):
                            data.append(raw[5:].lstrip(" "))
                        elif not raw and data:
                            self._event("\n".join(data))
                            data = []
        except (httpx.HTTPError, OSError, ValueError) as exc:
            if not self._idle.is_set():
                self.note(f"{self.label}: the event stream ended: {exc}")
        finally:
            self._stream_gone.set()
            self._connected.set()
            self._idle.set()

    def _event(self, text: str) -> None:
        try:
            obj = json.loads(text)
        except ValueError:
            self._emit("stdout", text.encode())
            return
        if not isinstance(obj, dict):
            return
        kind = as_str(obj.get("type"))
        props = as_dict(obj.get("properties"))
        sid = as_str(props.get("sessionID"))
        if kind == "session.created":
            parent = as_str(as_dict(props.get("info")).get("parentID"))
            if parent and parent in self._family:
                self._family.add(sid)
        if kind in DROPPED or (sid and sid not in self._family):
            return  # the server's pulse, or another session on a shared server
        seq = self._emit("stdout", text.encode())
        if kind == "server.connected":
            self._connected.set()
        elif kind == "message.part.updated":
            part = as_dict(props.get("part"))
            if part.get("type") == "tool" and part.get("callID"):
                state = as_dict(part.get("state"))
                self._calls[as_str(part["callID"])] = (as_str(part.get("tool")), state.get("input"))
        elif kind == "permission.asked":
            threading.Thread(
                target=self._answer, args=(props, seq), name="oc-permission", daemon=True
            ).start()
        elif sid == self.session_id and self._prompted:
            if kind == "session.status":
                status = as_str(as_dict(props.get("status")).get("type"))
                if status == "busy":
                    self._busy = True
                elif status == "idle" and self._busy:
                    self._turn_over()
            elif kind == "session.idle" and self._busy:
                self._turn_over()
            elif kind == "session.error":
                err = as_dict(props.get("error"))
                name = as_str(err.get("name"))
                if name != "MessageAbortedError":
                    self._error = as_str(as_dict(err.get("data")).get("message")) or name

    def _turn_over(self) -> None:
        self._turn_done = True
        self._idle.set()

    # -- permissions --------------------------------------------------------------------------
    def _answer(self, asked: dict[str, Any], seq: int) -> None:
        rid = as_str(asked.get("id"))
        reply, message = self._decide(asked, seq)
        body: dict[str, Any] = {"reply": reply}
        if message:
            body["message"] = message
        with contextlib.suppress(ServerError, httpx.HTTPError):
            self.call("POST", f"/permission/{rid}/reply", body)

    def _decide(self, asked: dict[str, Any], seq: int) -> tuple[str, str | None]:
        policy = self.policy
        if policy.approver is None:
            return ("once", None) if policy.allow else ("reject", READ_ONLY_REASON)
        self.wait_shown(seq)
        permission = as_str(asked.get("permission")) or "tool"
        call_id = as_str(as_dict(asked.get("tool")).get("callID"))
        tool, inp = self._calls.get(call_id, ("", None))
        if not tool or not inp:
            tool, inp = permission, asked.get("metadata")
        title = describe_action(opencode_action(tool, inp), tool)
        if title.startswith(f"{tool}(") and asked.get("patterns"):
            title = f"{permission} {', '.join(as_str(p) for p in as_list(asked['patterns']))}"
        req = ApprovalRequest(
            tool_name=tool or permission,
            title=title,
            kind=permission,
            tool_id=call_id or None,
            details=inp,
            options=["allow_once", "allow_always", "reject_once"],
            agent=policy.agent,
        )
        decision = ask_person(policy.approver, req)
        if decision.approve:
            return ("always" if decision.always else "once"), None
        return "reject", decision.reason

    # -- the conversation ---------------------------------------------------------------------
    def _drive(self) -> None:
        listener: threading.Thread | None = None
        try:
            self._url_known.wait(STARTUP_TIMEOUT_S)
            if self.url is None or self.interrupted:
                if not self.interrupted:
                    self.note(f"{self.label}: `opencode serve` gave no URL")
                self._code = 130 if self.interrupted else 1
                return
            self._emit("stdout", _line({"aura": "server", "url": self.url,
                                        "started": self.proc is not None}))  # fmt: skip
            self._open_session()
            listener = threading.Thread(target=self._listen, name="oc-events", daemon=True)
            listener.start()
            if not self._connected.wait(CONNECT_TIMEOUT_S) or self._stream_gone.is_set():
                self.note(f"{self.label}: no event stream ({self._error or 'no answer'})")
                self._code = 1
                return
            if self.interrupted:
                self._code = 130
                return
            self._prompted = True
            self.call("POST", f"/session/{self.session_id}/prompt_async", self._prompt_body())
            self._idle.wait()
            if self.interrupted:
                self._code = 130
            elif not self._turn_done:
                self.note(f"{self.label}: the server or its event stream ended mid-turn")
                self._code = 1
            else:
                self._code = 1 if self._error else 0
        except ServerError:
            self._code = 1  # the response is in the transcript
        except httpx.HTTPError as exc:
            self.note(f"{self.label}: {exc}")
            self._code = 1
        except Exception as exc:  # a client bug: say so, end the run
            self.note(f"{self.label} client error: {exc!r}")
            self._code = 1
        finally:
            self._idle.set()
            events = self._events
            if events is not None:  # ends the stream now: the server waits for open ones
                with contextlib.suppress(OSError):
                    events.shutdown(socket.SHUT_RDWR)
            if self._http is not None:  # no idle keep-alive connection holds the server up
                with contextlib.suppress(Exception):
                    self._http.close()
            self._stop_server()
            if listener is not None:
                listener.join(timeout=2)
            if self.proc is not None:
                self._reader.join(timeout=5)
            self._close_lines()

    def _open_session(self) -> None:
        if self.resume_id:
            found = self.call("GET", f"/session/{self.resume_id}", ok=(400, 404))
            if isinstance(found, dict) and found.get("id"):
                self.session_id = as_str(found["id"])
                if self.rules:
                    with contextlib.suppress(ServerError):
                        self.call("PATCH", f"/session/{self.session_id}",
                                  {"permission": self.rules})  # fmt: skip
        if self.session_id is None:
            body: dict[str, Any] = {}
            if self.rules:
                body["permission"] = self.rules
            made = as_dict(self.call("POST", "/session", body))
            self.session_id = as_str(made.get("id")) or None
            if not self.session_id:
                raise ServerError("POST /session gave no session id")
        self._family.add(self.session_id)

    def _prompt_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"parts": [{"type": "text", "text": self.prompt}]}
        if self.model and "/" in self.model:
            provider, _, model = self.model.partition("/")
            body["model"] = {"providerID": provider, "modelID": model}
        if self.agent:
            body["agent"] = self.agent
        if self.variant:
            body["variant"] = self.variant
        return body


# ---- entries from the transcript -----------------------------------------------------------

_REPLY_PATH = re.compile(r"^/permission/([^/]+)/reply$")
_PART_KINDS = {"text": "text", "reasoning": "reasoning", "tool": "tool_use"}


class OpencodeServerNormalizer(OpencodeNormalizer):
    """Entries from a server transcript: opencode's parts map as in `run --format json`."""

    system_lines_as_messages = True

    stderr_ignore: ClassVar[tuple[re.Pattern[str], ...]] = (
        *OpencodeNormalizer.stderr_ignore,
        re.compile(r"OPENCODE_SERVER_PASSWORD is not set"),
        re.compile(r"^opencode server listening on "),
    )

    def __init__(self) -> None:
        super().__init__()
        self._root: str | None = None
        self._roles: dict[str, str] = {}  # messageID -> user / assistant
        self._kinds: dict[str, str] = {}  # partID -> part type
        self._asked: dict[str, str] = {}  # permission id -> callID
        self._pending: set[str] = set()  # callIDs waiting for an answer
        self._steps_seen: set[str] = set()

    def on_event(self, obj: dict[str, Any]) -> None:
        mark = obj.get("aura")
        if isinstance(mark, str):
            self._ours(mark, obj)
            return
        kind = as_str(obj.get("type"))
        props = as_dict(obj.get("properties"))
        sid = as_str(props.get("sessionID"))
        child = bool(sid and self._root and sid != self._root)
        if kind == "message.updated":
            info = as_dict(props.get("info"))
            if info.get("id"):
                self._roles[as_str(info["id"])] = as_str(info.get("role"))
        elif kind == "message.part.updated":
            self._part(as_dict(props.get("part")), child)
        elif kind == "message.part.delta":
            self._delta(props, child)
        elif kind == "permission.asked":
            self._permission(props)
        elif kind == "permission.replied":
            call_id = self._asked.get(as_str(props.get("requestID")))
            if call_id is not None:
                self._pending.discard(call_id)
                tool = self.tool(call_id)
                if tool is not None and tool.status == PENDING_APPROVAL:
                    tool.status = DENIED if props.get("reply") == "reject" else CREATED
                    self.tool_changed(call_id)
        elif kind == "session.error":
            err = as_dict(props.get("error"))
            name = as_str(err.get("name"))
            if name == "MessageAbortedError":
                self.append(SystemMessage("aborted"))
            else:
                self.error(as_str(as_dict(err.get("data")).get("message")) or name)
        # anything else (session.updated, session.diff, plugin.added, ...) stays in the raw log

    def _part(self, part: dict[str, Any], child: bool) -> None:
        ptype = as_str(part.get("type"))
        pid = as_str(part.get("id"))
        if pid:
            self._kinds[pid] = ptype
        if self._roles.get(as_str(part.get("messageID"))) == "user":
            return  # the prompt itself
        if ptype in ("text", "reasoning"):
            if not child:
                super().on_event({"type": ptype, "part": part})
        elif ptype == "tool":
            super().on_event({"type": "tool_use", "part": part})
            call_id = as_str(part.get("callID") or part.get("id"))
            tool = self.tool(call_id)
            if tool is not None and call_id in self._pending and tool.status == CREATED:
                tool.status = PENDING_APPROVAL
        elif ptype == "step-finish" and not child and pid not in self._steps_seen:
            self._steps_seen.add(pid)
            super().on_event({"type": "step_finish", "part": part})

    def _delta(self, props: dict[str, Any], child: bool) -> None:
        pid = as_str(props.get("partID"))
        kind = self._kinds.get(pid)
        if child or props.get("field") != "text" or kind not in ("text", "reasoning"):
            return
        if self._roles.get(as_str(props.get("messageID"))) == "user":
            return
        delta = as_str(props.get("delta"))
        at = self._parts.get(pid)
        if at is None:
            if delta.strip():
                entry = AssistantMessage(delta) if kind == "text" else Thinking(delta)
                self._parts[pid] = self.append(entry)
            return
        entry_at = self.entries[at]
        if isinstance(entry_at, (AssistantMessage, Thinking)):
            entry_at.add(delta)
            self.replace(at)

    def _permission(self, props: dict[str, Any]) -> None:
        permission = as_str(props.get("permission")) or "tool"
        call_id = as_str(as_dict(props.get("tool")).get("callID")) or f"perm-{props.get('id')}"
        self._asked[as_str(props.get("id"))] = call_id
        self._pending.add(call_id)
        tool = self.tool(call_id)
        if tool is None:
            action = opencode_action(permission, props.get("metadata"))
            self.add_tool(ToolUse(call_id, permission, action, PENDING_APPROVAL))
        elif tool.status not in (SUCCESS, FAILED, DENIED):
            tool.status = PENDING_APPROVAL
            self.tool_changed(call_id)

    def _ours(self, mark: str, obj: dict[str, Any]) -> None:
        method, path = as_str(obj.get("method")), as_str(obj.get("path"))
        body = obj.get("body")
        if mark == "server":
            url = as_str(obj.get("url"))
            text = "opencode server started at" if obj.get("started") else "attached to opencode at"
            self.append(SystemMessage(f"{text} {url}"))
        elif mark == "request":
            reply = _REPLY_PATH.match(path)
            if reply:
                self._our_reply(reply.group(1), as_dict(body))
            elif path.endswith("/abort"):
                self.append(SystemMessage("cancel requested"))
        elif mark == "response":
            status = obj.get("status")
            ok = isinstance(status, int) and status < 400
            if method == "GET" and path.startswith("/session/"):
                sid = path.rsplit("/", 1)[-1]
                if ok:
                    self._root = sid
                    self.set_session_id(sid)
                    self.append(SystemMessage(f"resumed session {sid}"))
                else:
                    why = status if status is not None else as_str(obj.get("error"))
                    self.append(SystemMessage(f"could not resume {sid} ({why}); a new session"))
            elif method == "POST" and path == "/session" and ok:
                sid = as_str(as_dict(body).get("id"))
                self._root = sid or self._root
                self.set_session_id(sid)
            elif not ok:
                detail = as_dict(as_dict(body).get("data")).get("message") or as_dict(body).get(
                    "message"
                )
                why = f"{status} {as_str(detail)}".strip() if status else as_str(obj.get("error"))
                self.error(f"{method} {path}: {why}")

    def _our_reply(self, rid: str, body: dict[str, Any]) -> None:
        call_id = self._asked.get(rid)
        tool = self.tool(call_id) if call_id else None
        rejected = body.get("reply") == "reject"
        if call_id is not None:
            self._pending.discard(call_id)
            if tool is not None and tool.status == PENDING_APPROVAL:
                tool.status = DENIED if rejected else CREATED
                self.tool_changed(call_id)
        if not rejected:
            return
        what = describe_action(tool.action, tool.tool_name) if tool else "a tool call"
        reason = as_str(body.get("message"))
        self.append(SystemMessage(f"denied {what}" + (f": {reason}" if reason else "")))


class OpencodeTranscripts(DualNormalizer):
    """opencode's `run --format json`, ACP, or server transcripts, told apart by the first
    stdout line."""

    def __init__(self) -> None:
        super().__init__(OpencodeNormalizer(), "opencode")

    def feed(self, stream: str, text: str) -> list[EntryPatch]:
        if self._impl is None and stream == "stdout" and text.lstrip().startswith(MARK):
            self._cli = OpencodeServerNormalizer()
        return super().feed(stream, text)
