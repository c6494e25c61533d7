"""`aura task ...`: everything the board does, headless and scriptable (same Runtime)."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from types import FrameType
from typing import Any

from aura_core.executors.names import EXECUTOR_NAMES
from aura_tui.cli import UserError


def populate(task: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    tsub = task.add_subparsers(dest="task_command", metavar="ACTION")

    def cmd(name: str, help_: str, with_id: bool = True) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = tsub.add_parser(name, help=help_, parents=[common])
        if with_id:
            p.add_argument("id", metavar="TASK", help="task id or unique prefix")
        p.add_argument("--json", action="store_true", help="print JSON")
        return p

    add = cmd("add", "add a task to the board", with_id=False)
    add.add_argument("--title", "-t", required=True, help="short title (names the branch)")
    add.add_argument("--prompt", "-p", default="", help="what the agent should do")
    executor = add.add_argument(
        "--executor",
        "-e",
        default="custom",
        choices=EXECUTOR_NAMES,
        metavar="NAME",
        help="agent (default: custom), or one defined in the config",
    )
    executor.aura_open_choices = True  # type: ignore[attr-defined]
    add.add_argument("--model", "-m", help="model for the agent")
    add.add_argument(
        "--repo", action="append", default=[], metavar="DIR", help="repo (repeatable; default .)"
    )
    add.add_argument("--base", metavar="BRANCH", help="base branch (default: detected)")
    add.add_argument("--review", action="store_true", help="run a review pass after coding")
    add.add_argument("--column", help="column id (default: the first column)")
    add.add_argument("--base-command", metavar="CMD", help="command for the custom executor")
    add.add_argument(
        "--param", action="append", default=[], metavar="ARG", help="argument for --base-command"
    )
    add.add_argument(
        "--var", action="append", default=[], metavar="KEY=VALUE", help="variable (repeatable)"
    )
    add.add_argument("--yolo", action="store_true", help="remove every agent guard")
    add.add_argument(
        "--after",
        action="append",
        default=[],
        metavar="TASK",
        help="start only once this task is done (id, prefix or title; repeatable)",
    )
    cmd("list", "tasks by column", with_id=False)
    cmd("show", "a task with its executions, sessions and events")
    start = cmd("start", "start (or retry) a task and follow it until it waits for you")
    start.add_argument("--detach", action="store_true", help="return at once (board keeps it)")
    move = cmd("move", "move a task to a column (through the board's rules)")
    move.add_argument("column", help="column id, e.g. ready, in_progress, review, done")
    move.add_argument("--feedback", help="your feedback when moving back to In Progress")
    cmd("review", "the review findings and the diff summary of a task")
    approve = cmd("approve", "approve a task in Review (-> Done)")
    approve.add_argument("--merge", action="store_true", help="squash-merge into the base too")
    follow = cmd("follow-up", "send feedback to the agent and run it again")
    follow.add_argument("--feedback", "-p", required=True, help="what to change")
    cmd("cancel", "stop a task's run (its whole process tree)")
    after = cmd("after", "set the tasks a task runs after (it starts once they are done)")
    after.add_argument("deps", nargs="*", metavar="DEP", help="task id, prefix or title")
    after.add_argument("--clear", action="store_true", help="run after no task")
    dev = cmd("dev", "run the dev server in the task's worktree on its own port, until Ctrl-C")
    dev.add_argument(
        "--stop", action="store_true", help="stop the one the board (or another aura) runs"
    )
    diff = cmd("diff", "the task's diff against its base branch")
    diff.add_argument("--turn", type=int, help="only this agent turn (1 = first)")
    diff.add_argument("--stat", action="store_true", help="only the file list with +/- counts")
    merge = cmd("merge", "squash-merge the task branch into its base")
    merge.add_argument("--rebase", action="store_true", help="rebase onto the base instead")
    remove = cmd("remove", "remove a task and its worktree")
    remove.add_argument("--force", action="store_true", help="even with unmerged work")
    orphans = cmd("orphans", "worktrees no task owns: a preview, or --clean", with_id=False)
    orphans.add_argument("--clean", action="store_true", help="remove them (after the preview)")
    orphans.add_argument("--force", action="store_true", help="even with unsaved work in them")
    from aura_tui.commands.pr import add_pr_parser

    add_pr_parser(tsub, common)


def _runtime(args: argparse.Namespace) -> Any:
    from aura_core.config import ConfigError, load_config
    from aura_core.engine.runtime import Runtime
    from aura_tui.commands.common import open_store

    try:
        config = load_config()
    except ConfigError as exc:
        raise UserError(str(exc)) from None
    return Runtime(open_store(args), config, data_dir=getattr(args, "data_dir", None))


def _task_dict(task: Any) -> dict[str, Any]:
    return dict(task.model_dump(mode="json"))


def _status(rt: Any, task: Any) -> str:
    execution = rt.latest_execution(task.id)
    if task.state == "blocked" and task.blocked_reason:
        return f"blocked: {task.blocked_reason}"
    if task.state == "ready" and task.options.get("start_when_ready"):
        return "ready (starts when what it runs after is done)"
    if execution is None:
        return task.state.value
    if execution.status in ("queued", "running"):
        stage = execution.stage.value if execution.stage else "queued"
        return f"{execution.status.value} ({stage})"
    return task.state.value


def _list(rt: Any, args: argparse.Namespace) -> int:
    tasks = rt.tasks()
    if args.json:
        json.dump([_task_dict(t) | {"status": _status(rt, t)} for t in tasks], sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    if not tasks:
        sys.stdout.write(
            "No tasks yet. Add one: aura task add --title 'Fix the login' --prompt '...' "
            "--executor claude\n"
        )
        return 0
    order = {c.id: c.order for c in rt.board.columns}
    tasks.sort(key=lambda t: (order.get(t.column_id, 99), t.position))
    header = ("ID", "COLUMN", "EXECUTOR", "STATUS", "TITLE")
    rows = [(t.id[:8], t.column_id, t.executor, _status(rt, t), t.title) for t in tasks]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    for row in (header, *rows):
        sys.stdout.write("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        sys.stdout.write("\n")
    return 0


def _show(rt: Any, task: Any, args: argparse.Namespace) -> int:
    executions = rt.executions(task.id)
    sessions = rt.sessions(task.id)
    if args.json:
        data = _task_dict(task)
        data["status"] = _status(rt, task)
        data["executions"] = [
            e.model_dump(mode="json")
            | {"events": [ev.model_dump(mode="json") for ev in rt.store.list_events(e.id)]}
            for e in executions
        ]
        data["sessions"] = [s.model_dump(mode="json") for s in sessions]
        json.dump(data, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    out = sys.stdout
    out.write(f"task:      {task.id}\ntitle:     {task.title}\n")
    out.write(f"status:    {_status(rt, task)} (column {task.column_id})\n")
    out.write(f"executor:  {task.executor}" + (f" ({task.model})" if task.model else "") + "\n")
    out.write(f"repos:     {', '.join(task.repos)}\nbase:      {task.base_branch or '-'}\n")
    if executions:
        last = executions[-1]
        out.write(
            f"branch:    {last.branch or '-'}\nworktree:  {', '.join(last.workspace) or '-'}\n"
        )
    deps = _after_line(rt, task)
    if deps:
        out.write(f"after:     {deps}\n")
    out.write(f"prompt:    {task.prompt}\n")
    for execution in executions:
        out.write(f"\nexecution {execution.id[:8]}: {execution.status.value}")
        out.write(f" at {execution.stage.value if execution.stage else '-'}\n")
        for ev in rt.store.list_events(execution.id):
            extra = f" {ev.payload}" if ev.payload else ""
            out.write(f"  {ev.seq:>3} {ev.kind.value}{extra}\n")
    if sessions:
        out.write("\nsessions:\n")
        for s in sessions:
            code = "" if s.exit_code is None else f" exit {s.exit_code}"
            out.write(
                f"  {s.id[:8]}  {s.stage or '-':<16} {s.executor:<10} {s.status.value}{code}\n"
            )
    return 0


def _after_line(rt: Any, task: Any) -> str:
    """`'Fix login' (review), 'Add docs' (done)`, plus whether its start waits for them."""
    from aura_core.engine.runtime import AFTER, START_WHEN_READY
    from aura_core.store.errors import NotFound

    parts = []
    for dep_id in task.options.get(AFTER) or []:
        try:
            dep = rt.store.get_task(dep_id)
        except NotFound:
            continue
        parts.append(f"'{dep.title}' {dep.id[:8]} ({dep.state.value})")
    line = ", ".join(parts)
    if line and task.options.get(START_WHEN_READY):
        line += "; starts when they are done"
    return line


def _follow(rt: Any, task_id: str, *, as_json: bool) -> int:
    """Print the task's output live until its run stops; Ctrl-C cancels it."""
    out = sys.stdout

    def on_event(event: Any) -> None:
        if event.task_id != task_id:
            return
        if event.kind == "log" and not as_json:
            for row in event.rows:
                mark = {"stderr": "[stderr] ", "system": "[aura] "}.get(row[2], "")
                out.write(f"{mark}{row[4]}\n")
            out.flush()
        elif event.kind == "session_started":
            session = rt.store.get_session(event.session_id)
            sys.stderr.write(f"[aura] {session.stage}: session {event.session_id[:8]}\n")

    unsubscribe = rt.subscribe(on_event)
    received: list[int] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        received.append(signum)
        rt.cancel(task_id)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    try:
        rt.wait(task_id)
    finally:
        unsubscribe()
    task = rt.store.get_task(task_id)
    if as_json:
        json.dump(_task_dict(task) | {"status": _status(rt, task)}, out)
        out.write("\n")
    else:
        sys.stderr.write(f"[aura] {task.title}: {_status(rt, task)}\n")
    if received:
        return 128 + received[0]
    return 0 if task.state in ("review", "done") else 1


