"""GitHub Copilot CLI: `copilot --prompt=PROMPT --output-format json --no-auto-update
--no-color --session-id=ID [--model M] --allow-all-tools [--allow-tool T] [--deny-tool T]`, or
`copilot --acp`.

Verified against @github/copilot 1.0.102. Prompt mode needs `--allow-all-tools` (or `--yolo`);
the permission levels are: `--yolo` → `--yolo` (tools, paths and URLs); `--force` /
`--allow-all-tools` / `--auto-approve true` → `--allow-all-tools --allow-all-paths`; the default →
`--allow-all-tools` (paths stay confined to the folder); review / `--auto-approve false` →
`--allow-all-tools --deny-tool=shell --deny-tool=write` (read only). Settings `allow_tools` and
`deny_tools` (comma-separated, e.g. `--var "AURA_DENY_TOOLS=shell(git push)"`) add
`--allow-tool` / `--deny-tool`; `--trust` is `--trust-folder`. Its JSON names the session only in
the final `result` line, so aura picks the id itself: `--session-id=<uuid>` starts a new session
with that id and resumes an existing one (resume = the same flag with the earlier id).

Over ACP (`transport=acp` or supervised mode) it runs `copilot --acp`; tool permissions come as
session/request_permission and `session/load` works after a restart.
"""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path
from typing import Any, ClassVar

from aura_core.executors.acp import DualNormalizer, start_acp, wants_acp
from aura_core.executors.agent_cli import CliAgent, Level, permission_level
from aura_core.executors.base import AgentRun, LaunchSpec, RunRequest
from aura_core.executors.entries import (
    CREATED,
    DENIED,
    FAILED,
    SUCCESS,
    Action,
    AssistantMessage,
    CommandRun,
    FileEdit,
    FileRead,
    Generic,
    JsonlNormalizer,
    Search,
    Subtask,
    SystemMessage,
    Thinking,
    Todo,
    TodoItem,
    ToolUse,
    WebFetch,
    as_dict,
    as_list,
    as_str,
    snippet_diff,
    text_of,
    to_int,
)
from aura_core.executors.settings import setting_list

RESULT_KEEP = 4000


class CopilotExecutor(CliAgent):
    name: ClassVar[str] = "copilot"
    binary: ClassVar[str] = "copilot"
    npm_package: ClassVar[str] = "@github/copilot"
    key_env: ClassVar[tuple[str, ...]] = (
        "COPILOT_GITHUB_TOKEN",
        "GH_TOKEN",
        "GITHUB_TOKEN",
        "COPILOT_PROVIDER_BASE_URL",
    )
    login_hint: ClassVar[str] = (
        "log in: run `copilot login`, set GH_TOKEN, or use a model provider "
        "(COPILOT_PROVIDER_BASE_URL)"
    )
    asks_permissions: ClassVar[bool] = True

    def __init__(self) -> None:
        self._session_id: str | None = None

    def has_credentials(self) -> bool:
        if super().has_credentials():
            return True
        home = Path(os.environ.get("COPILOT_HOME") or Path.home() / ".copilot")
        return (home / "config.json").is_file()

    def build_launch(self, request: RunRequest) -> LaunchSpec:
        o = request.options
        session_id = request.resume_id or str(uuid.uuid4())
        self._session_id = session_id
        argv = [
            *self.program(request),
            f"--prompt={request.full_prompt}",
            "--output-format",
            "json",
            "--no-auto-update",
            "--no-color",
            f"--session-id={session_id}",
        ]
        warnings = self.common_warnings(o)
        if request.model:
            argv.append(f"--model={request.model}")
        argv += self._permission_args(request)
        if o.trust:
            argv.append("--trust-folder")
        argv += o.params
        env = {**self.base_env(request), "PWD": str(request.cwd)}
        return LaunchSpec(argv=argv, env=env, warnings=warnings)

    @staticmethod
    def _permission_args(request: RunRequest) -> list[str]:
        level = permission_level(request)
        if level == Level.yolo:
            args = ["--yolo"]
        elif level == Level.all_tools:
            args = ["--allow-all-tools", "--allow-all-paths"]
        elif level == Level.read_only:
            args = ["--allow-all-tools", "--deny-tool=shell", "--deny-tool=write"]
        else:
            args = ["--allow-all-tools"]
        args += [f"--allow-tool={t}" for t in setting_list(request, "allow_tools")]
        args += [f"--deny-tool={t}" for t in setting_list(request, "deny_tools")]
        return args

    def build_acp_launch(self, request: RunRequest) -> LaunchSpec:
        o = request.options
        argv = [*self.program(request), "--acp", "--no-auto-update", "--no-color"]
        if request.model:
            argv.append(f"--model={request.model}")
        if permission_level(request) == Level.yolo:
            argv.append("--yolo")
        argv += [f"--allow-tool={t}" for t in setting_list(request, "allow_tools")]
        argv += [f"--deny-tool={t}" for t in setting_list(request, "deny_tools")]
        argv += o.params
        env = {**self.base_env(request), "PWD": str(request.cwd)}
        return LaunchSpec(argv=argv, env=env, warnings=self.common_warnings(o))

    def start(self, request: RunRequest) -> AgentRun:  # type: ignore[override]
        if wants_acp(request):
            self._session_id = None
            return start_acp(self.name, self.build_acp_launch(request), request)
        return super().start(request)

    def normalizer(self) -> DualNormalizer:
        return DualNormalizer(CopilotNormalizer(self._session_id), "copilot")


