"""Qwen Code: `qwen -o stream-json [-m M] --approval-mode ... [-r ID]` with the prompt on stdin,
or `qwen --acp`.

Verified against @qwen-code/qwen-code 0.24.4. The prompt goes on stdin then EOF (a positional
prompt starting with `-` is taken for an option, one after `--` is ignored; `-p` is
deprecated). Its stream-json is Claude's shape with qwen's (gemini-derived) tool names.
Headless qwen drops tools that need approval, so the default level is `--approval-mode
auto-edit --allowed-tools run_shell_command`; `--force` / `--yolo` are `--approval-mode yolo`;
review / `--auto-approve false` is `plan` (read only). Resume: `-r ID`.

Over ACP (setting `transport=acp`, or supervised mode) it runs `qwen --acp`; in supervised mode
with `--approval-mode default`, so edits and commands come to the person as permission requests.
`session/load` works after a restart.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, ClassVar

from aura_core.executors.acp import DualNormalizer, start_acp, wants_acp
from aura_core.executors.agent_cli import CliAgent, Level, permission_level
from aura_core.executors.base import AgentRun, LaunchSpec, RunRequest
from aura_core.executors.claude import ClaudeNormalizer
from aura_core.executors.entries import CommandRun, Generic, ToolUse
from aura_core.executors.gemini import gemini_action
from aura_core.executors.settings import approver_of

_EXIT = re.compile(r"Exit Code: (-?\d+)")


class QwenCodeExecutor(CliAgent):
    name: ClassVar[str] = "qwen-code"
    binary: ClassVar[str] = "qwen"
    npm_package: ClassVar[str] = "@qwen-code/qwen-code"
    key_env: ClassVar[tuple[str, ...]] = (
        "OPENAI_API_KEY",
        "DASHSCOPE_API_KEY",
        "ANTHROPIC_API_KEY",
        "GEMINI_API_KEY",
    )
    login_hint: ClassVar[str] = (
        "log in: run `qwen` and choose an auth method, or set OPENAI_API_KEY (with OPENAI_BASE_URL)"
    )
    asks_permissions: ClassVar[bool] = True

    def has_credentials(self) -> bool:
        if super().has_credentials():
            return True
        home = Path.home() / ".qwen"
        return (home / "oauth_creds.json").is_file() or (home / "settings.json").is_file()

    def _level_args(self, request: RunRequest, *, acp: bool) -> list[str]:
        level = permission_level(request)
        if level >= Level.all_tools:
            return ["--approval-mode", "yolo"]
        if level == Level.read_only:
            if acp and approver_of(request) is not None:
                return ["--approval-mode", "default"]  # every edit/command is asked about
            return ["--approval-mode", "plan"]
        if acp:
            return ["--approval-mode", "auto-edit"]
        return ["--approval-mode", "auto-edit", "--allowed-tools", "run_shell_command"]

    def build_launch(self, request: RunRequest) -> LaunchSpec:
        o = request.options
        argv = [*self.program(request), "-o", "stream-json"]
        warnings = self.common_warnings(o)
        if request.model:
            argv += ["-m", request.model]
        argv += self._level_args(request, acp=False)
        if request.resume_id:
            argv += ["-r", request.resume_id]
        if o.trust:
            warnings.append("--trust: headless qwen does not ask to trust a folder; nothing to do")
        argv += o.params
        # on stdin: any text is safe (a positional starting with `-` is taken for an option,
        # and qwen ignores a positional after `--`)
        stdin = request.full_prompt.encode()
        return LaunchSpec(argv=argv, env=self.base_env(request), stdin=stdin, warnings=warnings)

    def build_acp_launch(self, request: RunRequest) -> LaunchSpec:
        o = request.options
        argv = [*self.program(request), "--acp"]
        if request.model:
            argv += ["-m", request.model]
        argv += self._level_args(request, acp=True)
        argv += o.params
        return LaunchSpec(argv=argv, env=self.base_env(request), warnings=self.common_warnings(o))

    def start(self, request: RunRequest) -> AgentRun:  # type: ignore[override]
        if wants_acp(request):
            return start_acp(self.name, self.build_acp_launch(request), request)
        return super().start(request)

    def normalizer(self) -> DualNormalizer:
        return DualNormalizer(QwenNormalizer(), "qwen")


class QwenNormalizer(ClaudeNormalizer):
    """qwen stream-json: Claude's events, qwen's tool names and result texts."""

    agent = "qwen"
    stderr_ignore = (re.compile(r"^Ripgrep not available"),)

    def add_tool(self, tool: ToolUse) -> int:
        if isinstance(tool.action, Generic):
            tool.action = gemini_action(tool.tool_name, tool.action.args)
        return super().add_tool(tool)

    def _tool_result(self, block: dict[str, Any], extra: Any) -> None:
        super()._tool_result(block, extra)
        tool = self.tool(str(block.get("tool_use_id") or ""))
        if tool is not None and isinstance(tool.action, CommandRun) and tool.action.output:
            m = _EXIT.search(tool.action.output)
            if m:
                tool.action.exit_code = int(m.group(1))
                self.tool_changed(tool.tool_id)