def _dev(rt: Any, task: Any, args: argparse.Namespace) -> int:
    """`aura task dev`: [scripts] dev_server in the task's worktree, in the foreground: its URL,
    then its output until it exits or Ctrl-C stops it (its whole process group)."""
    out = sys.stdout
    if args.stop:
        stopped = rt.stop_dev_server(task.id)
        if args.json:
            json.dump({"task": task.id, "stopped": stopped}, out)
            out.write("\n")
        else:
            out.write(
                f"{task.title}: " + ("dev server stopped\n" if stopped else "no dev server\n")
            )
        return 0
    received: list[int] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        received.append(signum)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    lock = threading.Lock()
    session_ids: list[str] = []  # the dev server's session, once it started
    pending: list[str] | None = []  # its lines, held back until the URL is printed

    def on_event(event: Any) -> None:
        if event.task_id != task.id or args.json:
            return
        started = event.kind == "session_started" and not session_ids
        if started and rt.store.get_session(event.session_id).stage == "dev_server":
            session_ids.append(event.session_id)
        if event.kind != "log" or event.session_id not in session_ids:
            return
        marks = {"stderr": "[stderr] ", "system": "[aura] "}
        text = "".join(f"{marks.get(row[2], '')}{row[4]}\n" for row in event.rows)
        with lock:
            if pending is not None:
                pending.append(text)
                return
            out.write(text)
            out.flush()

    unsubscribe = rt.subscribe(on_event)
    try:
        dev = rt.start_dev_server(task.id)
    except BaseException:
        unsubscribe()
        raise
    with lock:
        if args.json:
            json.dump({"task": task.id, "port": dev.port, "url": dev.url,
                       "session": dev.session_id}, out)  # fmt: skip
            out.write("\n")
        else:
            out.write(f"{dev.url}\n")
            sys.stderr.write(
                f"[aura] {task.title}: dev server on {dev.url} (session {dev.session_id[:8]}); "
                "Ctrl-C stops it\n"
            )
            out.write("".join(pending or []))
        pending = None
        out.flush()
    try:
        while not rt.wait_dev_server(task.id, 0.1):
            if received:
                rt.stop_dev_server(task.id)
    finally:
        unsubscribe()
        rt.stop_dev_server(task.id)
    session = rt.store.get_session(dev.session_id)
    status = session.status.value
    if not args.json:
        sys.stderr.write(f"[aura] {task.title}: dev server {status}\n")
    if received:
        return 128 + received[0]
    return 0 if status == "completed" else 1


