"""Run one agent session end to end: spawn, stream, persist, normalise, finish.

The flow reads top to bottom in `SessionRunner.run`: the executor starts the agent, its raw lines
are stored in batches (never one commit per line) and fed to the executor's normaliser, and every
consumer (the plain printer, the TUI, the worker hub) gets the same batches and entry patches.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol

from aura_core import procinfo
from aura_core.executors.base import RunRequest, SetupRequired
from aura_core.store.logwriter import LogWriter

Row = tuple[str, int, str, float, str, bytes | None]


@dataclass(slots=True)
class RunResult:
    session_id: str
    status: str
    exit_code: int | None
    duration: float
    error: str | None = None
    agent_session_id: str | None = None
    lines: int = 0


class RunSink(Protocol):
    def started(self, session: dict[str, Any]) -> None: ...
    def lines(self, rows: list[Row]) -> None: ...
    def patches(self, patches: list[Any]) -> None: ...
    def finished(self, result: RunResult) -> None: ...


@dataclass
class NullSink:
    events: list[Any] = field(default_factory=list)

    def started(self, session: dict[str, Any]) -> None:
        pass

    def lines(self, rows: list[Row]) -> None:
        pass

    def patches(self, patches: list[Any]) -> None:
        pass

    def finished(self, result: RunResult) -> None:
        pass


def new_id() -> str:
    return uuid.uuid4().hex


def decode_batch(session_id: str, seq: int, ts: float, batch: list[tuple[str, bytes]]) -> list[Row]:
    rows: list[Row] = []
    append = rows.append
    for stream, data in batch:
        try:
            append((session_id, seq, stream, ts, data.decode(), None))
        except UnicodeDecodeError:
            append((session_id, seq, stream, ts, data.decode("utf-8", "replace"), data))
        seq += 1
    return rows


class SessionRunner:
    def __init__(
        self,
        store: Any,
        executor: Any,
        request: RunRequest,
        *,
        executor_name: str,
        sink: RunSink | None = None,
        parent_id: str | None = None,
        task_id: str | None = None,
        execution_id: str | None = None,
        stage: str | None = None,
    ) -> None:
        self.store = store
        self.executor = executor
        self.request = request
        self.executor_name = executor_name
        self.sink: RunSink = sink or NullSink()
        self.parent_id = parent_id
        self.task_id = task_id
        self.execution_id = execution_id
        self.stage = stage
        self.session_id = request.session_id
        self._agent: Any = None
        self._stop = threading.Event()
        self._seq = 0
        self._store_error: str | None = None  # the store refused the log: the run fails
        self._unsaved = 0
        self.started = threading.Event()

    # ---- control ------------------------------------------------------------------------
    def stop(self) -> None:
        """Stop the agent (its whole process group, via the signal ladder). Thread-safe."""
        self._stop.set()
        if self._agent is not None:
            self._agent.interrupt()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    # ---- the run ------------------------------------------------------------------------
    def _system(self, writer: LogWriter, text: str) -> None:
        rows: list[Row] = [(self.session_id, self._seq, "system", time.time(), text, None)]
        self._seq += 1
        self._store_and_show(writer, rows)

    def _store_and_show(self, writer: LogWriter, rows: list[Row]) -> bool:
        """Commit the rows, then hand them to the sink: a line anyone was shown is in the store,
        even after a kill -9 (one commit per read batch, never per line). When the store refuses
        them (disk full, say) the agent is stopped and the run fails; False means dropped."""
        if self._store_error is not None:
            self._unsaved += len(rows)
            return False
        writer.add(rows)
        try:
            writer.flush()
        except Exception as exc:
            self._unsaved += writer.discard()
            self._store_error = f"could not store the log ({exc}); the agent was stopped"
            if self._agent is not None:
                self._agent.interrupt()
            return False
        self.sink.lines(rows)
        return True

    def _create_session(self, agent: Any) -> dict[str, Any]:
        from aura_core.contracts import Session, SessionStatus

        now = time.time()
        req = self.request
        session = Session(
            id=self.session_id,
            executor=self.executor_name,
            model=req.model,
            prompt=req.full_prompt,
            cwd=str(req.cwd),
            status=SessionStatus.running,
            parent_id=self.parent_id,
            task_id=self.task_id,
            execution_id=self.execution_id,
            stage=self.stage,
            created_at=now,
            started_at=now,
            owner_pid=os.getpid(),
            owner_start=procinfo.start_time(os.getpid()),
            pid=agent.pid,
            pgid=agent.pgid,
            options={
                "mode": req.mode.value,
                "resume_id": req.resume_id,
                "structured": self.executor.normalizer() is not None,
                "agent_start": procinfo.start_time(agent.pid) if agent.pid else None,
                # what a later `--session`/`--resume-latest` needs to run the same thing again
                **{
                    k: v
                    for k, v in (
                        ("base_command", req.options.base_command),
                        ("params", req.options.params or None),
                        ("openai_endpoint", req.options.openai_endpoint),
                    )
                    if v
                },
            },
        )
        self.store.create_session(session)
        return session.model_dump()

    def run(self) -> RunResult:
        """Start the agent, then stream it to the end. SetupRequired propagates with no session
        recorded: nothing ran, so there is nothing to keep."""
        try:
            agent = self.executor.start(self.request)
        except OSError as exc:
            raise SetupRequired(f"could not start the agent: {exc.strerror or exc}") from None
        try:
            session = self._create_session(agent)
        except BaseException:
            agent.interrupt()
            raise
        self._seq = max(0, self.store.last_seq(self.session_id) + 1)
        self.sink.started(session)
        writer = LogWriter(self.store)
        started = session["started_at"]
        normalizer = self.executor.normalizer()
        agent_sid: str | None = None
        exit_code: int | None = None
        error: str | None = None
        try:
            self._agent = agent
            spec = getattr(agent, "spec", None)
            for warning in getattr(spec, "warnings", []) or []:
                self._system(writer, f"warning: {warning}")
            self.started.set()
            if self._stop.is_set() or self._store_error is not None:
                agent.interrupt()
            for batch in agent.batches():
                if not batch:
                    continue
                rows = decode_batch(self.session_id, self._seq, time.time(), batch)
                self._seq += len(rows)
                if not self._store_and_show(writer, rows):
                    continue
                if normalizer is not None:
                    patches: list[Any] = []
                    for row in rows:
                        patches.extend(normalizer.feed(row[2], row[4]))
                    if normalizer.agent_session_id and normalizer.agent_session_id != agent_sid:
                        agent_sid = normalizer.agent_session_id
                        self.store.update_session(self.session_id, agent_session_id=agent_sid)
                    if patches:
                        self.sink.patches(patches)
            exit_code = agent.wait()
            if normalizer is not None:
                tail = normalizer.finish()
                if tail:
                    self.sink.patches(tail)
                agent_sid = normalizer.agent_session_id or agent_sid
            if self._store_error is not None:
                status, error = "failed", self._store_error
            elif self._stop.is_set() or getattr(agent, "interrupted", False):
                status, error = "killed", "stopped by the user"
            elif exit_code == 0:
                status = "completed"
            else:
                status, error = "failed", f"exited with code {exit_code}"
            return self._finish(writer, started, status, exit_code, error, agent_sid)
        except BaseException as exc:
            if self._agent is not None:
                self._agent.interrupt()
            self._finish(writer, started, "failed", exit_code, f"aura error: {exc}", agent_sid)
            raise

    def _finish(
        self,
        writer: LogWriter,
        started: float,
        status: str,
        exit_code: int | None,
        error: str | None,
        agent_sid: str | None,
    ) -> RunResult:
        finished = time.time()
        try:
            writer.close()
        except Exception as exc:
            self._unsaved += writer.discard()
            status, error = "failed", error or f"could not store the log ({exc})"
        if self._unsaved:
            error = f"{error} ({self._unsaved} line(s) not saved)"
        fields: dict[str, Any] = {
            "status": status,
            "exit_code": exit_code,
            "finished_at": finished,
            "error": error,
        }
        if agent_sid:
            fields["agent_session_id"] = agent_sid
        try:
            self.store.update_session(self.session_id, **fields)
        except Exception as exc:
            from aura_core.store.errors import StoreError

            raise StoreError(
                f"could not record the end of session {self.session_id[:8]} ({exc}); "
                f"it ended {status}" + (f": {error}" if error else "")
            ) from None
        result = RunResult(
            session_id=self.session_id,
            status=status,
            exit_code=exit_code,
            duration=finished - started,
            error=error,
            agent_session_id=agent_sid,
            lines=self._seq,
        )
        self.sink.finished(result)
        return result
