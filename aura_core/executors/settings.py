"""Executor-specific settings (opencode variant, droid autonomy, transport, ...), read in one way.

A setting comes from `RunOptions.extra[key]` (the board, config, a future `--set KEY=VALUE`), or
else from `--var AURA_<KEY>=value` (so the CLI can set it today; the variable also reaches the
agent's environment, where it is harmless). Keys are lower_snake_case; values are strings.
"""

from __future__ import annotations

import os
import sys

from aura_core.executors.base import Approver, RunRequest


def setting(request: RunRequest, key: str) -> str | None:
    value = request.options.extra.get(key)
    if value is None:
        value = request.options.vars.get("AURA_" + key.upper())
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return str(value).strip()


def setting_list(request: RunRequest, key: str) -> list[str]:
    """A list setting: a list in `extra`, or a comma-separated string."""
    value = request.options.extra.get(key)
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value if str(v).strip()]
    text = setting(request, key)
    return [v.strip() for v in text.split(",") if v.strip()] if text else []


def approver_of(request: RunRequest) -> Approver | None:
    """The supervised-mode hook, when the person asked to approve each tool call."""
    if request.options.auto_approve is not False:
        return None
    return request.options.approver


def interactive() -> bool:
    """A person at a terminal can be asked (model choice, endpoint, approvals)."""
    try:
        return sys.stdin.isatty() and sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")
