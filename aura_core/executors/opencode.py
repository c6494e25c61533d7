"""opencode: `opencode run --format json [-m provider/model] [--variant V] [--agent A] [--auto]
[-s ID] [--attach URL] PROMPT`, or `opencode acp`.

Verified against opencode-ai 1.18.33. The prompt is the message positional (after `--`, so a
leading `-` is safe). `--model` must be `provider/model`. Settings (see settings.py): `variant`
(provider reasoning effort), `agent` (build, plan, or your own), `url` or `host` + `port` to
attach to a running `opencode serve` (the run then happens in that server), `config` (a config
file, as OPENCODE_CONFIG), `transport=acp` or `transport=server` (opencode_server.py: aura
starts `opencode serve`, or attaches to `url` / `host` + `port`, and drives its HTTP API).
Permission levels: `--force` / `--yolo` add `--auto` (approve what is not explicitly denied);
the default keeps opencode's own rules (edits and commands allowed unless configured otherwise);
review / `--auto-approve false` runs the read-only `plan` agent unless an agent is set. Resume:
`-s ID`; over ACP `session/load` (works after a restart); over the server `GET /session/{id}`.
Supervised mode uses the server transport (unless `transport` says otherwise): OPENCODE_PERMISSION
and the session's rules ask for edit, bash and webfetch, and each `permission.asked` event goes
to the person.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, ClassVar

from aura_core.executors.acp import DualNormalizer, Policy, start_acp, wants_acp
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
    to_int,
)
from aura_core.executors.settings import approver_of, setting

RESULT_KEEP = 4000
ASK_ALL = {"edit": "ask", "bash": "ask", "webfetch": "ask"}


class OpencodeExecutor(CliAgent):
    name: ClassVar[str] = "opencode"
    binary: ClassVar[str] = "opencode"
    npm_package: ClassVar[str] = "opencode-ai"
    key_env: ClassVar[tuple[str, ...]] = (
        "ANTHROPIC_API_KEY",
        "OPENAI_API_KEY",
        "OPENROUTER_API_KEY",
        "GEMINI_API_KEY",
        "OPENCODE_API_KEY",
    )
    login_hint: ClassVar[str] = (
        "log in: run `opencode auth login`, set a provider key, or configure a provider in "
        "opencode.json"
    )
    asks_permissions: ClassVar[bool] = True

    def has_credentials(self) -> bool:
        if super().has_credentials():
            return True
        data = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local/share")
        config = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
        return (data / "opencode" / "auth.json").is_file() or (
            config / "opencode" / "opencode.json"
        ).is_file()

    def _env(self, request: RunRequest, *, acp: bool) -> dict[str, str]:
        # opencode finds its project (opencode.json, sessions) from PWD, not the real cwd
        env = {**self.base_env(request), "PWD": str(request.cwd)}
        config = setting(request, "config")
        if config:
            env["OPENCODE_CONFIG"] = config
        if acp and approver_of(request) is not None and "OPENCODE_PERMISSION" not in request.env:
            env["OPENCODE_PERMISSION"] = json.dumps(ASK_ALL)
        return env

    def attach_url(self, request: RunRequest) -> str | None:
        url = setting(request, "url")
        if url:
            return url
        host, port = setting(request, "host"), setting(request, "port")
        if host or port:
            return f"http://{host or '127.0.0.1'}:{port or 4096}"
        return None

    def build_launch(self, request: RunRequest) -> LaunchSpec:
        o = request.options
        argv = [*self.program(request), "run", "--format", "json"]
        warnings = self.common_warnings(o)
        if request.model:
            if "/" not in request.model:
                warnings.append(f"opencode models are provider/model; {request.model} may fail")
            argv += ["-m", request.model]
        variant = setting(request, "variant")
        if variant:
            argv += ["--variant", variant]
        agent = setting(request, "agent")
        level = permission_level(request)
        if level == Level.read_only and not agent:
            agent = "plan"
        if agent:
            argv += ["--agent", agent]
        if level >= Level.all_tools:
            argv.append("--auto")
        url = self.attach_url(request)
        if url:
            argv += ["--attach", url, "--dir", str(request.cwd)]
        if request.resume_id:
            argv += ["-s", request.resume_id]
        if o.trust:
            warnings.append("--trust: opencode does not ask to trust a folder; nothing to do")
        argv += o.params
        argv += ["--", request.full_prompt]
        return LaunchSpec(argv=argv, env=self._env(request, acp=False), warnings=warnings)

    def build_acp_launch(self, request: RunRequest) -> LaunchSpec:
        o = request.options
        argv = [*self.program(request), "acp", "--cwd", str(request.cwd), *o.params]
        return LaunchSpec(
            argv=argv, env=self._env(request, acp=True), warnings=self.common_warnings(o)
        )

    def build_serve_launch(self, request: RunRequest) -> LaunchSpec:
        o = request.options
        argv = [*self.program(request), "serve", "--hostname", "127.0.0.1", "--port", "0"]
        return LaunchSpec(
            argv=[*argv, *o.params],
            env=self._env(request, acp=True),
            warnings=self.common_warnings(o),
        )

    def start(self, request: RunRequest) -> AgentRun:  # type: ignore[override]
        transport = (setting(request, "transport") or "").lower()
        if transport == "server" or (not transport and approver_of(request) is not None):
            return self.start_server(request)
        if wants_acp(request):
            return start_acp(self.name, self.build_acp_launch(request), request)
        return super().start(request)

    def start_server(self, request: RunRequest) -> AgentRun:
        from aura_core.executors.opencode_server import ASK_RULES, OpencodeServerRun

        level = permission_level(request)
        approver = approver_of(request)
        agent = setting(request, "agent")
        if level == Level.read_only and approver is None and not agent:
            agent = "plan"
        url = self.attach_url(request)
        spec = None if url else self.build_serve_launch(request)
        return OpencodeServerRun(
            Path(request.cwd),
            prompt=request.full_prompt,
            policy=Policy(approver=approver, allow=level >= Level.workspace, agent=self.name),
            spec=spec,
            env=request.env,
            url=url,
            resume_id=request.resume_id,
            model=request.model,
            agent=agent,
            variant=setting(request, "variant"),
            rules=ASK_RULES if approver is not None or level == Level.read_only else None,
            warnings=self.common_warnings(request.options),
        )

    def normalizer(self) -> DualNormalizer:
        from aura_core.executors.opencode_server import OpencodeTranscripts

        return OpencodeTranscripts()


def opencode_action(tool: str, inp: Any) -> Action:
    i = as_dict(inp)
    path = as_str(i.get("filePath") or i.get("path") or i.get("file_path"))
    if tool == "bash":
        return CommandRun(as_str(i.get("command")))
    if tool == "read":
        return FileRead(path)
    if tool == "list":
        return FileRead(path or ".")
    if tool == "edit":
        diff = snippet_diff(path, as_str(i.get("oldString")), as_str(i.get("newString")))
        return FileEdit(path, diff, "update")
    if tool == "write":
        return FileEdit(path, snippet_diff(path, "", as_str(i.get("content"))), "add")
    if tool == "patch":
        return FileEdit(path or "(patch)", as_str(i.get("patchText")) or None, "update")
    if tool in ("glob", "grep", "codesearch"):
        return Search(as_str(i.get("pattern") or i.get("query")))
    if tool == "websearch":
        return Search(as_str(i.get("query")))
    if tool == "webfetch":
        return WebFetch(as_str(i.get("url")))
    if tool in ("todowrite", "todoread"):
        todos = [as_dict(t) for t in as_list(i.get("todos"))]
        return Todo([TodoItem(as_str(t.get("content")), as_str(t.get("status")) or "pending")
                     for t in todos])  # fmt: skip
    if tool == "task":
        return Subtask(
            as_str(i.get("description") or i.get("prompt")), i.get("prompt"), i.get("subagent_type")
        )
    return Generic(tool, i or inp)


class OpencodeNormalizer(JsonlNormalizer):
    """opencode `run --format json`: step_start, text, reasoning, tool_use, step_finish, error."""

    agent = "opencode"
    stderr_ignore: ClassVar[tuple[re.Pattern[str], ...]] = (re.compile(r"^\s*$"),)

    def __init__(self) -> None:
        super().__init__()
        self._parts: dict[str, int] = {}  # text / reasoning part id -> entry
        self._tokens: dict[str, int] = {}
        self._cost = 0.0
        self._steps = 0

    def on_event(self, obj: dict[str, Any]) -> None:
        self.set_session_id(obj.get("sessionID"))
        kind = obj.get("type")
        part = as_dict(obj.get("part"))
        if kind in ("text", "reasoning"):
            text = as_str(part.get("text"))
            pid = as_str(part.get("id"))
            at = self._parts.get(pid) if pid else None
            if at is not None:
                entry = self.entries[at]
                if isinstance(entry, (AssistantMessage, Thinking)):
                    entry.text = text
                    self.replace(at)
            elif text.strip():
                at = self.append(AssistantMessage(text) if kind == "text" else Thinking(text))
                if pid:
                    self._parts[pid] = at
        elif kind == "tool_use":
            self._tool(part)
        elif kind == "step_finish":
            tokens = as_dict(part.get("tokens"))
            cache = as_dict(tokens.get("cache"))
            for key, value in (
                ("input", tokens.get("input")),
                ("output", tokens.get("output")),
                ("reasoning", tokens.get("reasoning")),
                ("read", cache.get("read")),
                ("write", cache.get("write")),
            ):
                self._tokens[key] = self._tokens.get(key, 0) + (to_int(value) or 0)
            cost = part.get("cost")
            if isinstance(cost, (int, float)):
                self._cost += float(cost)
            self._steps += 1
        elif kind == "error":
            err = as_dict(obj.get("error"))
            data = as_dict(err.get("data"))
            self.error(as_str(data.get("message") or err.get("message") or err.get("name")))
        elif kind == "step_start":
            pass
        else:
            self.unknown()

    def _tool(self, part: dict[str, Any]) -> None:
        name = as_str(part.get("tool")) or "tool"
        call_id = as_str(part.get("callID") or part.get("id")) or f"tool-{len(self.entries)}"
        state = as_dict(part.get("state"))
        action = opencode_action(name, state.get("input"))
        status = {"completed": SUCCESS, "error": FAILED}.get(as_str(state.get("status")), CREATED)
        output = as_str(state.get("output") or state.get("error"))
        meta = as_dict(state.get("metadata"))
        if isinstance(action, CommandRun):
            action.output = output[:RESULT_KEEP] or None
            action.exit_code = to_int(meta.get("exit"))
            if action.exit_code is None and status == SUCCESS:
                action.exit_code = 0
        elif isinstance(action, FileEdit) and isinstance(meta.get("diff"), str):
            action.diff = meta["diff"] or action.diff
        elif isinstance(action, (Generic, Subtask)) and output:
            action.result = output[:RESULT_KEEP]
        if status == FAILED and "rejected" in output.lower():
            status = DENIED
        self.add_tool(ToolUse(call_id, name, action, status))

    def on_finish(self) -> None:
        if not self._steps:
            return
        t = self._tokens
        self.append(
            TokenUsage(
                input_tokens=t.get("input"),
                output_tokens=t.get("output"),
                reasoning_tokens=t.get("reasoning") or None,
                cache_read_tokens=t.get("read") or None,
                cache_write_tokens=t.get("write") or None,
                cost_usd=self._cost,
            )
        )
