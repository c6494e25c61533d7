"""Cursor's agent CLI: `cursor-agent -p --output-format stream-json --trust [--force] [--model M]
[--resume ID]`, prompt on stdin then EOF.

Cursor's CLI is not on npm and cannot run here; this adapter follows Cursor's documented
stream-json (system init, user, assistant, thinking deltas, tool_call started/completed with a
`<name>ToolCall` payload, result) and is tested with a fake executable printing that format.
Headless cursor-agent refuses to start in a folder it does not trust, so `--trust` is always
passed (aura runs it in worktrees it made). `--force` / `--yolo` / `--allow-all-tools` /
`--auto-approve true` add `--force` (run commands without asking); without it cursor rejects
shell calls it would ask about. Resume: `--resume SESSION_ID`.
"""

from __future__ import annotations

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
    Search,
    SystemMessage,
    Thinking,
    Todo,
    TodoItem,
    TokenUsage,
    ToolUse,
    WebFetch,
    as_dict,
    as_list,
    as_str,
    snippet_diff,
    text_of,
    to_int,
)

RESULT_KEEP = 4000


class CursorAgentExecutor(CliAgent):
    name: ClassVar[str] = "cursor-agent"
    binary: ClassVar[str] = "cursor-agent"
    npm_package: ClassVar[str] = ""
    key_env: ClassVar[tuple[str, ...]] = ("CURSOR_API_KEY",)
    login_hint: ClassVar[str] = "log in: run `cursor-agent login`, or set CURSOR_API_KEY"

    @property
    def install_hint(self) -> str:
        return "curl https://cursor.com/install -fsS | bash"

    def has_credentials(self) -> bool:
        if super().has_credentials():
            return True
        home = Path.home()
        return (home / ".cursor" / "cli-config.json").is_file() or (
            home / ".config" / "cursor" / "auth.json"
        ).is_file()

    def build_launch(self, request: RunRequest) -> LaunchSpec:
        o = request.options
        argv = [*self.program(request), "-p", "--output-format", "stream-json", "--trust"]
        warnings = self.common_warnings(o)
        if permission_level(request) >= Level.all_tools:
            argv.append("--force")
        elif permission_level(request) == Level.read_only:
            warnings.append("read only: cursor-agent runs without --force (shell calls rejected)")
        if request.model:
            argv += ["--model", request.model]
        if request.resume_id:
            argv += ["--resume", request.resume_id]
        argv += o.params
        env = {**self.base_env(request), "PWD": str(request.cwd)}
        return LaunchSpec(argv=argv, env=env, stdin=request.full_prompt.encode(), warnings=warnings)

    def normalizer(self) -> CursorNormalizer:
        return CursorNormalizer()


def cursor_action(kind: str, args: Any) -> Action:
    """`kind` is the payload key without `ToolCall`: shell, read, edit, write, ls, grep, ..."""
    a = as_dict(args)
    path = as_str(a.get("path") or a.get("filePath") or a.get("targetFile"))
    if kind == "shell":
        return CommandRun(as_str(a.get("command")))
    if kind in ("read", "ls"):
        return FileRead(path or ".")
    if kind == "edit":
        old, new = (
            as_str(a.get("oldString") or a.get("old_string")),
            as_str(a.get("newString") or a.get("new_string") or a.get("streamContent")),
        )
        return FileEdit(path, snippet_diff(path, old, new) if (old or new) else None, "update")
    if kind == "write":
        text = as_str(a.get("fileText") or a.get("contents") or a.get("content"))
        return FileEdit(path, snippet_diff(path, "", text), "add")
    if kind == "delete":
        return FileEdit(path, None, "delete")
    if kind in ("grep", "glob", "semSearch", "codebaseSearch"):
        return Search(as_str(a.get("pattern") or a.get("globPattern") or a.get("query")))
    if kind == "webFetch":
        return WebFetch(as_str(a.get("url")))
    if kind in ("updateTodos", "todo"):
        items = [as_dict(t) for t in as_list(a.get("todos"))]
        return Todo([TodoItem(as_str(t.get("content")), _todo_status(as_str(t.get("status"))))
                     for t in items])  # fmt: skip
    return Generic(kind, a or args)


def _todo_status(status: str) -> str:
    s = status.lower().removeprefix("todo_status_")
    return {"completed": "completed", "in_progress": "in_progress"}.get(s, "pending")


