"""Tasks (the cards) and executions (each attempt the engine drives through its stages)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from aura_core.contracts.engine import (
    CanonicalTaskState,
    EventKind,
    ExecutionStage,
    ExecutionStatus,
)


class Task(BaseModel):
    id: str
    title: str
    prompt: str = ""
    executor: str = "custom"
    model: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    repos: list[str] = Field(default_factory=list)
    base_branch: str | None = None
    column_id: str = "backlog"
    state: CanonicalTaskState = CanonicalTaskState.backlog
    review: bool = False
    position: float = 0.0
    blocked_reason: str | None = None
    worker_id: str | None = None
    created_at: float
    updated_at: float


class Execution(BaseModel):
    id: str
    task_id: str
    status: ExecutionStatus = ExecutionStatus.queued
    stage: ExecutionStage | None = None
    workspace: list[str] = Field(default_factory=list)  # worktree paths, one per repo
    branch: str | None = None
    error: str | None = None
    owner_pid: int | None = None
    owner_start: int | None = None
    created_at: float
    updated_at: float


class EventRecord(BaseModel):
    """One applied engine event, in order: the truth the board is rebuilt from after a crash."""

    execution_id: str
    seq: int
    kind: EventKind
    payload: dict[str, Any] = Field(default_factory=dict)
    ts: float