def copilot_action(name: str, args: Any) -> Action:
    a = as_dict(args)
    path = as_str(a.get("path") or a.get("file_path") or a.get("filePath"))
    if name in ("bash", "shell", "powershell"):
        return CommandRun(as_str(a.get("command")))
    if name in ("view", "read", "read_file"):
        return FileRead(path)
    if name in ("edit", "str_replace", "str_replace_editor"):
        diff = snippet_diff(path, as_str(a.get("old_str")), as_str(a.get("new_str")))
        return FileEdit(path, diff, "update")
    if name in ("create", "write"):
        return FileEdit(path, snippet_diff(path, "", as_str(a.get("file_text"))), "add")
    if name in ("glob", "grep", "rg", "search"):
        return Search(as_str(a.get("pattern") or a.get("query")))
    if name in ("web_fetch", "fetch"):
        return WebFetch(as_str(a.get("url")))
    if name in ("update_todo", "todo_write"):
        items = [as_dict(t) for t in as_list(a.get("todos"))]
        return Todo([TodoItem(as_str(t.get("content") or t.get("title")),
                              as_str(t.get("status")) or "pending") for t in items])  # fmt: skip
    if name in ("task", "agent"):
        return Subtask(as_str(a.get("description") or a.get("prompt")), a.get("prompt"))
    return Generic(name, a or args)


_QUIET = re.compile(r"^(session\.|model\.|assistant\.(turn_|idle|message_start)|user\.)")


