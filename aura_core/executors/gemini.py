"""Gemini CLI: `gemini -o stream-json --skip-trust [-m M] --approval-mode ... --prompt=PROMPT`.

Verified against @google/gemini-cli 0.61.0. Headless gemini refuses to start in an untrusted
folder (exit 55), so `--skip-trust` is always passed (aura runs it in worktrees it made).
Headless gemini drops every tool that would need approval, so the default level is `auto_edit`
plus `--allowed-tools=run_shell_command` (deprecated in favour of policy files, still honoured);
`--force` / `--yolo` are `--approval-mode yolo`; review / `--auto-approve false` is `default`
(read-only tools only). The prompt is given as `--prompt=...` so a leading `-` is safe. Resume is
`--resume SESSION_ID` (same project folder).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, ClassVar

from aura_core.executors.agent_cli import CliAgent, Level, permission_level
from aura_core.executors.base import LaunchSpec, RunRequest
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
    Plan,
    Search,
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
    as_list,
    as_str,
    classify_setup,
    snippet_diff,
    to_int,
)

RESULT_KEEP = 4000
_EXIT = re.compile(r"Exit Code: (-?\d+)")


class GeminiExecutor(CliAgent):
    name: ClassVar[str] = "gemini"
    binary: ClassVar[str] = "gemini"
    npm_package: ClassVar[str] = "@google/gemini-cli"
    key_env: ClassVar[tuple[str, ...]] = (
        "GEMINI_API_KEY",
        "GOOGLE_API_KEY",
        "GOOGLE_GENAI_USE_VERTEXAI",
        "GOOGLE_GENAI_USE_GCA",
    )
    login_hint: ClassVar[str] = "log in: run `gemini` and choose a login, or set GEMINI_API_KEY"

    def has_credentials(self) -> bool:
        if super().has_credentials():
            return True
        return (Path.home() / ".gemini" / "oauth_creds.json").is_file()

    def build_launch(self, request: RunRequest) -> LaunchSpec:
        o = request.options
        argv = [*self.program(request), "-o", "stream-json", "--skip-trust"]
        env = self.base_env(request)
        warnings = self.common_warnings(o)
        if request.model:
            argv += ["-m", request.model]
        level = permission_level(request)
        if level >= Level.all_tools:
            argv += ["--approval-mode", "yolo"]
        elif level == Level.read_only:
            argv += ["--approval-mode", "default"]
        else:
            argv += ["--approval-mode", "auto_edit", "--allowed-tools=run_shell_command"]
        if request.resume_id:
            argv += ["--resume", request.resume_id]
        argv += o.params
        argv.append(f"--prompt={request.full_prompt}")
        return LaunchSpec(argv=argv, env=env, warnings=warnings)

    def normalizer(self) -> GeminiNormalizer:
        return GeminiNormalizer()


def gemini_action(name: str, params: Any) -> Action:
    p = as_dict(params)
    if name == "run_shell_command":
        return CommandRun(as_str(p.get("command")))
    path = as_str(
        p.get("file_path") or p.get("absolute_path") or p.get("dir_path") or p.get("path")
    )
    if name in ("read_file", "list_directory"):
        return FileRead(path)
    if name == "read_many_files":
        paths = p.get("paths") or p.get("include") or []
        return FileRead(", ".join(map(str, paths)) if isinstance(paths, list) else str(paths))
    if name in ("replace", "edit"):
        diff = snippet_diff(path, str(p.get("old_string", "")), str(p.get("new_string", "")))
        return FileEdit(path, diff, "update")
    if name == "write_file":
        return FileEdit(path, snippet_diff(path, "", str(p.get("content", ""))), "add")
    if name in ("glob", "grep_search", "search_file_content"):
        return Search(str(p.get("pattern", "")))
    if name == "google_web_search":
        return Search(str(p.get("query", "")))
    if name == "web_fetch":
        text = str(p.get("url") or p.get("prompt") or "")
        m = re.search(r"https?://\S+", text)
        return WebFetch(m.group(0) if m else text)
    if name == "write_todos":
        todos = [t for t in as_list(p.get("todos")) if isinstance(t, dict)]
        return Todo([TodoItem(str(t.get("description") or t.get("content") or ""),
                              str(t.get("status") or "pending")) for t in todos])  # fmt: skip
    if name in ("invoke_agent", "delegate_to_agent"):
        return Subtask(str(p.get("prompt") or ""), p.get("prompt"), p.get("agent_name"))
    if name in ("enter_plan_mode", "exit_plan_mode"):
        return Plan(str(p.get("plan") or p.get("reason") or name))
    return Generic(name, p or params)


class GeminiNormalizer(JsonlNormalizer):
    """gemini stream-json: init, message (with delta chunks), tool_use, tool_result, error,
    result."""

    agent = "gemini"
    stderr_ignore = (
        re.compile(r"256-color support not detected"),
        re.compile(r"^\[STARTUP\]"),
        re.compile(r"^Ripgrep is not available"),
        re.compile(r"--allowed-tools cli argument .* deprecated"),
        re.compile(r"^YOLO mode is enabled"),
        re.compile(r"^Loaded cached credentials"),
    )

    def __init__(self) -> None:
        super().__init__()
        self._streaming: int | None = None  # the assistant message deltas are growing
        self.model: str | None = None

    def on_event(self, obj: dict[str, Any]) -> None:
        kind = obj.get("type")
        if kind == "message":
            role = obj.get("role")
            content = obj.get("content")
            text = content if isinstance(content, str) else json.dumps(content)
            if role == "assistant":
                at = self._streaming
                if at is not None and obj.get("delta") and at == len(self.entries) - 1:
                    entry = self.entries[at]
                    assert isinstance(entry, AssistantMessage)
                    entry.add(text)
                    self.replace(at)
                else:
                    at = self.append(AssistantMessage(text))
                    self._streaming = at if obj.get("delta") else None
                return
            if role == "user":
                self.append(UserMessage(text))
            elif role in ("thought", "thinking"):
                self.append(Thinking(text))
            else:
                self.append(SystemMessage(text))
        elif kind == "tool_use":
            name = as_str(obj.get("tool_name")) or "tool"
            tool_id = as_str(obj.get("tool_id")) or f"tool-{len(self.entries)}"
            self.add_tool(ToolUse(tool_id, name, gemini_action(name, obj.get("parameters"))))
        elif kind == "tool_result":
            self._tool_result(obj)
        elif kind == "init":
            self.set_session_id(obj.get("session_id"))
            self.model = as_str(obj.get("model")) or self.model
            self.append(SystemMessage(f"model {self.model}"))
        elif kind == "result":
            self._result(obj)
        elif kind == "error":
            message = as_str(obj.get("message")) or "gemini error"
            if obj.get("severity") == "warning":
                self.append(SystemMessage(f"warning: {message}"))
            else:
                self.error(message)
        else:
            self.unknown()
        self._streaming = None

    def _tool_result(self, obj: dict[str, Any]) -> None:
        tool = self.tool(as_str(obj.get("tool_id")))
        if tool is None:
            return
        err = as_dict(obj.get("error"))
        output = obj.get("output")
        out_text = output if isinstance(output, str) else None
        if obj.get("status") == "success":
            tool.status = SUCCESS
        else:
            etype = as_str(err.get("type")).lower()
            emsg = as_str(err.get("message"))
            denied = "denied" in etype or "denied by policy" in emsg.lower()
            tool.status = DENIED if denied else FAILED if obj.get("status") == "error" else CREATED
            out_text = out_text or emsg
        action = tool.action
        if isinstance(action, CommandRun):
            action.output = out_text
            m = _EXIT.search(out_text) if out_text and "Exit Code" in out_text else None
            if m:
                action.exit_code = int(m.group(1))
        elif isinstance(action, (Generic, Subtask)) and out_text:
            action.result = out_text[:RESULT_KEEP]
        self.tool_changed(tool.tool_id)

    def _result(self, obj: dict[str, Any]) -> None:
        if obj.get("status") not in (None, "success"):
            err = obj.get("error")
            msg = err.get("message") if isinstance(err, dict) else err
            text = as_str(msg) or f"gemini finished with status {as_str(obj.get('status'))}"
            self.error(text, classify_setup(text))
        stats = as_dict(obj.get("stats"))
        if not stats:
            return
        inp = to_int(stats.get("input_tokens"))
        out = to_int(stats.get("output_tokens"))
        if not inp and not out and obj.get("status") not in (None, "success"):
            return  # nothing was spent: the error says it all
        models = stats.get("models")
        first_model = next(iter(models), None) if isinstance(models, dict) else None
        self.append(
            TokenUsage(
                input_tokens=inp,
                output_tokens=out,
                cache_read_tokens=to_int(stats.get("cached")),
                total_tokens=to_int(stats.get("total_tokens")),
                model=self.model or first_model,
            )
        )

    def on_finish(self) -> None:
        self._streaming = None
