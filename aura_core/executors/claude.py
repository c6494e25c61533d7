"""Claude Code: `claude -p --output-format=stream-json --verbose`, prompt as the last argument.

Verified against @anthropic-ai/claude-code 2.1.197. Permission levels: the default is
`--permission-mode acceptEdits --allowedTools=Bash` (edits and commands inside the working
directory, nothing outside it); review / `--auto-approve false` with nobody to ask is
`--permission-mode plan`; supervised mode (`--auto-approve false` on a TTY or the board) is
`--permission-mode default` over the control protocol (claude_control.py): each edit and command
is asked about;
`--force` / `--allow-all-tools` / `--auto-approve true` allow every built-in tool; `--yolo` is
`--dangerously-skip-permissions`, which claude refuses as root unless IS_SANDBOX=1 is set.
`--allowedTools` is variadic: it must be written `--allowedTools=...`, and the prompt goes after
`--`, or claude swallows the prompt as a tool name.
"""

from __future__ import annotations

import json
import os
import re
from collections import deque
from pathlib import Path
from typing import Any, ClassVar

from aura_core.executors.agent_cli import CliAgent, Level, permission_level, running_as_root
from aura_core.executors.base import AgentRun, LaunchSpec, RunMode, RunRequest
from aura_core.executors.entries import (
    CREATED,
    DENIED,
    FAILED,
    NOT_LOGGED_IN,
    PENDING_APPROVAL,
    SUCCESS,
    TIMED_OUT,
    Action,
    AssistantMessage,
    CommandRun,
    FileEdit,
    FileRead,
    Generic,
    JsonlNormalizer,
    Plan,
    Search,
    SetupKind,
    Subtask,
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
    describe_action,
    snippet_diff,
    text_of,
    to_int,
)
from aura_core.executors.settings import approver_of, setting

# the built-in tools `--force` allows (names unknown to a given version are ignored by claude)
ALL_TOOLS = (
    "Bash",
    "Edit",
    "MultiEdit",
    "Write",
    "NotebookEdit",
    "Read",
    "Glob",
    "Grep",
    "LS",
    "WebFetch",
    "WebSearch",
    "TodoWrite",
    "Task",
    "Agent",
)
RESULT_KEEP = 4000  # chars of a generic tool's result kept on the entry (the raw log has all)


class ClaudeExecutor(CliAgent):
    name: ClassVar[str] = "claude"
    binary: ClassVar[str] = "claude"
    npm_package: ClassVar[str] = "@anthropic-ai/claude-code"
    key_env: ClassVar[tuple[str, ...]] = (
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_AUTH_TOKEN",
        "CLAUDE_CODE_OAUTH_TOKEN",
        "CLAUDE_CODE_USE_BEDROCK",
        "CLAUDE_CODE_USE_VERTEX",
    )
    login_hint: ClassVar[str] = "log in: run `claude` then /login, or set ANTHROPIC_API_KEY"
    asks_permissions: ClassVar[bool] = True

    def has_credentials(self) -> bool:
        if super().has_credentials():
            return True
        home = Path(os.environ.get("CLAUDE_CONFIG_DIR") or Path.home() / ".claude")
        return (home / ".credentials.json").is_file()

    def build_launch(self, request: RunRequest, *, control: bool = False) -> LaunchSpec:
        o = request.options
        argv = [*self.program(request), "-p", "--output-format=stream-json", "--verbose"]
        if control:
            argv += ["--input-format=stream-json", "--permission-prompt-tool", "stdio"]
        env = self.base_env(request)
        warnings = self.common_warnings(o)
        if request.model:
            argv += ["--model", request.model]
        level = permission_level(request)
        if control and approver_of(request) is not None and request.mode != RunMode.review:
            argv += ["--permission-mode", "default"]  # ask before every edit and command
        elif level == Level.yolo:
            argv.append("--dangerously-skip-permissions")
            if running_as_root():
                env["IS_SANDBOX"] = "1"  # claude refuses to skip permissions as root otherwise
        elif level == Level.all_tools:
            argv += ["--permission-mode", "acceptEdits", "--allowedTools=" + ",".join(ALL_TOOLS)]
        elif level == Level.read_only:
            argv += ["--permission-mode", "plan"]
        else:
            argv += ["--permission-mode", "acceptEdits", "--allowedTools=Bash"]
        if o.trust:
            warnings.append("--trust: claude -p never asks to trust a folder; nothing to do")
        if request.resume_id:
            argv += ["--resume", request.resume_id]
        argv += o.params
        if not control:
            argv += ["--", request.full_prompt]
        return LaunchSpec(argv=argv, env=env, warnings=warnings)

    def start(self, request: RunRequest) -> AgentRun:  # type: ignore[override]
        """Supervised mode (or `transport=control`) talks claude's control protocol, so its
        permission questions reach the person; otherwise the prompt is an argument."""
        transport = (setting(request, "transport") or "").lower()
        if approver_of(request) is None and transport != "control":
            return super().start(request)
        from aura_core.executors.claude_control import ClaudeControlRun

        spec = self.build_launch(request, control=True)
        return ClaudeControlRun(
            spec,
            Path(request.cwd),
            request.env,
            prompt=request.full_prompt,
            approver=approver_of(request),
            describe=claude_action,
        )

    def normalizer(self) -> ClaudeNormalizer:
        return ClaudeNormalizer()


