"""The UI's one facade over aura_core: tasks, moves, runs, logs, diffs, settings, events.

Screens call this service; widgets never touch the store or the runtime. It wraps the engine's
`Runtime` when one is given (runs, approvals, follow-ups, diffs) and falls back to the store and
the headless `Board` alone otherwise (moves are validated and recorded, nothing runs). Runtime
events arrive on worker threads; they are normalised into `UiEvent`s and handed to the one
subscriber (the app), which batches them onto the UI thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aura_core.board import (
    AFTER,
    START_WHEN_READY,
    Board,
    MoveDecision,
    MoveIntent,
    unfinished_after,
)
from aura_core.contracts import CanonicalTaskState, Session, SessionStatus, Task

CS = CanonicalTaskState

# card statuses, in the words the board shows
IDLE = "idle"
QUEUED = "queued"
RUNNING = "running"
WAITING = "waiting"  # waiting for a permission answer
EXECUTORS_TTL_S = 60.0  # how long the new-task form trusts the last agent probe
REVIEW = "review"  # needs the person's review
FAILED = "failed"
DONE = "done"
CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class DiffFile:
    path: str
    additions: int
    deletions: int
    patch: str
    status: str = "modified"


@dataclass(frozen=True, slots=True)
class DiffData:
    files: tuple[DiffFile, ...] = ()

    @property
    def additions(self) -> int:
        return sum(f.additions for f in self.files)

    @property
    def deletions(self) -> int:
        return sum(f.deletions for f in self.files)


@dataclass(frozen=True, slots=True)
class CardInfo:
    """What one card shows: the task plus its live status."""

    task: Task
    status: str = IDLE
    reason: str | None = None  # why it failed, or what it waits for
    started_at: float | None = None
    additions: int | None = None
    deletions: int | None = None
    dev_port: int | None = None  # its dev server runs (started here) on this port
    after: tuple[str, ...] = ()  # titles of the unfinished tasks it runs after
    starts_after: bool = False  # a start waits for them: it starts once they are done

    @property
    def id(self) -> str:
        return self.task.id

    @property
    def worker(self) -> str | None:
        return self.task.worker_id


@dataclass(slots=True)
class PermissionRequest:
    """An agent in supervised mode asks before acting."""

    request_id: str
    task_id: str | None
    session_id: str | None
    tool: str
    detail: str = ""


@dataclass(slots=True)
class UiEvent:
    """One runtime event in the UI's terms (kinds as the runtime names them)."""

    kind: str  # task_changed, session_started, log, entries, notify, permission
    task_id: str | None = None
    session_id: str | None = None
    rows: list[Any] = field(default_factory=list)
    patches: list[Any] = field(default_factory=list)
    level: str = "information"
    message: str = ""
    permission: PermissionRequest | None = None


@dataclass(frozen=True, slots=True)
class ExecutorChoice:
    name: str
    ready: bool
    note: str = ""


NewTask = dict[str, Any]


def _field(event: Any, name: str, default: Any = None) -> Any:
    """A runtime event field, whether the event keeps it as an attribute or in a data dict."""
    if isinstance(event, dict):
        return event.get(name, default)
    data = getattr(event, "data", None)
    if isinstance(data, dict) and name in data:
        return data[name]
    payload = getattr(event, "payload", None)
    if isinstance(payload, dict) and name in payload:
        return payload[name]
    return getattr(event, name, default)


def to_ui_event(event: Any) -> UiEvent:
    kind = str(_field(event, "kind", ""))
    kind = getattr(_field(event, "kind"), "value", kind)
    ui = UiEvent(
        kind=kind,
        task_id=_field(event, "task_id"),
        session_id=_field(event, "session_id"),
        rows=list(_field(event, "rows", None) or ()),
        patches=list(_field(event, "patches", None) or ()),
        level=str(_field(event, "level", "information") or "information"),
        message=str(_field(event, "message", "") or ""),
    )
    if kind == "permission":
        ui.permission = PermissionRequest(
            request_id=str(_field(event, "request_id", "") or ""),
            task_id=ui.task_id,
            session_id=ui.session_id,
            tool=str(_field(event, "tool", "") or "tool"),
            detail=str(_field(event, "detail", "") or ""),
        )
    return ui


