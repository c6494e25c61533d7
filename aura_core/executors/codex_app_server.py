"""Codex as a long-lived `codex app-server` JSON-RPC peer over its stdio (supervised mode).

`codex exec` never asks for approval, so when a person is there to ask (`--auto-approve false`
with an approver) or the `transport` setting is `app-server`, codex runs as `codex app-server`
and we are its client. Verified against @openai/codex 0.169.0 (`codex app-server generate-ts`
and runs against the scripted model server):

- The wire is JSON-RPC without the `"jsonrpc": "2.0"` member, one message per line. The server's
  own request ids are integers (0, 1, ...); ours are strings `aura-N`.
- Client to server: `initialize {clientInfo}` -> `{userAgent, codexHome, ...}`, then the
  notification `initialized`; `thread/start {cwd, model, approvalPolicy, sandbox}` (or
  `thread/resume {threadId, ...}` to continue a stored thread in a new process) ->
  `{thread: {id, ...}, model, ...}`; `turn/start {threadId, input: [{type: "text", text}]}` ->
  `{turn: {id, status: "inProgress"}}`; `turn/interrupt {threadId, turnId}`.
- Server to client notifications: `thread/started`, `turn/started`, `item/started`,
  `item/completed` (items `userMessage`, `agentMessage`, `reasoning`, `commandExecution`,
  `fileChange`, `mcpToolCall`, `webSearch`, ...), `item/agentMessage/delta`,
  `item/reasoning/summaryTextDelta`, `thread/tokenUsage/updated`, `warning`, `configWarning`,
  `error {error, willRetry}`, `serverRequest/resolved`, and `turn/completed {turn: {status:
  completed|interrupted|failed, error}}`, which ends our turn.
- Server to client requests: `item/commandExecution/requestApproval {itemId, command, cwd,
  availableDecisions}` and `item/fileChange/requestApproval {itemId, reason, grantRoot}`, each
  answered `{decision: accept|acceptForSession|decline|cancel}` (`acceptForSession` works even
  when `availableDecisions` does not list it; unknown members of the answer are ignored, so the
  person's reason rides along as `_meta.aura.reason`). The older `execCommandApproval` /
  `applyPatchApproval` take `approved|approved_for_session|{denied: {rejection}}|abort`.
- Approval policy `untrusted` makes codex ask before any command outside its known-safe list
  (`on-request` leaves it to the model, which in practice never asks); the sandbox stays
  workspace-write. Without a person the policy is `never` and the sandbox follows the level.
  The `approval_policy` setting (`--var AURA_APPROVAL_POLICY=on-request`) picks another policy.
- No `apply_patch` tool is offered to an unknown model (the scripted server's `fake-model`), so
  file-change approvals follow the generated schema but were not seen on the wire here.

The transcript (our messages and codex's, in order, all raw "stdout" lines) re-renders through
`CodexAppServerNormalizer`, which also still reads `codex exec --json` sessions.
"""

from __future__ import annotations

import contextlib
import re
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aura_core import __version__
from aura_core.executors.agent_cli import Level, permission_level
from aura_core.executors.base import (
    ApprovalRequest,
    Approver,
    LaunchSpec,
    RunRequest,
    ask_person,
)
from aura_core.executors.codex import CodexNormalizer, unwrap_shell
from aura_core.executors.duplex import ID_PREFIX, AgentGone, JsonRpcRun, RpcError
from aura_core.executors.entries import (
    CREATED,
    DENIED,
    FAILED,
    PENDING_APPROVAL,
    SUCCESS,
    Action,
    AssistantMessage,
    CommandRun,
    FileEdit,
    Generic,
    Plan,
    Search,
    SystemMessage,
    Thinking,
    TokenUsage,
    ToolUse,
    as_dict,
    as_key,
    as_list,
    as_str,
    describe_action,
    text_of,
    to_int,
)
from aura_core.executors.settings import approver_of, setting

