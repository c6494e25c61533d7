"""Executor names and where their adapters live. Adapters are imported only when used."""

from __future__ import annotations

import importlib
from typing import Any

from aura_core.executors.base import SetupRequired
from aura_core.executors.names import EXECUTOR_NAMES

__all__ = ["EXECUTOR_NAMES", "get_executor", "is_available", "register"]


# name -> "module:Class"; a name missing here is recognised but not built yet.
_ADAPTERS: dict[str, str] = {
    "custom": "aura_core.executors.command:CommandExecutor",
    "claude": "aura_core.executors.claude:ClaudeExecutor",
    "codex": "aura_core.executors.codex:CodexExecutor",
    "gemini": "aura_core.executors.gemini:GeminiExecutor",
}


def register(name: str, target: str) -> None:
    _ADAPTERS[name] = target


def is_available(name: str) -> bool:
    return name in _ADAPTERS


def get_executor(name: str) -> Any:
    if name not in EXECUTOR_NAMES:
        raise SetupRequired(f"unknown executor '{name}': choose one of {', '.join(EXECUTOR_NAMES)}")
    target = _ADAPTERS.get(name)
    if target is None:
        raise SetupRequired(
            f"executor '{name}' is not yet available in this version of aura; "
            "use --executor custom --base-command CMD meanwhile"
        )
    module_name, _, cls = target.partition(":")
    return getattr(importlib.import_module(module_name), cls)()
