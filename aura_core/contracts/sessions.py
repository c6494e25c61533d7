"""Sessions (one agent run or conversation) and the raw log lines they produce."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field


class SessionStatus(StrEnum):
    queued = "queued"
    running = "running"
    completed = "completed"
    failed = "failed"
    killed = "killed"
    interrupted = "interrupted"  # its aura process died; found and marked by the next aura

    @property
    def finished(self) -> bool:
        return self not in (SessionStatus.queued, SessionStatus.running)


class LogStream(StrEnum):
    stdout = "stdout"
    stderr = "stderr"
    system = "system"


class Session(BaseModel):
    id: str
    executor: str
    model: str | None = None
    prompt: str = ""
    cwd: str
    status: SessionStatus = SessionStatus.queued
    exit_code: int | None = None
    agent_session_id: str | None = None
    parent_id: str | None = None
    task_id: str | None = None
    execution_id: str | None = None
    stage: str | None = None
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None
    error: str | None = None
    # Who runs it: the aura process (pid + start time, which survive pid reuse) and the agent.
    owner_pid: int | None = None
    owner_start: int | None = None
    pid: int | None = None
    pgid: int | None = None
    options: dict[str, Any] = Field(default_factory=dict)

    @property
    def duration(self) -> float | None:
        if self.started_at is None:
            return None
        end = self.finished_at
        return None if end is None else max(0.0, end - self.started_at)


class LogLine(BaseModel):
    session_id: str
    seq: int
    stream: LogStream
    ts: float
    text: str
    raw: bytes | None = None  # the exact bytes, kept only when they were not valid UTF-8
