"""Executor names and where their adapters live. Adapters are imported only when used."""

from __future__ import annotations

import importlib
from typing import Any

from aura_core.executors.base import SetupRequired
from aura_core.executors.names import EXECUTOR_NAMES

__all__ = ["EXECUTOR_NAMES", "configured_names", "get_executor", "is_available", "register"]


# name -> "module:Class"; a name missing here is recognised but not built yet.
_ADAPTERS: dict[str, str] = {
    "custom": "aura_core.executors.command:CommandExecutor",
    "claude": "aura_core.executors.claude:ClaudeExecutor",
    "codex": "aura_core.executors.codex:CodexExecutor",
    "gemini": "aura_core.executors.gemini:GeminiExecutor",
    "cursor-agent": "aura_core.executors.cursor_agent:CursorAgentExecutor",
    "droid": "aura_core.executors.droid:DroidExecutor",
    "amp": "aura_core.executors.amp:AmpExecutor",
    "opencode": "aura_core.executors.opencode:OpencodeExecutor",
    "qwen-code": "aura_core.executors.qwen_code:QwenCodeExecutor",
    "copilot": "aura_core.executors.copilot:CopilotExecutor",
    "ollama": "aura_core.executors.ollama:OllamaExecutor",
    "lms": "aura_core.executors.lms:LmsExecutor",
}
# `custom` without --base-command is the OpenAI-compatible endpoint executor (see get_executor)
CUSTOM_ENDPOINT = "aura_core.executors.custom_endpoint:CustomEndpointExecutor"


def register(name: str, target: str) -> None:
    _ADAPTERS[name] = target


def is_available(name: str) -> bool:
    return name in _ADAPTERS


def configured_names(config: Any) -> list[str]:
    """Agents the user defined with `[executors.NAME] command = ...` (not one of ours)."""
    sections = getattr(config, "executors", None) or {}
    return sorted(n for n, c in sections.items() if n not in EXECUTOR_NAMES and c.command)


def get_executor(name: str, options: Any = None, config: Any = None) -> Any:
    """The adapter for `name`. With run options, `custom` is the command executor when
    --base-command is given and the OpenAI-compatible endpoint executor otherwise (it asks for
    the endpoint on a terminal, or resumes the endpoint a session used); without options,
    `custom` is the command executor (as `aura doctor` and older callers expect)."""
    if name == "custom" and options is not None and not getattr(options, "base_command", None):
        module_name, _, cls = CUSTOM_ENDPOINT.partition(":")
        return getattr(importlib.import_module(module_name), cls)()
    if name not in EXECUTOR_NAMES:
        if name in configured_names(config):
            from aura_core.executors.command import ConfiguredAgent

            return ConfiguredAgent(name, config.executors[name])
        known = ", ".join([*EXECUTOR_NAMES, *configured_names(config)])
        raise SetupRequired(
            f"unknown executor '{name}': choose one of {known} "
            "(or define it with `[executors.NAME] command = ...` in the config)"
        )
    target = _ADAPTERS.get(name)
    if target is None:
        raise SetupRequired(
            f"executor '{name}' is not yet available in this version of aura; "
            "use --executor custom --base-command CMD meanwhile"
        )
    module_name, _, cls = target.partition(":")
    return getattr(importlib.import_module(module_name), cls)()
