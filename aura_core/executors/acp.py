"""Agent Client Protocol (ACP) client: run an agent (`qwen --acp`, `opencode acp`, `copilot --acp`)
as a JSON-RPC 2.0 peer over its stdio, and derive entries from the transcript.

A small client of our own rather than the `acp` package: the runner consumes raw lines, so every
JSON-RPC message in both directions must be kept exactly as sent or received, in order, with
agent-to-client requests (permissions, file access) answered from plain threads while the runner
drains lines. The SDK's asyncio connection and pydantic models hide the wire text we must store
and would need a second event loop thread; this file is ~one screen of JSON-RPC plus the policy.

Direction is visible in the transcript itself: our requests use string ids `aura-N` (agents echo
them back), so a response with an `aura-` id answers us, any other response is ours to the agent.
Client to agent: initialize (fs read/write, no terminal), session/load when advertised and a
resume id is given (else session/new), optional model selection, session/prompt, session/cancel.
Agent to client: session/update (merged by toolCallId), session/request_permission (answered by
policy, or by the person through `RunOptions.approver` in supervised mode), fs/read_text_file and
fs/write_text_file confined to the working directory (no `..`, nothing outside, no symlink out).
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from pathlib import Path
from typing import Any

from aura_core import __version__
from aura_core.executors.agent_cli import Level, permission_level
from aura_core.executors.base import (
    ApprovalRequest,
    Approver,
    LaunchSpec,
    RunRequest,
    ask_person,
)
from aura_core.executors.duplex import ID_PREFIX, AgentGone, JsonRpcRun, RpcError
from aura_core.executors.entries import (
    CREATED,
    DENIED,
    FAILED,
    NOT_LOGGED_IN,
    PENDING_APPROVAL,
    SUCCESS,
    Action,
    AssistantMessage,
    CommandRun,
    EntryPatch,
    FileEdit,
    FileRead,
    Generic,
    JsonlNormalizer,
    Search,
    SystemMessage,
    Thinking,
    Todo,
    TodoItem,
    TokenUsage,
    ToolUse,
    UserMessage,
    WebFetch,
    as_dict,
    as_key,
    as_list,
    as_str,
    classify_setup,
    describe_action,
    text_of,
    to_int,
    unified_diff,
)
from aura_core.executors.settings import approver_of, setting

PROTOCOL_VERSION = 1
INIT_TIMEOUT_S = 90.0  # node agents take a few seconds to start; first runs unpack things
SETUP_TIMEOUT_S = 120.0  # session/new, session/load
CANCEL_GRACE_S = 3.0  # after session/cancel, before the signal ladder
RESULT_KEEP = 4000


def _within(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def confine(root: Path, path: str) -> Path:
    """The real path of `path` if it stays inside `root`; PermissionError otherwise. Refuses
    `..` anywhere, absolute paths outside the root and symlinks (at any level) leading out."""
    if not path or "\x00" in path:
        raise PermissionError("empty or invalid path")
    p = Path(path)
    if ".." in p.parts:
        raise PermissionError(f"{path}: '..' is not allowed")
    if not p.is_absolute():
        p = root / p
    root_real = root.resolve()
    lexical = Path(os.path.normpath(p))
    if not (_within(lexical, Path(os.path.normpath(root))) or _within(lexical, root_real)):
        raise PermissionError(f"{path} is outside the workspace {root}")
    real = p.resolve()
    if not _within(real, root_real):
        raise PermissionError(f"{path} leads outside the workspace (to {real})")
    return real


# ---- the permission policy ---------------------------------------------------------------------


class Policy:
    """How session/request_permission and fs writes are answered."""

    def __init__(self, *, approver: Approver | None, allow: bool, agent: str = "") -> None:
        self.approver = approver  # supervised: ask the person
        self.allow = allow  # without an approver: allow (the default level) or refuse
        self.agent = agent

    @property
    def writes_ok(self) -> bool:
        return self.allow or self.approver is not None

    def decide(self, params: dict[str, Any]) -> dict[str, Any]:
        options = [o for o in as_list(params.get("options")) if isinstance(o, dict)]

        def pick(*kinds: str) -> str | None:
            for kind in kinds:
                for o in options:
                    if o.get("kind") == kind and as_key(o.get("optionId")) is not None:
                        return str(o["optionId"])
            return None

        reason: str | None = None
        if self.approver is not None:
            call = as_dict(params.get("toolCall"))
            action = acp_action(call)
            req = ApprovalRequest(
                tool_name=as_str(call.get("title")) or as_str(call.get("kind")) or "tool",
                title=describe_action(action, as_str(call.get("title"))),
                kind=as_str(call.get("kind")) or None,
                tool_id=as_str(call.get("toolCallId")) or None,
                details=call.get("rawInput"),
                options=[as_str(o.get("kind")) for o in options],
                agent=self.agent,
            )
            decision = ask_person(self.approver, req)
            if decision.approve:
                order = ("allow_always", "allow_once") if decision.always else ("allow_once",)
                choice = pick(*order, "allow_always")
            else:
                choice = pick("reject_once", "reject_always")
                reason = decision.reason
        elif self.allow:
            choice = pick("allow_once", "allow_always")
        else:
            choice = pick("reject_once", "reject_always")
            reason = "aura runs this agent read-only (--auto-approve false, nobody to ask)"
        if choice is None:
            return {"outcome": {"outcome": "cancelled"}}
        result: dict[str, Any] = {"outcome": {"outcome": "selected", "optionId": choice}}
        if reason:
            result["_meta"] = {"aura": {"reason": reason}}
        return result


# ---- the run --------------------------------------------------------------------------------


class AcpRun(JsonRpcRun):
    """One prompt turn over ACP, as an AgentRun: every message is a raw "stdout" line."""

    label = "ACP"

    def __init__(
        self,
        spec: LaunchSpec,
        cwd: Path,
        env: dict[str, str],
        *,
        prompt: str,
        policy: Policy,
        resume_id: str | None = None,
        model: str | None = None,
        mode: str | None = None,
    ) -> None:
        super().__init__(spec, cwd, env)
        self.prompt = prompt
        self.policy = policy
        self.resume_id = resume_id
        self.model = model
        self.mode = mode
        self.session_id: str | None = None
        self.stop_reason: str | None = None
        self._prompting = threading.Event()
        self.start_threads("acp")

    def interrupt(self) -> None:
        self.interrupted = True
        if self.session_id and self._prompting.is_set() and not self._gone.is_set():
            with contextlib.suppress(OSError, ValueError, AgentGone):
                self.notify("session/cancel", {"sessionId": self.session_id})
            timer = threading.Timer(CANCEL_GRACE_S, self.proc.interrupt)
            timer.daemon = True
            timer.start()
        else:
            self.proc.interrupt()

    # -- agent to client requests --------------------------------------------------------------
    def _serve(self, method: str, params: dict[str, Any], seq: int) -> Any:
        if method == "session/request_permission":
            self.wait_shown(seq)
            return self.policy.decide(params)
        if method == "fs/read_text_file":
            return {"content": self._read_file(params)}
        if method == "fs/write_text_file":
            self._write_file(params)
            return None
        raise NotImplementedError(method)

    def _read_file(self, params: dict[str, Any]) -> str:
        path = confine(self.cwd, as_str(params.get("path")))
        text = path.read_text(encoding="utf-8", errors="replace")
        line = to_int(params.get("line"))
        limit = to_int(params.get("limit"))
        if line is None and limit is None:
            return text
        lines = text.splitlines(keepends=True)
        start = max((line or 1) - 1, 0)
        end = start + limit if limit is not None else len(lines)
        return "".join(lines[start:end])

    def _write_file(self, params: dict[str, Any]) -> None:
        if not self.policy.writes_ok:
            raise PermissionError("this run is read-only")
        path = confine(self.cwd, as_str(params.get("path")))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(as_str(params.get("content")), encoding="utf-8")

    # -- the conversation ----------------------------------------------------------------------
    def _turn_over(self) -> None:
        self._prompting.clear()

    def _converse(self) -> int:
        init = as_dict(
            self.request(
                "initialize",
                {
                    "protocolVersion": PROTOCOL_VERSION,
                    "clientCapabilities": {
                        "fs": {"readTextFile": True, "writeTextFile": True},
                        "terminal": False,
                    },
                    "clientInfo": {"name": "aura", "version": __version__},
                },
                INIT_TIMEOUT_S,
            )
        )
        caps = as_dict(init.get("agentCapabilities"))
        cwd = str(self.cwd)
        session: dict[str, Any] | None = None
        if self.resume_id:
            if caps.get("loadSession"):
                try:
                    params = {"sessionId": self.resume_id, "cwd": cwd, "mcpServers": []}
                    session = as_dict(self.request("session/load", params, SETUP_TIMEOUT_S))
                    self.session_id = self.resume_id
                except RpcError:
                    session = None  # the failed load is in the transcript; start afresh
            else:
                self.note(f"ACP: the agent cannot load sessions; {self.resume_id} starts afresh")
        if self.session_id is None:
            params = {"cwd": cwd, "mcpServers": []}
            session = as_dict(self.request("session/new", params, SETUP_TIMEOUT_S))
            self.session_id = as_str(session.get("sessionId")) or None
            if not self.session_id:
                raise RpcError(-32603, "session/new gave no sessionId")
        self._select(session or {})
        if self.interrupted:
            return 130
        self._prompting.set()
        result = as_dict(
            self.request(
                "session/prompt",
                {"sessionId": self.session_id, "prompt": [{"type": "text", "text": self.prompt}]},
            )
        )
        self.stop_reason = as_str(result.get("stopReason")) or None
        if self.stop_reason == "cancelled":
            return 130
        return 0 if self.stop_reason != "refusal" else 1

    def _select(self, session: dict[str, Any]) -> None:
        """Model and mode, when asked for and the agent offers them by id."""
        sid = self.session_id
        for want, category in ((self.model, "model"), (self.mode, "mode")):
            if not want:
                continue
            done = False
            for opt in as_list(session.get("configOptions")):
                o = as_dict(opt)
                if o.get("id") != category and o.get("category") != category:
                    continue
                values = [as_str(as_dict(v).get("value")) for v in as_list(o.get("options"))]
                value = _match(want, values)
                if value is not None:
                    params = {"sessionId": sid, "configId": o.get("id"), "value": value}
                    with contextlib.suppress(RpcError):
                        self.request("session/set_config_option", params, SETUP_TIMEOUT_S)
                        done = True
                break
            if done:
                continue
            if category == "model":
                models = as_dict(session.get("models"))
                available = as_list(models.get("availableModels"))
                ids = [as_str(as_dict(m).get("modelId")) for m in available]
                value = _match(want, ids)
                if value is not None and value != models.get("currentModelId"):
                    with contextlib.suppress(RpcError):
                        self.request("session/set_model", {"sessionId": sid, "modelId": value})
            else:
                modes = as_dict(session.get("modes"))
                ids = [as_str(as_dict(m).get("id")) for m in as_list(modes.get("availableModes"))]
                value = _match(want, ids)
                if value is not None and value != modes.get("currentModeId"):
                    with contextlib.suppress(RpcError):
                        self.request("session/set_mode", {"sessionId": sid, "modeId": value})


def _match(want: str, values: list[str]) -> str | None:
    """`fake-model` matches `fake/fake-model` and `$runtime|openai|fake-model(openai)`."""
    if want in values:
        return want
    low = want.lower()
    for v in values:
        lv = v.lower()
        if lv.endswith("/" + low) or lv.endswith("|" + low) or f"|{low}(" in lv:
            return v
    return None


# ---- entries from the transcript -----------------------------------------------------------


def _path_of(call: dict[str, Any]) -> str:
    for loc in as_list(call.get("locations")):
        path = as_str(as_dict(loc).get("path"))
        if path:
            return path
    raw = as_dict(call.get("rawInput"))
    for key in ("path", "file_path", "filePath", "absolute_path", "filename", "dir_path"):
        if raw.get(key):
            return as_str(raw[key])
    return ""


def _diff_of(call: dict[str, Any]) -> tuple[str, str | None]:
    for item in as_list(call.get("content")):
        c = as_dict(item)
        if c.get("type") == "diff":
            path = as_str(c.get("path"))
            old = c.get("oldText")
            new = as_str(c.get("newText"))
            return path, unified_diff(path, as_str(old), new)
    return "", None


def acp_action(call: dict[str, Any]) -> Action:
    """The normalised action of an ACP tool call (merged fields), from its kind and input."""
    kind = as_str(call.get("kind"))
    title = as_str(call.get("title"))
    raw = call.get("rawInput")
    rd = as_dict(raw)
    if kind == "execute":
        cmd = rd.get("command") or rd.get("cmd")
        if isinstance(cmd, list):
            cmd = " ".join(map(str, cmd))
        return CommandRun(as_str(cmd) or title)
    if kind == "read":
        return FileRead(_path_of(call) or title)
    if kind in ("edit", "delete", "move"):
        path, diff = _diff_of(call)
        change = {"delete": "delete", "move": "update"}.get(kind, "update")
        return FileEdit(path or _path_of(call) or title, diff, change)
    if kind == "search":
        return Search(as_str(rd.get("pattern") or rd.get("query")) or title)
    if kind == "fetch":
        return WebFetch(as_str(rd.get("url")) or title)
    return Generic(title or kind or "tool", raw if raw not in (None, {}) else None)


def _content_text(call: dict[str, Any]) -> str:
    parts = []
    for item in as_list(call.get("content")):
        c = as_dict(item)
        if c.get("type") == "content":
            parts.append(text_of(c.get("content")))
    return "\n".join(p for p in parts if p)


_STATUS = {"completed": SUCCESS, "failed": FAILED, "pending": CREATED, "in_progress": CREATED}


class AcpNormalizer(JsonlNormalizer):
    """Entries from an ACP transcript (both directions, as AcpRun records it)."""

    system_lines_as_messages = True

    agent = "ACP agent"
    stderr_ignore = (
        re.compile(r"^\[perf\] "),  # qwen's event-loop stall reports
        re.compile(r"^Ripgrep not available"),
    )

    def __init__(self, agent: str = "ACP agent") -> None:
        super().__init__()
        self.agent = agent
        self._ours: dict[int | str, tuple[str, dict[str, Any]]] = {}
        self._theirs: dict[int | str, tuple[str, dict[str, Any]]] = {}
        self._calls: dict[str, dict[str, Any]] = {}  # toolCallId -> merged fields
        self._loading = False
        self._replayed = 0
        self._stream_at: int | None = None
        self.model: str | None = None
        self._context: int | None = None

    # -- dispatch -----------------------------------------------------------------------------
    def on_system(self, text: str) -> None:
        self._stream_at = None
        super().on_system(text)

    def on_event(self, obj: dict[str, Any]) -> None:
        method = obj.get("method")
        rid = as_key(obj.get("id"))
        params = as_dict(obj.get("params"))
        if isinstance(method, str):
            ours = (isinstance(rid, str) and rid.startswith(ID_PREFIX)) or (
                rid is None and method == "session/cancel"
            )
            if ours:
                self._our_request(rid, method, params)
            elif method == "session/update":
                self._update(as_dict(params.get("update")))
            elif rid is not None:
                self._theirs[rid] = (method, params)
                if method == "session/request_permission":
                    self._permission(params)
            return  # vendor notifications: kept in the raw log only
        if rid is None:
            return
        if isinstance(rid, str) and rid.startswith(ID_PREFIX):
            sent = self._ours.pop(rid, None)
            if sent is not None:
                self._agent_response(sent[0], sent[1], obj)
        else:
            asked = self._theirs.pop(rid, None)
            if asked is not None:
                self._our_response(asked[0], asked[1], obj)

    # -- what we sent ------------------------------------------------------------------------
    def _our_request(self, rid: int | str | None, method: str, params: dict[str, Any]) -> None:
        if rid is not None:
            self._ours[rid] = (method, params)
        if method == "session/load":
            self.set_session_id(params.get("sessionId"))
            self._loading = True
            self._replayed = 0
        elif method == "session/cancel":
            self._stream_at = None
            self.append(SystemMessage("cancel requested"))

    def _agent_response(self, method: str, params: dict[str, Any], obj: dict[str, Any]) -> None:
        self._stream_at = None
        err = obj.get("error")
        result = as_dict(obj.get("result"))
        if method == "session/load":
            self._loading = False
            sid = as_str(params.get("sessionId"))
            if err is not None:
                msg = as_str(as_dict(err).get("message"))
                self.agent_session_id = None
                self.append(SystemMessage(f"could not resume {sid}: {msg}; starting a new one"))
            else:
                self.append(
                    SystemMessage(f"resumed session {sid} ({self._replayed} earlier updates)")
                )
                self._models(result)
            return
        if err is not None:
            e = as_dict(err)
            msg = as_str(e.get("message")) or f"{method} failed"
            detail = as_str(as_dict(e.get("data")).get("message")) if e.get("data") else ""
            text = f"{msg}: {detail}" if detail and detail not in msg else msg
            if method in ("session/set_model", "session/set_mode", "session/set_config_option"):
                self.append(SystemMessage(f"warning: {method}: {text}"))
                return
            setup = classify_setup(text)
            if setup is None and "auth" in text.lower():
                setup = NOT_LOGGED_IN
            self.error(text, setup)
            return
        if method == "initialize":
            info = as_dict(result.get("agentInfo"))
            name = as_str(info.get("title") or info.get("name")) or self.agent
            version = as_str(info.get("version"))
            self.append(SystemMessage(f"{name} {version} over ACP".replace("  ", " ")))
        elif method == "session/new":
            self.set_session_id(result.get("sessionId"))
            self._models(result)
        elif method == "session/prompt":
            reason = as_str(result.get("stopReason"))
            if reason and reason != "end_turn":
                self.append(SystemMessage(f"stopped: {reason.replace('_', ' ')}"))
            usage = as_dict(result.get("usage"))
            if usage or self._context:
                self.append(
                    TokenUsage(
                        input_tokens=to_int(usage.get("inputTokens")),
                        output_tokens=to_int(usage.get("outputTokens")),
                        cache_read_tokens=to_int(usage.get("cachedReadTokens")),
                        cache_write_tokens=to_int(usage.get("cachedWriteTokens")),
                        reasoning_tokens=to_int(usage.get("thoughtTokens")),
                        total_tokens=to_int(usage.get("totalTokens")),
                        context_window=self._context,
                        model=self.model,
                    )
                )

    def _models(self, result: dict[str, Any]) -> None:
        current = as_str(as_dict(result.get("models")).get("currentModelId"))
        for opt in as_list(result.get("configOptions")):
            o = as_dict(opt)
            if o.get("category") == "model" or o.get("id") == "model":
                current = as_str(o.get("currentValue")) or current
        if current and current != self.model:
            self.model = current
            self.append(SystemMessage(f"model {current}"))

    # -- what we answered ------------------------------------------------------------------
    def _our_response(self, method: str, params: dict[str, Any], obj: dict[str, Any]) -> None:
        self._stream_at = None
        err = as_dict(obj.get("error"))
        if method == "session/request_permission":
            call_id = as_str(as_dict(params.get("toolCall")).get("toolCallId"))
            outcome = as_dict(as_dict(obj.get("result")).get("outcome"))
            option = as_str(outcome.get("optionId"))
            kinds = {
                as_str(as_dict(o).get("optionId")): as_str(as_dict(o).get("kind"))
                for o in as_list(params.get("options"))
            }
            allowed = outcome.get("outcome") == "selected" and kinds.get(option, "").startswith(
                "allow"
            )
            tool = self.tool(call_id)
            if tool is not None:
                tool.status = CREATED if allowed else DENIED
                self.tool_changed(call_id)
            if not allowed:
                meta = as_dict(as_dict(as_dict(obj.get("result")).get("_meta")).get("aura"))
                reason = as_str(meta.get("reason"))
                what = describe_action(tool.action, tool.tool_name) if tool else "a tool call"
                self.append(SystemMessage(f"denied {what}" + (f": {reason}" if reason else "")))
        elif method.startswith("fs/") and err:
            path, why = as_str(params.get("path")), as_str(err.get("message"))
            self.append(SystemMessage(f"{method} {path}: {why}"))

    # -- session/update ------------------------------------------------------------------
    def _update(self, u: dict[str, Any]) -> None:
        kind = u.get("sessionUpdate")
        if self._loading:
            self._replayed += 1
            return  # the resumed conversation's history: the earlier session shows it
        if kind == "agent_message_chunk":
            self._chunk(AssistantMessage, text_of(u.get("content")))
            return
        if kind == "agent_thought_chunk":
            self._chunk(Thinking, text_of(u.get("content")))
            return
        self._stream_at = None
        if kind == "tool_call":
            self._tool(u, fresh=True)
        elif kind == "tool_call_update":
            self._tool(u, fresh=False)
        elif kind == "plan":
            items = [as_dict(e) for e in as_list(u.get("entries"))]
            todo = Todo([TodoItem(as_str(e.get("content")), as_str(e.get("status")) or "pending")
                         for e in items])  # fmt: skip
            self.add_tool(ToolUse("plan", "plan", todo, SUCCESS))
        elif kind == "user_message_chunk":
            text = text_of(u.get("content"))
            if text.strip():
                self.append(UserMessage(text))
        elif kind == "usage_update":
            self._context = to_int(u.get("size")) or self._context

    def _chunk(self, cls: type[AssistantMessage] | type[Thinking], text: str) -> None:
        if not text:
            return
        at = self._stream_at
        if at is not None and at == len(self.entries) - 1 and type(self.entries[at]) is cls:
            entry = self.entries[at]
            assert isinstance(entry, (AssistantMessage, Thinking))
            entry.add(text)
            self.replace(at)
        else:
            self._stream_at = self.append(cls(text))

    def _merge(self, u: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        call_id = as_str(u.get("toolCallId")) or f"tool-{len(self.entries)}"
        data = self._calls.setdefault(call_id, {})
        for key, value in u.items():
            if key != "sessionUpdate" and value is not None:
                data[key] = value
        return call_id, data

    def _tool(self, u: dict[str, Any], *, fresh: bool) -> None:
        call_id, data = self._merge(u)
        action = acp_action(data)
        name = as_str(data.get("title")) or as_str(data.get("kind")) or "tool"
        tool = self.tool(call_id)
        status = _STATUS.get(as_str(data.get("status")), CREATED)
        if tool is None:
            self.add_tool(ToolUse(call_id, name, action, status))
            tool = self.tool(call_id)
            assert tool is not None
        else:
            if tool.status == DENIED and status in (FAILED, CREATED):
                status = DENIED
            elif tool.status == PENDING_APPROVAL and status == CREATED:
                status = PENDING_APPROVAL
            tool.action = action
            tool.tool_name = name
            tool.status = status
        self._results(tool, data)
        self.tool_changed(call_id)

    def _results(self, tool: ToolUse, data: dict[str, Any]) -> None:
        text = _content_text(data)
        raw_out = data.get("rawOutput")
        ro = as_dict(raw_out)
        action = tool.action
        if isinstance(action, CommandRun):
            out = text or as_str(ro.get("output") or ro.get("stdout") or "") or None
            action.output = out[:RESULT_KEEP] if out else None
            meta = as_dict(ro.get("metadata"))
            code = to_int(ro.get("exitCode"))
            if code is None:
                code = to_int(ro.get("exit_code"))
            if code is None:
                code = to_int(meta.get("exit"))
            if code is None and tool.status == SUCCESS:
                code = 0
            action.exit_code = code
        elif isinstance(action, Generic):
            result = text or (as_str(raw_out) if raw_out not in (None, {}) else "")
            action.result = result[:RESULT_KEEP] if result else None

    def _permission(self, params: dict[str, Any]) -> None:
        self._stream_at = None
        call = as_dict(params.get("toolCall"))
        call_id, data = self._merge(call)
        tool = self.tool(call_id)
        if tool is None:
            name = as_str(data.get("title")) or as_str(data.get("kind")) or "tool"
            self.add_tool(ToolUse(call_id, name, acp_action(data), PENDING_APPROVAL))
        else:
            tool.action = acp_action(data)
            tool.status = PENDING_APPROVAL
            self.tool_changed(call_id)


class DualNormalizer:
    """An agent's own JSONL or an ACP transcript, told apart by the first stdout line, so stored
    sessions of either transport re-render with `get_executor(name).normalizer()`."""

    def __init__(self, cli: JsonlNormalizer, agent: str) -> None:
        self._cli = cli
        self._agent = agent
        self._impl: JsonlNormalizer | None = None
        self._held: list[tuple[str, str]] = []

    @property
    def agent_session_id(self) -> str | None:
        return self._impl.agent_session_id if self._impl is not None else None

    @property
    def active(self) -> JsonlNormalizer | None:
        return self._impl

    def feed(self, stream: str, text: str) -> list[EntryPatch]:
        if self._impl is None:
            if stream != "stdout" or not text.strip():
                self._held.append((stream, text))
                return []
            head = text.lstrip()[:40]
            acp = head.startswith("{") and '"jsonrpc"' in head
            self._impl = AcpNormalizer(self._agent) if acp else self._cli
            out: list[EntryPatch] = []
            for s, t in self._held:
                out.extend(self._impl.feed(s, t))
            self._held.clear()
            out.extend(self._impl.feed(stream, text))
            return out
        return self._impl.feed(stream, text)

    def finish(self) -> list[EntryPatch]:
        out: list[EntryPatch] = []
        if self._impl is None:
            self._impl = self._cli
            for s, t in self._held:
                out.extend(self._impl.feed(s, t))
            self._held.clear()
        out.extend(self._impl.finish())
        return out


# ---- for adapters ---------------------------------------------------------------------------


def wants_acp(request: RunRequest) -> bool:
    """ACP when asked for (`transport` setting), or in supervised mode: only ACP relays the
    agent's permission requests to the person."""
    transport = (setting(request, "transport") or "").lower()
    if transport:
        return transport == "acp"
    return approver_of(request) is not None


def start_acp(agent: str, spec: LaunchSpec, request: RunRequest) -> AcpRun:
    level = permission_level(request)
    policy = Policy(approver=approver_of(request), allow=level >= Level.workspace, agent=agent)
    return AcpRun(
        spec,
        Path(request.cwd),
        request.env,
        prompt=request.full_prompt,
        policy=policy,
        resume_id=request.resume_id,
        model=request.model,
        mode=setting(request, "acp_mode"),
    )