if TYPE_CHECKING:
    from aura_core.executors.codex import CodexExecutor

INIT_TIMEOUT_S = 90.0
SETUP_TIMEOUT_S = 120.0  # thread/start, thread/resume (MCP servers start here)
CANCEL_GRACE_S = 3.0  # after turn/interrupt, before the signal ladder
RESULT_KEEP = 4000

COMMAND_APPROVAL = "item/commandExecution/requestApproval"
FILE_APPROVAL = "item/fileChange/requestApproval"
LEGACY_COMMAND_APPROVAL = "execCommandApproval"
LEGACY_FILE_APPROVAL = "applyPatchApproval"
APPROVALS = (COMMAND_APPROVAL, FILE_APPROVAL, LEGACY_COMMAND_APPROVAL, LEGACY_FILE_APPROVAL)
NOBODY = "aura runs this agent read-only (--auto-approve false, nobody to ask)"


# ---- what codex is told ------------------------------------------------------------------------


def wants_app_server(request: RunRequest) -> bool:
    """app-server when asked for (`transport` setting), or in supervised mode: only app-server
    relays codex's approval requests to the person."""
    transport = (setting(request, "transport") or "").lower()
    if transport:
        return transport in ("app-server", "app_server", "appserver")
    return approver_of(request) is not None


def policy_of(request: RunRequest) -> tuple[str, str]:
    """(approvalPolicy, sandbox) for thread/start."""
    level = permission_level(request)
    sandbox = {
        Level.yolo: "danger-full-access",
        Level.read_only: "read-only",
    }.get(level, "workspace-write")
    if approver_of(request) is not None:
        policy = setting(request, "approval_policy") or "untrusted"
        return policy, "danger-full-access" if level == Level.yolo else "workspace-write"
    return setting(request, "approval_policy") or "never", sandbox


def _command_text(params: dict[str, Any]) -> str:
    cmd = params.get("command")
    if isinstance(cmd, list):
        cmd = " ".join(map(str, cmd))
    return unwrap_shell(as_str(cmd))


class Decider:
    """Answers codex's approval requests: the person (supervised) or the level's policy."""

    def __init__(self, *, approver: Approver | None, allow: bool, agent: str = "codex") -> None:
        self.approver = approver
        self.allow = allow
        self.agent = agent

    def decide(
        self, method: str, params: dict[str, Any], items: dict[str, dict[str, Any]]
    ) -> dict[str, Any]:
        legacy = method in (LEGACY_COMMAND_APPROVAL, LEGACY_FILE_APPROVAL)
        command = method in (COMMAND_APPROVAL, LEGACY_COMMAND_APPROVAL)
        reason: str | None = None
        always = False
        if self.approver is not None:
            item_id = as_str(params.get("itemId") or params.get("callId"))
            if command:
                title, tool, kind = f"$ {_command_text(params)}", "shell", "execute"
            else:
                paths = _file_paths(params, items.get(item_id))
                title = "edit " + (", ".join(paths) if paths else "files")
                tool, kind = "apply_patch", "edit"
            why = as_str(params.get("reason"))
            req = ApprovalRequest(
                tool_name=tool,
                title=f"{title} ({why})" if why else title,
                kind=kind,
                tool_id=item_id or None,
                details=params,
                options=["allow_once", "allow_always", "reject_once"],
                agent=self.agent,
            )
            decision = ask_person(self.approver, req)
            approve, always, reason = decision.approve, decision.always, decision.reason
        elif self.allow:
            approve = True
        else:
            approve, reason = False, NOBODY
        result: dict[str, Any]
        if legacy:
            if approve:
                result = {"decision": "approved_for_session" if always else "approved"}
            else:
                result = {"decision": {"denied": {"rejection": reason or "denied by the user"}}}
        elif approve:
            result = {"decision": "acceptForSession" if always else "accept"}
        else:
            result = {"decision": "decline"}
        if not approve and reason:
            result["_meta"] = {"aura": {"reason": reason}}
        return result


