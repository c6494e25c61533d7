"""`aura task pr open|status|sync TASK`: the task's pull request through the GitHub CLI."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from aura_tui.cli import Parser, UserError


def add_pr_parser(task_subparsers: Any, common: argparse.ArgumentParser) -> None:
    """Adds `pr` under `aura task` (call it with the `task` subparsers)."""
    pr = task_subparsers.add_parser(
        "pr",
        help="push the task branch, open its pull request, follow CI and review (needs gh)",
        parents=[common],
        description="The task's pull request, through the GitHub CLI (gh).",
    )
    psub = pr.add_subparsers(dest="pr_command", metavar="ACTION", parser_class=Parser)
    psub.required = True

    def cmd(name: str, help_: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = psub.add_parser(name, help=help_, parents=[common])
        p.add_argument("id", metavar="TASK", help="task id or unique prefix")
        p.add_argument("--json", action="store_true", help="print JSON")
        return p

    open_ = cmd("open", "push the branch and open a PR with a drafted description")
    open_.add_argument("--title", help="PR title (default: the task title)")
    open_.add_argument(
        "--base", metavar="BRANCH", help="branch to merge into (default: the task's)"
    )
    open_.add_argument("--draft", action="store_true", help="open it as a draft PR")
    cmd("status", "the PR's state, CI checks and review decision")
    cmd("sync", "read the PR; when it is merged, move the task to Done")


def _emit(args: argparse.Namespace, data: dict[str, Any], text: str) -> None:
    if args.json:
        json.dump(data, sys.stdout)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(text + "\n")


NO_PR = "no pull request yet (open one with `aura task pr open`)"


def _open(prs: Any, task: Any, args: argparse.Namespace) -> int:
    result = prs.open(task.id, title=args.title, base=args.base, draft=args.draft)
    for warning in result.warnings:
        sys.stderr.write(f"aura: warning: {warning}\n")
    verb = "opened" if result.created else "already open; pushed"
    data = result.status.to_dict() | {"created": result.created, "branch": result.branch}
    _emit(args, data, f"{task.title}: {result.status.summary()} ({verb})\n{result.status.url}")
    return 0


def _status(prs: Any, task: Any, args: argparse.Namespace) -> int:
    status = prs.status(task.id)
    if status is None:
        _emit(args, {"state": "none"}, f"{task.title}: {NO_PR}")
        return 1
    _emit(args, status.to_dict(), f"{task.title}: {status.summary()}\n{status.url}")
    return 0


def _sync(rt: Any, prs: Any, task: Any, args: argparse.Namespace) -> int:
    from aura_core.pr import move_merged_to_done

    synced = prs.sync(task.id)
    data: dict[str, Any] = {"outcome": synced.outcome}
    if synced.status is None:
        _emit(args, data, f"{task.title}: {NO_PR}")
        return 1
    data |= synced.status.to_dict()
    if synced.outcome != "merged":
        _emit(args, data, f"{task.title}: {synced.status.summary()}")
        return 0
    message = move_merged_to_done(rt, task.id)
    data["task_state"] = rt.store.get_task(task.id).state.value
    _emit(args, data, message)
    return 0


def run(rt: Any, task: Any, args: argparse.Namespace) -> int:
    """Runs `aura task pr ACTION` for a task already found by `aura task`."""
    from aura_core.engine.runtime import RuntimeError_
    from aura_core.pr import GitHubPRs, PrError

    prs = GitHubPRs(rt.store)
    command = args.pr_command
    try:
        if command == "open":
            return _open(prs, task, args)
        if command == "status":
            return _status(prs, task, args)
        if command == "sync":
            return _sync(rt, prs, task, args)
    except PrError as exc:
        raise UserError(str(exc), 1) from None
    except RuntimeError_ as exc:
        raise UserError(f"the PR is merged, but the task cannot move to Done: {exc}", 1) from None
    raise UserError(f"unknown pr action '{command}'")
