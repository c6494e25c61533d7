"""`aura run`: one agent session, streamed plainly (or in the single-run view on a terminal)."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Any

from aura_tui.cli import UserError


def resolve_cwd(value: str | None) -> Path:
    if not value:
        return Path.cwd()
    path = Path(value).expanduser()
    if not path.is_dir():
        raise UserError(f"--cwd {value}: no such directory")
    return path.resolve()


def build_options(args: argparse.Namespace) -> Any:
    from aura_core.executors.base import RunOptions

    return RunOptions(
        yolo=args.yolo,
        force=args.force,
        trust=args.trust,
        auto_approve=args.auto_approve,
        allow_all_tools=args.allow_all_tools,
        review=args.review,
        append_prompt=args.append_prompt,
        vars=dict(args.var),
        params=list(args.param),
        base_command=args.base_command,
        openai_endpoint=args.openai_endpoint,
        refresh_model_cache=args.refresh_model_cache,
    )


def resolve_parent(store: Any, args: argparse.Namespace) -> dict[str, Any] | None:
    if args.session and args.resume_latest:
        raise UserError("use either --session ID or --resume-latest, not both")
    if args.session:
        return store.find_session_row(args.session)
    if args.resume_latest:
        row = store.latest_session_row()
        if row is None:
            raise UserError("--resume-latest: there is no session yet; start one without it")
        return row
    return None


def main(args: argparse.Namespace) -> int:
    from aura_core.executors.base import RunMode, RunRequest, SetupRequired
    from aura_core.executors.registry import get_executor
    from aura_core.runner import SessionRunner, new_id
    from aura_tui.commands.common import open_store
    from aura_tui.commands.render import PlainSink

    if args.prompt is None or not args.prompt.strip():
        raise UserError("missing prompt: pass --prompt TEXT")
    from aura_core.config import ConfigError, load_config
    from aura_core.executors import overrides

    cwd = resolve_cwd(args.cwd)
    try:
        config = load_config()
    except ConfigError as exc:
        raise UserError(str(exc)) from None
    store = open_store(args)
    try:
        cli_paths = dict(args.executor_path)
        overrides.save(store, cli_paths)
        parent = resolve_parent(store, args)
        executor_name = args.executor or (parent["executor"] if parent else None)
        if executor_name is None:
            from aura_core.executors.registry import EXECUTOR_NAMES

            raise UserError(f"missing --executor: choose one of {', '.join(EXECUTOR_NAMES)}")
        if parent and args.executor and args.executor != parent["executor"]:
            raise UserError(
                f"session {parent['id'][:8]} ran with {parent['executor']}: "
                f"pass --executor {parent['executor']} or leave --executor out"
            )
        parent_options = (parent or {}).get("options") or {}
        if executor_name == "custom" and not args.base_command and not args.openai_endpoint:
            if parent_options.get("base_command"):  # continue the same command
                args.base_command = parent_options["base_command"]
                args.param = args.param or list(parent_options.get("params") or [])
            elif parent_options.get("openai_endpoint"):
                args.openai_endpoint = parent_options["openai_endpoint"]
            elif not (sys.stdin.isatty() and sys.stdout.isatty()):
                raise UserError(
                    "custom needs --base-command CMD (run a command) or --openai-endpoint URL "
                    "(an OpenAI-compatible server)"
                )
            # on a terminal the endpoint executor asks for the URL
        options = build_options(args)
        from aura_core.executors.approval import attach_tty_approver

        attach_tty_approver(options)  # supervised mode (--auto-approve false) asks here
        try:
            executor = get_executor(executor_name, options, config)
        except SetupRequired as exc:
            raise UserError(str(exc)) from None
        request = RunRequest(
            session_id=new_id(),
            prompt=args.prompt,
            cwd=cwd if not (parent and not args.cwd) else Path(parent["cwd"]),
            model=args.model or (parent["model"] if parent else None),
            mode=RunMode.follow_up if parent else RunMode.initial,
            resume_id=parent.get("agent_session_id") if parent else None,
            options=options,
            executable=overrides.resolve(store, config, executor_name, cli_paths),
            env=overrides.env_for(config, executor_name),
        )
        if not request.cwd.is_dir():
            raise UserError(f"the session's folder {request.cwd} no longer exists: pass --cwd")
        if not args.no_tui and not args.json and sys.stdout.isatty() and sys.stdin.isatty():
            from aura_tui.single_run import run_single  # the single-run view (textual)

            try:
                return run_single(
                    executor,
                    executor_name,
                    request,
                    store,
                    parent_id=parent["id"] if parent else None,
                )
            except SetupRequired as exc:
                raise UserError(str(exc), 1) from None
        has_normalizer = executor.normalizer() is not None
        sink = PlainSink(has_normalizer=has_normalizer, as_json=args.json)
        runner = SessionRunner(
            store,
            executor,
            request,
            executor_name=executor_name,
            sink=sink,
            parent_id=parent["id"] if parent else None,
        )
        received: list[int] = []

        def on_signal(signum: int, _frame: FrameType | None) -> None:
            received.append(signum)
            runner.stop()

        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, on_signal)
        try:
            result = runner.run()
        except SetupRequired as exc:
            raise UserError(str(exc), 1) from None
        if received:
            return 128 + received[0]
        if result.exit_code is None:
            return 1
        return result.exit_code
    finally:
        store.close()
        sys.stdout.flush()
        _ = os  # keep import for platforms without SIGHUP handling later
