"""Codex: `codex exec --json --skip-git-repo-check [-m M] [-s MODE] -- PROMPT`, or, in supervised
mode, the long-lived `codex app-server` JSON-RPC peer.

Verified against @openai/codex 0.169.0. Resume is `codex exec [same flags] resume THREAD_ID --
PROMPT` (exec-level flags may stand before `resume`; `-s` is not accepted after it). `codex exec`
never asks for approval, so the permission levels are sandbox modes: read-only (review,
`--auto-approve false` with nobody to ask), workspace-write (the default, also for `--force`),
and `--dangerously-bypass-approvals-and-sandbox` for `--yolo`. `--openai-endpoint URL` becomes a
custom Responses-API provider given with `-c` flags (codex ignores OPENAI_BASE_URL).

`codex app-server` (codex_app_server.py) is used instead when a person can answer approval
requests (`--auto-approve false` with an approver: the TTY prompt of `aura run`, the board's
modal), or when the `transport` setting is `app-server` (`--var AURA_TRANSPORT=app-server`;
`exec` forces exec). There codex runs with approval policy `untrusted` in the workspace-write
sandbox and asks before commands, and each answer (approve, approve for the session, deny with a
reason) goes back to it; resume is `thread/resume` of the same thread id. The same `-c` provider
flags apply. `normalizer()` reads sessions of either transport.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

from aura_core.executors.agent_cli import CliAgent, Level, permission_level
from aura_core.executors.base import AgentRun, LaunchSpec, RunRequest
from aura_core.executors.entries import (
    CREATED,
    DENIED,
    FAILED,
    SUCCESS,
    AssistantMessage,
    CommandRun,
    FileEdit,
    Generic,
    JsonlNormalizer,
    Search,
    SystemMessage,
    Thinking,
    Todo,
    TodoItem,
    TokenUsage,
    ToolUse,
    as_dict,
    as_key,
    as_list,
    as_str,
    text_of,
    to_int,
)

ENDPOINT_PROVIDER = "aura_endpoint"


def provider_flags(
    base_url: str, *, name: str = ENDPOINT_PROVIDER, env_key: str | None = None
) -> list[str]:
    """`-c` flags that point codex at an OpenAI Responses-compatible server."""
    q = json.dumps  # a JSON string is a valid TOML basic string
    flags = [
        "-c", f"model_provider={q(name)}",
        "-c", f"model_providers.{name}.name={q('aura endpoint')}",
        "-c", f"model_providers.{name}.base_url={q(base_url)}",
        "-c", f"model_providers.{name}.wire_api={q('responses')}",
    ]  # fmt: skip
    if env_key:
        flags += ["-c", f"model_providers.{name}.env_key={q(env_key)}"]
    return flags


class CodexExecutor(CliAgent):
    name: ClassVar[str] = "codex"
    binary: ClassVar[str] = "codex"
    npm_package: ClassVar[str] = "@openai/codex"
    key_env: ClassVar[tuple[str, ...]] = ("OPENAI_API_KEY", "CODEX_API_KEY")
    login_hint: ClassVar[str] = "log in: run `codex login`, or set OPENAI_API_KEY"
    asks_permissions: ClassVar[bool] = True

    def has_credentials(self) -> bool:
        if super().has_credentials():
            return True
        home = Path(os.environ.get("CODEX_HOME") or Path.home() / ".codex")
        return (home / "auth.json").is_file()

    def build_launch(self, request: RunRequest) -> LaunchSpec:
        o = request.options
        argv = [*self.program(request), "exec", "--json", "--skip-git-repo-check"]
        env = self.base_env(request)
        warnings = self.common_warnings(o, endpoint_ok=True)
        if o.openai_endpoint:
            key = next((k for k in ("OPENAI_API_KEY",) if o.vars.get(k) or os.environ.get(k)), None)
            argv += provider_flags(o.openai_endpoint.rstrip("/"), env_key=key)
        if request.model:
            argv += ["-m", request.model]
        level = permission_level(request)
        if level == Level.yolo:
            argv.append("--dangerously-bypass-approvals-and-sandbox")
        elif level == Level.read_only:
            argv += ["-s", "read-only"]
        else:
            argv += ["-s", "workspace-write"]
            if level == Level.all_tools:
                warnings.append(
                    "--force/--allow-all-tools/--auto-approve: codex exec never asks, every tool "
                    "already runs inside its workspace-write sandbox (--yolo drops the sandbox)"
                )
        if o.trust:
            argv.append("--trust")
        argv += o.params
        if request.resume_id:
            argv += ["resume", request.resume_id]
        argv += ["--", request.full_prompt]
        return LaunchSpec(argv=argv, env=env, warnings=warnings)

    def build_app_server_launch(self, request: RunRequest) -> LaunchSpec:
        """`codex app-server` (stdio); model, sandbox and approval policy go in thread/start."""
        o = request.options
        argv = [*self.program(request), "app-server"]
        warnings = self.common_warnings(o, endpoint_ok=True)
        if o.openai_endpoint:
            key = next((k for k in ("OPENAI_API_KEY",) if o.vars.get(k) or os.environ.get(k)), None)
            argv += provider_flags(o.openai_endpoint.rstrip("/"), env_key=key)
        if o.trust:
            warnings.append("--trust: codex app-server has no trust flag; ignored")
        argv += o.params
        return LaunchSpec(argv=argv, env=self.base_env(request), warnings=warnings)

    def start(self, request: RunRequest) -> AgentRun:  # type: ignore[override]
        from aura_core.executors.codex_app_server import start_app_server, wants_app_server

        if wants_app_server(request):
            return start_app_server(self, request)
        return super().start(request)

    def normalizer(self) -> CodexNormalizer:
        """Reads `codex exec --json` and `codex app-server` transcripts alike."""
        from aura_core.executors.codex_app_server import CodexAppServerNormalizer

        return CodexAppServerNormalizer()


_WRAPPED = re.compile(r"^\s*(?:\S*/)?(?:bash|sh|zsh|dash) -[il]?c '([^']*)'\s*$")


@lru_cache(maxsize=1024)
def unwrap_shell(command: str) -> str:
    """`/bin/bash -lc 'echo hi'` -> `echo hi`: show what the model asked to run."""
    m = _WRAPPED.match(command)
    if m:
        return m.group(1)
    if "c " not in command or not command.lstrip().startswith(("/", "bash", "sh", "zsh", "dash")):
        return command
    try:
        argv = shlex.split(command)
    except ValueError:
        return command
    if (
        len(argv) == 3
        and os.path.basename(argv[0]) in ("bash", "sh", "zsh", "dash")
        and argv[1] in ("-c", "-lc", "-ic")
    ):
        return argv[2]
    return command


_TRANSIENT = re.compile(r"\b(retrying|reconnecting)\b", re.I)
_STATUS: dict[Any, str] = {
    "in_progress": CREATED,
    "completed": SUCCESS,
    "failed": FAILED,
    "declined": DENIED,
}


class CodexNormalizer(JsonlNormalizer):
    """`codex exec --json` events: thread/turn/item lifecycle, items updated in place by id."""

    agent = "codex"
    stderr_ignore = (
        re.compile(r"^Reading additional input from stdin"),
        re.compile(r"could not create PATH aliases"),
    )

    def __init__(self) -> None:
        super().__init__()
        self._items: dict[str, int] = {}  # message / reasoning item id -> entry index

    def on_event(self, obj: dict[str, Any]) -> None:
        kind = obj.get("type")
        if kind in ("item.started", "item.updated", "item.completed"):
            item = obj.get("item")
            if isinstance(item, dict):
                self._item(item, kind == "item.completed")
        elif kind == "thread.started":
            self.set_session_id(obj.get("thread_id"))
        elif kind == "turn.completed":
            u = as_dict(obj.get("usage"))
            inp = to_int(u.get("input_tokens"))
            out = to_int(u.get("output_tokens"))
            self.append(
                TokenUsage(
                    input_tokens=inp,
                    output_tokens=out,
                    cache_read_tokens=to_int(u.get("cached_input_tokens")),
                    cache_write_tokens=to_int(u.get("cache_write_input_tokens")),
                    reasoning_tokens=to_int(u.get("reasoning_output_tokens")),
                    total_tokens=(inp or 0) + (out or 0) if inp is not None else None,
                )
            )
        elif kind == "turn.failed":
            err = obj.get("error")
            self.error(
                as_str(as_dict(err).get("message") if isinstance(err, dict) else err)
                or "turn failed"
            )
        elif kind == "error":
            message = as_str(obj.get("message")) or "codex error"
            if _TRANSIENT.search(message):
                self.append(SystemMessage(message))  # codex retries by itself
            else:
                self.error(message)
        elif kind != "turn.started":
            self.unknown()

    def _item(self, item: dict[str, Any], done: bool) -> None:
        it = item.get("type")
        item_id = as_str(item.get("id"))
        if it == "agent_message":
            self._text(item_id, AssistantMessage, as_str(item.get("text")))
        elif it == "reasoning":
            self._text(item_id, Thinking, as_str(item.get("text")))
        elif it == "command_execution":
            status = _STATUS.get(as_key(item.get("status"))) or (SUCCESS if done else CREATED)
            action = CommandRun(
                unwrap_shell(as_str(item.get("command"))),
                code if type(code := item.get("exit_code")) is int else None,
                item.get("aggregated_output") or None,
            )
            self._upsert(item_id, "shell", action, status)
        elif it == "file_change":
            status = _STATUS.get(as_key(item.get("status"))) or (SUCCESS if done else CREATED)
            for n, change in enumerate(as_list(item.get("changes"))):
                if isinstance(change, dict):
                    kind = change.get("kind")
                    edit = FileEdit(as_str(change.get("path")), None, as_str(kind) or None)
                    self._upsert(f"{item_id}#{n}", "apply_patch", edit, status)
        elif it == "mcp_tool_call":
            status = _STATUS.get(as_key(item.get("status"))) or (SUCCESS if done else CREATED)
            name = f"{item.get('server')}.{item.get('tool')}"
            result = item.get("result")
            err = as_dict(item.get("error"))
            if err.get("message"):
                shown: Any = f"error: {as_str(err['message'])}"
            elif isinstance(result, dict):
                shown = text_of(result.get("content")) or result.get("structured_content")
            else:
                shown = result
            self._upsert(item_id, name, Generic(name, item.get("arguments"), shown), status)
        elif it == "web_search":
            status = SUCCESS if done else CREATED
            self._upsert(item_id, "web_search", Search(as_str(item.get("query"))), status)
        elif it == "todo_list":
            items = [
                TodoItem(as_str(t.get("text")), "completed" if t.get("completed") else "pending")
                for t in as_list(item.get("items"))
                if isinstance(t, dict)
            ]
            self._upsert(item_id, "todo_list", Todo(items), SUCCESS if done else CREATED)
        elif it == "error":
            # non-fatal by codex's own docs, e.g. "Model metadata for `x` not found"
            self.append(SystemMessage(f"warning: {as_str(item.get('message'))}"))
        else:
            self.unknown()

    def _text(self, item_id: str, cls: type[AssistantMessage] | type[Thinking], text: str) -> None:
        at = self._items.get(item_id)
        if at is None:
            self._items[item_id] = self.append(cls(text))
            return
        entry = self.entries[at]
        if isinstance(entry, cls) and entry.text != text:
            entry.text = text
            self.replace(at)

    def _upsert(self, tool_id: str, name: str, action: Any, status: str) -> None:
        existing = self.tool(tool_id)
        if existing is not None:
            existing.action = action
            existing.status = status
            self.tool_changed(tool_id)
        else:
            self.add_tool(ToolUse(tool_id, name, action, status))
