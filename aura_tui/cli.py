"""The `aura` command: argument parsing and dispatch.

Only argparse and the standard library load here; each subcommand imports what it needs when it
runs, so `aura session latest` and `aura run --no-tui` never import textual.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from aura_core import __version__
from aura_core.executors.names import EXECUTOR_NAMES

SHELLS = ("bash", "zsh", "fish", "powershell", "elvish")
# Options whose values may start with '-' (`--param -lc`): joined as --opt=value before parsing.
_DASH_VALUE_OPTS = {"--param", "--append-prompt", "--prompt", "--var", "--base-command"}


class UserError(Exception):
    """Bad input from the user: printed as one line, exit code 2, never a traceback."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


class Parser(argparse.ArgumentParser):
    def _check_value(self, action: argparse.Action, value: object) -> None:
        # --executor lists our names (for help and completion) but also accepts agents defined
        # in the config; those are checked once the config is loaded
        if getattr(action, "aura_open_choices", False):
            return
        super()._check_value(action, value)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"aura: error: {message} (see `{self.prog} --help`)\n")


def _var(value: str) -> tuple[str, str]:
    key, sep, val = value.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"--var needs KEY=VALUE, got '{value}'")
    if not key.replace("_", "a").isalnum() or key[0].isdigit():
        raise argparse.ArgumentTypeError(f"--var name '{key}' is not a valid environment name")
    return key, val


def _bool(value: str) -> bool:
    low = value.strip().lower()
    if low in ("true", "yes", "1", "on"):
        return True
    if low in ("false", "no", "0", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got '{value}'")


def _executor_path(value: str) -> tuple[str, str]:
    name, sep, path = value.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"--executor-path needs NAME=PATH, got '{value}'")
    if name not in EXECUTOR_NAMES:
        raise argparse.ArgumentTypeError(
            f"unknown executor '{name}' (choose from {', '.join(EXECUTOR_NAMES)})"
        )
    full = os.path.abspath(os.path.expanduser(path))
    if not os.path.isfile(full):
        raise argparse.ArgumentTypeError(f"no file at {full}")
    if not os.access(full, os.X_OK):
        raise argparse.ArgumentTypeError(f"{full} is not executable (chmod +x)")
    return name, full


def _add_run_options(p: argparse.ArgumentParser, *, tui: bool) -> None:
    g = p.add_argument_group("what to run")
    executor = g.add_argument(
        "--executor",
        "-e",
        choices=EXECUTOR_NAMES,
        metavar="NAME",
        help=f"agent to run: {', '.join(EXECUTOR_NAMES)}, or one defined in the config",
    )
    executor.aura_open_choices = True  # type: ignore[attr-defined]
    g.add_argument("--prompt", "-p", help="the task for the agent")
    g.add_argument("--model", "-m", help="model name passed to the agent")
    g.add_argument("--cwd", metavar="DIR", help="working directory (default: current directory)")
    g.add_argument("--append-prompt", metavar="TEXT", help="text appended to the prompt")
    g.add_argument(
        "--var",
        action="append",
        type=_var,
        default=[],
        metavar="KEY=VALUE",
        help="variable for prompt templates and the agent's environment (repeatable)",
    )
    r = p.add_argument_group("continuing a session")
    session = r.add_argument(
        "--session", metavar="ID", help="continue this session (id or unique prefix)"
    )
    session.aura_complete = "session-ids"  # type: ignore[attr-defined]
    r.add_argument("--resume-latest", action="store_true", help="continue the most recent session")
    c = p.add_argument_group("command and endpoint executors")
    c.add_argument(
        "--base-command",
        metavar="CMD",
        help="program for the custom executor, split like a shell would",
    )
    c.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="ARG",
        help="argument appended to --base-command (repeatable; may start with '-')",
    )
    c.add_argument(
        "--openai-endpoint", metavar="URL", help="OpenAI-compatible base URL (custom, lms)"
    )
    c.add_argument(
        "--refresh-model-cache", action="store_true", help="rediscover models, ignoring the cache"
    )
    c.add_argument(
        "--executor-path",
        action="append",
        type=_executor_path,
        default=[],
        metavar="NAME=PATH",
        help="use this binary for an executor (repeatable)",
    )
    a = p.add_argument_group("permissions")
    a.add_argument("--yolo", action="store_true", help="remove every remaining agent guard")
    a.add_argument("--force", "-f", action="store_true", help="let the agent act without asking")
    a.add_argument("--trust", action="store_true", help="trust the working directory")
    a.add_argument(
        "--auto-approve",
        type=_bool,
        metavar="true|false",
        help="answer permission requests automatically (false: ask me)",
    )
    a.add_argument("--allow-all-tools", action="store_true", help="allow every tool without asking")
    a.add_argument("--review", action="store_true", help="run a review pass after coding")
    if not tui:
        p.add_argument(
            "--no-tui", action="store_true", help="stream plainly instead of the single-run view"
        )
        p.add_argument("--json", action="store_true", help="print entries as JSON lines")


