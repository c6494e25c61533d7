"""Factory Droid: `droid exec -o stream-json [--auto low|medium|high | --skip-permissions-unsafe]
[-m M] [--reasoning-effort E] [-s ID | --fork ID] -- PROMPT`.

Verified against @factory/cli 0.225.2 (linux-x64). The prompt is the positional argument after
`--`. Autonomy: review / `--auto-approve false` → none (droid's default is read only); the
default → `--auto medium` (edit files, run dev commands); `--force` / `--allow-all-tools` /
`--auto-approve true` → `--auto high`; `--yolo` → `--skip-permissions-unsafe`. The setting
`autonomy` (low / medium / high / unsafe / readonly) overrides that, e.g. `--var
AURA_AUTONOMY=low`; `reasoning_effort` adds `--reasoning-effort`; a `--param --auto ...` wins.

Resume: `exec -s ID` continues a session kept on Factory's servers (needs FACTORY_API_KEY or a
login; offline it fails with "Failed to fetch session"); `exec --fork ID` copies the local
history into a new session and continues it offline. The setting `droid_resume` (session / fork)
chooses; by default `-s` when a Factory key or login is there, else `--fork` (the new session's
id is then recorded). Droid's ACP mode needs a Factory key and ignores `-m`: not used.
"""

from __future__ import annotations

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
    Search,
    Subtask,
    SystemMessage,
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
from aura_core.executors.settings import setting

RESULT_KEEP = 4000
_EXITED = re.compile(r"\[Process exited with code (-?\d+)\]")
AUTONOMY = {"low": ["--auto", "low"], "medium": ["--auto", "medium"], "high": ["--auto", "high"],
            "unsafe": ["--skip-permissions-unsafe"], "readonly": [], "read-only": []}  # fmt: skip


LOGIN_FILES = ("auth.v2.keyring", "auth.v2.loginkeychain", "auth.encrypted", "auth.json")


class DroidExecutor(CliAgent):
    name: ClassVar[str] = "droid"
    binary: ClassVar[str] = "droid"
    npm_package: ClassVar[str] = "@factory/cli"
    key_env: ClassVar[tuple[str, ...]] = ("FACTORY_API_KEY",)
    login_hint: ClassVar[str] = (
        "log in: run `droid` and log in, set FACTORY_API_KEY, or add customModels to "
        "~/.factory/settings.json"
    )

    def has_credentials(self) -> bool:
        if self.factory_login():
            return True
        settings = Path.home() / ".factory" / "settings.json"
        try:
            return '"customModels"' in settings.read_text()
        except OSError:
            return False

    def factory_login(self) -> bool:
        if super().has_credentials():
            return True
        # where `droid` 0.225 saves a login (read from its binary): an encrypted file with its
        # key beside it, a keyring marker, or the older auth.encrypted / auth.json
        home = Path.home() / ".factory"
        if (home / "auth.v2.file").is_file():
            return (home / "auth.v2.key").is_file()
        return any((home / f).exists() for f in LOGIN_FILES)

    def build_launch(self, request: RunRequest) -> LaunchSpec:
        o = request.options
        argv = [*self.program(request), "exec", "-o", "stream-json"]
        warnings = self.common_warnings(o)
        if request.model:
            argv += ["-m", request.model]
        user_auto = any(p in ("--auto", "--skip-permissions-unsafe") for p in o.params)
        if not user_auto:
            argv += self._autonomy(request, warnings)
        effort = setting(request, "reasoning_effort")
        if effort:
            argv += ["--reasoning-effort", effort]
        if request.resume_id:
            how = (setting(request, "droid_resume") or "").lower()
            if how not in ("session", "fork"):
                how = "session" if self.factory_login() else "fork"
            argv += ["-s" if how == "session" else "--fork", request.resume_id]
        if o.trust:
            warnings.append("--trust: droid exec does not ask to trust a folder; nothing to do")
        argv += o.params
        argv += ["--", request.full_prompt]
        env = {**self.base_env(request), "PWD": str(request.cwd)}
        return LaunchSpec(argv=argv, env=env, warnings=warnings)

    @staticmethod
    def _autonomy(request: RunRequest, warnings: list[str]) -> list[str]:
        chosen = (setting(request, "autonomy") or "").lower()
        if chosen:
            if chosen in AUTONOMY:
                return AUTONOMY[chosen]
            warnings.append(f"autonomy {chosen!r} unknown (low, medium, high, unsafe, readonly)")
        level = permission_level(request)
        if level == Level.yolo:
            return AUTONOMY["unsafe"]
        if level == Level.all_tools:
            return AUTONOMY["high"]
        if level == Level.read_only:
            return []
        return AUTONOMY["medium"]

    def normalizer(self) -> DroidNormalizer:
        return DroidNormalizer()


