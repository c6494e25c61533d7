"""Amp: `amp --execute --stream-json [--settings-file F]` (new thread) or `amp threads continue ID
--execute --stream-json` (resume), prompt on stdin then EOF.

Amp needs AMP_API_KEY and Amp's servers, so it cannot run offline here; the adapter follows
`amp --help` (@ampcode/cli 0.0.1790142911) and is tested with a fake executable printing Amp's
Claude Code-compatible stream JSON. The prompt goes on stdin (execute mode reads it there), so
any text is safe. `--force` / `--yolo` / `--allow-all-tools` / `--auto-approve true` set
`amp.dangerouslyAllowAll` through a copy of the user's settings file (`--settings-file`); there
is no flag for it. `--model` is Amp's mode (low / medium / high / ultra: `-m`). A continued
thread re-emits its history first: the normaliser skips it up to the new prompt.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, ClassVar

from aura_core.executors.agent_cli import CliAgent, Level, permission_level
from aura_core.executors.base import LaunchSpec, RunRequest
from aura_core.executors.claude import ClaudeNormalizer, claude_action
from aura_core.executors.entries import (
    DENIED,
    FAILED,
    Action,
    CommandRun,
    FileEdit,
    FileRead,
    Generic,
    Search,
    SystemMessage,
    Todo,
    TodoItem,
    ToolUse,
    as_dict,
    as_list,
    as_str,
    snippet_diff,
    text_of,
)
from aura_core.paths import cache_dir


class AmpExecutor(CliAgent):
    name: ClassVar[str] = "amp"
    binary: ClassVar[str] = "amp"
    npm_package: ClassVar[str] = "@ampcode/cli"
    key_env: ClassVar[tuple[str, ...]] = ("AMP_API_KEY",)
    login_hint: ClassVar[str] = "log in: run `amp login`, or set AMP_API_KEY"

    def __init__(self) -> None:
        self._resume_prompt: str | None = None

    def has_credentials(self) -> bool:
        if super().has_credentials():
            return True
        data = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local/share")
        return (data / "amp" / "secrets.json").is_file()

    def build_launch(self, request: RunRequest) -> LaunchSpec:
        o = request.options
        argv = [*self.program(request)]
        if request.resume_id:
            argv += ["threads", "continue", request.resume_id]
            self._resume_prompt = request.full_prompt
        argv += ["--execute", "--stream-json"]
        warnings = self.common_warnings(o)
        if request.model:
            argv += ["-m", request.model]
        if permission_level(request) >= Level.all_tools:
            argv += ["--settings-file", str(self.allow_all_settings())]
        if o.trust:
            warnings.append("--trust: amp does not ask to trust a folder; nothing to do")
        argv += o.params
        env = {**self.base_env(request), "PWD": str(request.cwd)}
        return LaunchSpec(argv=argv, env=env, stdin=request.full_prompt.encode(), warnings=warnings)

    @staticmethod
    def allow_all_settings() -> Path:
        """The user's Amp settings plus `amp.dangerouslyAllowAll`, in aura's cache."""
        config = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
        source = Path(os.environ.get("AMP_SETTINGS_FILE") or config / "amp" / "settings.json")
        try:
            data = json.loads(source.read_text())
            if not isinstance(data, dict):
                data = {}
        except (OSError, ValueError):
            data = {}
        data["amp.dangerouslyAllowAll"] = True
        text = json.dumps(data, indent=2, sort_keys=True)
        digest = hashlib.sha256(text.encode()).hexdigest()[:12]
        out = cache_dir() / "amp" / f"settings-{digest}.json"
        if not out.is_file():
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(text)
        return out

    def normalizer(self) -> AmpNormalizer:
        return AmpNormalizer(self._resume_prompt)


def amp_action(name: str, inp: Any) -> Action:
    i = as_dict(inp)
    path = as_str(i.get("path") or i.get("file_path"))
    if name in ("Bash", "bash"):
        return CommandRun(as_str(i.get("cmd") or i.get("command")))
    if name in ("Read", "read_file", "list_directory"):
        return FileRead(path or ".")
    if name == "edit_file":
        diff = snippet_diff(path, as_str(i.get("old_str")), as_str(i.get("new_str")))
        return FileEdit(path, diff, "update")
    if name == "create_file":
        return FileEdit(path, snippet_diff(path, "", as_str(i.get("content"))), "add")
    if name in ("Grep", "glob", "codebase_search_agent", "finder"):
        return Search(as_str(i.get("pattern") or i.get("filePattern") or i.get("query")))
    if name in ("todo_write", "todo_read"):
        items = [as_dict(t) for t in as_list(i.get("todos"))]
        return Todo([TodoItem(as_str(t.get("content")), as_str(t.get("status")) or "pending")
                     for t in items])  # fmt: skip
    return claude_action(name, inp)


class AmpNormalizer(ClaudeNormalizer):
    """Amp's stream JSON (Claude's shape, Amp's tool names). On a continued thread, the history
    Amp replays is skipped up to the user message that is the new prompt; if that never comes
    (another Amp version), the held lines are shown after all."""

    agent = "amp"

    def __init__(self, resume_prompt: str | None = None) -> None:
        super().__init__()
        self._waiting = resume_prompt is not None
        self._prompt = (resume_prompt or "").strip()
        self._held: list[dict[str, Any]] = []

    def add_tool(self, tool: ToolUse) -> int:
        if isinstance(tool.action, Generic):
            tool.action = amp_action(tool.tool_name, tool.action.args)
        return super().add_tool(tool)

    def _assistant(self, obj: dict[str, Any]) -> None:
        # Amp's Bash takes `cmd`: map before claude_action sees `command`
        msg = as_dict(obj.get("message"))
        for block in as_list(msg.get("content")):
            if isinstance(block, dict) and block.get("type") == "tool_use":
                inp = as_dict(block.get("input"))
                if block.get("name") == "Bash" and "cmd" in inp and "command" not in inp:
                    block["input"] = {**inp, "command": inp["cmd"]}
        super()._assistant(obj)

    def _tool_result(self, block: dict[str, Any], extra: Any) -> None:
        super()._tool_result(block, extra)
        tool = self.tool(as_str(block.get("tool_use_id")))
        if (
            tool is not None
            and tool.status == FAILED
            and "rejected" in text_of(block.get("content")).lower()[:500]
        ):
            tool.status = DENIED
            self.tool_changed(tool.tool_id)

    def on_event(self, obj: dict[str, Any]) -> None:
        if not self._waiting:
            super().on_event(obj)
            return
        sid = obj.get("session_id")
        if sid:
            self.set_session_id(sid)
        if obj.get("type") == "user" and self._is_prompt(obj):
            self._waiting = False
            n = len(self._held)
            self._held.clear()
            self.append(SystemMessage(f"continued thread {self.agent_session_id} ({n} earlier)"))
            return
        if obj.get("type") not in ("user", "assistant"):
            if obj.get("type") == "result":
                self._release()
            super().on_event(obj)
            return
        self._held.append(obj)

    def _is_prompt(self, obj: dict[str, Any]) -> bool:
        content = as_dict(obj.get("message")).get("content")
        return bool(self._prompt) and text_of(content).strip() == self._prompt

    def _release(self) -> None:
        self._waiting = False
        held, self._held = self._held, []
        for obj in held:
            super().on_event(obj)

    def on_finish(self) -> None:
        if self._waiting:
            self._release()
        super().on_finish()
