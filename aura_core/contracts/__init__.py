"""Pydantic models and enums at the edges of the core."""

from aura_core.contracts.board import BoardColumn, TransitionRule
from aura_core.contracts.engine import (
    ActionKind,
    CanonicalTaskState,
    EventKind,
    ExecutionAction,
    ExecutionEvent,
    ExecutionStage,
    ExecutionStatus,
    InvalidTransition,
    MachineState,
    RunReason,
    Transition,
)
from aura_core.contracts.sessions import LogLine, LogStream, Session, SessionStatus
from aura_core.contracts.tasks import EventRecord, Execution, Task

__all__ = [
    "ActionKind",
    "BoardColumn",
    "CanonicalTaskState",
    "EventKind",
    "EventRecord",
    "Execution",
    "ExecutionAction",
    "ExecutionEvent",
    "ExecutionStage",
    "ExecutionStatus",
    "InvalidTransition",
    "LogLine",
    "LogStream",
    "MachineState",
    "RunReason",
    "Session",
    "SessionStatus",
    "Task",
    "Transition",
    "TransitionRule",
]
