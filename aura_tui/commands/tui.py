"""`aura tui`: open the board for the repo of the current directory (imports textual only here).

With `--executor X --prompt P` the board opens and that task is created and started at once.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from aura_tui.cli import UserError


def task_options(args: argparse.Namespace) -> dict[str, Any]:
    """The run options given on the command line, as a task's `options` (defaults left out)."""
    from aura_core.executors.base import RunOptions
    from aura_tui.commands.run import build_options

    given = asdict(build_options(args))
    defaults = {f.name: f.default for f in fields(RunOptions) if f.name in given}
    out = {}
    for key, value in given.items():
        if key in defaults and value == defaults[key]:
            continue
        if value in ({}, [], None):
            continue
        out[key] = value
    return out


def start_request(args: argparse.Namespace, repo: Path) -> Any:
    from aura_tui.app import StartRequest

    executor = getattr(args, "executor", None)
    prompt = getattr(args, "prompt", None)
    if executor is None and prompt is None:
        return None
    if not executor or not prompt or not prompt.strip():
        raise UserError("to start a task as the board opens, pass both --executor and --prompt")
    if executor == "custom" and not args.base_command and not args.openai_endpoint:
        raise UserError("custom needs --base-command CMD (run a command) or --openai-endpoint URL")
    first_line = prompt.strip().splitlines()[0]
    title = first_line if len(first_line) <= 60 else first_line[:59] + "…"
    return StartRequest(
        title=title,
        prompt=prompt,
        executor=executor,
        model=args.model,
        options=task_options(args),
        repos=[str(repo)],
        review=bool(args.review),
    )


def find_repo_or_cwd(cwd: str | None) -> Path:
    return locate_repo(cwd)[0]


def locate_repo(cwd: str | None) -> tuple[Path, str | None]:
    """The repo holding `cwd` (or `cwd` itself) and, when it is not in one, why tasks cannot be
    created here: the board opens anyway and says so."""
    from aura_core.git.errors import GitError
    from aura_tui.commands.run import resolve_cwd

    path = resolve_cwd(cwd)
    try:
        from aura_core.git.repo import find_repo

        return Path(find_repo(path)), None
    except GitError:
        return path, f"{path} is not in a git repository."


def main(args: argparse.Namespace) -> int:
    import os

    from aura_core.config import ConfigError, load_config
    from aura_core.engine.runtime import Runtime
    from aura_tui.app import create_app, load_keymap
    from aura_tui.commands.common import open_store

    try:
        config = load_config()
    except ConfigError as exc:
        raise UserError(str(exc), 1) from None
    repo, problem = locate_repo(getattr(args, "cwd", None))
    start = start_request(args, repo)
    store = open_store(args)
    previous = os.getcwd()
    try:
        os.chdir(repo)  # new tasks default to this repo
        runtime = Runtime(store, config, data_dir=getattr(args, "data_dir", None))
        try:
            runtime.start_hub(getattr(args, "data_dir", None))  # only with [hub] enabled = true
        except Exception as exc:  # a busy port must not keep the board from opening
            raise UserError(f"could not start the worker hub: {exc}", 1) from None
        app = create_app(
            store,
            runtime,
            keymap=load_keymap(config),
            start=start,
            repo=str(repo),
            repo_problem=problem,
        )
        if config.theme and not store.get_setting("tui.theme"):
            store.set_setting("tui.theme", config.theme)
        try:
            app.run()
        finally:
            if runtime.hub is not None:
                runtime.hub.stop()  # idempotent: quitting may have stopped it already
        return app.return_code or 0
    finally:
        os.chdir(previous)
        store.close()