def _file_paths(params: dict[str, Any], item: dict[str, Any] | None) -> list[str]:
    changes = as_dict(params.get("fileChanges"))
    if changes:
        return list(changes)
    paths = [as_str(as_dict(c).get("path")) for c in as_list(as_dict(item).get("changes"))]
    if not paths and params.get("grantRoot"):
        paths = [as_str(params["grantRoot"])]
    return paths


# ---- the run --------------------------------------------------------------------------------


class CodexAppServerRun(JsonRpcRun):
    """One turn with `codex app-server`, as an AgentRun: every message is a raw "stdout" line."""

    label = "codex app-server"
    jsonrpc_field = False  # codex omits "jsonrpc": "2.0" (and accepts messages without it)

    def __init__(
        self,
        spec: LaunchSpec,
        cwd: Path,
        env: dict[str, str],
        *,
        prompt: str,
        decider: Decider,
        approval_policy: str,
        sandbox: str,
        model: str | None = None,
        resume_id: str | None = None,
    ) -> None:
        super().__init__(spec, cwd, env)
        self.prompt = prompt
        self.decider = decider
        self.approval_policy = approval_policy
        self.sandbox = sandbox
        self.model = model
        self.resume_id = resume_id
        self.thread_id: str | None = None
        self.turn_id: str | None = None
        self.turn_status: str | None = None
        self._turn_done = threading.Event()
        self._items: dict[str, dict[str, Any]] = {}  # item id -> latest item (for approvals)
        self.start_threads("codex-app-server")

    # -- AgentRun ---------------------------------------------------------------------------
    def interrupt(self) -> None:
        self.interrupted = True
        if self.thread_id and self.turn_id and not self._turn_done.is_set():
            with contextlib.suppress(OSError, ValueError, AgentGone):
                # not `request`: the runner's thread must not wait for the answer
                params = {"threadId": self.thread_id, "turnId": self.turn_id}
                self.send(self.message(id=f"{ID_PREFIX}{next(self._ids)}",
                                       method="turn/interrupt", params=params))  # fmt: skip
            timer = threading.Timer(CANCEL_GRACE_S, self._ladder_if_running)
            timer.daemon = True
            timer.start()
        else:
            self.proc.interrupt()

    def _ladder_if_running(self) -> None:
        if not self._turn_done.is_set():
            self.proc.interrupt()

    # -- codex to us --------------------------------------------------------------------------
    def _notified(self, method: str, params: dict[str, Any]) -> None:
        if method in ("item/started", "item/completed"):
            item = as_dict(params.get("item"))
            if item.get("id"):
                self._items[str(item["id"])] = item
        elif method == "turn/started":
            self.turn_id = as_str(as_dict(params.get("turn")).get("id")) or self.turn_id
        elif method == "turn/completed":
            if self.thread_id and params.get("threadId") not in (None, self.thread_id):
                return  # a sub-agent's turn
            self.turn_status = as_str(as_dict(params.get("turn")).get("status")) or "completed"
            self._turn_done.set()

    def _agent_gone(self) -> None:
        super()._agent_gone()
        self._turn_done.set()

    def _serve(self, method: str, params: dict[str, Any], seq: int) -> Any:
        if method in APPROVALS:
            self.wait_shown(seq)
            return self.decider.decide(method, params, self._items)
        raise NotImplementedError(method)

    # -- the conversation ----------------------------------------------------------------------
    def _converse(self) -> int:
        self.request(
            "initialize",
            {"clientInfo": {"name": "aura", "title": "aura", "version": __version__}},
            INIT_TIMEOUT_S,
        )
        self.notify("initialized")
        settings: dict[str, Any] = {
            "cwd": str(self.cwd),
            "approvalPolicy": self.approval_policy,
            "sandbox": self.sandbox,
        }
        if self.model:
            settings["model"] = self.model
        thread: dict[str, Any] = {}
        if self.resume_id:
            try:
                params = {"threadId": self.resume_id, **settings, "excludeTurns": True}
                thread = as_dict(self.request("thread/resume", params, SETUP_TIMEOUT_S))
            except RpcError:
                thread = {}  # the failed resume is in the transcript; start afresh
        if not as_dict(thread.get("thread")).get("id"):
            thread = as_dict(self.request("thread/start", settings, SETUP_TIMEOUT_S))
        self.thread_id = as_str(as_dict(thread.get("thread")).get("id")) or None
        if not self.thread_id:
            raise RpcError(-32603, "codex gave no thread id")
        if self.interrupted:
            return 130
        params = {"threadId": self.thread_id, "input": [{"type": "text", "text": self.prompt}]}
        turn = as_dict(as_dict(self.request("turn/start", params, SETUP_TIMEOUT_S)).get("turn"))
        self.turn_id = as_str(turn.get("id")) or self.turn_id
        if self.interrupted:  # asked to stop while turn/start was on its way
            self.interrupt()
        while not self._turn_done.wait(0.5):
            pass
        if self.turn_status is None:
            raise AgentGone("codex app-server exited before the turn completed")
        if self.turn_status == "interrupted" or self.interrupted:
            return 130
        return 1 if self.turn_status == "failed" else 0


