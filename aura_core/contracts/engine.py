"""Engine vocabulary: the canonical names shared by config, JSON output and the worker protocol."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict


class CanonicalTaskState(StrEnum):
    backlog = "backlog"
    ready = "ready"
    running = "running"
    review = "review"
    done = "done"
    cancelled = "cancelled"
    blocked = "blocked"


class ExecutionStage(StrEnum):
    prepare_workspace = "prepare_workspace"
    setup = "setup"
    coding_initial = "coding_initial"
    coding_follow_up = "coding_follow_up"
    review = "review"
    cleanup = "cleanup"


class ExecutionStatus(StrEnum):
    queued = "queued"
    running = "running"
    completed = "completed"
    failed = "failed"
    killed = "killed"


class RunReason(StrEnum):
    setup = "setup"
    coding = "coding"
    review = "review"
    cleanup = "cleanup"
    dev_server = "dev_server"


class EventKind(StrEnum):
    start_requested = "start_requested"
    workspace_prepared = "workspace_prepared"
    setup_completed = "setup_completed"
    coding_completed = "coding_completed"
    follow_up_requested = "follow_up_requested"
    review_completed = "review_completed"
    cleanup_completed = "cleanup_completed"
    stage_failed = "stage_failed"
    cancel_requested = "cancel_requested"
    interrupted = "interrupted"
    worker_lost = "worker_lost"


class ActionKind(StrEnum):
    prepare_workspace = "prepare_workspace"
    run_setup = "run_setup"
    run_coding_initial = "run_coding_initial"
    run_coding_follow_up = "run_coding_follow_up"
    run_review = "run_review"
    run_cleanup = "run_cleanup"
    mark_task_state = "mark_task_state"
    persist_event = "persist_event"
    interrupt_execution = "interrupt_execution"
    fail_as_worker_lost = "fail_as_worker_lost"
    complete_execution = "complete_execution"
    noop = "noop"


class ExecutionEvent(BaseModel):
    """One input to the state machine. Payload fields are used only by the kinds that carry them."""

    model_config = ConfigDict(frozen=True)

    kind: EventKind
    changes_made: bool | None = None  # coding_completed
    message: str | None = None  # stage_failed, worker_lost, follow_up_requested (feedback)


class ExecutionAction(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: ActionKind
    state: CanonicalTaskState | None = None  # mark_task_state
    event: ExecutionEvent | None = None  # persist_event


class MachineState(BaseModel):
    """What the engine knows of one execution: its status, its stage (None before start)."""

    model_config = ConfigDict(frozen=True)

    status: ExecutionStatus = ExecutionStatus.queued
    stage: ExecutionStage | None = None


class Transition(BaseModel):
    model_config = ConfigDict(frozen=True)

    state: MachineState
    task_state: CanonicalTaskState | None
    actions: tuple[ExecutionAction, ...]


class InvalidTransition(Exception):
    """Raised by the engine for a (state, event) pair its table does not accept."""

    def __init__(self, state: MachineState, event: ExecutionEvent) -> None:
        stage = state.stage.value if state.stage else "none"
        super().__init__(
            f"invalid transition: event {event.kind.value} at status {state.status.value}, "
            f"stage {stage}"
        )
        self.state = state
        self.event = event
