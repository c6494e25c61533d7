"""The runtime: drives executions through the engine's stages and carries out its actions.

Every event is written to the store (with the execution's new state and the task's board state)
in one transaction before any of its actions run: the event log is the truth the board is rebuilt
from after a crash. Each live execution has one driver thread; a slot limit queues the rest.
The TUI, the headless `aura task` CLI and the worker hub all use only this class.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aura_core import procinfo
from aura_core.board import (
    AFTER,
    START_WHEN_READY,
    Board,
    MoveDecision,
    MoveIntent,
    unfinished_after,
)
from aura_core.config import AuraConfig
from aura_core.contracts import (
    ActionKind,
    CanonicalTaskState,
    EventKind,
    Execution,
    ExecutionAction,
    ExecutionEvent,
    ExecutionStage,
    ExecutionStatus,
    InvalidTransition,
    MachineState,
    RunReason,
    Session,
    SessionStatus,
    Task,
)
from aura_core.engine.prompts import default_templates, merge_templates, parse_verdict, render
from aura_core.engine.state_machine import apply
from aura_core.executors.base import RunMode, RunOptions, RunRequest, SetupRequired
from aura_core.executors.command import CommandExecutor
from aura_core.executors.registry import get_executor
from aura_core.runner import Row, RunResult, SessionRunner

if TYPE_CHECKING:
    from aura_core.worker.hub import HubThread
    from aura_core.worker.remote import FetchedBranch, RemoteRouter, RemoteTarget

LIVE = (ExecutionStatus.queued, ExecutionStatus.running)
PERMISSION_TIMEOUT_S = 30 * 60  # an unanswered permission request is denied after this
DEV_PORT = "dev_port"  # the task option holding its dev-server port
DEV_STAGE = RunReason.dev_server.value  # the stage of a dev server's session


class RuntimeError_(Exception):
    """A refused runtime request; its message is one line saying what to do."""


@dataclass(slots=True)
class RuntimeEvent:
    kind: str  # task_changed | session_started | log | entries | notify | permission
    task_id: str | None = None
    session_id: str | None = None
    rows: list[Row] = field(default_factory=list)
    patches: list[Any] = field(default_factory=list)
    level: str = "information"
    message: str = ""
    request_id: str = ""  # permission: answer it with Runtime.answer_permission
    tool: str = ""
    detail: str = ""


Subscriber = Callable[[RuntimeEvent], None]


class _StageSink:
    """Forwards one stage session's output to the runtime's subscribers."""

    def __init__(self, runtime: Runtime, task_id: str) -> None:
        self.runtime = runtime
        self.task_id = task_id
        self.session_id: str | None = None
        self.last_text: list[str] = []
        self.assistant: str | None = None

    def started(self, session: dict[str, Any]) -> None:
        self.session_id = session["id"]
        self.runtime._emit(RuntimeEvent("session_started", self.task_id, session["id"]))

    def lines(self, rows: list[Row]) -> None:
        for row in rows[-20:]:
            if row[2] == "stdout" and row[4].strip():
                self.last_text.append(row[4])
        del self.last_text[:-20]
        self.runtime._emit(RuntimeEvent("log", self.task_id, self.session_id, rows=rows))

    def patches(self, patches: list[Any]) -> None:
        for patch in patches:
            entry = patch.entry
            if getattr(entry, "kind", None) == "assistant_message":
                self.assistant = getattr(entry, "text", None) or self.assistant
        self.runtime._emit(RuntimeEvent("entries", self.task_id, self.session_id, patches=patches))

    def finished(self, result: RunResult) -> None:
        pass

    def final_text(self) -> str:
        if self.assistant:
            return self.assistant
        return "\n".join(self.last_text[-5:])


class _Driver:
    """One live execution: its thread, the session runner of the stage it is in, its cancel flag."""

    def __init__(self, execution_id: str, task_id: str) -> None:
        self.execution_id = execution_id
        self.task_id = task_id
        self.thread: threading.Thread | None = None
        self.runner: Any = None  # SessionRunner, or RemoteSessionRunner for a stage on a worker
        self.cancelled = threading.Event()
        self.lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class DevServer:
    """A task's running dev server: its port, its session (the log), who runs it."""

    task_id: str
    port: int
    session_id: str
    pid: int | None
    here: bool  # started by this aura process (else by another one, e.g. the board)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class _DevRun:
    """A dev server this process runs: its session runner and the thread streaming it."""

    def __init__(self, task_id: str, port: int, runner: SessionRunner) -> None:
        self.task_id = task_id
        self.port = port
        self.runner = runner
        self.thread: threading.Thread | None = None
        self.error: BaseException | None = None
        self.done = threading.Event()


def port_in_use(port: int) -> bool:
    """Is something listening on 127.0.0.1:port (a socket in TIME_WAIT does not count)?"""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def _names(tasks: list[Task]) -> str:
    """'A', 'A' and 'B', 'A', 'B' and 'C'."""
    names = [f"'{t.title}'" for t in tasks]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _without(options: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in options.items() if k not in keys}


def _options(task: Task) -> RunOptions:
    known = set(RunOptions.__dataclass_fields__)
    data = {k: v for k, v in (task.options or {}).items() if k in known}
    return RunOptions(**data)