class CopilotNormalizer(JsonlNormalizer):
    """copilot `--output-format json`: typed events (assistant.message_delta, assistant.message,
    tool.execution_start/complete, result); the many ephemeral session.* events are skipped."""

    agent = "copilot"

    def __init__(self, session_id: str | None = None) -> None:
        super().__init__()
        self.agent_session_id = session_id  # chosen by aura with --session-id: known at once
        self._messages: dict[str, int] = {}  # messageId -> entry
        self._reasoning: dict[str, int] = {}

    def on_event(self, obj: dict[str, Any]) -> None:
        kind = as_str(obj.get("type"))
        data = as_dict(obj.get("data"))
        if kind == "assistant.message_delta":
            self._delta(self._messages, AssistantMessage, data, "deltaContent")
        elif kind == "assistant.reasoning_delta":
            self._delta(self._reasoning, Thinking, data, "deltaContent")
        elif kind == "assistant.message":
            self._message(data)
        elif kind == "assistant.reasoning":
            mid = as_str(data.get("reasoningId") or data.get("messageId"))
            text = as_str(data.get("content"))
            at = self._reasoning.get(mid)
            if at is not None:
                entry = self.entries[at]
                assert isinstance(entry, Thinking)
                if text and entry.text != text:
                    entry.text = text
                    self.replace(at)
            elif text.strip():
                self._reasoning[mid] = self.append(Thinking(text))
        elif kind == "tool.execution_start":
            name = as_str(data.get("toolName")) or "tool"
            tid = as_str(data.get("toolCallId")) or f"tool-{len(self.entries)}"
            tool = self.tool(tid)
            if tool is None:
                self.add_tool(ToolUse(tid, name, copilot_action(name, data.get("arguments"))))
        elif kind == "tool.execution_complete":
            self._complete(data)
        elif kind == "result":
            self.set_session_id(obj.get("sessionId"))
            code = to_int(obj.get("exitCode"))
            if code:
                self.error(f"copilot exited with code {code}")
            changes = as_dict(as_dict(obj.get("usage")).get("codeChanges"))
            added, removed = to_int(changes.get("linesAdded")), to_int(changes.get("linesRemoved"))
            if added or removed:
                self.append(SystemMessage(f"code changes: +{added or 0} -{removed or 0}"))
        elif kind in ("session.error", "error"):
            self.error(as_str(data.get("message") or obj.get("message")) or "copilot error")
        elif kind == "session.warning":
            self.append(SystemMessage(f"warning: {as_str(data.get('message'))}"))
        elif _QUIET.match(kind) or kind.startswith("tool.") or obj.get("ephemeral") is True:
            pass  # progress, deltas of tool input, session bookkeeping
        else:
            self.unknown()

    def _delta(
        self,
        index: dict[str, int],
        cls: type[AssistantMessage] | type[Thinking],
        data: dict[str, Any],
        key: str,
    ) -> None:
        mid = as_str(data.get("messageId") or data.get("reasoningId"))
        chunk = as_str(data.get(key))
        at = index.get(mid)
        if at is not None:
            entry = self.entries[at]
            assert isinstance(entry, (AssistantMessage, Thinking))
            entry.add(chunk)
            self.replace(at)
        elif chunk:
            index[mid] = self.append(cls(chunk))

    def _message(self, data: dict[str, Any]) -> None:
        mid = as_str(data.get("messageId"))
        text = as_str(data.get("content"))
        at = self._messages.get(mid)
        if at is not None:
            entry = self.entries[at]
            assert isinstance(entry, AssistantMessage)
            if text and entry.text != text:
                entry.text = text
                self.replace(at)
        elif text.strip():
            self._messages[mid] = self.append(AssistantMessage(text))
        for req in as_list(data.get("toolRequests")):
            r = as_dict(req)
            tid = as_str(r.get("toolCallId"))
            name = as_str(r.get("name")) or "tool"
            if tid and self.tool(tid) is None:
                self.add_tool(ToolUse(tid, name, copilot_action(name, r.get("arguments"))))

    def _complete(self, data: dict[str, Any]) -> None:
        tid = as_str(data.get("toolCallId"))
        tool = self.tool(tid)
        if tool is None:
            return
        result = as_dict(data.get("result"))
        text = as_str(result.get("content")) or text_of(data.get("error"))
        err = as_dict(data.get("error"))
        if data.get("success"):
            tool.status = SUCCESS
        else:
            msg = (as_str(err.get("message")) + " " + text).lower()
            tool.status = DENIED if ("denied" in msg or "permission" in msg) else FAILED
            text = text or as_str(err.get("message"))
        action = tool.action
        if isinstance(action, CommandRun):
            action.output = text.strip()[:RESULT_KEEP] or None
            action.exit_code = to_int(as_dict(data.get("shellExecution")).get("exitCode"))
        elif isinstance(action, (Generic, Subtask)) and text:
            action.result = text[:RESULT_KEEP]
        if tool.status == CREATED:
            tool.status = SUCCESS
        self.tool_changed(tid)