class CursorNormalizer(JsonlNormalizer):
    """cursor-agent stream-json."""

    agent = "cursor-agent"

    def __init__(self) -> None:
        super().__init__()
        self._thinking: int | None = None
        self._assistant: int | None = None
        self.model: str | None = None

    def on_event(self, obj: dict[str, Any]) -> None:
        self.set_session_id(obj.get("session_id"))
        kind = obj.get("type")
        if kind != "thinking":
            self._thinking = None
        if kind != "assistant":
            self._assistant = None
        if kind == "assistant":
            text = text_of(as_dict(obj.get("message")).get("content"))
            at = self._assistant
            if at is not None and at == len(self.entries) - 1 and obj.get("timestamp_ms"):
                entry = self.entries[at]  # --stream-partial-output: deltas of one message
                assert isinstance(entry, AssistantMessage)
                entry.add(text)
                self.replace(at)
            elif text:
                self._assistant = self.append(AssistantMessage(text))
        elif kind == "thinking":
            if obj.get("subtype") == "delta":
                chunk = as_str(obj.get("text"))
                at = self._thinking
                if at is not None and at == len(self.entries) - 1:
                    entry = self.entries[at]
                    assert isinstance(entry, Thinking)
                    entry.add(chunk)
                    self.replace(at)
                elif chunk:
                    self._thinking = self.append(Thinking(chunk))
            else:
                self._thinking = None
        elif kind == "tool_call":
            self._tool(obj)
        elif kind == "system":
            if obj.get("subtype") == "init":
                self.model = as_str(obj.get("model")) or None
                mode = as_str(obj.get("permissionMode"))
                self.append(SystemMessage(f"model {self.model}" + (f" · {mode}" if mode else "")))
        elif kind == "result":
            if obj.get("is_error") or obj.get("subtype") not in (None, "success"):
                self.error(as_str(obj.get("result")) or "cursor-agent reported an error")
            usage = as_dict(obj.get("usage"))
            if usage:
                self.append(
                    TokenUsage(
                        input_tokens=to_int(usage.get("inputTokens")),
                        output_tokens=to_int(usage.get("outputTokens")),
                        cache_read_tokens=to_int(usage.get("cacheReadTokens")),
                        cache_write_tokens=to_int(usage.get("cacheWriteTokens")),
                        model=self.model,
                    )
                )
        elif kind in ("user", "interaction_query"):
            pass  # the prompt echoed; self-answered queries
        elif kind == "error":
            self.error(as_str(obj.get("message") or obj.get("error")) or "cursor-agent error")
        else:
            self.unknown()

    def _tool(self, obj: dict[str, Any]) -> None:
        call = as_dict(obj.get("tool_call"))
        key, body = next(
            ((k, as_dict(v)) for k, v in call.items() if k.endswith("ToolCall")), ("", {})
        )
        if not key and "function" in call:
            fn = as_dict(call.get("function"))
            key, body = as_str(fn.get("name")) + "ToolCall", {"args": fn.get("arguments")}
        kind = key.removesuffix("ToolCall") or "tool"
        tid = as_str(obj.get("call_id")) or f"tool-{len(self.entries)}"
        if obj.get("subtype") == "started" or self.tool(tid) is None:
            self.add_tool(ToolUse(tid, kind, cursor_action(kind, body.get("args"))))
        if obj.get("subtype") != "completed":
            return
        tool = self.tool(tid)
        assert tool is not None
        result = as_dict(body.get("result"))
        ok = as_dict(result.get("success"))
        if "rejected" in result:
            tool.status = DENIED
        elif "success" in result:
            tool.status = SUCCESS
        elif result:
            tool.status = FAILED
        action = tool.action
        if isinstance(action, CommandRun):
            if ok:
                out, err = as_str(ok.get("stdout")), as_str(ok.get("stderr"))
                action.output = (out + ("\n" + err if out and err else err))[:RESULT_KEEP] or None
                action.exit_code = to_int(ok.get("exitCode"))
            else:
                failure = as_dict(result.get("failure") or result.get("error"))
                action.output = as_str(failure.get("stderr") or failure.get("message")) or None
                action.exit_code = to_int(failure.get("exitCode"))
        elif isinstance(action, FileEdit) and isinstance(ok.get("diffString"), str):
            action.diff = ok["diffString"] or action.diff
        elif isinstance(action, Generic) and result:
            action.result = as_str(ok or result)[:RESULT_KEEP]
        if tool.status == CREATED:
            tool.status = SUCCESS
        self.tool_changed(tid)
