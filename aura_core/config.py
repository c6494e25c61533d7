"""The user's configuration: one TOML file in the config dir, validated by pydantic.

Every section is optional; a bad value is reported as one line naming the file and the key.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from aura_core import paths


class ConfigError(Exception):
    """A config problem, as one line naming the file and key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WorktreeConfig(_Section):
    root: str | None = None  # default: <data dir>/worktrees
    prefix: str = "aura"
    auto_commit: bool = True


class ScriptsConfig(_Section):
    setup: str | None = None  # run in the worktree before the agent, e.g. "npm ci"
    cleanup: str | None = None  # run after each agent turn, e.g. "ruff format ."
    # the project's dev server, started per task on request, e.g. "npm run dev -- --port $AURA_PORT"
    dev_server: str | None = None


class RuntimeConfig(_Section):
    max_concurrent: int = Field(default=3, ge=1, le=64)
    reviewer: str | None = None  # executor for the review stage; default: the task's executor
    # each task's dev-server port ($AURA_PORT, $PORT) is picked once from this range
    dev_port_base: int = Field(default=4100, ge=1024, le=65535)
    dev_port_count: int = Field(default=1000, ge=1, le=10000)


class ExecutorConfig(_Section):
    path: str | None = None
    env: dict[str, str] = Field(default_factory=dict)
    args: list[str] = Field(default_factory=list)
    # a command-backed agent defined by the user: `command = "my-agent --json"`
    command: str | None = None
    prompt: Literal["arg", "stdin", "env"] = "arg"  # how that agent gets the prompt


class HubConfig(_Section):
    enabled: bool = False  # the board embeds the hub (remote workers can connect)
    host: str = "127.0.0.1"
    port: int = Field(default=7433, ge=0, le=65535)
    tls_cert: str | None = None
    tls_key: str | None = None
    token: str | None = None


class WorkerConfig(_Section):
    """This machine as a worker: `aura worker serve` reads it."""

    hub: str | None = None
    token: str | None = None
    name: str | None = None
    max_concurrency: int = Field(default=2, ge=1, le=256)
    repos: dict[str, str] = Field(default_factory=dict)
    executors: list[str] = Field(default_factory=list)
    tls_ca: str | None = None


class NotifyConfig(_Section):
    bell: bool = True
    desktop: bool = True
    on_review: str | None = None
    on_fail: str | None = None


class AuraConfig(_Section):
    board: dict[str, Any] = Field(default_factory=dict)  # parsed by aura_core.board
    prompts: dict[str, str] = Field(default_factory=dict)
    scripts: ScriptsConfig = Field(default_factory=ScriptsConfig)
    worktrees: WorktreeConfig = Field(default_factory=WorktreeConfig)
    runtime: RuntimeConfig = Field(default_factory=RuntimeConfig)
    executors: dict[str, ExecutorConfig] = Field(default_factory=dict)
    hub: HubConfig = Field(default_factory=HubConfig)
    worker: WorkerConfig = Field(default_factory=WorkerConfig)
    notify: NotifyConfig = Field(default_factory=NotifyConfig)
    keymap: dict[str, str] = Field(default_factory=dict)
    theme: str | None = None

    def worktrees_root(self, data_override: str | None = None) -> Path:
        if self.worktrees.root:
            return Path(self.worktrees.root).expanduser()
        return paths.data_dir(data_override) / "worktrees"


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")


def _one_line(text: str) -> str:
    """Control characters (a key may hold a newline) escaped: an error stays one line."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


def _key(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            continue
        name = part if _BARE_KEY.fullmatch(part) else json.dumps(part, ensure_ascii=False)
        out += f".{name}" if out else name
    return out or "(top level)"


def parse_config(data: dict[str, Any], source: str = "config") -> AuraConfig:
    try:
        config = AuraConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling; `aura config init` writes a commented example)"
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise ConfigError(_one_line(f"{source}: {_key(tuple(err['loc']))}: {msg}{more}")) from None
    _check_board_and_prompts(config, source)
    return config


def _check_board_and_prompts(config: AuraConfig, source: str) -> None:
    """The board and the prompt templates are checked on load too, so every command reports a
    mistake in them the same way (one line naming the file and the key), not as a traceback."""
    if config.board:
        from aura_core.board import Board, BoardConfigError

        try:
            Board.from_config({"board": config.board})
        except BoardConfigError as exc:
            raise ConfigError(_one_line(f"{source}: board config: {exc}")) from None
    if config.prompts:
        from aura_core.engine.prompts import PromptError, default_templates, merge_templates

        try:
            merge_templates(default_templates(), config.prompts)
        except PromptError as exc:
            raise ConfigError(_one_line(f"{source}: prompts: {exc}")) from None


def load_config(path: Path | None = None) -> AuraConfig:
    path = path or paths.config_file()
    if not path.exists():
        return AuraConfig()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(_one_line(f"{path}: not valid TOML: {exc}")) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(_one_line(f"{path}: cannot read: {exc}")) from None
    return parse_config(data, str(path))