def droid_action(name: str, params: Any) -> Action:
    p = as_dict(params)
    path = as_str(p.get("file_path") or p.get("path") or p.get("directory_path"))
    if name == "Execute":
        return CommandRun(as_str(p.get("command")))
    if name in ("Read", "LS"):
        return FileRead(path or ".")
    if name in ("Edit", "MultiEdit"):
        diff = snippet_diff(path, as_str(p.get("old_str") or p.get("old_string")),
                            as_str(p.get("new_str") or p.get("new_string")))  # fmt: skip
        return FileEdit(path, diff, "update")
    if name == "Create":
        return FileEdit(path, snippet_diff(path, "", as_str(p.get("content"))), "add")
    if name == "ApplyPatch":
        patch = as_str(p.get("input") or p.get("patch"))
        return FileEdit(path or "(patch)", patch or None, "update")
    if name in ("Grep", "Glob"):
        pats = p.get("pattern") or p.get("patterns") or p.get("query")
        return Search(", ".join(map(str, pats)) if isinstance(pats, list) else as_str(pats))
    if name == "WebSearch":
        return Search(as_str(p.get("query")))
    if name == "FetchUrl":
        return WebFetch(as_str(p.get("url")))
    if name == "TodoWrite":
        todos = p.get("todos")
        if isinstance(todos, str):
            return Todo([TodoItem(t.strip()) for t in todos.splitlines() if t.strip()])
        items = [as_dict(t) for t in as_list(todos)]
        return Todo([TodoItem(as_str(t.get("content")), as_str(t.get("status")) or "pending")
                     for t in items])  # fmt: skip
    if name == "Task":
        return Subtask(as_str(p.get("description") or p.get("prompt")), p.get("prompt"),
                       as_str(p.get("subagent_type")) or None)  # fmt: skip
    return Generic(name, p or params)


class DroidNormalizer(JsonlNormalizer):
    """droid exec stream-json: system init, message, tool_call, tool_result, error, completion."""

    agent = "droid"

    def __init__(self) -> None:
        super().__init__()
        self.model: str | None = None

    def on_event(self, obj: dict[str, Any]) -> None:
        self.set_session_id(obj.get("session_id"))
        kind = obj.get("type")
        if kind == "message":
            if obj.get("role") == "assistant":
                text = as_str(obj.get("text"))
                if text.strip():
                    self.append(AssistantMessage(text))
            # the user's own prompt comes back as a message: not repeated
        elif kind == "tool_call":
            name = as_str(obj.get("toolName") or obj.get("toolId")) or "tool"
            tid = as_str(obj.get("id")) or f"tool-{len(self.entries)}"
            self.add_tool(ToolUse(tid, name, droid_action(name, obj.get("parameters"))))
        elif kind == "tool_result":
            self._result(obj)
        elif kind == "system":
            if obj.get("subtype") == "init":
                self.model = as_str(obj.get("model")) or None
                effort = as_str(obj.get("reasoning_effort"))
                tail = f" · reasoning {effort}" if effort and effort != "none" else ""
                self.append(SystemMessage(f"model {self.model}{tail}"))
        elif kind == "error":
            self.error(as_str(obj.get("message") or obj.get("error")) or "droid error")
        elif kind == "completion":
            usage = as_dict(obj.get("usage"))
            self.append(
                TokenUsage(
                    input_tokens=to_int(usage.get("input_tokens")),
                    output_tokens=to_int(usage.get("output_tokens")),
                    cache_read_tokens=to_int(usage.get("cache_read_input_tokens")),
                    cache_write_tokens=to_int(usage.get("cache_creation_input_tokens")),
                    model=self.model,
                )
            )
        else:
            self.unknown()

    def _result(self, obj: dict[str, Any]) -> None:
        tool = self.tool(as_str(obj.get("id")))
        if tool is None:
            return
        err = as_dict(obj.get("error"))
        value = obj.get("value")
        text = value if isinstance(value, str) else text_of(value) if value is not None else ""
        if obj.get("isError"):
            msg = as_str(err.get("message")) or text
            low = msg.lower()
            tool.status = DENIED if ("permission" in low or "not allowed" in low
                                     or "denied" in low) else FAILED  # fmt: skip
            text = msg
        else:
            tool.status = SUCCESS
        action = tool.action
        if isinstance(action, CommandRun):
            action.output = text[:RESULT_KEEP] or None
            code = to_int(obj.get("exitCode"))
            m = _EXITED.search(text) if code is None else None
            if m:
                code = int(m.group(1))
            if code is None and tool.status == SUCCESS:
                code = 0
            action.exit_code = code
        elif isinstance(action, (Generic, Subtask)) and text:
            action.result = text[:RESULT_KEEP]
        if tool.status == CREATED:
            tool.status = SUCCESS
        self.tool_changed(tool.tool_id)