def _diff_data(result: Any) -> DiffData:
    if result is None:
        return DiffData()
    if isinstance(result, DiffData):
        return result
    files = []
    for f in getattr(result, "files", ()) or ():
        files.append(
            DiffFile(
                path=str(_field(f, "path", "")),
                additions=int(_field(f, "additions", None) or _field(f, "insertions", 0) or 0),
                deletions=int(_field(f, "deletions", 0) or 0),
                patch=str(_field(f, "patch", "") or ""),
                status=str(_field(f, "status", "modified") or "modified"),
            )
        )
    return DiffData(tuple(files))


class AuraService:
    """The app's facade. Thread-safe where the runtime is; UI-thread use otherwise."""

    def __init__(
        self,
        store: Any,
        runtime: Any = None,
        *,
        board: Board | None = None,
        clock: Callable[[], float] = time.time,
        executors: Callable[[], list[ExecutorChoice]] | None = None,
        repo: str | None = None,
        repo_problem: str | None = None,
    ) -> None:
        self.store = store
        self.runtime = runtime
        self.clock = clock
        self.repo = repo
        # why tasks cannot be created here (e.g. "not a git repository"); the board says so
        self.repo_problem = repo_problem
        self._board = board
        self._executors = executors
        self._listener: Callable[[UiEvent], None] | None = None
        self._lock = threading.Lock()
        self._live: dict[str, tuple[str, float | None]] = {}  # task id -> (status, started)
        self._reasons: dict[str, str] = {}
        self._diff_stats: dict[str, tuple[int, int]] = {}
        self._stats_tried: set[str] = set()  # computed (or failed) since the task last changed
        self._probe_lock = threading.Lock()
        self._choices: tuple[float, list[ExecutorChoice]] | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._tasks_cache: list[Task] | None = None
        if runtime is not None and hasattr(runtime, "subscribe"):
            result = runtime.subscribe(self._on_runtime_event)
            runtime.answers_permissions = True  # the board shows them as a modal
            if callable(result):
                self._unsubscribe = result

    # --- board and tasks ------------------------------------------------------------------------
    @property
    def board(self) -> Board:
        if self._board is None:
            runtime_board = getattr(self.runtime, "board", None)
            self._board = runtime_board if isinstance(runtime_board, Board) else Board.default()
        return self._board

    def tasks(self) -> list[Task]:
        """All tasks, cached until a task_changed event (a board reload reads them once)."""
        cached = self._tasks_cache
        if cached is not None:
            return list(cached)
        tasks = list(self.runtime.tasks()) if self.runtime is not None else self.store.list_tasks()
        self._tasks_cache = tasks
        return list(tasks)

    def invalidate(self) -> None:
        self._tasks_cache = None

    def task(self, task_id: str) -> Task:
        task: Task = self.store.get_task(task_id)
        return task

    def cards(self, tasks: Iterable[Task] | None = None) -> list[CardInfo]:
        running = self.running_task_ids()
        dev = self.dev_servers()
        listed = self.tasks() if tasks is None else list(tasks)
        by_id = {t.id: t for t in listed}
        if any(t.options.get(AFTER) for t in listed) and tasks is not None:
            by_id = {t.id: t for t in self.tasks()} | by_id
        return [self.card(t, running, dev, by_id) for t in listed]

    def _unfinished_after(self, task: Task, by_id: dict[str, Task] | None) -> list[Task]:
        if not task.options.get(AFTER) or task.state not in (CS.backlog, CS.ready):
            return []

        def lookup(task_id: str) -> Task | None:
            if by_id is not None:
                return by_id.get(task_id)
            try:
                found: Task = self.store.get_task(task_id)
            except Exception:  # removed
                return None
            return found

        return unfinished_after(task, lookup)

    def card(
        self,
        task: Task,
        running: set[str] | None = None,
        dev: dict[str, int] | None = None,
        by_id: dict[str, Task] | None = None,
    ) -> CardInfo:
        running = self.running_task_ids() if running is None else running
        dev = self.dev_servers() if dev is None else dev
        with self._lock:
            live = self._live.get(task.id)
            reason = self._reasons.get(task.id)
            stats = self._diff_stats.get(task.id)
        status = IDLE
        started: float | None = None
        state = task.state
        if state is CS.running or task.id in running:
            status = RUNNING
            if live is not None:
                status = live[0] if live[0] in (WAITING, RUNNING, QUEUED) else RUNNING
                started = live[1]
        elif state is CS.review:
            status = REVIEW
        elif state is CS.blocked:
            status = FAILED
            reason = task.blocked_reason or reason
        elif state is CS.done:
            status = DONE
        elif state is CS.cancelled:
            status = CANCELLED
        if status is not FAILED and state is not CS.running:
            reason = None
        if status == RUNNING and started is None:
            started = self._session_start(task.id)
        adds, dels = stats if stats else (None, None)
        after = tuple(t.title for t in self._unfinished_after(task, by_id))
        waits = bool(after) and bool(task.options.get(START_WHEN_READY))
        return CardInfo(task, status, reason, started, adds, dels, dev.get(task.id), after, waits)

    def _session_start(self, task_id: str) -> float | None:
        try:
            sessions = self.store.list_sessions(limit=1, task_id=task_id)
        except Exception:
            return None
        return sessions[0].started_at if sessions else None

    def running_task_ids(self) -> set[str]:
        if self.runtime is not None and hasattr(self.runtime, "running_task_ids"):
            return set(self.runtime.running_task_ids())
        return set()

    def dev_servers(self) -> dict[str, int]:
        """Task id -> port of the dev servers the board runs."""
        if self.runtime is not None and hasattr(self.runtime, "dev_servers"):
            return dict(self.runtime.dev_servers())
        return {}

    def toggle_dev_server(self, task_id: str) -> tuple[bool, str]:
        """Start the task's dev server, or stop it when it runs (here or in another aura):
        (started, its URL) or (False, "") once stopped. Blocks until the process started or
        stopped: call it off the UI thread."""
        if self.runtime is None or not hasattr(self.runtime, "start_dev_server"):
            raise RuntimeError("dev servers need the engine runtime, which is not available here")
        if self.runtime.dev_server(task_id) is not None:
            self.runtime.stop_dev_server(task_id)
            return False, ""
        dev = self.runtime.start_dev_server(task_id)
        return True, str(dev.url)

    def counts(self, tasks: Iterable[Task] | None = None) -> dict[str, int]:
        """Tasks per column: one grouped query when the store has it (no task is loaded)."""
        if tasks is None:
            task_counts = getattr(self.store, "task_counts", None)
            if task_counts is not None:
                return dict(task_counts())
        counts: dict[str, int] = {}
        for t in self.tasks() if tasks is None else tasks:
            counts[t.column_id] = counts.get(t.column_id, 0) + 1
        return counts

    def add_task(
        self,
        title: str,
        prompt: str,
        executor: str,
        *,
        model: str | None = None,
        options: dict[str, Any] | None = None,
        repos: list[str] | None = None,
        base_branch: str | None = None,
        review: bool = False,
        column_id: str | None = None,
        after: list[str] | None = None,
    ) -> Task:
        column = column_id or self.board.column_for_state(CS.backlog).id
        if self.runtime is not None:
            extra: dict[str, Any] = {"after": after} if after else {}
            task: Task = self.runtime.add_task(
                title,
                prompt,
                executor,
                model=model,
                options=options,
                repos=repos,
                base_branch=base_branch,
                review=review,
                column_id=column,
                **extra,
            )
            return task
        if after:
            raise RuntimeError("dependencies need the engine runtime, which is not available here")
        import uuid

        now = self.clock()
        col = self.board.column(column)
        positions = [t.position for t in self.store.list_tasks()]
        task = Task(
            id=uuid.uuid4().hex,
            title=title,
            prompt=prompt,
            executor=executor,
            model=model,
            options=options or {},
            repos=repos or [],
            base_branch=base_branch,
            column_id=column,
            state=col.canonical_state,
            review=review,
            position=(max(positions) + 1.0) if positions else 0.0,
            created_at=now,
            updated_at=now,
        )
        self.store.create_task(task)
        self._emit(UiEvent("task_changed", task_id=task.id))
        return task

    def check_move(self, task_id: str, column_id: str) -> MoveDecision:
        """What `move` would answer, without doing it (used while dragging)."""
        if self.runtime is not None and hasattr(self.runtime, "check_move"):
            checked: MoveDecision = self.runtime.check_move(task_id, column_id)
            return checked
        task = self.task(task_id)
        return self.board.move(
            task,
            column_id,
            tasks_in_columns=self.counts(),
            git_clean=True,
            has_running_process=task_id in self.running_task_ids(),
        )

    def move(self, task_id: str, column_id: str, feedback: str | None = None) -> MoveDecision:
        """Every move of a card goes through here, hence through the headless board."""
        if self.runtime is not None:
            decision: MoveDecision = self.runtime.move(task_id, column_id, feedback=feedback)
            self._tasks_cache = None
            return decision
        task = self.task(task_id)
        decision = self.board.move(
            task,
            column_id,
            tasks_in_columns=self.counts(),
            git_clean=True,
            has_running_process=False,
        )
        if decision.ok and decision.from_column_id != column_id:
            col = self.board.column(column_id)
            fields: dict[str, Any] = {
                "column_id": column_id,
                "state": col.canonical_state,
                "updated_at": self.clock(),
            }
            if decision.intent is MoveIntent.reopen:
                fields["blocked_reason"] = None
            self.store.update_task(task_id, **fields)
            self._emit(UiEvent("task_changed", task_id=task_id))
        return decision

    def start(self, task_id: str) -> None:
        if self.runtime is None:
            raise RuntimeError("runs need the engine runtime, which is not available here")
        self.runtime.start(task_id)

    def follow_up(self, task_id: str, feedback: str) -> None:
        if self.runtime is None:
            raise RuntimeError("follow-ups need the engine runtime, which is not available here")
        self.runtime.follow_up(task_id, feedback)

    def approve(self, task_id: str, merge: bool = False) -> None:
        if self.runtime is None:
            decision = self.move(task_id, self.board.column_for_state(CS.done).id)
            if not decision.ok:
                raise RuntimeError(decision.reason)
            return
        self.runtime.approve(task_id, merge=merge)

    def cancel(self, task_id: str) -> None:
        if self.runtime is None:
            self.move(task_id, self.board.column_for_state(CS.cancelled).id)
            return
        self.runtime.cancel(task_id)

    def delete(self, task_id: str) -> None:
        self._tasks_cache = None
        self.store.delete_task(task_id)
        self._emit(UiEvent("task_changed", task_id=task_id))

    def answer_permission(
        self, request_id: str, approve: bool, reason: str = "", always: bool = False
    ) -> None:
        answer = getattr(self.runtime, "answer_permission", None)
        if answer is None:
            raise RuntimeError("this runtime cannot answer permission requests")
        if always:
            answer(request_id, approve, reason, always=True)
        else:
            answer(request_id, approve, reason)

    def shutdown(self, stop_running: bool) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
        if self.runtime is not None:
            self.runtime.shutdown(stop_running=stop_running)

    # --- sessions, logs, diffs ------------------------------------------------------------------
    def sessions(self, task_id: str) -> list[Session]:
        if self.runtime is not None and hasattr(self.runtime, "sessions"):
            return list(self.runtime.sessions(task_id))
        return list(self.store.list_sessions(task_id=task_id))

    def session(self, session_id: str) -> Session:
        session: Session = self.store.get_session(session_id)
        return session

    def log_count(self, session_id: str) -> int:
        return int(self.store.last_seq(session_id)) + 1

    def log_page(self, session_id: str, start: int, limit: int) -> list[tuple[int, str, str]]:
        """(seq, stream, text) rows from `start`: what the virtualised log view pages in."""
        return log_page(self.store, session_id, start, limit)

    def entries(self, session: Session) -> list[Any] | None:
        """The session's normalised entries, re-derived from its raw lines (None: plain output).

        Blocking (it reads the whole log): call it from a worker thread.
        """
        normalizer = self.normalizer(session.executor)
        if normalizer is None:
            return None
        for _seq, stream, text in self._iter_rows(session.id):
            normalizer.feed(stream, text)
        normalizer.finish()
        return list(getattr(normalizer, "entries", []))

    def _iter_rows(self, session_id: str) -> Iterable[tuple[int, str, str]]:
        start = 0
        while True:
            page = self.log_page(session_id, start, 5000)
            yield from page
            if len(page) < 5000:
                return
            start = page[-1][0] + 1

    def normalizer(self, executor: str) -> Any:
        from aura_core.executors.base import SetupRequired
        from aura_core.executors.registry import get_executor

        try:
            return get_executor(executor).normalizer()
        except SetupRequired:
            return None

    def turns(self, task_id: str) -> int:
        """How many agent turns (coding sessions) the task has had: per-turn diffs are 1..n."""
        turns = getattr(self.runtime, "turns", None)
        if turns is not None:
            return len(turns(task_id))
        return sum(
            1
            for s in self.sessions(task_id)
            if s.stage in (None, "coding_initial", "coding_follow_up")
        )

    def diff(self, task_id: str, turn: int | None = None) -> DiffData:
        if self.runtime is None or not hasattr(self.runtime, "diff"):
            return DiffData()
        data = _diff_data(self.runtime.diff(task_id, turn=turn))
        with self._lock:
            if turn is None:
                self._diff_stats[task_id] = (data.additions, data.deletions)
        return data

    def stats_wanted(self, cards: Iterable[CardInfo]) -> list[str]:
        """Cards waiting for review whose +/- counts are not known yet (computed off the UI
        thread by the board, once per change of the task)."""
        if self.runtime is None or not hasattr(self.runtime, "diff"):
            return []
        with self._lock:
            return [
                c.id
                for c in cards
                if c.status == REVIEW and c.additions is None and c.id not in self._stats_tried
            ]

    def compute_diff_stats(self, task_id: str) -> bool:
        """True when the counts are now known. Slow (reads the worktree): not on the UI thread."""
        with self._lock:
            if task_id in self._stats_tried:
                return False
            self._stats_tried.add(task_id)
        try:
            self.diff(task_id)
        except Exception:  # no worktree (yet, or any more): the card just shows no counts
            return False
        return True

    def set_diff_stats(self, task_id: str, additions: int, deletions: int) -> None:
        with self._lock:
            self._diff_stats[task_id] = (additions, deletions)

    def executors(self, *, fresh: bool = False) -> list[ExecutorChoice]:
        """Every agent and whether it can run here (slow: run it off the UI thread). Kept for a
        minute, so the new-task form opens with the list the board fetched when it started."""
        if self._executors is not None:
            return self._executors()
        with self._probe_lock:  # one probe at a time; a second caller gets its result
            now = time.monotonic()
            if self._choices and not fresh and now - self._choices[0] < EXECUTORS_TTL_S:
                return list(self._choices[1])
            choices = self._probe_executors()
            self._choices = (time.monotonic(), choices)
            return list(choices)

    def _probe_executors(self) -> list[ExecutorChoice]:
        from aura_tui.commands.doctor import collect

        out = []
        for avail in collect(config=getattr(self.runtime, "config", None)):
            ready = bool(avail.found and not avail.missing)
            note = "; ".join(avail.missing) or (avail.version or avail.note or "")
            out.append(ExecutorChoice(avail.name, ready, note))
        return out

    # --- settings -------------------------------------------------------------------------------
    def get_setting(self, key: str, default: str | None = None) -> str | None:
        try:
            value = self.store.get_setting(key, default)
        except Exception:
            return default
        return value if value is None else str(value)

    def set_setting(self, key: str, value: str) -> None:
        try:
            self.store.set_setting(key, value)
        except Exception:
            pass

    # --- events ---------------------------------------------------------------------------------
    def subscribe(self, listener: Callable[[UiEvent], None] | None) -> None:
        """One listener (the app); called from any thread."""
        self._listener = listener

    def _emit(self, event: UiEvent) -> None:
        if event.kind in ("task_changed", "session_started"):
            self._tasks_cache = None
        listener = self._listener
        if listener is not None:
            listener(event)

    def _on_runtime_event(self, event: Any) -> None:
        ui = to_ui_event(event)
        if ui.kind in ("task_changed", "session_started"):
            self._tasks_cache = None
        self.track(ui)
        self._emit(ui)

    def track(self, ui: UiEvent) -> None:
        """Keep the live status per task that cards show (running since, waiting, failed)."""
        task_id = ui.task_id
        with self._lock:
            if ui.kind == "session_started" and task_id:
                self._live[task_id] = (RUNNING, self.clock())
                self._reasons.pop(task_id, None)
            elif ui.kind == "permission" and task_id:
                started = self._live.get(task_id, (RUNNING, None))[1]
                self._live[task_id] = (WAITING, started)
            elif ui.kind == "entries" and task_id:
                waiting = _pending_approval(ui.patches)
                if waiting is not None:
                    started = self._live.get(task_id, (RUNNING, None))[1]
                    self._live[task_id] = (WAITING if waiting else RUNNING, started)
            elif ui.kind == "notify" and task_id and ui.level == "error":
                self._reasons[task_id] = ui.message
            elif ui.kind == "task_changed" and task_id:
                self._diff_stats.pop(task_id, None)
                self._stats_tried.discard(task_id)