# ---- tool calls -------------------------------------------------------------------------------


def claude_action(name: str, inp: Any) -> Action:
    """The normalised action of a Claude tool call, from its name and input."""
    i = as_dict(inp)
    if name == "Bash":
        return CommandRun(as_str(i.get("command")))
    path = as_str(i.get("file_path") or i.get("notebook_path") or i.get("path"))
    if name == "Read":
        return FileRead(path)
    if name == "Edit":
        return FileEdit(path, snippet_diff(path, str(i.get("old_string", "")),
                                           str(i.get("new_string", ""))), "update")  # fmt: skip
    if name == "MultiEdit":
        edits = [e for e in as_list(i.get("edits")) if isinstance(e, dict)]
        diff = "".join(
            snippet_diff(path, str(e.get("old_string", "")), str(e.get("new_string", "")))
            for e in edits
        )
        return FileEdit(path, diff or None, "update")
    if name == "Write":
        return FileEdit(path, snippet_diff(path, "", str(i.get("content", ""))), "add")
    if name == "NotebookEdit":
        return FileEdit(path, None, "update")
    if name in ("Glob", "Grep"):
        return Search(str(i.get("pattern", "")))
    if name == "LS":
        return FileRead(path)
    if name == "WebSearch":
        return Search(str(i.get("query", "")))
    if name == "WebFetch":
        return WebFetch(str(i.get("url", "")))
    if name == "TodoWrite":
        todos = [t for t in as_list(i.get("todos")) if isinstance(t, dict)]
        return Todo([TodoItem(str(t.get("content", "")), str(t.get("status", "pending")))
                     for t in todos])  # fmt: skip
    if name in ("Task", "Agent"):
        return Subtask(
            str(i.get("description") or i.get("prompt") or ""),
            i.get("prompt"),
            i.get("subagent_type"),
        )
    if name == "ExitPlanMode":
        return Plan(str(i.get("plan", "")))
    return Generic(name, i or inp)


def structured_patch_diff(path: str, hunks: Any) -> str | None:
    """Claude's `structuredPatch` (the applied hunks) as a unified diff."""
    if not isinstance(hunks, list) or not hunks:
        return None
    out = [f"--- a/{path}\n", f"+++ b/{path}\n"]
    for h in hunks:
        if not isinstance(h, dict):
            continue
        out.append(
            f"@@ -{h.get('oldStart', 0)},{h.get('oldLines', 0)} "
            f"+{h.get('newStart', 0)},{h.get('newLines', 0)} @@\n"
        )
        out.extend(f"{line}\n" for line in as_list(h.get("lines")))
    return "".join(out)


_DENIED = re.compile(
    r"haven't granted|requires approval|was blocked|permission (to use .* )?(was )?denied|"
    r"doesn't want to proceed|tool use was rejected|not allowed",
    re.I,
)
_EXIT = re.compile(r"^(?:Error: )?Exit code (\d+)")
_SETUP_ERRORS: dict[str, SetupKind] = {
    "authentication_failed": NOT_LOGGED_IN,
    "oauth_org_not_allowed": NOT_LOGGED_IN,
}
_RESULT_ERRORS = {
    "error_max_turns": "claude stopped: it reached the maximum number of turns",
    "error_max_budget_usd": "claude stopped: it reached the spending limit",
    "error_during_execution": "claude stopped on an error during execution",
}
_QUIET_TYPES = frozenset(
    {
        "control_request",
        "control_response",
        "control_cancel_request",
        "keep_alive",
        "rate_limit_event",
        "prompt_suggestion",
        "tool_progress",
        "tool_use_summary",
        "auth_status",
    }
)
_SHOWN_SYSTEM = frozenset(
    {
        "informational",
        "notification",
        "model_fallback",
        "model_refusal_fallback",
        "model_refusal_no_fallback",
        "model_consent_fallback",
        "local_command",
        "mirror_error",
    }
)


