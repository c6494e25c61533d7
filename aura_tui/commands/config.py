"""`aura config path|init|show`: where the config lives, a commented default, what is in force.

`init` writes every section with its default value and a comment saying what it does, so the file
doubles as the reference; it loads back into exactly the defaults (a test checks it). `show` prints
the effective config (defaults filled in, board and prompts resolved), so it is also the check that
a hand-edited file is valid.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

from aura_tui.cli import UserError

SECTIONS = (
    "board",
    "prompts",
    "scripts",
    "worktrees",
    "runtime",
    "executors",
    "hub",
    "notify",
    "keymap",
    "theme",
)


HELP = "the config file: its path, a commented default, the effective settings"


def populate(config: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    """Fills the `config` command's parser (the cli's COMMANDS entry names this function)."""
    csub = config.add_subparsers(dest="config_command", metavar="ACTION")
    csub.add_parser("path", help="print the config file's path", parents=[common])
    init = csub.add_parser("init", help="write a commented default config.toml", parents=[common])
    init.add_argument("--force", action="store_true", help="overwrite an existing config file")
    init.add_argument("--stdout", action="store_true", help="print the file instead of writing it")
    show = csub.add_parser(
        "show", help="print the effective config (defaults filled in)", parents=[common]
    )
    show.add_argument("section", nargs="?", choices=SECTIONS, metavar="SECTION",
                      help=f"only this section: {', '.join(SECTIONS)}")  # fmt: skip
    show.add_argument("--json", action="store_true", help="print JSON instead of TOML")


# ---- init -----------------------------------------------------------------------------------


def _value(value: Any) -> str:
    """One TOML value, written by tomli_w so quoting and escapes are always right."""
    import tomli_w

    return tomli_w.dumps({"v": value}).split("=", 1)[1].strip()


def _commented_prompt(stage: str, template: str) -> list[str]:
    if "'''" in template:  # never in the built-ins; keep the file valid for any template
        body = [f"# {stage} = {_value(template)}"]
    else:
        body = [f"# {stage} = '''"] + [f"# {line}".rstrip() for line in template.splitlines()]
        body.append("# '''")
    return body


def default_config_text() -> str:
    """The commented default config.toml that `aura config init` writes."""
    from aura_core.board import Board
    from aura_core.engine.prompts import default_templates
    from aura_core.executors.names import EXECUTOR_NAMES

    board = Board.default().to_config()["board"]
    out: list[str] = [
        "# AURA configuration.",
        "# Every key is optional: what you delete falls back to the default shown here.",
        "# Check this file with `aura config show` (it prints the effective settings or the",
        "# one line that is wrong); `aura config path` says where AURA looks for it.",
        "",
        '# Theme of the board, by name (any Textual theme, e.g. "textual-dark", "nord",',
        '# "gruvbox", "tokyo-night"); also switchable in the board (ctrl+p, "theme").',
        '# theme = "textual-dark"',
        "",
        "# ---- board ------------------------------------------------------------------------",
        "# Columns in display order. `state` is what the column means to the engine, one of:",
        "# backlog, ready, running, review, done, blocked, cancelled. Several columns may share",
        "# a state; every state except backlog needs at least one column (the engine moves",
        "# cards there). `wip_limit = N` caps the cards in a column.",
    ]
    for col in board["columns"]:
        out.append("[[board.columns]]")
        out.extend(f"{key} = {_value(val)}" for key, val in col.items())
        out.append("")
    out += [
        "# The moves a person may make between columns (the engine's own moves need no rule).",
        "# requires_clean_git: the task's worktree must have no uncommitted changes;",
        "# requires_no_running_process: no agent or dev server of the task may be running.",
        "# Delete every [[board.rules]] entry to get these defaults for any set of columns,",
        "# derived from the columns' states.",
    ]
    for rule in board["rules"]:
        out.append("[[board.rules]]")
        out.extend(f"{key} = {_value(val)}" for key, val in rule.items())
        out.append("")
    out += [
        "# ---- prompts ----------------------------------------------------------------------",
        "# The prompt AURA sends at each stage. These are the built-in texts: uncomment a stage",
        "# to change it. Placeholders: {{ task_title }}, {{ task_prompt }}, {{ repo }},",
        "# {{ branch }}, {{ base_branch }}, {{ diff_summary }}, {{ feedback }}, and any",
        "# --var NAME=VALUE given to the task.",
        "# [prompts]",
    ]
    for stage, template in default_templates().items():
        out.extend(_commented_prompt(stage, template))
    out += [
        "",
        "# ---- scripts ----------------------------------------------------------------------",
        "# Shell commands run in the task's worktree: `setup` before the agent starts (install",
        "# dependencies), `cleanup` after the agent's coding turn (format, lint). `dev_server`",
        "# is the project's dev server, started per task from the board (key v) or with",
        "# `aura task dev TASK`; it gets the task's own port as $AURA_PORT (and $PORT), which the",
        "# agent and the other scripts get too.",
        "[scripts]",
        '# setup = "npm ci"',
        '# cleanup = "ruff format ."',
        '# dev_server = "npm run dev -- --port $AURA_PORT"',
        "",
        "# ---- worktrees --------------------------------------------------------------------",
        "# Each task runs in its own git worktree on its own branch, named <prefix>/<id>-<title>.",
        "[worktrees]",
        '# root = "~/aura-worktrees"   # default: <data dir>/worktrees (see `aura config show`)',
        'prefix = "aura"',
        "auto_commit = true   # commit the agent's changes after every turn (one commit per turn)",
        "",
        "# ---- runtime ----------------------------------------------------------------------",
        "[runtime]",
        "max_concurrent = 3   # tasks running at once; the rest wait in a queue",
        '# reviewer = "claude"   # agent for the review stage (default: the task\'s own agent)',
        "dev_port_base = 4100   # each task's dev-server port is picked once, from here on",
        "dev_port_count = 1000   # ... among this many (a free one: not bound on 127.0.0.1)",
        "",
        "# ---- executors --------------------------------------------------------------------",
        *textwrap.wrap(
            f"Per-agent settings, by executor name: {', '.join(EXECUTOR_NAMES)}.",
            width=88,
            initial_indent="# ",
            subsequent_indent="# ",
        ),
        "# path: use this binary instead of the one on PATH; env: extra environment variables;",
        "# args: extra arguments.",
        "# [executors.claude]",
        '# path = "/opt/claude/bin/claude"',
        '# env = { ANTHROPIC_BASE_URL = "http://127.0.0.1:8080" }',
        "#",
        "# [executors.codex]",
        '# args = ["-c", "model_reasoning_effort=high"]',
        "#",
        "# A user-defined agent backed by a command: AURA runs `command` (split like a shell",
        "# would) in the task's worktree with the prompt in $AURA_PROMPT and keeps its output.",
        "# [executors.my-agent]",
        '# command = "my-agent --non-interactive"',
        '# prompt = "arg"   # how it gets the prompt: arg (last argument), stdin, or env',
        '# env = { MY_AGENT_TOKEN = "..." }',
        "",
        "# ---- hub ----------------------------------------------------------------------------",
        "# Where this board listens for workers on other machines.",
        "[hub]",
        "enabled = false   # true: the board starts the hub, so workers can connect",
        'host = "127.0.0.1"',
        "port = 7433",
        '# tls_cert = "/path/to/cert.pem"   # with tls_key: serve wss:// instead of ws://',
        '# tls_key = "/path/to/key.pem"',
        '# token = "a long random secret"   # workers must present it',
        "",
        "# ---- worker ---------------------------------------------------------------------------",
        "# This machine as a worker (`aura worker serve`); its flags override these.",
        "[worker]",
        '# hub = "ws://board-host:7433"',
        '# token = "the hub\'s token (aura worker token)"',
        '# name = "buildbox"',
        "max_concurrency = 2",
        '# repos = { myapp = "/src/myapp" }   # repos it serves, matched by folder name',
        '# executors = ["claude", "custom"]   # default: every one found here',
        "",
        "# ---- notify -------------------------------------------------------------------------",
        "# When a task needs review or fails: ring the terminal bell, show a desktop notification",
        "# (notify-send), and run a shell command of yours. Hooks get AURA_TASK_ID,",
        "# AURA_TASK_TITLE, AURA_EVENT (review or fail) and AURA_MESSAGE in their environment;",
        "# their output is discarded and they are stopped after 30 seconds.",
        "[notify]",
        "bell = true",
        "desktop = true",
        "# on_review = 'echo \"$AURA_TASK_TITLE needs review\" >> ~/aura-events.log'",
        "# on_fail = 'curl -s -d \"$AURA_MESSAGE\" https://ntfy.sh/my-topic'",
        "",
        "# ---- keymap -------------------------------------------------------------------------",
        "# Rebind keys: binding id = keys (comma-separated). The ids are listed in the board's",
        "# help screen (?); examples:",
        "[keymap]",
        '# "app.quit" = "ctrl+q"',
        '# "board.new" = "n,a"',
        '# "board.start" = "ctrl+r"',
        "",
    ]
    return "\n".join(out)


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".config-", suffix=".toml", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _init(args: argparse.Namespace) -> int:
    from aura_core.paths import config_file

    text = default_config_text()
    if args.stdout:
        sys.stdout.write(text)
        return 0
    path = config_file()
    if path.exists() and not args.force:
        raise UserError(f"{path} already exists; edit it, or pass --force to overwrite it", 1)
    try:
        _write_atomic(path, text)
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}", 1) from None
    sys.stdout.write(f"wrote {path}\n")
    return 0


# ---- show -----------------------------------------------------------------------------------


def effective_config(data_dir: str | None = None) -> dict[str, Any]:
    """The config in force: the file's values over the defaults, board and prompts resolved.

    Raises UserError with the one line that is wrong, so `show` doubles as a validator.
    """
    from aura_core.board import Board, BoardConfigError
    from aura_core.config import ConfigError, load_config
    from aura_core.engine.prompts import PromptError, default_templates, merge_templates

    try:
        config = load_config()
        board = Board.from_config({"board": config.board}) if config.board else Board.default()
        prompts = merge_templates(default_templates(), config.prompts)
    except ConfigError as exc:
        raise UserError(str(exc), 1) from None
    except BoardConfigError as exc:
        raise UserError(f"board config: {exc}", 1) from None
    except PromptError as exc:
        raise UserError(f"prompts: {exc}", 1) from None
    data: dict[str, Any] = config.model_dump(mode="json")
    data["board"] = board.to_config()["board"]
    data["prompts"] = prompts
    data["worktrees"]["root"] = str(config.worktrees_root(data_dir))
    return data


def _drop_none(value: Any) -> Any:
    """TOML has no null: a key whose value is None is simply absent (= the default)."""
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value


def _show(args: argparse.Namespace) -> int:
    import tomli_w

    from aura_core.paths import config_file

    data = effective_config(getattr(args, "data_dir", None))
    if args.section:
        data = {args.section: data[args.section]}
    if args.json:
        json.dump(data, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    path = config_file()
    where = str(path) if path.exists() else f"{path} (not created yet: all defaults)"
    sys.stdout.write(f"# effective config from {where}\n")
    body = _drop_none(data)
    if "theme" in body:  # a bare key must come before the tables
        body = {"theme": body.pop("theme"), **body}
    sys.stdout.write(tomli_w.dumps(body, multiline_strings=True))
    return 0


def main(args: argparse.Namespace) -> int:
    from aura_core.paths import config_file

    command = getattr(args, "config_command", None)
    if command is None:
        raise UserError("say which: `aura config path|init|show`")
    if command == "path":
        sys.stdout.write(f"{config_file()}\n")
        return 0
    if command == "init":
        return _init(args)
    if command == "show":
        return _show(args)
    raise UserError(f"unknown config action '{command}'")