class Runtime:
    def __init__(
        self,
        store: Any,
        config: AuraConfig | None = None,
        *,
        data_dir: str | None = None,
        max_concurrent: int | None = None,
        clock: Callable[[], float] = time.time,
        recover: bool = True,
        hub: HubThread | None = None,
    ) -> None:
        self.store = store
        self.config = config or AuraConfig()
        self.board = (
            Board.from_config({"board": self.config.board})
            if self.config.board
            else Board.default()
        )
        self.templates = merge_templates(default_templates(), self.config.prompts)
        self.worktrees_root = self.config.worktrees_root(data_dir)
        self.max_concurrent = max_concurrent or self.config.runtime.max_concurrent
        self.clock = clock
        self._lock = threading.RLock()
        self._drivers: dict[str, _Driver] = {}  # task id -> live driver
        self._queue: deque[tuple[str, str]] = deque()  # (task id, execution id) awaiting a slot
        self._subscribers: list[Subscriber] = []
        self._closing = False
        self.answers_permissions = False  # the board sets it: it shows permission requests
        self._permissions: dict[str, tuple[threading.Event, list[Any]]] = {}
        self._fetch_lock = threading.Lock()  # one branch.fetch into the local repos at a time
        self._dev: dict[str, _DevRun] = {}  # task id -> the dev server this process runs
        self.hub: HubThread | None = None
        self._router: RemoteRouter | None = None
        self._own_hub = False
        if hub is not None:
            self.attach_hub(hub)
        if recover:
            self.recover()

    # ---- remote workers -----------------------------------------------------------------------
    def attach_hub(self, hub: HubThread) -> None:
        """Run the stages of tasks that ask for a worker (`options["worker"]`) on this hub's
        workers. The hub should share this runtime's store (it then keeps the remote lines)."""
        from aura_core.worker.remote import RemoteRouter

        with self._lock:
            if self._router is not None:
                self._router.close()
            self.hub = hub
            self._router = RemoteRouter(hub)

    def start_hub(self, data_dir: str | None = None, **overrides: Any) -> HubThread | None:
        """The board's embedded hub: started (with [hub] of config.toml, this store) and
        attached when `[hub] enabled = true`; stopped by shutdown(). None when not enabled."""
        if not getattr(self.config.hub, "enabled", False):
            return None
        from aura_core.worker.remote import hub_from_config

        hub = hub_from_config(self.config, self.store, data_dir, **overrides)
        self.attach_hub(hub)
        self._own_hub = True
        return hub

    # ---- subscriptions ----------------------------------------------------------------------
    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    def _emit(self, event: RuntimeEvent) -> None:
        for callback in list(self._subscribers):
            try:
                callback(event)
            except Exception:  # a broken subscriber must never break a run
                pass

    def _notify(self, task_id: str, message: str, level: str = "information") -> None:
        self._emit(RuntimeEvent("notify", task_id, level=level, message=message))

    # ---- tasks ------------------------------------------------------------------------------
    def tasks(self) -> list[Task]:
        return list(self.store.list_tasks())

    def task(self, id_or_prefix: str) -> Task:
        return self.store.find_task(id_or_prefix)

    def add_task(
        self,
        title: str,
        prompt: str,
        executor: str,
        model: str | None = None,
        options: dict[str, Any] | None = None,
        repos: list[str] | None = None,
        base_branch: str | None = None,
        review: bool = False,
        column_id: str | None = None,
        after: list[str] | None = None,
    ) -> Task:
        """A new card. `after`: tasks (ids, id prefixes or titles) it must not start before."""
        from aura_core.git.repo import find_repo

        if not title.strip():
            raise RuntimeError_("a task needs a title")
        get_executor(executor, config=self.config)  # unknown names are refused now
        options = dict(options or {})
        after_ids = self._check_after(None, after or [])
        if after_ids:
            options[AFTER] = after_ids
        roots = [str(find_repo(r)) for r in (repos or [os.getcwd()])]
        column = self.board.column(column_id) if column_id else self.board.columns[0]
        if column.canonical_state not in (CanonicalTaskState.backlog, CanonicalTaskState.ready):
            raise RuntimeError_(
                f"new tasks go to Backlog or Ready, not {column.name}; start them from there"
            )
        now = self.clock()
        others = [t.position for t in self.store.list_tasks() if t.column_id == column.id]
        task = Task(
            id=uuid.uuid4().hex,
            title=title.strip(),
            prompt=prompt,
            executor=executor,
            model=model,
            options=options,
            repos=roots,
            base_branch=base_branch,
            column_id=column.id,
            state=column.canonical_state,
            review=review,
            position=max(others, default=0.0) + 1.0,
            created_at=now,
            updated_at=now,
        )
        self.store.create_task(task)
        self._changed(task.id)
        return task

    def _changed(self, task_id: str) -> None:
        self._emit(RuntimeEvent("task_changed", task_id))

    # ---- dependencies -----------------------------------------------------------------------
    def resolve_task(self, ref: str) -> Task:
        """A task by id (or unique id prefix) or, failing that, by its title (ignoring case)."""
        from aura_core.store.errors import NotFound

        try:
            return self.store.find_task(ref)
        except NotFound:
            wanted = " ".join(ref.split()).casefold()
            found = [
                t for t in self.store.list_tasks() if " ".join(t.title.split()).casefold() == wanted
            ]
            if len(found) == 1:
                return found[0]
            if found:
                raise RuntimeError_(
                    f"{len(found)} tasks are titled '{ref.strip()}': give the id instead"
                ) from None
            raise RuntimeError_(
                f"no task has the id or title '{ref.strip()}': list them with `aura task list`"
            ) from None

    def unfinished_after(self, task: Task) -> list[Task]:
        """The tasks it runs after that are not Done yet."""

        def lookup(task_id: str) -> Task | None:
            from aura_core.store.errors import NotFound

            try:
                return self.store.get_task(task_id)
            except NotFound:
                return None

        return unfinished_after(task, lookup)

    def _check_after(self, task_id: str | None, refs: list[str]) -> list[str]:
        """The ids of the tasks `refs` name; unknown ones and cycles are refused."""
        ids: list[str] = []
        for ref in refs:
            dep = self.resolve_task(ref)
            if dep.id == task_id:
                raise RuntimeError_(f"task '{dep.title}' cannot run after itself")
            if dep.id not in ids:
                ids.append(dep.id)
        if task_id is None or not ids:
            return ids
        tasks = {t.id: t for t in self.store.list_tasks()}
        for dep_id in ids:
            stack, seen = [dep_id], set()
            while stack:
                current = stack.pop()
                if current in seen:
                    continue
                seen.add(current)
                after = (tasks[current].options.get(AFTER) or []) if current in tasks else []
                if task_id in after:
                    raise RuntimeError_(
                        f"'{tasks[dep_id].title}' already runs after '{tasks[task_id].title}'"
                        + ("" if current == dep_id else f" (through '{tasks[current].title}')")
                        + ": that would be a cycle"
                    )
                stack.extend(a for a in after if isinstance(a, str))
        return ids

    def set_after(self, task_id: str, refs: list[str]) -> Task:
        """The tasks this one runs after (ids, id prefixes or titles); [] clears them. A waiting
        task whose dependencies are no longer unfinished stops waiting: start it yourself."""
        with self._lock:
            task = self.store.get_task(task_id)
            ids = self._check_after(task.id, refs)
            options = _without(task.options, AFTER)
            if ids:
                options[AFTER] = ids
            task = self.store.update_task(task_id, options=options, updated_at=self.clock())
            if task.options.get(START_WHEN_READY) and not self.unfinished_after(task):
                task = self.store.update_task(
                    task_id, options=_without(task.options, START_WHEN_READY)
                )
        self._changed(task_id)
        return task

    def _wait_line(self, task: Task, pending: list[Task]) -> str:
        verb = "is" if len(pending) == 1 else "are"
        return f"'{task.title}' starts when {_names(pending)} {verb} done"

    def _no_longer_waiting(self, task_id: str) -> dict[str, Any]:
        """The update_task fields that drop a waiting start's mark (none when not waiting)."""
        options = self.store.get_task(task_id).options
        if START_WHEN_READY not in options:
            return {}
        return {"options": _without(options, START_WHEN_READY)}

    def _mark_waiting(self, task_id: str, reason: str) -> None:
        with self._lock:
            task = self.store.get_task(task_id)
            options = {**task.options, START_WHEN_READY: True}
            self.store.update_task(task_id, options=options, updated_at=self.clock())
        self._changed(task_id)
        self._notify(task_id, reason)
        self._release_waiting()  # a dependency may have been approved meanwhile

    def _release_waiting(self) -> list[str]:
        """Start every waiting task whose dependencies are all Done, as a person's start would
        (so its worktree branches from the base as it is now). The ids of those started."""
        started: list[str] = []
        running = self.board.column_for_state(CanonicalTaskState.running).id
        for task in self.store.list_tasks():
            if not task.options.get(START_WHEN_READY) or self.unfinished_after(task):
                continue
            with self._lock:
                task = self.store.get_task(task.id)
                if not task.options.get(START_WHEN_READY):
                    continue
                self.store.update_task(task.id, options=_without(task.options, START_WHEN_READY))
            try:
                decision = self.move(task.id, running)
            except RuntimeError_ as exc:
                self._notify(task.id, f"'{task.title}' could not start: {exc}", "warning")
                continue
            if decision.ok and decision.intent is MoveIntent.start:
                started.append(task.id)
                self._notify(task.id, f"'{task.title}' started: what it runs after is done")
            elif not decision.ok:
                self._notify(
                    task.id, f"'{task.title}' could not start: {decision.reason}", "warning"
                )
        return started

    def _dependency_gone(self, task: Task, what: str) -> None:
        """A task others run after was cancelled or removed: tasks waiting for it stay in Ready
        (not started), each with a notice; a removed one is dropped from their lists."""
        for other in self.store.list_tasks():
            after = other.options.get(AFTER) or []
            if task.id not in after:
                continue
            options = dict(other.options)
            if what == "removed":
                kept = [a for a in after if a != task.id]
                options = _without(options, AFTER) | ({AFTER: kept} if kept else {})
            waiting = bool(options.pop(START_WHEN_READY, False))
            if options != other.options:
                self.store.update_task(other.id, options=options, updated_at=self.clock())
                self._changed(other.id)
            if waiting:
                self._notify(
                    other.id,
                    f"'{other.title}' stays in Ready, not started: '{task.title}', which it runs "
                    f"after, was {what}",
                    "warning",
                )

    def sessions(self, task_id: str) -> list[Session]:
        return list(reversed(self.store.list_sessions(task_id=task_id)))

    def executions(self, task_id: str) -> list[Execution]:
        return list(self.store.list_executions(task_id))

    def latest_execution(self, task_id: str) -> Execution | None:
        executions = self.store.list_executions(task_id)
        return executions[-1] if executions else None

    def running_task_ids(self) -> set[str]:
        with self._lock:
            return set(self._drivers)

    def live_here(self) -> set[str]:
        """The tasks this process drives, or has queued for a free slot."""
        with self._lock:
            return set(self._drivers) | {task_id for task_id, _ in self._queue}

    def is_running(self, task_id: str) -> bool:
        with self._lock:
            if task_id in self._drivers:
                return True
        execution = self.latest_execution(task_id)
        if execution is None or execution.status not in LIVE:
            return False
        return procinfo.is_alive(execution.owner_pid, execution.owner_start)

    # ---- board moves ------------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        return dict(self.store.task_counts())

    def git_clean(self, task_id: str) -> bool:
        from aura_core.git.repo import is_clean

        execution = self.latest_execution(task_id)
        if execution is None:
            return True
        return all(is_clean(p) for p in execution.workspace if Path(p).exists())

    def check_move(self, task_id: str, column_id: str) -> MoveDecision:
        """The board's answer. A dev server does not count as a running process: it keeps
        serving while a follow-up changes the code (approve, cancel and remove stop it). A start
        of a task whose dependencies are not all Done becomes a wait: it stays where it is."""
        task = self.store.get_task(task_id)
        decision = self.board.move(
            task,
            column_id,
            tasks_in_columns=self.counts(),
            git_clean=lambda: self.git_clean(task_id),
            has_running_process=self.is_running(task_id),
        )
        if decision.ok and decision.intent is MoveIntent.start:
            pending = self.unfinished_after(task)
            if pending:
                return MoveDecision(
                    True,
                    MoveIntent.wait,
                    self._wait_line(task, pending),
                    decision.from_column_id,
                    decision.from_column_id,
                )
        return decision

    def move(self, task_id: str, column_id: str, feedback: str | None = None) -> MoveDecision:
        """A person's move: validated by the board, then carried out through the engine."""
        decision = self.check_move(task_id, column_id)
        if not decision.ok:
            return decision
        intent = decision.intent
        if intent is MoveIntent.follow_up:
            if not feedback or not feedback.strip():
                return MoveDecision(
                    False,
                    MoveIntent.follow_up,
                    "A follow-up needs your feedback: say what to change.",
                    decision.from_column_id,
                    column_id,
                )
            self.follow_up(task_id, feedback)
        elif intent is MoveIntent.start:
            self.start(task_id)
        elif intent is MoveIntent.wait:
            self._mark_waiting(task_id, decision.reason)
        elif intent is MoveIntent.approve:
            self.approve(task_id)
        elif intent is MoveIntent.cancel:
            self.cancel(task_id)
            self._place(task_id, column_id)
        else:
            self._place(task_id, column_id)
        return decision

    def _place(self, task_id: str, column_id: str) -> None:
        column = self.board.column(column_id)
        fields: dict[str, Any] = {}
        if column.canonical_state is not CanonicalTaskState.ready:  # no longer waiting to start
            fields = self._no_longer_waiting(task_id)
        self.store.update_task(
            task_id,
            column_id=column.id,
            state=column.canonical_state,
            updated_at=self.clock(),
            blocked_reason=None,
            **fields,
        )
        self._changed(task_id)

    # ---- dev servers ------------------------------------------------------------------------
    def dev_port(self, task_id: str) -> int:
        """The task's own port (for its dev server; $AURA_PORT and $PORT of its agent and
        scripts): picked once from [runtime] dev_port_base on, one no other task has and
        nothing listens on, then kept in the task's options."""
        with self._lock:
            task = self.store.get_task(task_id)
            port = task.options.get(DEV_PORT)
            if isinstance(port, int):
                return port
            taken = {t.options.get(DEV_PORT) for t in self.store.list_tasks()}
            first = self.config.runtime.dev_port_base
            last = min(first + self.config.runtime.dev_port_count, 65536) - 1
            for candidate in range(first, last + 1):
                if candidate in taken or port_in_use(candidate):
                    continue
                self.store.update_task(task_id, options={**task.options, DEV_PORT: candidate})
                return candidate
        raise RuntimeError_(
            f"no free dev-server port in {first}-{last}: raise [runtime] dev_port_count or "
            "remove finished tasks"
        )

    def _port_env(self, task_id: str) -> dict[str, str]:
        """$AURA_PORT and $PORT for a local stage; none when no port is left (the run goes on)."""
        try:
            port = str(self.dev_port(task_id))
        except RuntimeError_:
            return {}
        return {"AURA_PORT": port, "PORT": port}

    def dev_server(self, task_id: str) -> DevServer | None:
        """The task's running dev server, started by this process or by another aura."""
        with self._lock:
            run = self._dev.get(task_id)
        if run is not None and not run.done.is_set():
            pid = run.runner._agent.pid if run.runner._agent is not None else None
            return DevServer(task_id, run.port, run.runner.session_id, pid, here=True)
        session = self._dev_session_elsewhere(task_id)
        if session is None:
            return None
        task = self.store.get_task(task_id)
        port = task.options.get(DEV_PORT)
        if not isinstance(port, int):
            return None
        return DevServer(task_id, port, session.id, session.pid, here=False)

    def dev_servers(self) -> dict[str, int]:
        """Task id -> port of the dev servers this process runs (cheap: no store access)."""
        with self._lock:
            return {t: r.port for t, r in self._dev.items() if not r.done.is_set()}

    def _dev_session_elsewhere(self, task_id: str) -> Session | None:
        """A running dev-server session of this task that another live aura process owns."""
        for session in self.store.list_sessions(task_id=task_id):
            if session.stage != DEV_STAGE or session.status != SessionStatus.running:
                continue
            if procinfo.is_alive(session.owner_pid, session.owner_start) and (
                session.pgid and procinfo.group_alive(session.pgid)
            ):
                return session
        return None

    def start_dev_server(self, task_id: str, timeout: float = 15) -> DevServer:
        """Run [scripts] dev_server in the task's worktree, as a session of stage dev_server
        (its output is a normal session log; its process group is stopped with it). The task's
        state does not change. Stopped by stop_dev_server(), approve, merge, cancel, remove and
        shutdown()."""
        script = self.config.scripts.dev_server
        task = self.store.get_task(task_id)
        if not script:
            raise RuntimeError_(
                "no dev server configured: set [scripts] dev_server in config.toml, e.g. "
                'dev_server = "npm run dev -- --port $AURA_PORT"'
            )
        if self._remote_branch(task) is not None:
            raise RuntimeError_(
                f"task '{task.title}' ran on worker {task.worker_id}: it has no local worktree "
                "to run a dev server in"
            )
        paths = [p for p in self.workspace(task_id) if Path(p).exists()]
        if not paths:
            raise RuntimeError_(f"task '{task.title}' has no worktree yet: start it first")
        with self._lock:
            if self._closing:
                raise RuntimeError_("aura is quitting; no new dev server")
            running = self.dev_server(task_id)
            if running is not None:
                raise RuntimeError_(
                    f"the dev server of task '{task.title}' is already running at {running.url}"
                )
            port = self.dev_port(task_id)
            if port_in_use(port):
                raise RuntimeError_(
                    f"port {port} of task '{task.title}' is taken by another program; stop it "
                    "and try again"
                )
            task = self.store.get_task(task_id)
            request = RunRequest(
                session_id=uuid.uuid4().hex,
                prompt=f"{DEV_STAGE}: {script}",
                cwd=Path(paths[0]),
                options=RunOptions(base_command="sh", params=["-c", script]),
                env={**dict(task.options.get("vars") or {}), **self._port_env(task_id)},
            )
            runner = SessionRunner(
                self.store,
                CommandExecutor(),
                request,
                executor_name="custom",
                sink=_StageSink(self, task_id),
                task_id=task_id,
                stage=DEV_STAGE,
            )
            run = _DevRun(task_id, port, runner)
            run.thread = threading.Thread(
                target=self._serve, args=(run,), name=f"aura-dev-{task_id[:8]}", daemon=True
            )
            self._dev[task_id] = run
            run.thread.start()
        deadline = time.monotonic() + timeout
        while not runner.started.wait(0.02):
            if run.done.is_set() or time.monotonic() > deadline:
                break
        if run.error is not None:
            raise RuntimeError_(f"the dev server could not start: {run.error}")
        self._changed(task_id)
        pid = runner._agent.pid if runner._agent is not None else None
        return DevServer(task_id, port, runner.session_id, pid, here=True)

    def _serve(self, run: _DevRun) -> None:
        result: RunResult | None = None
        try:
            result = run.runner.run()
        except BaseException as exc:  # SetupRequired (could not spawn sh), a store failure
            run.error = exc
        finally:
            with self._lock:
                if self._dev.get(run.task_id) is run:
                    del self._dev[run.task_id]
            run.done.set()
        if self._closing:
            return
        if result is not None and result.status == "failed" and not run.runner.stopping:
            self._notify(run.task_id, f"the dev server exited: {result.error}", "warning")
        self._changed(run.task_id)

    def wait_dev_server(self, task_id: str, timeout: float | None = None) -> bool:
        """Block until the dev server this process runs for the task ends; False on timeout."""
        with self._lock:
            run = self._dev.get(task_id)
        return True if run is None else run.done.wait(timeout)

    def stop_dev_server(self, task_id: str, timeout: float = 15) -> bool:
        """Stop the task's dev server (its whole process group); False when none was running.
        One another aura process runs is stopped through the process group it recorded."""
        import signal

        with self._lock:
            run = self._dev.get(task_id)
        if run is not None:
            run.runner.stop()
            if run.thread is not None and run.thread is not threading.current_thread():
                run.thread.join(timeout)
            return True
        session = self._dev_session_elsewhere(task_id)
        if session is None or not session.pgid:
            return False
        procinfo.kill_group(session.pgid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while procinfo.group_alive(session.pgid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if procinfo.group_alive(session.pgid):
            procinfo.kill_group(session.pgid, signal.SIGKILL)
        self._changed(task_id)
        return True

    # ---- engine -----------------------------------------------------------------------------
    def _apply(self, execution_id: str, event: ExecutionEvent) -> tuple[ExecutionAction, ...]:
        """Record the event, the execution's new state and the task's state, all at once."""
        with self._lock, self.store.transaction():
            execution = self.store.get_execution(execution_id)
            state = MachineState(status=execution.status, stage=execution.stage)
            transition = apply(state, event)
            now = self.clock()
            self.store.append_event(execution_id, event, now)
            error = execution.error
            if event.kind in (EventKind.stage_failed, EventKind.worker_lost):
                error = event.message
            self.store.update_execution(
                execution_id,
                status=transition.state.status,
                stage=transition.state.stage,
                error=error,
                updated_at=now,
            )
            if transition.task_state is not None:
                column = self.board.column_for_state(transition.task_state)
                blocked = (
                    event.message if transition.task_state == CanonicalTaskState.blocked else None
                )
                self.store.update_task(
                    execution.task_id,
                    state=transition.task_state,
                    column_id=column.id,
                    blocked_reason=blocked,
                    updated_at=now,
                )
        self._changed(execution.task_id)
        return transition.actions

    def start(self, task_id: str) -> Execution:
        """Start (or retry) a task: a new execution, run now or queued for a free slot."""
        task = self.store.get_task(task_id)
        with self._lock:
            if task_id in self._drivers or self.is_running(task_id):
                raise RuntimeError_(f"task '{task.title}' is already running")
            if task.state in (CanonicalTaskState.review, CanonicalTaskState.done):
                raise RuntimeError_(
                    f"task '{task.title}' is in {task.state.value}: "
                    "ask for a follow-up instead of starting it again"
                )
            pending = self.unfinished_after(task)
            if pending and task.state in (CanonicalTaskState.backlog, CanonicalTaskState.ready):
                raise RuntimeError_(
                    f"{self._wait_line(task, pending)}: move it to In Progress to have it wait, "
                    f"or clear that with `aura task after {task.id[:8]} --clear`"
                )
            now = self.clock()
            execution = Execution(
                id=uuid.uuid4().hex,
                task_id=task_id,
                owner_pid=os.getpid(),
                owner_start=procinfo.start_time(os.getpid()),
                created_at=now,
                updated_at=now,
            )
            self.store.create_execution(execution)
            running = self.board.column_for_state(CanonicalTaskState.running)
            self.store.update_task(
                task_id,
                column_id=running.id,
                state=CanonicalTaskState.running,
                blocked_reason=None,
                updated_at=now,
                **self._no_longer_waiting(task_id),
            )
            self._queue.append((task_id, execution.id))
        self._changed(task_id)
        self._pump()
        return execution

    def _pump(self) -> None:
        """Start queued executions while there are free slots."""
        with self._lock:
            while self._queue and len(self._drivers) < self.max_concurrent and not self._closing:
                task_id, execution_id = self._queue.popleft()
                self._launch(task_id, execution_id, ExecutionEvent(kind=EventKind.start_requested))

    def _launch(self, task_id: str, execution_id: str, event: ExecutionEvent) -> None:
        driver = _Driver(execution_id, task_id)
        self._drivers[task_id] = driver
        driver.thread = threading.Thread(
            target=self._drive, args=(driver, event), name=f"aura-exec-{execution_id[:8]}"
        )
        driver.thread.daemon = True
        driver.thread.start()

    def follow_up(self, task_id: str, feedback: str) -> None:
        if not feedback.strip():
            raise RuntimeError_("a follow-up needs feedback: say what to change")
        task = self.store.get_task(task_id)
        execution = self.latest_execution(task_id)
        with self._lock:
            if task_id in self._drivers:
                raise RuntimeError_(f"task '{task.title}' is still running; wait or cancel it")
            if (
                execution is None
                or execution.stage != ExecutionStage.review
                or execution.status not in (ExecutionStatus.completed, ExecutionStatus.running)
            ):
                raise RuntimeError_(
                    f"task '{task.title}' is not waiting in review; only reviewed work takes "
                    "a follow-up"
                )
            self.store.update_execution(
                execution.id,
                owner_pid=os.getpid(),
                owner_start=procinfo.start_time(os.getpid()),
            )
            event = ExecutionEvent(kind=EventKind.follow_up_requested, message=feedback)
            self._launch(task_id, execution.id, event)

    def approve(self, task_id: str, merge: bool = False) -> Task:
        task = self.store.get_task(task_id)
        if task.state != CanonicalTaskState.review:
            raise RuntimeError_(f"task '{task.title}' is not in review; nothing to approve")
        if self.is_running(task_id):
            raise RuntimeError_(f"task '{task.title}' is still running; wait or cancel it")
        if not self.git_clean(task_id):
            raise RuntimeError_(
                f"task '{task.title}' has uncommitted changes in its worktree: commit or "
                "discard them (or ask for a follow-up) before approving"
            )
        self.stop_dev_server(task_id)
        if merge:
            self.merge(task_id)
        done = self.board.column_for_state(CanonicalTaskState.done)
        task = self.store.update_task(
            task_id, state=CanonicalTaskState.done, column_id=done.id, updated_at=self.clock()
        )
        self._changed(task_id)
        self._release_waiting()  # tasks that run after this one, on the base that has its work
        return task

    def cancel(self, task_id: str) -> None:
        """Stop a task's live execution (its whole process group) and its dev server, and mark
        it cancelled. Tasks waiting for it stay in Ready, not started."""
        self._cancel(task_id)
        task = self.store.get_task(task_id)
        if task.state is CanonicalTaskState.cancelled:  # not one that was already done
            self._dependency_gone(task, "cancelled")

    def _cancel(self, task_id: str) -> None:
        task = self.store.get_task(task_id)
        self.stop_dev_server(task_id)
        execution = self.latest_execution(task_id)
        with self._lock:
            queued = next((q for q in self._queue if q[0] == task_id), None)
            if queued is not None:
                self._queue.remove(queued)
            driver = self._drivers.get(task_id)
            if execution is None or execution.status not in LIVE:
                if task.state not in (CanonicalTaskState.done, CanonicalTaskState.cancelled):
                    self._place(
                        task_id, self.board.column_for_state(CanonicalTaskState.cancelled).id
                    )
                return
            if driver is not None:
                driver.cancelled.set()
            actions = self._apply(execution.id, ExecutionEvent(kind=EventKind.cancel_requested))
        if any(a.kind == ActionKind.interrupt_execution for a in actions):
            self._interrupt(task_id, driver)

    def _interrupt(self, task_id: str, driver: _Driver | None) -> None:
        if driver is not None and driver.runner is not None:
            driver.runner.stop()
            return
        # driven by another aura process: stop the agent group it recorded
        import signal

        for session in self.store.list_sessions(task_id=task_id):
            if session.status == "running" and session.pgid:
                procinfo.kill_group(session.pgid, signal.SIGTERM)

    def wait(self, task_id: str, timeout: float | None = None) -> bool:
        """Block until the task's driver thread ends; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                driver = self._drivers.get(task_id)
                queued = any(q[0] == task_id for q in self._queue)
            if driver is None and not queued:
                return True
            if driver is not None and driver.thread is not None:
                remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
                driver.thread.join(timeout=0.1 if remaining is None else min(0.1, remaining))
            else:
                time.sleep(0.05)
            if deadline is not None and time.monotonic() >= deadline:
                return False

    def shutdown(self, stop_running: bool = True, timeout: float = 15) -> None:
        """Quit: stop running tasks (cancelled) or interrupt them for a later resume (blocked)."""
        with self._lock:
            self._closing = True
            queued = list(self._queue)
            self._queue.clear()
            drivers = list(self._drivers.values())
            dev = list(self._dev.values())
        for run in dev:
            run.runner.stop()
        for task_id, execution_id in queued:
            self._apply(execution_id, ExecutionEvent(kind=EventKind.cancel_requested))
            self._place(task_id, self.board.column_for_state(CanonicalTaskState.ready).id)
        for driver in drivers:
            if stop_running:
                self.cancel(driver.task_id)
            else:
                driver.cancelled.set()
                with self._lock:
                    execution = self.store.get_execution(driver.execution_id)
                    if execution.status == ExecutionStatus.running:
                        self._apply(
                            driver.execution_id,
                            ExecutionEvent(
                                kind=EventKind.stage_failed,
                                message="stopped when aura quit; resume with "
                                f"`aura task start {driver.task_id[:8]}`",
                            ),
                        )
                if driver.runner is not None:
                    driver.runner.stop()
        for driver in drivers:
            if driver.thread is not None:
                driver.thread.join(timeout)
        for run in dev:
            if run.thread is not None:
                run.thread.join(timeout)
        if self._router is not None:
            self._router.close()
        if self._own_hub and self.hub is not None:
            self.hub.stop()

    # ---- the driver -------------------------------------------------------------------------
    def _drive(self, driver: _Driver, first: ExecutionEvent) -> None:
        event: ExecutionEvent | None = first
        try:
            while event is not None:
                if driver.cancelled.is_set() or self._execution_over(driver.execution_id):
                    return
                try:
                    actions = self._apply(driver.execution_id, event)
                except InvalidTransition:
                    if driver.cancelled.is_set() or self._execution_over(driver.execution_id):
                        return
                    raise
                event = None
                for action in actions:
                    outcome = self._act(driver, action)
                    if outcome is not None:
                        event = outcome
        except Exception as exc:  # a bug or an unexpected failure: the task is blocked, not lost
            try:
                if not self._execution_over(driver.execution_id):
                    self._apply(
                        driver.execution_id,
                        ExecutionEvent(kind=EventKind.stage_failed, message=f"aura error: {exc}"),
                    )
            except Exception:
                pass
        finally:
            try:
                self._after_drive(driver)  # before the driver is gone: wait() sees its notices
            finally:
                with self._lock:
                    if self._drivers.get(driver.task_id) is driver:
                        del self._drivers[driver.task_id]
                self._pump()

    def _after_drive(self, driver: _Driver) -> None:
        if self._closing:  # quitting: the person chose what happens to runs; no alarms
            return
        task = self.store.get_task(driver.task_id)
        if task.state == CanonicalTaskState.review:
            self._notify(task.id, f"'{task.title}' needs review", "information")
        elif task.state == CanonicalTaskState.blocked:
            self._notify(task.id, f"'{task.title}' failed: {task.blocked_reason}", "error")

    def _execution_over(self, execution_id: str) -> bool:
        status = self.store.get_execution(execution_id).status
        return status in (ExecutionStatus.killed, ExecutionStatus.failed)

    def _act(self, driver: _Driver, action: ExecutionAction) -> ExecutionEvent | None:
        kind = action.kind
        if kind in (
            ActionKind.persist_event,
            ActionKind.mark_task_state,
            ActionKind.noop,
            ActionKind.complete_execution,
            ActionKind.fail_as_worker_lost,
        ):
            return None
        if kind == ActionKind.interrupt_execution:
            if driver.runner is not None:
                driver.runner.stop()
            return None
        handlers: dict[ActionKind, Callable[[_Driver], ExecutionEvent | None]] = {
            ActionKind.prepare_workspace: self._prepare_workspace,
            ActionKind.run_setup: self._run_setup,
            ActionKind.run_coding_initial: lambda d: self._run_coding(d, RunMode.initial),
            ActionKind.run_coding_follow_up: lambda d: self._run_coding(d, RunMode.follow_up),
            ActionKind.run_cleanup: self._run_cleanup,
            ActionKind.run_review: self._run_review,
        }
        return handlers[kind](driver)

    # ---- stages -----------------------------------------------------------------------------
    def _failed(self, message: str) -> ExecutionEvent:
        return ExecutionEvent(kind=EventKind.stage_failed, message=message)

    def _prepare_workspace(self, driver: _Driver) -> ExecutionEvent:
        from aura_core.git.errors import GitError
        from aura_core.workspace import create_workspace

        task = self.store.get_task(driver.task_id)
        try:
            worker = self._placement(task)
        except RuntimeError_ as exc:
            return self._failed(str(exc))
        if worker is not None:
            return self._prepare_remote(driver, task, worker)
        if task.worker_id is not None:
            self.store.update_task(task.id, worker_id=None)
        try:
            workspace = create_workspace(
                task.repos,
                task.id,
                task.title,
                self.worktrees_root,
                base=task.base_branch,
                prefix=self.config.worktrees.prefix,
            )
        except GitError as exc:
            return self._failed(f"could not prepare the worktree: {exc}")
        if self._prepare_was_interrupted(task.id, driver.execution_id):
            from aura_core.git.repair import restore_missing

            for path in workspace.paths:
                restore_missing(path)
        self.store.update_execution(
            driver.execution_id,
            workspace=[str(p) for p in workspace.paths],
            branch=workspace.branch,
        )
        if task.base_branch is None and workspace.worktrees:
            self.store.update_task(task.id, base_branch=workspace.worktrees[0].base)
        return ExecutionEvent(kind=EventKind.workspace_prepared)

    def _placement(self, task: Task) -> str | None:
        """The worker this execution runs on (task.options["worker"]), None for local."""
        if self.hub is None and task.options.get("worker") in (None, "", "local", "any"):
            return None
        from aura_core.worker.remote import PlacementError, place_task

        try:
            return place_task(self.hub, task, self.config)
        except PlacementError as exc:
            raise RuntimeError_(str(exc)) from None

    def _prepare_remote(self, driver: _Driver, task: Task, worker: str) -> ExecutionEvent:
        """A remote execution has no local worktree: the worker makes its own of the branch."""
        from aura_core.git.errors import GitError
        from aura_core.git.repo import default_base_branch
        from aura_core.git.worktree import branch_name

        try:
            branch = branch_name(task.id, task.title, self.config.worktrees.prefix)
            base = task.base_branch or default_base_branch(task.repos[0])
        except GitError as exc:
            return self._failed(f"could not name the task's branch: {exc}")
        self.store.update_execution(driver.execution_id, workspace=[], branch=branch)
        self.store.update_task(task.id, worker_id=worker, base_branch=base, updated_at=self.clock())
        self._changed(task.id)
        return ExecutionEvent(kind=EventKind.workspace_prepared)

    def _remote_target(self, driver: _Driver) -> RemoteTarget | None:
        """Where this execution's stages run when it was placed on a worker, else None."""
        task = self.store.get_task(driver.task_id)
        if not task.worker_id or not task.repos:
            return None
        execution = self.store.get_execution(driver.execution_id)
        if execution.workspace or not execution.branch:
            return None
        from aura_core.worker.remote import RemoteTarget, repo_name

        return RemoteTarget(
            worker=task.worker_id,
            repo=repo_name(task.repos[0]),
            branch=execution.branch,
            task_id=task.id,
            task_title=task.title,
            base_branch=task.base_branch,
        )

    def _stage_cwd(self, driver: _Driver) -> Path:
        """The local worktree; for a remote stage only a label (the worker picks the folder)."""
        target = self._remote_target(driver)
        if target is not None:
            return Path(f"{target.worker}:{target.branch}")
        return self._workdir(driver)

    def _stage_port_env(self, driver: _Driver) -> dict[str, str]:
        """The task's port for a stage run here (a worker's ports are its own business)."""
        if self._remote_target(driver) is not None:
            return {}
        return self._port_env(driver.task_id)

    def _prepare_was_interrupted(self, task_id: str, execution_id: str) -> bool:
        """Did an earlier execution die while checking out the worktree (files may be missing)?"""
        for execution in self.store.list_executions(task_id):
            if execution.id == execution_id:
                continue
            kinds = [e.kind for e in self.store.list_events(execution.id)]
            if EventKind.start_requested in kinds and EventKind.workspace_prepared not in kinds:
                return True
        return False

    def _workdir(self, driver: _Driver) -> Path:
        execution = self.store.get_execution(driver.execution_id)
        if not execution.workspace:
            raise RuntimeError_("the execution has no workspace")
        return Path(execution.workspace[0])

    def _variables(self, task: Task, driver: _Driver, feedback: str = "") -> dict[str, object]:
        execution = self.store.get_execution(driver.execution_id)
        variables: dict[str, object] = dict(task.options.get("vars") or {})
        variables.update(
            task_title=task.title,
            task_prompt=task.prompt,
            repo=task.repos[0] if task.repos else "",
            branch=execution.branch or "",
            base_branch=task.base_branch or "",
            diff_summary=self._diff_summary(task, execution),
            feedback=feedback,
        )
        return variables

    def _diff_summary(self, task: Task, execution: Execution) -> str:
        from aura_core.git.diff import DiffResult, diff_branch, diff_worktree
        from aura_core.git.errors import GitError

        diffs: list[DiffResult] = []
        for path in execution.workspace:
            try:
                diffs.append(diff_worktree(path, task.base_branch))
            except GitError:
                continue
        if not execution.workspace and execution.branch and task.worker_id and task.repos:
            try:  # a remote task: its commits as fetched after the last stage
                diffs.append(diff_branch(task.repos[0], execution.branch, task.base_branch))
            except GitError:
                pass
        lines = []
        for diff in diffs:
            for f in diff.files:
                lines.append(f"{f.status:<9} {f.path} (+{f.insertions} -{f.deletions})")
        return "\n".join(lines) or "(no changes)"

    def _script_stage(self, driver: _Driver, stage: ExecutionStage, script: str) -> RunResult:
        task = self.store.get_task(driver.task_id)
        request = RunRequest(
            session_id=uuid.uuid4().hex,
            prompt=f"{stage.value}: {script}",
            cwd=self._stage_cwd(driver),
            options=RunOptions(base_command="sh", params=["-c", script]),
            env={**dict(task.options.get("vars") or {}), **self._stage_port_env(driver)},
        )
        return self._run_session(driver, CommandExecutor(), "custom", request, stage)

    def _run_session(
        self,
        driver: _Driver,
        executor: Any,
        name: str,
        request: RunRequest,
        stage: ExecutionStage,
        sink: _StageSink | None = None,
        parent_id: str | None = None,
        commit_message: str | None = None,
    ) -> RunResult:
        runner: Any
        target = self._remote_target(driver)
        if target is not None:
            runner = self._remote_runner(
                driver, target, executor, name, request, stage, sink, parent_id, commit_message
            )
        else:
            runner = SessionRunner(
                self.store,
                executor,
                request,
                executor_name=name,
                sink=sink or _StageSink(self, driver.task_id),
                parent_id=parent_id,
                task_id=driver.task_id,
                execution_id=driver.execution_id,
                stage=stage.value,
            )
        with driver.lock:
            driver.runner = runner
        if driver.cancelled.is_set():
            runner.stop()
        try:
            result: RunResult = runner.run()
        finally:
            with driver.lock:
                driver.runner = None
        if target is not None:
            self._fetch_after_stage(driver.task_id, target, result)
        return result

    def _remote_runner(
        self,
        driver: _Driver,
        target: RemoteTarget,
        executor: Any,
        name: str,
        request: RunRequest,
        stage: ExecutionStage,
        sink: _StageSink | None,
        parent_id: str | None,
        commit_message: str | None,
    ) -> Any:
        from aura_core.worker.remote import RemoteSessionRunner

        router = self._router
        if router is None:
            raise SetupRequired(
                f"this task runs on worker {target.worker}, but no hub is attached: "
                "set [hub] enabled = true"
            )
        return RemoteSessionRunner(
            self.store,
            router,
            target,
            request,
            executor=executor,
            executor_name=name,
            action=f"run_{stage.value}",
            sink=sink or _StageSink(self, driver.task_id),
            parent_id=parent_id,
            task_id=driver.task_id,
            execution_id=driver.execution_id,
            stage=stage.value,
            commit_message=commit_message,
        )

    def _outcome(self, result: RunResult, what: str) -> ExecutionEvent | None:
        if result.status == "completed":
            return None
        if result.status == "lost":  # a remote stage whose worker went offline
            return ExecutionEvent(kind=EventKind.worker_lost, message=result.error)
        if result.status == "killed":
            return self._failed(f"{what} was stopped")
        return self._failed(f"{what} failed: {result.error or result.status}")

    def _run_setup(self, driver: _Driver) -> ExecutionEvent:
        script = self.config.scripts.setup
        if script:
            try:
                result = self._script_stage(driver, ExecutionStage.setup, script)
            except SetupRequired as exc:
                return self._failed(f"setup could not start: {exc}")
            failed = self._outcome(result, "the setup script")
            if failed is not None:
                return failed
        return ExecutionEvent(kind=EventKind.setup_completed)

    def _run_coding(self, driver: _Driver, mode: RunMode) -> ExecutionEvent:
        from aura_core.git.repo import head

        task = self.store.get_task(driver.task_id)
        execution = self.store.get_execution(driver.execution_id)
        feedback = ""
        stage = ExecutionStage.coding_initial
        parent: Session | None = None
        if mode is RunMode.follow_up:
            stage = ExecutionStage.coding_follow_up
            events = self.store.list_events(driver.execution_id)
            feedback = next(
                (
                    e.payload.get("message", "")
                    for e in reversed(events)
                    if e.kind == EventKind.follow_up_requested
                ),
                "",
            )
            parent = self._last_coding_session(task.id)
        template = self.templates[stage.value]
        try:
            prompt = render(template, self._variables(task, driver, feedback), template_name=stage)
            executor = get_executor(task.executor, config=self.config)
        except (SetupRequired, ValueError) as exc:
            return self._failed(str(exc))
        remote = self._remote_target(driver) is not None
        workdir = self._stage_cwd(driver)
        before = None if remote else head(workdir)
        dirty_before = self._uncommitted(execution.workspace)
        options = _options(task)
        self._supervise(options, task.id)
        request = RunRequest(
            session_id=uuid.uuid4().hex,
            prompt=prompt,
            cwd=workdir,
            model=task.model,
            mode=mode,
            resume_id=parent.agent_session_id if parent else None,
            options=options,
            executable=self._executable(task.executor),
            env={
                **self._stage_port_env(driver),
                **self._executor_env(task.executor),
                **dict(options.vars),
            },
        )
        sink = _StageSink(self, task.id)
        try:
            result = self._run_session(
                driver, executor, task.executor, request, stage, sink, parent.id if parent else None
            )
        except SetupRequired as exc:
            return self._failed(str(exc))
        failed = self._outcome(result, f"{task.executor}")
        if remote:  # the worker saw the worktree before and after
            before = getattr(result, "head_before", None)
            after = getattr(result, "head_after", None)
        else:
            after = head(workdir)
        turn = {"head_before": before, "head_after": after, "final_text": sink.final_text()[:2000]}
        session = self.store.get_session(result.session_id)
        self.store.update_session(result.session_id, options={**session.options, **turn})
        if failed is not None:
            return failed
        if remote:
            changes = bool(getattr(result, "changes_made", False))
        else:
            changes = before != after or self._uncommitted(execution.workspace) != dirty_before
        return ExecutionEvent(kind=EventKind.coding_completed, changes_made=changes)

    @staticmethod
    def _uncommitted(paths: list[str]) -> list[str]:
        """The uncommitted changes of a workspace, as text: equal before and after a turn means
        the agent changed nothing (setup leftovers are not the agent's changes)."""
        from aura_core.git.diff import diff_uncommitted

        return [diff_uncommitted(p).patch for p in paths]

    def _executable(self, name: str) -> str | None:
        from aura_core.executors import overrides

        return overrides.resolve(self.store, self.config, name)

    def _executor_env(self, name: str) -> dict[str, str]:
        cfg = self.config.executors.get(name)
        return dict(cfg.env) if cfg else {}

    def _last_coding_session(self, task_id: str) -> Session | None:
        for session in self.store.list_sessions(task_id=task_id):
            if session.stage in ("coding_initial", "coding_follow_up"):
                return session
        return None

    def _run_cleanup(self, driver: _Driver) -> ExecutionEvent:
        from aura_core.git.commit import commit_all
        from aura_core.git.errors import GitError
        from aura_core.git.repo import head

        if self._remote_target(driver) is not None:
            return self._run_cleanup_remote(driver)
        script = self.config.scripts.cleanup
        if script:
            try:
                result = self._script_stage(driver, ExecutionStage.cleanup, script)
            except SetupRequired as exc:
                return self._failed(f"cleanup could not start: {exc}")
            failed = self._outcome(result, "the cleanup script")
            if failed is not None:
                return failed
        if self.config.worktrees.auto_commit:
            task = self.store.get_task(driver.task_id)
            coding = self._last_coding_session(task.id)
            text = (coding.options.get("final_text") if coding else "") or ""
            message = f"{task.title}\n\n{text}".strip()
            execution = self.store.get_execution(driver.execution_id)
            try:
                for path in execution.workspace:
                    commit_all(path, message)
            except GitError as exc:
                return self._failed(f"could not commit the agent's changes: {exc}")
            if coding is not None:
                after = head(execution.workspace[0])
                self.store.update_session(
                    coding.id, options={**coding.options, "head_after": after}
                )
        return ExecutionEvent(kind=EventKind.cleanup_completed)

    def _run_cleanup_remote(self, driver: _Driver) -> ExecutionEvent:
        """On the worker: the cleanup script, then the auto-commit, in one command session."""
        script = self.config.scripts.cleanup
        commit = self.config.worktrees.auto_commit
        if not script and not commit:
            return ExecutionEvent(kind=EventKind.cleanup_completed)
        task = self.store.get_task(driver.task_id)
        coding = self._last_coding_session(task.id)
        message = None
        if commit:
            text = (coding.options.get("final_text") if coding else "") or ""
            message = f"{task.title}\n\n{text}".strip()
        request = RunRequest(
            session_id=uuid.uuid4().hex,
            prompt=f"cleanup: {script or 'commit the changes'}",
            cwd=self._stage_cwd(driver),
            options=RunOptions(base_command="sh", params=["-c", script or "true"]),
            env=dict(task.options.get("vars") or {}),
        )
        try:
            result = self._run_session(
                driver,
                CommandExecutor(),
                "custom",
                request,
                ExecutionStage.cleanup,
                commit_message=message,
            )
        except SetupRequired as exc:
            return self._failed(f"cleanup could not start: {exc}")
        failed = self._outcome(result, "the cleanup script" if script else "the auto-commit")
        if failed is not None:
            return failed
        after = getattr(result, "head_after", None)
        if coding is not None and after:
            self.store.update_session(coding.id, options={**coding.options, "head_after": after})
        return ExecutionEvent(kind=EventKind.cleanup_completed)

    def _run_review(self, driver: _Driver) -> ExecutionEvent:
        task = self.store.get_task(driver.task_id)
        if not task.review:
            return ExecutionEvent(kind=EventKind.review_completed)
        name = task.options.get("reviewer") or self.config.runtime.reviewer or task.executor
        try:
            executor = get_executor(name, config=self.config)
            prompt = render(
                self.templates["review"], self._variables(task, driver), template_name="review"
            )
        except (SetupRequired, ValueError) as exc:
            return self._failed(f"review could not start: {exc}")
        options = _options(task)
        self._supervise(options, task.id)
        request = RunRequest(
            session_id=uuid.uuid4().hex,
            prompt=prompt,
            cwd=self._stage_cwd(driver),
            model=task.model if name == task.executor else None,
            mode=RunMode.review,
            options=options,
            executable=self._executable(name),
            env={**self._stage_port_env(driver), **self._executor_env(name), **dict(options.vars)},
        )
        sink = _StageSink(self, task.id)
        try:
            result = self._run_session(driver, executor, name, request, ExecutionStage.review, sink)
        except SetupRequired as exc:
            return self._failed(f"review could not start: {exc}")
        failed = self._outcome(result, "the review")
        findings = sink.final_text()
        session = self.store.get_session(result.session_id)
        self.store.update_session(
            result.session_id,
            options={**session.options, "findings": findings, "verdict": parse_verdict(findings)},
        )
        return failed or ExecutionEvent(kind=EventKind.review_completed)

    # ---- git views and operations -----------------------------------------------------------
    def workspace(self, task_id: str) -> list[str]:
        for execution in reversed(self.store.list_executions(task_id)):
            if execution.workspace:
                return list(execution.workspace)
        return []

    def diff(self, task_id: str, turn: int | None = None) -> Any:
        """Cumulative diff against the base, or one agent turn's (1 = the first coding turn).
        For a task that ran on a worker: of its branch as fetched from there (fetched now when
        this repo lacks the commits the task's turns recorded)."""
        from aura_core.git.diff import diff_branch, diff_commits, diff_worktree

        task = self.store.get_task(task_id)
        paths = self.workspace(task_id)
        branch = self._remote_branch(task)
        if branch is not None:
            repo = task.repos[0]
            wanted = [h for s in self.turns(task_id) for h in self._turn_heads(s)]
            missing = not all(self._has_commit(repo, h) for h in wanted)
            last = self._last_head(task_id)
            stale = last is not None and self._local_tip(repo, branch) != last
            self._remote_copy(task, branch, refresh=missing or stale)
            paths = [repo]
        elif not paths:
            raise RuntimeError_(f"task '{task.title}' has no worktree yet: start it first")
        if turn is None:
            if branch is not None:
                return diff_branch(paths[0], branch, task.base_branch)
            return diff_worktree(paths[0], task.base_branch)
        turns = self.turns(task_id)
        if not 1 <= turn <= len(turns):
            raise RuntimeError_(
                f"task '{task.title}' has {len(turns)} turn(s); pick 1..{len(turns)}"
            )
        session = turns[turn - 1]
        before, after = session.options.get("head_before"), session.options.get("head_after")
        if not after:
            raise RuntimeError_(f"turn {turn} recorded no commit")
        return diff_commits(paths[0], before, after)

    def turns(self, task_id: str) -> list[Session]:
        return [
            s for s in self.sessions(task_id) if s.stage in ("coding_initial", "coding_follow_up")
        ]

    def merge(self, task_id: str, rebase: bool = False) -> Any:
        from aura_core.git.merge import rebase_onto_base, squash_merge, squash_merge_branch

        task = self.store.get_task(task_id)
        branch = self._remote_branch(task)
        paths = self.workspace(task_id)
        if branch is None and not paths:
            raise RuntimeError_(f"task '{task.title}' has no worktree to merge")
        if self.is_running(task_id):
            raise RuntimeError_(f"task '{task.title}' is running; wait or cancel it first")
        self.stop_dev_server(task_id)
        results: list[Any] = []
        if branch is not None:
            if rebase:
                raise RuntimeError_(
                    f"task '{task.title}' ran on worker {task.worker_id}: its branch can only "
                    "be squash-merged here (a rebase here would part it from the worker's)"
                )
            fetched = self._remote_copy(task, branch, refresh=True, warn=True)
            if fetched is not None and fetched.uncommitted:
                shown = ", ".join(fetched.uncommitted[:3])
                more = ", …" if len(fetched.uncommitted) > 3 else ""
                raise RuntimeError_(
                    f"task '{task.title}' has uncommitted changes in its worktree on worker "
                    f"{task.worker_id} ({shown}{more}): ask for a follow-up to commit them "
                    "before merging"
                )
            repo = task.repos[0]
            results.append(
                squash_merge_branch(repo, branch, base=task.base_branch, message=task.title)
            )
            self._changed(task_id)
            return results
        for path in paths:
            if rebase:
                results.append(rebase_onto_base(path, base=task.base_branch))
            else:
                results.append(squash_merge(path, base=task.base_branch, message=task.title))
        self._changed(task_id)
        return results

    # ---- remote tasks' branches -------------------------------------------------------------
    def _remote_branch(self, task: Task) -> str | None:
        """The branch of a task whose latest execution ran on a worker; None when it ran here."""
        if not task.worker_id or not task.repos:
            return None
        for execution in reversed(self.store.list_executions(task.id)):
            if execution.workspace:
                return None
            if execution.branch:
                return execution.branch
        return None

    @staticmethod
    def _turn_heads(session: Session) -> list[str]:
        return [h for h in (session.options.get(k) for k in ("head_before", "head_after")) if h]

    def _last_head(self, task_id: str) -> str | None:
        """The commit the task's branch had on its worker after its last coding turn."""
        turns = self.turns(task_id)
        return turns[-1].options.get("head_after") if turns else None

    @staticmethod
    def _has_commit(repo_path: str, commit: str) -> bool:
        from aura_core.git.errors import GitError
        from aura_core.git.repo import open_repo

        try:
            return open_repo(repo_path).get(commit) is not None
        except (GitError, ValueError):
            return False

    @staticmethod
    def _local_tip(repo_path: str, branch: str) -> str | None:
        from aura_core.git.errors import GitError
        from aura_core.git.repo import open_repo

        try:
            ref = open_repo(repo_path).lookup_branch(branch)
        except (GitError, ValueError):
            return None
        return None if ref is None else str(ref.target)

    def _remote_copy(
        self, task: Task, branch: str, *, refresh: bool, warn: bool = False
    ) -> FetchedBranch | None:
        """Make sure the local repo has the remote task's branch: fetched from its worker when
        `refresh` or when there is no copy here yet. None when the copy here is used as it is
        (no refresh needed, or the worker cannot be asked: then, with `warn`, a notice says
        so)."""
        from aura_core.git.errors import GitError
        from aura_core.worker.remote import BranchUnavailable

        here = self._local_tip(task.repos[0], branch) is not None
        if here and not refresh:
            return None
        try:
            return self._fetch_remote(task, branch)
        except BranchUnavailable as exc:
            if not here:
                raise RuntimeError_(
                    f"task '{task.title}' ran on worker {task.worker_id} and its branch was "
                    f"never fetched here: {exc}"
                ) from None
            if warn:
                self._notify(
                    task.id, f"{exc}: using {branch} as fetched after its last stage", "warning"
                )
            return None
        except GitError as exc:
            raise RuntimeError_(
                f"could not bring {branch} from worker {task.worker_id}: {exc}"
            ) from None

    def _fetch_remote(self, task: Task, branch: str) -> FetchedBranch:
        """BranchUnavailable (no hub, worker away or refusing) or GitError (not taken in)."""
        from aura_core.worker.remote import BranchUnavailable, fetch_task_branch

        hub = self.hub
        assert task.worker_id is not None
        if hub is None or not hub.alive:
            raise BranchUnavailable(f"no hub is running here to ask worker {task.worker_id}")
        with self._fetch_lock:
            return fetch_task_branch(hub, task.worker_id, task.repos[0], branch, task.base_branch)

    @staticmethod
    def _drop_remote_copy(task: Task, branch: str) -> None:
        """A removed remote task: forget its hidden ref, and its local branch once merged (its
        work stays on the worker either way)."""
        from aura_core.git.bundle import drop_remote_ref
        from aura_core.git.errors import GitError
        from aura_core.git.repo import main_repo, open_repo
        from aura_core.git.worktree import _delete_branch

        try:
            drop_remote_ref(task.repos[0], branch)
            _delete_branch(main_repo(open_repo(task.repos[0])), branch, task.base_branch, False)
        except GitError:
            pass

    def _fetch_after_stage(self, task_id: str, target: RemoteTarget, result: RunResult) -> None:
        """Bring the worker's commits here once a remote stage completed, so the task can be
        reviewed and merged even when the worker is gone later. Failing only warns."""
        from aura_core.git.errors import GitError
        from aura_core.worker.remote import BranchUnavailable

        head = getattr(result, "head_after", None)
        if result.status != "completed" or not head:
            return
        task = self.store.get_task(task_id)
        if not task.repos or self._local_tip(task.repos[0], target.branch) == head:
            return
        try:
            self._fetch_remote(task, target.branch)
        except (BranchUnavailable, GitError) as exc:
            self._notify(task_id, f"could not fetch {target.branch}: {exc}", "warning")

    def remove(self, task_id: str, force: bool = False) -> list[Any]:
        """Remove the task's worktrees (refused if they hold unmerged work) and the task."""
        from aura_core.workspace import remove_workspace

        task = self.store.get_task(task_id)
        if self.is_running(task_id):
            raise RuntimeError_(f"task '{task.title}' is running; cancel it first")
        self.stop_dev_server(task_id)
        paths = [p for p in self.workspace(task_id) if Path(p).exists()]
        removed = (
            remove_workspace(paths, base=task.base_branch, force=force, delete_branches=True)
            if paths
            else []
        )
        branch = self._remote_branch(task)
        if branch is not None:
            self._drop_remote_copy(task, branch)
        self.store.delete_task(task_id)
        self._changed(task_id)
        self._dependency_gone(task, "removed")
        return removed

    def orphans(self, *, clean: bool = False, force: bool = False) -> list[Any]:
        """Worktrees under our root that no task owns: the preview, or (clean) what was removed.
        Ones holding uncommitted or unmerged work are skipped unless force."""
        from aura_core.git.worktree import clean_orphans, plan_orphan_cleanup

        tasks = self.store.list_tasks()
        active = [p for t in tasks for e in self.store.list_executions(t.id) for p in e.workspace]
        repos = sorted({r for t in tasks for r in t.repos if Path(r).exists()})
        act = clean_orphans if clean else plan_orphan_cleanup
        return act(self.worktrees_root, active, repos, force=force)

    # ---- supervised mode --------------------------------------------------------------------
    def _supervise(self, options: RunOptions, task_id: str) -> None:
        """With --auto-approve false and someone to ask (the board), agents' permission
        requests become `permission` events, answered by answer_permission()."""
        if options.auto_approve is False and self.answers_permissions and not options.approver:
            options.approver = lambda request: self._ask(task_id, request)

    def _ask(self, task_id: str, request: Any) -> Any:
        from aura_core.executors.base import ApprovalDecision

        request_id = uuid.uuid4().hex
        answered = threading.Event()
        slot: list[Any] = []
        with self._lock:
            self._permissions[request_id] = (answered, slot)
            driver = self._drivers.get(task_id)
        session_id = driver.runner.session_id if driver and driver.runner else None
        self._emit(
            RuntimeEvent(
                "permission",
                task_id,
                session_id,
                request_id=request_id,
                tool=getattr(request, "tool_name", "tool"),
                detail=getattr(request, "title", ""),
            )
        )
        deadline = time.monotonic() + PERMISSION_TIMEOUT_S
        while not answered.wait(0.2):
            cancelled = driver is not None and driver.cancelled.is_set()
            if cancelled or self._closing or time.monotonic() > deadline:
                with self._lock:
                    self._permissions.pop(request_id, None)
                why = "the task was stopped" if cancelled or self._closing else "no answer"
                return ApprovalDecision(approve=False, reason=why)
        approve, reason, always = slot[0]
        return ApprovalDecision(approve=approve, reason=reason or None, always=always)

    def answer_permission(
        self, request_id: str, approve: bool, reason: str = "", always: bool = False
    ) -> None:
        """The person's answer; `always` approves this kind of call for the rest of the
        agent's session (where the agent's protocol can say so)."""
        with self._lock:
            waiting = self._permissions.pop(request_id, None)
        if waiting is None:
            raise RuntimeError_("that permission request is no longer waiting")
        answered, slot = waiting
        slot.append((approve, reason, approve and always))
        answered.set()

    # ---- crash recovery ---------------------------------------------------------------------
    def recover(self) -> list[str]:
        """Executions left live by a dead aura: block their tasks (resumable), keep worktrees."""
        from aura_core.recovery import recover_sessions

        recover_sessions(self.store)
        recovered = []
        for execution in self.store.list_executions():
            if execution.status not in LIVE:
                continue
            if procinfo.is_alive(execution.owner_pid, execution.owner_start):
                continue
            if execution.owner_pid == os.getpid() and execution.task_id in self._drivers:
                continue
            self._clear_locks(execution)
            if execution.status == ExecutionStatus.queued:
                self._apply(execution.id, ExecutionEvent(kind=EventKind.cancel_requested))
                self._place(
                    execution.task_id, self.board.column_for_state(CanonicalTaskState.ready).id
                )
            else:
                self._apply(
                    execution.id,
                    ExecutionEvent(
                        kind=EventKind.stage_failed,
                        message=(
                            "interrupted by a crash; resume with "
                            f"`aura task start {execution.task_id[:8]}`"
                        ),
                    ),
                )
            recovered.append(execution.id)
        return recovered

    def _clear_locks(self, execution: Any) -> None:
        """A dead aura may have died mid-commit: its git locks would refuse the resumed run."""
        from aura_core.git.repair import clear_stale_locks

        for path in execution.workspace or []:
            if Path(path).exists():
                clear_stale_locks(path, execution.branch)
