"""In-memory store: the same contract as SqliteStore, for tests and throwaway boards."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from aura_core.contracts import (
    EventRecord,
    Execution,
    ExecutionEvent,
    LogLine,
    LogStream,
    Session,
    SessionStatus,
    Task,
)
from aura_core.store.base import LogRow
from aura_core.store.errors import Ambiguous, NotFound


def _find(items: dict[str, Any], prefix: str, noun: str, hint: str) -> Any:
    prefix = prefix.strip().lower()
    matches = [v for k, v in items.items() if prefix and k.startswith(prefix)]
    if not matches:
        raise NotFound(f"no {noun} matches '{prefix}': {hint}")
    if len(matches) > 1:
        raise Ambiguous(f"'{prefix}' matches several {noun}s: give more characters of the id")
    return matches[0]


class MemoryStore:
    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._sessions: dict[str, Session] = {}
        self._logs: dict[str, dict[int, LogLine]] = {}
        self._tasks: dict[str, Task] = {}
        self._executions: dict[str, Execution] = {}
        self._events: dict[str, list[EventRecord]] = {}
        self._settings: dict[str, str] = {}

    @contextmanager
    def transaction(self) -> Iterator[None]:
        # Snapshot-and-restore gives the same all-or-nothing behaviour as SQLite's transactions.
        with self._lock:
            saved = (
                dict(self._sessions),
                {k: dict(v) for k, v in self._logs.items()},
                dict(self._tasks),
                dict(self._executions),
                {k: list(v) for k, v in self._events.items()},
                dict(self._settings),
            )
            try:
                yield
            except BaseException:
                (
                    self._sessions,
                    self._logs,
                    self._tasks,
                    self._executions,
                    self._events,
                    self._settings,
                ) = saved
                raise

    def close(self) -> None:
        pass

    @staticmethod
    def _updated(model: Any, fields: dict[str, Any]) -> Any:
        unknown = set(fields) - set(type(model).model_fields)
        if unknown:
            raise ValueError(f"unknown fields: {', '.join(sorted(unknown))}")
        return type(model).model_validate({**model.model_dump(), **fields})

    # sessions
    def create_session(self, session: Session) -> None:
        with self._lock:
            if session.id in self._sessions:
                raise ValueError(f"session {session.id} exists")
            self._sessions[session.id] = session.model_copy(deep=True)

    def update_session(self, session_id: str, **fields: Any) -> Session:
        with self._lock:
            session = self.get_session(session_id)
            self._sessions[session_id] = self._updated(session, fields)
            return self._sessions[session_id]

    def get_session(self, session_id: str) -> Session:
        try:
            return self._sessions[session_id]
        except KeyError:
            raise NotFound(f"no session with id {session_id}") from None

    def find_session(self, id_or_prefix: str) -> Session:
        hint = "list them with `aura session list`"
        return _find(self._sessions, id_or_prefix, "session", hint)

    def list_sessions(self, limit: int | None = None, task_id: str | None = None) -> list[Session]:
        with self._lock:
            rows = [s for s in self._sessions.values() if task_id is None or s.task_id == task_id]
        rows.sort(key=lambda s: (s.created_at, s.id), reverse=True)
        return rows[:limit] if limit else rows

    def latest_session(self) -> Session | None:
        rows = self.list_sessions(limit=1)
        return rows[0] if rows else None

    def running_sessions(self) -> list[Session]:
        return [s for s in self.list_sessions() if s.status == SessionStatus.running]

    # logs
    def append_log(self, rows: Sequence[LogRow]) -> None:
        with self.transaction():
            for session_id, seq, stream, ts, text, raw in rows:
                lines = self._logs.setdefault(session_id, {})
                if seq in lines:
                    raise ValueError(f"log line {session_id}:{seq} exists")
                lines[seq] = LogLine(
                    session_id=session_id,
                    seq=seq,
                    stream=LogStream(stream),
                    ts=ts,
                    text=text,
                    raw=raw,
                )

    def read_log(
        self, session_id: str, start_seq: int = 0, limit: int | None = None
    ) -> list[LogLine]:
        lines = self._logs.get(session_id, {})
        out = [lines[k] for k in sorted(lines) if k >= start_seq]
        return out[:limit] if limit is not None else out

    def iter_log(self, session_id: str, start_seq: int = 0) -> Iterator[LogLine]:
        yield from self.read_log(session_id, start_seq)

    def count_log(self, session_id: str) -> int:
        return len(self._logs.get(session_id, {}))

    def last_seq(self, session_id: str) -> int:
        lines = self._logs.get(session_id)
        return max(lines) if lines else -1

    # tasks
    def create_task(self, task: Task) -> None:
        with self._lock:
            if task.id in self._tasks:
                raise ValueError(f"task {task.id} exists")
            self._tasks[task.id] = task.model_copy(deep=True)

    def update_task(self, task_id: str, **fields: Any) -> Task:
        with self._lock:
            self._tasks[task_id] = self._updated(self.get_task(task_id), fields)
            return self._tasks[task_id]

    def get_task(self, task_id: str) -> Task:
        try:
            return self._tasks[task_id]
        except KeyError:
            raise NotFound(f"no task with id {task_id}") from None

    def find_task(self, id_or_prefix: str) -> Task:
        hint = "list them with `aura task list`"
        return _find(self._tasks, id_or_prefix, "task", hint)

    def list_tasks(self) -> list[Task]:
        return sorted(self._tasks.values(), key=lambda t: (t.position, t.created_at, t.id))

    def task_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for task in self._tasks.values():
            counts[task.column_id] = counts.get(task.column_id, 0) + 1
        return counts

    def delete_task(self, task_id: str) -> None:
        with self.transaction():
            self.get_task(task_id)
            for exec_id in [e.id for e in self._executions.values() if e.task_id == task_id]:
                self._executions.pop(exec_id)
                self._events.pop(exec_id, None)
            del self._tasks[task_id]

    # executions
    def create_execution(self, execution: Execution) -> None:
        with self._lock:
            if execution.id in self._executions:
                raise ValueError(f"execution {execution.id} exists")
            self._executions[execution.id] = execution.model_copy(deep=True)

    def update_execution(self, execution_id: str, **fields: Any) -> Execution:
        with self._lock:
            updated = self._updated(self.get_execution(execution_id), fields)
            self._executions[execution_id] = updated
            return updated

    def get_execution(self, execution_id: str) -> Execution:
        try:
            return self._executions[execution_id]
        except KeyError:
            raise NotFound(f"no execution with id {execution_id}") from None

    def list_executions(self, task_id: str | None = None) -> list[Execution]:
        rows = [e for e in self._executions.values() if task_id is None or e.task_id == task_id]
        return sorted(rows, key=lambda e: (e.created_at, e.id))

    def append_event(self, execution_id: str, event: ExecutionEvent, ts: float) -> EventRecord:
        with self._lock:
            events = self._events.setdefault(execution_id, [])
            record = EventRecord(
                execution_id=execution_id,
                seq=len(events),
                kind=event.kind,
                payload=event.model_dump(exclude={"kind"}, exclude_none=True),
                ts=ts,
            )
            events.append(record)
            return record

    def list_events(self, execution_id: str) -> list[EventRecord]:
        return list(self._events.get(execution_id, []))

    # settings
    def get_setting(self, key: str, default: str | None = None) -> str | None:
        return self._settings.get(key, default)

    def set_setting(self, key: str, value: str) -> None:
        self._settings[key] = value