def start_app_server(executor: CodexExecutor, request: RunRequest) -> CodexAppServerRun:
    spec = executor.build_app_server_launch(request)
    policy, sandbox = policy_of(request)
    level = permission_level(request)
    decider = Decider(approver=approver_of(request), allow=level >= Level.workspace)
    return CodexAppServerRun(
        spec,
        Path(request.cwd),
        request.env,
        prompt=request.full_prompt,
        decider=decider,
        approval_policy=policy,
        sandbox=sandbox,
        model=request.model,
        resume_id=request.resume_id,
    )


# ---- entries from the transcript -----------------------------------------------------------

_ITEM_STATUS = {
    "inProgress": CREATED,
    "in_progress": CREATED,
    "completed": SUCCESS,
    "failed": FAILED,
    "declined": DENIED,
}
_VERSION = re.compile(r"/(\d+\.\d+\.\d+\S*)")
# app-server's tracing on stderr that repeats what its messages say (configWarning, a decline)
_ECHOED = (
    re.compile(r"could not find bubblewrap on PATH"),
    re.compile(r"rejected by user"),
)


class CodexAppServerNormalizer(CodexNormalizer):
    """Entries from a codex app-server transcript (both directions, as CodexAppServerRun records
    it); `codex exec --json` lines (no `method` or `id`) go to CodexNormalizer, so one normaliser
    reads sessions of either transport."""

    system_lines_as_messages = True

    def __init__(self) -> None:
        super().__init__()
        self._ours: dict[int | str, tuple[str, dict[str, Any]]] = {}
        self._theirs: dict[int | str, tuple[str, dict[str, Any]]] = {}
        self._item_tools: dict[str, list[str]] = {}  # item id -> its tool entry ids
        self._usage: list[dict[str, Any]] = []  # thread/tokenUsage/updated `last`s of this turn
        self._context: int | None = None
        self._turn_model: str | None = None
        self._app_server = False  # a JSON-RPC line was seen (else: `codex exec --json`)

    def on_stderr(self, text: str) -> None:
        if self._app_server and any(p.search(text) for p in _ECHOED):
            return  # kept in the raw log
        super().on_stderr(text)

    def on_event(self, obj: dict[str, Any]) -> None:
        method = obj.get("method")
        if not isinstance(method, str) and "id" not in obj:
            super().on_event(obj)  # `codex exec --json`
            return
        self._app_server = True
        rid = as_key(obj.get("id"))
        params = as_dict(obj.get("params"))
        if isinstance(method, str):
            if isinstance(rid, str) and rid.startswith(ID_PREFIX):
                self._our_request(rid, method, params)
            elif rid is not None:
                self._theirs[rid] = (method, params)
                if method in APPROVALS:
                    self._approval_asked(method, params)
            else:
                self._notification(method, params)
            return
        if isinstance(rid, str) and rid.startswith(ID_PREFIX):
            sent = self._ours.pop(rid, None)
            if sent is not None:
                self._codex_answered(sent[0], sent[1], obj)
        elif rid is not None:
            asked = self._theirs.pop(rid, None)
            if asked is not None:
                self._we_answered(asked[0], asked[1], obj)

    # -- our requests and codex's answers --------------------------------------------------
    def _our_request(self, rid: str, method: str, params: dict[str, Any]) -> None:
        self._ours[rid] = (method, params)
        if method == "thread/resume":
            self.set_session_id(params.get("threadId"))
        elif method == "turn/interrupt":
            self.append(SystemMessage("interrupt requested"))

    def _codex_answered(self, method: str, params: dict[str, Any], obj: dict[str, Any]) -> None:
        err = obj.get("error")
        result = as_dict(obj.get("result"))
        if err is not None:
            msg = as_str(as_dict(err).get("message")) or f"{method} failed"
            if method == "thread/resume":
                self.agent_session_id = None
                tid = as_str(params.get("threadId"))
                self.append(SystemMessage(f"could not resume {tid}: {msg}; starting a new thread"))
            elif method == "turn/interrupt":
                self.append(SystemMessage(f"interrupt: {msg}"))
            else:
                self.error(f"{method}: {msg}")
            return
        if method == "initialize":
            m = _VERSION.search(as_str(result.get("userAgent")))
            version = f" {m.group(1)}" if m else ""
            self.append(SystemMessage(f"codex{version} over app-server"))
        elif method in ("thread/start", "thread/resume"):
            self.set_session_id(as_dict(result.get("thread")).get("id"))
            self._turn_model = as_str(result.get("model")) or None
            if method == "thread/resume":
                self.append(SystemMessage(f"resumed thread {self.agent_session_id}"))

    # -- codex's approval requests and our answers --------------------------------------------
    def _approval_asked(self, method: str, params: dict[str, Any]) -> None:
        item_id = as_str(params.get("itemId") or params.get("callId"))
        ids = self._item_tools.get(item_id)
        if not ids:  # legacy requests come without an item: make the entry from the request
            if method in (COMMAND_APPROVAL, LEGACY_COMMAND_APPROVAL):
                action: Action = CommandRun(_command_text(params))
                self.add_tool(ToolUse(item_id, "shell", action, PENDING_APPROVAL))
                self._item_tools[item_id] = [item_id]
            else:
                paths = list(as_dict(params.get("fileChanges"))) or [""]
                self._item_tools[item_id] = []
                for n, path in enumerate(paths):
                    tid = f"{item_id}#{n}"
                    self.add_tool(ToolUse(tid, "apply_patch", FileEdit(path), PENDING_APPROVAL))
                    self._item_tools[item_id].append(tid)
            return
        for tid in ids:
            tool = self.tool(tid)
            if tool is not None and tool.status == CREATED:
                tool.status = PENDING_APPROVAL
                self.tool_changed(tid)

    def _we_answered(self, method: str, params: dict[str, Any], obj: dict[str, Any]) -> None:
        if method not in APPROVALS:
            err = as_dict(obj.get("error"))
            if err:
                self.append(SystemMessage(f"{method}: {as_str(err.get('message'))}"))
            return
        result = as_dict(obj.get("result"))
        decision = result.get("decision")
        allowed = isinstance(decision, str) and decision.startswith(("accept", "approved"))
        if isinstance(decision, dict):
            allowed = any(str(k).startswith(("accept", "approved")) for k in decision)
        item_id = as_str(params.get("itemId") or params.get("callId"))
        tool_ids = self._item_tools.get(item_id, [])
        what: list[str] = []
        for tid in tool_ids:
            tool = self.tool(tid)
            if tool is None:
                continue
            what.append(describe_action(tool.action, tool.tool_name))
            if tool.status in (PENDING_APPROVAL, CREATED):
                tool.status = CREATED if allowed else DENIED
                self.tool_changed(tid)
        if allowed:
            return
        reason = as_str(as_dict(as_dict(result.get("_meta")).get("aura")).get("reason"))
        if not reason and isinstance(decision, dict):
            reason = as_str(as_dict(decision.get("denied")).get("rejection"))
        shown = "; ".join(what) if what else "a tool call"
        self.append(SystemMessage(f"denied {shown}" + (f": {reason}" if reason else "")))

    # -- notifications ------------------------------------------------------------------------
    def _notification(self, method: str, params: dict[str, Any]) -> None:
        if method in ("item/started", "item/completed"):
            self._v2_item(as_dict(params.get("item")), method == "item/completed")
        elif method == "item/agentMessage/delta":
            self._delta(as_str(params.get("itemId")), AssistantMessage, as_str(params.get("delta")))
        elif method in ("item/reasoning/summaryTextDelta", "item/reasoning/textDelta"):
            self._delta(as_str(params.get("itemId")), Thinking, as_str(params.get("delta")))
        elif method == "thread/started":
            self.set_session_id(as_dict(params.get("thread")).get("id"))
        elif method == "thread/tokenUsage/updated":
            usage = as_dict(params.get("tokenUsage"))
            self._usage.append(as_dict(usage.get("last")))
            self._context = to_int(usage.get("modelContextWindow")) or self._context
        elif method == "turn/completed":
            self._turn_completed(as_dict(params.get("turn")))
        elif method == "error":
            err = as_dict(params.get("error"))
            message = as_str(err.get("message")) or "codex error"
            detail = as_str(err.get("additionalDetails"))
            if detail and detail not in message:
                message = f"{message}: {detail}"
            if params.get("willRetry"):
                self.append(SystemMessage(message))  # codex retries by itself
            else:
                self.error(message)
        elif method == "warning":
            self.append(SystemMessage(f"warning: {as_str(params.get('message'))}"))
        elif method == "configWarning":
            self.append(SystemMessage(f"warning: {as_str(params.get('summary'))}"))
        elif method == "thread/compacted":
            self.append(SystemMessage("context compacted"))
        # everything else (status changes, rate limits, output deltas, ...) stays in the raw log

    def _turn_completed(self, turn: dict[str, Any]) -> None:
        if self._usage:

            def total(key: str) -> int:
                return sum(to_int(u.get(key)) or 0 for u in self._usage)

            inp, out = total("inputTokens"), total("outputTokens")
            self.append(
                TokenUsage(
                    input_tokens=inp,
                    output_tokens=out,
                    cache_read_tokens=total("cachedInputTokens"),
                    cache_write_tokens=total("cacheWriteInputTokens"),
                    reasoning_tokens=total("reasoningOutputTokens"),
                    total_tokens=inp + out,
                    context_window=self._context,
                    model=self._turn_model,
                )
            )
            self._usage = []
        status = as_str(turn.get("status"))
        err = as_dict(turn.get("error"))
        if status == "failed":
            self.error(as_str(err.get("message")) or "turn failed")
        elif status == "interrupted":
            self.append(SystemMessage("interrupted"))

    def _delta(self, item_id: str, cls: type[AssistantMessage] | type[Thinking], text: str) -> None:
        if not text:
            return
        at = self._items.get(item_id)
        if at is None:
            self._items[item_id] = self.append(cls(text))
            return
        entry = self.entries[at]
        if isinstance(entry, cls):
            entry.add(text)
            self.replace(at)

    def _full(self, item_id: str, cls: type[AssistantMessage] | type[Thinking], text: str) -> None:
        if not text and item_id not in self._items:
            return  # item/started of a message: its text comes in deltas
        self._text(item_id, cls, text)

    def _v2_item(self, item: dict[str, Any], done: bool) -> None:
        it = item.get("type")
        item_id = as_str(item.get("id"))
        if it == "agentMessage":
            self._full(item_id, AssistantMessage, as_str(item.get("text")))
        elif it == "reasoning":
            parts = [as_str(p) for p in as_list(item.get("summary"))] or [
                as_str(p) for p in as_list(item.get("content"))
            ]
            self._full(item_id, Thinking, "\n".join(p for p in parts if p))
        elif it == "commandExecution":
            output = as_str(item.get("aggregatedOutput"))
            code = to_int(item.get("exitCode"))
            action: Action = CommandRun(
                unwrap_shell(as_str(item.get("command"))),
                code,
                output[:RESULT_KEEP] if output else None,
            )
            self._tool(item_id, [item_id], "shell", [action], item.get("status"), done)
        elif it == "fileChange":
            changes = [as_dict(c) for c in as_list(item.get("changes"))]
            actions: list[Action] = []
            for c in changes:
                kind = as_str(as_dict(c.get("kind")).get("type")) or as_str(c.get("kind"))
                diff = as_str(c.get("diff")) or None
                if diff and kind == "update" and not diff.startswith(("---", "@@", "diff")):
                    diff = None
                actions.append(FileEdit(as_str(c.get("path")), diff if kind == "update" else None,
                                        kind or None))  # fmt: skip
            ids = [f"{item_id}#{n}" for n in range(len(actions))]
            self._tool(item_id, ids, "apply_patch", actions, item.get("status"), done)
        elif it == "mcpToolCall":
            name = f"{item.get('server')}.{item.get('tool')}"
            err = as_dict(item.get("error"))
            result = item.get("result")
            if err.get("message"):
                shown: Any = f"error: {as_str(err['message'])}"
            elif isinstance(result, dict):
                shown = text_of(result.get("content")) or result.get("structuredContent")
            else:
                shown = result
            action = Generic(name, item.get("arguments"), shown)
            self._tool(item_id, [item_id], name, [action], item.get("status"), done)
        elif it == "dynamicToolCall":
            name = as_str(item.get("tool")) or "tool"
            shown = text_of(item.get("contentItems")) or None
            action = Generic(name, item.get("arguments"), shown)
            status = item.get("status")
            if done and item.get("success") is False:
                status = "failed"
            self._tool(item_id, [item_id], name, [action], status, done)
        elif it == "webSearch":
            action = Search(as_str(item.get("query")))
            self._tool(item_id, [item_id], "web_search", [action], None, done)
        elif it == "plan" and done:
            self.add_tool(ToolUse(item_id, "plan", Plan(as_str(item.get("text"))), SUCCESS))
        elif it == "contextCompaction" and done:
            self.append(SystemMessage("context compacted"))
        # userMessage (our prompt), review markers, images...: in the raw log only

    def _tool(
        self,
        item_id: str,
        ids: list[str],
        name: str,
        actions: list[Action],
        status_value: Any,
        done: bool,
    ) -> None:
        reported = _ITEM_STATUS.get(as_str(status_value)) or (SUCCESS if done else CREATED)
        known = self._item_tools.setdefault(item_id, [])
        for tid, action in zip(ids, actions, strict=True):
            status = reported
            if tid not in known:
                known.append(tid)
            tool = self.tool(tid)
            if tool is None:
                self.add_tool(ToolUse(tid, name, action, status))
                continue
            if tool.status == DENIED and status in (FAILED, CREATED):
                status = DENIED  # codex reports a declined call as failed on some paths
            elif tool.status == PENDING_APPROVAL and status == CREATED:
                status = PENDING_APPROVAL
            if isinstance(action, CommandRun) and isinstance(tool.action, CommandRun):
                action.command = action.command or tool.action.command
            tool.action = action
            tool.status = status
            self.tool_changed(tid)