def _diff(rt: Any, task: Any, args: argparse.Namespace) -> int:
    diff = rt.diff(task.id, args.turn)
    if args.json:
        files = [
            {"path": f.path, "status": f.status, "insertions": f.insertions,
             "deletions": f.deletions}
            for f in diff.files
        ]  # fmt: skip
        json.dump({"files": files, "patch": "" if args.stat else diff.patch}, sys.stdout)
        sys.stdout.write("\n")
        return 0
    if args.stat or not diff.patch:
        for f in diff.files:
            sys.stdout.write(f"{f.status:<9} {f.path} +{f.insertions} -{f.deletions}\n")
        sys.stdout.write(f"{diff.files_changed} file(s), +{diff.insertions} -{diff.deletions}\n")
        return 0
    sys.stdout.write(diff.patch)
    return 0


def _orphans(rt: Any, args: argparse.Namespace) -> int:
    found = rt.orphans(clean=args.clean, force=args.force)
    if args.json:
        data = [
            {"path": str(o.path), "kind": o.kind, "branch": o.branch, "action": o.action,
             "reason": o.reason}
            for o in found
        ]  # fmt: skip
        json.dump(data, sys.stdout)
        sys.stdout.write("\n")
        return 0
    if not found:
        sys.stdout.write("No orphaned worktrees.\n")
        return 0
    verb = {"remove": "removed" if args.clean else "would remove",
            "prune": "pruned" if args.clean else "would prune", "skip": "skipped"}  # fmt: skip
    for o in found:
        sys.stdout.write(f"{verb[o.action]:<13} {o.path}  ({o.reason})\n")
    if not args.clean and any(o.action != "skip" for o in found):
        sys.stdout.write("Run `aura task orphans --clean` to do it.\n")
    return 0