def log_page(store: Any, session_id: str, start: int, limit: int) -> list[tuple[int, str, str]]:
    """(seq, stream, text) rows of a session from `start`, at most `limit`."""
    rows_fn = getattr(store, "iter_log_rows", None)
    if rows_fn is not None:
        out = []
        for seq, stream, _ts, text in rows_fn(session_id, start, batch=limit):
            out.append((seq, stream, text))
            if len(out) >= limit:
                break
        return out
    return [(r.seq, r.stream.value, r.text) for r in store.read_log(session_id, start, limit)]


def _pending_approval(patches: list[Any]) -> bool | None:
    """Whether the last tool call in these patches awaits approval (None: no tool call)."""
    from aura_core.executors.entries import PENDING_APPROVAL, ToolUse

    last: bool | None = None
    for patch in patches:
        entry = getattr(patch, "entry", None)
        if isinstance(entry, ToolUse):
            last = entry.status == PENDING_APPROVAL
    return last


def session_label(session: Session, clock: Callable[[], float] = time.time) -> str:
    """One line for the session history: stage, status, executor, duration."""
    status = session.status.value if isinstance(session.status, SessionStatus) else session.status
    stage = session.stage or "run"
    duration = session.duration
    if duration is None and session.started_at is not None and not session.status.finished:
        duration = max(0.0, clock() - session.started_at)
    return (
        f"{session.id[:8]}  {stage:<16} {status:<11} {session.executor:<8} {fmt_elapsed(duration)}"
    )


def fmt_elapsed(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