def _populate_run(p: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    _add_run_options(p, tui=False)


def _populate_tui(p: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    _add_run_options(p, tui=True)


def _populate_session(p: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    ssub = p.add_subparsers(dest="session_command", metavar="ACTION")
    s_list = ssub.add_parser("list", help="sessions, newest first", parents=[common])
    s_list.add_argument("--json", action="store_true", help="print JSON")
    s_list.add_argument("--limit", "-n", type=int, default=50, help="how many (default 50; 0: all)")
    s_list.add_argument("--ids-only", action="store_true", help="print only ids (for completion)")
    s_show = ssub.add_parser("show", help="a session's details and full log", parents=[common])
    s_show.add_argument("id", metavar="ID", help="session id or unique prefix")
    s_show.add_argument("--json", action="store_true", help="print JSON")
    s_show.add_argument("--raw", action="store_true", help="raw lines instead of entries")
    s_latest = ssub.add_parser("latest", help="the most recent session", parents=[common])
    s_latest.add_argument("--json", action="store_true", help="print JSON")
    s_latest.add_argument("--raw", action="store_true", help="raw lines instead of entries")
    _mark_dynamic(s_show)


def _populate_completion(p: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    p.add_argument("shell", choices=SHELLS, metavar="SHELL", help=" | ".join(SHELLS))


def _populate_doctor(p: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print JSON")


def _populate_help(p: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    p.add_argument("topic", nargs="*", help="command to explain, e.g. `aura help run`")


Populate = Callable[[argparse.ArgumentParser, argparse.ArgumentParser], None]

# The commands in the order `aura --help` lists them. A string names "module:function" so a
# command's options are defined beside its code without importing it for every other command.
COMMANDS: list[tuple[str, str, Populate | str]] = [
    ("tui", "open the board (and start a task with --executor/--prompt)", _populate_tui),
    ("run", "run one agent session", _populate_run),
    ("task", "manage tasks headlessly, like the board", "aura_tui.commands.task:populate"),
    ("session", "list and show stored sessions", _populate_session),
    ("doctor", "which agents are installed and ready", _populate_doctor),
    ("hub", "run the worker hub headless", "aura_tui.commands.hub:populate"),
    ("worker", "remote workers: serve, token, list", "aura_tui.commands.worker:populate"),
    (
        "config",
        "the config file: its path, a commented default, the effective settings",
        "aura_tui.commands.config:populate",
    ),
    ("completion", "print a shell completion script", _populate_completion),
    ("help", "show help for aura or a command", _populate_help),
]


def _resolve(populate: Populate | str) -> Populate:
    if callable(populate):
        return populate
    import importlib

    module, _, name = populate.partition(":")
    return getattr(importlib.import_module(module), name)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole CLI; with `only`, the options of just that command are filled in (every
    command is still listed), which keeps each command's start-up fast."""
    common = Parser(add_help=False)
    common.add_argument(
        "--data-dir",
        metavar="DIR",
        default=argparse.SUPPRESS,
        help="folder holding aura.db (default: $AURA_HOME or the user data dir)",
    )
    parser: argparse.ArgumentParser = Parser(
        prog="aura",
        description="AURA: a keyboard-first kanban board for coding agents.",
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"aura {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for name, help_, populate in COMMANDS:
        p = sub.add_parser(
            name, help=help_, parents=[common], description=help_[:1].upper() + help_[1:] + "."
        )
        if only is None or only == name:
            _resolve(populate)(p, common)
    return parser


def _command_of(argv: Sequence[str]) -> str | None:
    """The subcommand named on the command line, if it is one we know (else None)."""
    names = {name for name, _, _ in COMMANDS}
    skip = False
    for tok in argv:
        if skip:
            skip = False
            continue
        if tok == "--data-dir":
            skip = True
            continue
        if tok.startswith("-"):
            continue
        return tok if tok in names and tok != "help" else None
    return None


def _mark_dynamic(show: argparse.ArgumentParser) -> None:
    for action in show._actions:
        if action.dest == "id":
            action.aura_complete = "session-ids"  # type: ignore[attr-defined]


def _join_dash_values(argv: Sequence[str]) -> list[str]:
    out: list[str] = []
    args = list(argv)
    i = 0
    while i < len(args):
        tok = args[i]
        if tok == "--":
            out.extend(args[i:])
            break
        if tok in _DASH_VALUE_OPTS and i + 1 < len(args):
            out.append(f"{tok}={args[i + 1]}")
            i += 2
            continue
        out.append(tok)
        i += 1
    return out


def _help(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    target: argparse.ArgumentParser = parser
    for word in args.topic:
        sub = next((a for a in target._actions if isinstance(a, argparse._SubParsersAction)), None)
        if sub is None or word not in sub.choices:
            raise UserError(f"no help topic '{' '.join(args.topic)}': try `aura help`")
        target = sub.choices[word]
    target.print_help()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    raw = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(only=_command_of(raw))
    args = parser.parse_args(_join_dash_values(raw))
    handlers: dict[str, Callable[[argparse.Namespace], int]] = {}
    try:
        if args.command is None:
            parser.print_help()
            return 0
        if args.command == "help":
            return _help(parser, args)
        if args.command == "completion":
            from aura_tui.completion import generate

            sys.stdout.write(generate(build_parser(), args.shell))
            return 0
        if args.command == "session":
            from aura_tui.commands import session as session_cmd

            if args.session_command is None:
                raise UserError("say which: `aura session list|show ID|latest`")
            return session_cmd.main(args)
        if args.command == "run":
            from aura_tui.commands import run as run_cmd

            return run_cmd.main(args)
        if args.command == "tui":
            from aura_tui.commands import tui as tui_cmd

            return tui_cmd.main(args)
        if args.command == "task":
            from aura_tui.commands import task as task_cmd

            return task_cmd.main(args)
        if args.command == "hub":
            from aura_tui.commands import hub as hub_cmd

            return hub_cmd.main(args)
        if args.command == "worker":
            from aura_tui.commands import worker as worker_cmd

            return worker_cmd.main(args)
        if args.command == "config":
            from aura_tui.commands import config as config_cmd

            return config_cmd.main(args)
        if args.command == "doctor":
            from aura_tui.commands import doctor as doctor_cmd

            return doctor_cmd.main(args)
        handler = handlers.get(args.command)
        if handler is None:
            raise UserError(f"unknown command '{args.command}': see `aura --help`")
        return handler(args)
    except UserError as exc:
        sys.stderr.write(f"aura: error: {exc}\n")
        return exc.code
    except KeyboardInterrupt:
        sys.stderr.write("aura: interrupted\n")
        return 130
    except BrokenPipeError:
        # the reader went away (e.g. `| head`); nothing more to say
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115
        except OSError:
            pass
        return 0
    except Exception as exc:  # store errors and the like: one line, never a traceback
        from aura_core.store.errors import StoreError

        if isinstance(exc, StoreError):
            sys.stderr.write(f"aura: error: {exc}\n")
            return 1
        raise