def main(args: argparse.Namespace) -> int:
    from aura_core.board import BoardConfigError
    from aura_core.engine.runtime import RuntimeError_
    from aura_core.executors.base import SetupRequired
    from aura_core.git.errors import GitError

    if args.task_command is None:
        raise UserError("say which: `aura task add|list|show|start|move|...` (see --help)")
    try:
        rt = _runtime(args)
    except BoardConfigError as exc:
        raise UserError(f"board config: {exc}") from None
    try:
        return _dispatch(rt, args)
    except (RuntimeError_, GitError, SetupRequired) as exc:
        raise UserError(str(exc), 1) from None
    finally:
        rt.store.close()


def _dispatch(rt: Any, args: argparse.Namespace) -> int:
    from aura_tui.cli import _var

    command = args.task_command
    if command == "add":
        options: dict[str, Any] = {}
        if args.base_command:
            options["base_command"] = args.base_command
        if args.param:
            options["params"] = args.param
        if args.var:
            try:
                options["vars"] = dict(_var(v) for v in args.var)
            except argparse.ArgumentTypeError as exc:
                raise UserError(str(exc)) from None
        if args.yolo:
            options["yolo"] = True
        task = rt.add_task(
            args.title, args.prompt, args.executor, model=args.model, options=options,
            repos=args.repo or None, base_branch=args.base, review=args.review,
            column_id=args.column, after=args.after,
        )  # fmt: skip
        if args.json:
            json.dump(_task_dict(task), sys.stdout)
            sys.stdout.write("\n")
        else:
            sys.stdout.write(f"{task.id}\n")
        return 0
    if command == "list":
        return _list(rt, args)
    if command == "orphans":
        return _orphans(rt, args)
    task = rt.task(args.id)
    if command == "pr":
        from aura_tui.commands.pr import run as run_pr

        return run_pr(rt, task, args)
    if command == "show":
        return _show(rt, task, args)
    if command == "start":
        rt.start(task.id)
        if args.detach:
            sys.stderr.write(
                "[aura] --detach: the run lives as long as this process; use the board instead\n"
            )
        return _follow(rt, task.id, as_json=args.json)
    if command == "move":
        decision = rt.move(task.id, args.column, feedback=args.feedback)
        if not decision.ok:
            raise UserError(decision.reason, 1)
        if decision.intent.value == "wait":
            sys.stdout.write(f"{decision.reason}\n")
            return 0
        if decision.intent.value in ("start", "follow_up"):
            return _follow(rt, task.id, as_json=args.json)
        sys.stdout.write(f"{task.title}: moved to {args.column}\n")
        return 0
    if command == "follow-up":
        rt.follow_up(task.id, args.feedback)
        return _follow(rt, task.id, as_json=args.json)
    if command == "approve":
        task = rt.approve(task.id, merge=args.merge)
        sys.stdout.write(f"{task.title}: approved" + (" and merged\n" if args.merge else "\n"))
        code = 0
        for started in sorted(rt.live_here()):  # tasks that ran after it: follow them
            sys.stdout.write(f"{rt.store.get_task(started).title}: started\n")
            code = max(code, _follow(rt, started, as_json=args.json))
        return code
    if command == "cancel":
        rt.cancel(task.id)
        sys.stdout.write(f"{task.title}: cancelled\n")
        return 0
    if command == "after":
        if args.clear == bool(args.deps):
            raise UserError("name the tasks it runs after, or --clear (not both)")
        task = rt.set_after(task.id, args.deps)
        if args.json:
            json.dump(_task_dict(task), sys.stdout)
            sys.stdout.write("\n")
            return 0
        line = _after_line(rt, task)
        sys.stdout.write(f"{task.title}: " + (f"after {line}\n" if line else "after no task\n"))
        return 0
    if command == "dev":
        return _dev(rt, task, args)
    if command == "diff":
        return _diff(rt, task, args)
    if command == "review":
        reviews = [s for s in rt.sessions(task.id) if s.stage == "review"]
        if args.json:
            data = [
                {"session": s.id, "verdict": s.options.get("verdict"),
                 "findings": s.options.get("findings")}
                for s in reviews
            ]  # fmt: skip
            json.dump(data, sys.stdout)
            sys.stdout.write("\n")
            return 0
        if not reviews:
            sys.stdout.write("No review ran for this task (add it with --review).\n")
        for s in reviews[-1:]:
            sys.stdout.write(f"verdict: {s.options.get('verdict') or '-'}\n\n")
            sys.stdout.write((s.options.get("findings") or "(no findings)") + "\n\n")
        if rt.workspace(task.id):
            args.turn, args.stat = None, True
            return _diff(rt, task, args)
        if task.worker_id:  # ran on a worker: its branch as fetched here, when it was
            from aura_core.engine.runtime import RuntimeError_

            args.turn, args.stat = None, True
            try:
                return _diff(rt, task, args)
            except RuntimeError_ as exc:
                sys.stdout.write(f"(no diff: {exc})\n")
        return 0
    if command == "merge":
        results = rt.merge(task.id, rebase=args.rebase)
        for r in results:
            what = getattr(r, "commit", None) or getattr(r, "new_head", None)
            sys.stdout.write(
                f"{task.title}: {'rebased' if args.rebase else 'merged'} {what or ''}\n"
            )
        return 0
    if command == "remove":
        rt.remove(task.id, force=args.force)
        sys.stdout.write(f"{task.title}: removed\n")
        return 0
    raise UserError(f"unknown task action '{command}'")