class ClaudeNormalizer(JsonlNormalizer):
    """Claude's stream-json, with or without --include-partial-messages."""

    agent = "claude"

    def __init__(self) -> None:
        super().__init__()
        self._blocks: dict[int | str | None, int] = {}  # content block index -> entry index
        self._tool_json: dict[int | str | None, list[str]] = {}  # block -> partial input JSON
        # blocks of the message being streamed that its complete lines have not yet claimed
        self._unclaimed: dict[str, deque[int]] = {}
        self._msg_id = ""
        self._retry_at: int | None = None
        self.model: str | None = None
        self._asked: dict[str, str] = {}  # can_use_tool request id -> tool_use_id
        self._refused: set[str] = set()  # tools the person denied (their result is an error)

    def on_event(self, obj: dict[str, Any]) -> None:
        kind = obj.get("type")
        if kind == "stream_event":
            self._stream_event(as_dict(obj.get("event")), obj)
        elif kind == "assistant":
            self._assistant(obj)
        elif kind == "user":
            self._user(obj)
        elif kind == "result":
            self._result(obj)
        elif kind == "system":
            self._system(obj)
        elif kind == "control_request":
            self._permission_asked(obj)
        elif kind == "control_response":
            self._permission_answered(as_dict(obj.get("response")))
        elif kind not in _QUIET_TYPES:
            self.unknown()
            return
        sid = obj.get("session_id")
        if sid and sid != self.agent_session_id:
            self.set_session_id(sid)

    # -- the control protocol (supervised mode) ---------------------------------------------------
    def _permission_asked(self, obj: dict[str, Any]) -> None:
        request = as_dict(obj.get("request"))
        if request.get("subtype") != "can_use_tool":
            return
        tool_id = as_str(request.get("tool_use_id"))
        name = as_str(request.get("tool_name")) or "tool"
        tool = self.tool(tool_id)
        if tool is None:
            self.add_tool(
                ToolUse(tool_id, name, claude_action(name, request.get("input")), PENDING_APPROVAL)
            )
        else:
            tool.status = PENDING_APPROVAL
            self.tool_changed(tool_id)
        self._asked[as_str(obj.get("request_id"))] = tool_id

    def _permission_answered(self, response: dict[str, Any]) -> None:
        tool_id = self._asked.pop(as_str(response.get("request_id")), None)
        if tool_id is None:
            return  # an answer to one of our own requests (initialize, interrupt)
        answer = as_dict(response.get("response"))
        tool = self.tool(tool_id)
        if answer.get("behavior") == "allow":
            if tool is not None and tool.status == PENDING_APPROVAL:
                tool.status = CREATED
                self.tool_changed(tool_id)
            return
        self._refused.add(tool_id)
        if tool is not None:
            tool.status = DENIED
            self.tool_changed(tool_id)
        what = describe_action(tool.action, tool.tool_name) if tool else "a tool call"
        reason = as_str(answer.get("message")) or as_str(response.get("error"))
        self.append(SystemMessage(f"denied {what}" + (f": {reason}" if reason else "")))

    # -- system ---------------------------------------------------------------------------------
    def _system(self, obj: dict[str, Any]) -> None:
        sub = obj.get("subtype")
        if type(sub) is not str:
            return
        if sub == "init":
            self.model = as_str(obj.get("model")) or self.model
            mode = as_str(obj.get("permissionMode"))
            self.append(SystemMessage(f"model {self.model}" + (f" · {mode}" if mode else "")))
        elif sub == "api_retry":
            text = (
                f"API error {obj.get('error_status') or ''} {obj.get('error') or ''}".rstrip()
                + f"; retry {obj.get('attempt')}/{obj.get('max_retries')}"
            )
            if self._retry_at is not None and self._retry_at == len(self.entries) - 1:
                entry = self.entries[self._retry_at]
                assert isinstance(entry, SystemMessage)
                entry.text = text
                self.replace(self._retry_at)
            else:
                self._retry_at = self.append(SystemMessage(text))
        elif sub == "api_error":
            self.error(str(obj.get("error") or obj.get("message") or "API error"))
        elif sub == "compact_boundary":
            self.append(SystemMessage("conversation compacted"))
        elif sub == "permission_denied":
            tool = self.tool(str(obj.get("tool_use_id") or ""))
            if tool is not None:
                tool.status = DENIED
                self.tool_changed(tool.tool_id)
        elif sub in _SHOWN_SYSTEM:
            msg = obj.get("message") or obj.get("content") or obj.get("text") or sub
            self.append(SystemMessage(f"{sub}: {text_of(msg)}" if msg != sub else str(sub)))

    # -- partial messages -------------------------------------------------------------------
    def _stream_event(self, ev: dict[str, Any], obj: dict[str, Any]) -> None:
        et = ev.get("type")
        if et == "content_block_delta":
            idx = self._blocks.get(as_key(ev.get("index")))
            delta = as_dict(ev.get("delta"))
            dt = delta.get("type")
            if dt == "text_delta" or dt == "thinking_delta":
                if idx is not None:
                    entry = self.entries[idx]
                    chunk = delta.get("text") if dt == "text_delta" else delta.get("thinking")
                    if (
                        chunk
                        and type(chunk) is str
                        and isinstance(entry, (AssistantMessage, Thinking))
                    ):
                        entry.add(chunk)
                        self.replace(idx)
            elif dt == "input_json_delta":
                parts = self._tool_json.get(as_key(ev.get("index")))
                if parts is not None:
                    parts.append(as_str(delta.get("partial_json")))
            return
        if et == "message_start":
            self._msg_id = as_str(as_dict(ev.get("message")).get("id"))
            self._unclaimed = {}
            self._blocks = {}
            self._tool_json = {}
        elif et == "content_block_start":
            if obj.get("parent_tool_use_id"):
                return  # a sub-agent's own text: its result comes back to the Task tool
            block = as_dict(ev.get("content_block"))
            bt = block.get("type")
            bi = as_key(ev.get("index"))
            if bt == "text":
                at = self.append(AssistantMessage(as_str(block.get("text"))))
            elif bt == "thinking":
                at = self.append(Thinking(as_str(block.get("thinking"))))
            elif bt == "tool_use":
                name = as_str(block.get("name")) or "tool"
                tool_id = as_str(block.get("id")) or f"{self._msg_id}:{bi}"
                at = self.add_tool(ToolUse(tool_id, name, Generic(name, {})))
                self._tool_json[bi] = []
            else:
                return
            self._blocks[bi] = at
            queue = self._unclaimed.get(bt)
            if queue is None:
                queue = self._unclaimed[bt] = deque()
            queue.append(at)
        elif et == "content_block_stop":
            bi = as_key(ev.get("index"))
            parts = self._tool_json.pop(bi, None)
            idx = self._blocks.get(bi)
            if parts is not None and idx is not None:
                entry = self.entries[idx]
                if isinstance(entry, ToolUse):
                    try:
                        inp = json.loads("".join(parts)) if parts else {}
                    except ValueError:
                        inp = {"partial_json": "".join(parts)}
                    entry.action = claude_action(entry.tool_name, inp)
                    self.replace(idx)

    def _claim_streamed(self, msg_id: str, kind: str) -> int | None:
        """The entry a partial stream already made for this block of a complete message."""
        if msg_id != self._msg_id:
            return None
        queue = self._unclaimed.get(kind)
        return queue.popleft() if queue else None

    # -- complete messages ------------------------------------------------------------------
    def _assistant(self, obj: dict[str, Any]) -> None:
        msg = as_dict(obj.get("message"))
        msg_id = as_str(msg.get("id"))
        parent = as_str(obj.get("parent_tool_use_id")) or None
        content = msg.get("content")
        if obj.get("error"):  # e.g. a synthetic "Not logged in · Please run /login" message
            code = str(obj.get("error"))
            self.error(text_of(content) or code, _SETUP_ERRORS.get(code))
            return
        if isinstance(content, str):
            content = [{"type": "text", "text": content}]
        for block in as_list(content):
            if not isinstance(block, dict):
                continue
            bt = block.get("type")
            if bt == "tool_use":
                name = as_str(block.get("name")) or "tool"
                tool_id = as_str(block.get("id")) or f"{msg_id}:tool"
                action = claude_action(name, block.get("input"))
                existing = self.tool(tool_id)
                if existing is not None:
                    self._claim_streamed(msg_id, "tool_use")
                    existing.action = action
                    self.tool_changed(tool_id)
                else:
                    self.add_tool(ToolUse(tool_id, name, action, CREATED, parent))
            elif bt in ("text", "thinking"):
                if parent:
                    continue
                text = as_str(block.get("text") if bt == "text" else block.get("thinking"))
                at = self._claim_streamed(msg_id, bt)
                if at is not None:
                    entry = self.entries[at]
                    if isinstance(entry, (AssistantMessage, Thinking)) and entry.text != text:
                        entry.text = text
                        self.replace(at)
                elif text:
                    self.append(AssistantMessage(text) if bt == "text" else Thinking(text))

    def _user(self, obj: dict[str, Any]) -> None:
        msg = as_dict(obj.get("message"))
        content = msg.get("content")
        parent = obj.get("parent_tool_use_id")
        if isinstance(content, str):
            if not parent and content.strip():
                self.append(UserMessage(content))
            return
        texts = []
        for block in as_list(content):
            if not isinstance(block, dict):
                continue
            if block.get("type") == "tool_result":
                self._tool_result(block, obj.get("tool_use_result"))
            elif block.get("type") == "text" and not parent:
                texts.append(as_str(block.get("text")))
        if texts and any(t.strip() for t in texts):
            self.append(UserMessage("\n".join(texts)))

    def _tool_result(self, block: dict[str, Any], extra: Any) -> None:
        tool_id = as_str(block.get("tool_use_id"))
        tool = self.tool(tool_id)
        if tool is None:
            return
        text = text_of(block.get("content"))
        is_error = bool(block.get("is_error"))
        if is_error:
            refused = tool_id in self._refused or _DENIED.search(text[:2000])
            tool.status = DENIED if refused else FAILED
            if "timed out" in text.lower():
                tool.status = TIMED_OUT
        else:
            tool.status = SUCCESS
        action = tool.action
        info = as_dict(extra)
        if isinstance(action, CommandRun):
            if info and ("stdout" in info or "stderr" in info):
                out = str(info.get("stdout") or "")
                err = str(info.get("stderr") or "")
                action.output = out + ("\n" + err if out and err else err)
            else:
                action.output = text
            m = _EXIT.match(text)
            if m:
                action.exit_code = int(m.group(1))
            elif not is_error:
                action.exit_code = 0
            if info.get("interrupted"):
                tool.status = TIMED_OUT if "timed out" in text.lower() else FAILED
        elif isinstance(action, FileEdit):
            diff = structured_patch_diff(action.path, info.get("structuredPatch"))
            if diff:
                action.diff = diff
            if info.get("type") in ("create", "update"):
                action.change = "add" if info.get("type") == "create" else "update"
        elif isinstance(action, (Generic, Subtask)):
            action.result = text[:RESULT_KEEP]
        self.tool_changed(tool_id)

    def _result(self, obj: dict[str, Any]) -> None:
        for denial in as_list(obj.get("permission_denials")):
            if isinstance(denial, dict):
                tool = self.tool(str(denial.get("tool_use_id") or ""))
                if tool is not None and tool.status != DENIED:
                    tool.status = DENIED
                    self.tool_changed(tool.tool_id)
        sub = str(obj.get("subtype") or "")
        if obj.get("is_error") or sub.startswith("error"):
            errors = obj.get("errors")
            text = as_str(obj.get("result")) or (
                "; ".join(map(str, errors))
                if isinstance(errors, list) and errors
                else _RESULT_ERRORS.get(sub, sub)
            )
            self.error(str(text or "claude reported an error"))
        usage = as_dict(obj.get("usage"))
        window = None
        model = None
        for name, mu in as_dict(obj.get("modelUsage")).items():
            if isinstance(mu, dict):
                window = max(window or 0, to_int(mu.get("contextWindow")) or 0) or window
                model = model or name
        cost = obj.get("total_cost_usd")
        if obj.get("is_error") and not usage.get("input_tokens") and not usage.get("output_tokens"):
            return  # nothing was spent: the error says it all
        self.append(
            TokenUsage(
                input_tokens=to_int(usage.get("input_tokens")),
                output_tokens=to_int(usage.get("output_tokens")),
                cache_read_tokens=to_int(usage.get("cache_read_input_tokens")),
                cache_write_tokens=to_int(usage.get("cache_creation_input_tokens")),
                cost_usd=float(cost) if isinstance(cost, (int, float)) else None,
                context_window=window,
                model=model or self.model,
            )
        )
