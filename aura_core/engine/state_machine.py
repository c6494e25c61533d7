"""The execution state machine: engine.md's table as data, and a pure `apply` that reads it.

The table is the single source of truth for which events an execution accepts; keeping it as data
(one row per line of engine.md) lets a reader check it against the spec at a glance, and lets the
runtime ask `can_apply` before offering a key to the person.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

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
    Transition,
)

__all__ = [
    "ANY_STAGE",
    "SAME",
    "TABLE",
    "Row",
    "apply",
    "can_apply",
    "find_row",
    "initial_state",
]

SAME: Final = "same"
"""Next-stage marker: the execution stays at the stage it was in (failures, cancels)."""

ANY_STAGE: Final[tuple[ExecutionStage | None, ...]] = (None, *ExecutionStage)
"""Stage pattern for rows whose `when` column says "any": the stage is not looked at."""


@dataclass(frozen=True)
class Row:
    """One line of the table: when it matches, where the execution goes, what the runtime does."""

    event: EventKind
    statuses: tuple[ExecutionStatus, ...]
    stages: tuple[ExecutionStage | None, ...]
    changes_made: bool | None  # guard on event.changes_made; None = not looked at
    next_status: ExecutionStatus
    next_stage: ExecutionStage | Literal["same"]
    task_state: CanonicalTaskState | None  # None = the task's board state is left as it is
    actions: tuple[ActionKind, ...]  # run after persist_event; mark_task_state marks `task_state`

    def matches(self, state: MachineState, event: ExecutionEvent) -> bool:
        return (
            event.kind is self.event
            and state.status in self.statuses
            and state.stage in self.stages
            and (self.changes_made is None or event.changes_made is self.changes_made)
        )


E, S, G, T, A = EventKind, ExecutionStatus, ExecutionStage, CanonicalTaskState, ActionKind
_CODING = (G.coding_initial, G.coding_follow_up)

# fmt: off
TABLE: Final[tuple[Row, ...]] = (
    #   event                  statuses                  stages                  changes_made
    #   next status  next stage           task state   actions after persist_event
    Row(E.start_requested,     (S.queued,),              (None,),                None,
        S.running,   G.prepare_workspace, T.running,   (A.mark_task_state, A.prepare_workspace)),
    Row(E.workspace_prepared,  (S.running,),             (G.prepare_workspace,), None,
        S.running,   G.setup,             None,        (A.run_setup,)),
    Row(E.setup_completed,     (S.running,),             (G.setup,),             None,
        S.running,   G.coding_initial,    None,        (A.run_coding_initial,)),
    Row(E.coding_completed,    (S.running,),             _CODING,                True,
        S.running,   G.cleanup,           None,        (A.run_cleanup,)),
    Row(E.coding_completed,    (S.running,),             _CODING,                False,
        S.running,   G.review,            None,        (A.run_review,)),
    Row(E.cleanup_completed,   (S.running,),             (G.cleanup,),           None,
        S.running,   G.review,            None,        (A.run_review,)),
    Row(E.review_completed,    (S.running,),             (G.review,),            None,
        S.completed, G.review,            T.review,    (A.mark_task_state, A.complete_execution)),
    Row(E.follow_up_requested, (S.running, S.completed), (G.review,),            None,
        S.running,   G.coding_follow_up,  T.running,   (A.mark_task_state, A.run_coding_follow_up)),
    Row(E.stage_failed,        (S.running,),             ANY_STAGE,              None,
        S.failed,    SAME,                T.blocked,   (A.mark_task_state,)),
    Row(E.worker_lost,         (S.running,),             ANY_STAGE,              None,
        S.failed,    SAME,                T.blocked,   (A.fail_as_worker_lost, A.mark_task_state)),
    Row(E.cancel_requested,    (S.queued, S.running),    ANY_STAGE,              None,
        S.killed,    SAME,                T.cancelled, (A.interrupt_execution, A.mark_task_state)),
    Row(E.interrupted,         (S.running,),             ANY_STAGE,              None,
        S.killed,    SAME,                T.cancelled, (A.mark_task_state,)),
)
# fmt: on

del E, S, G, T, A


def initial_state() -> MachineState:
    """A new execution: queued, no stage yet; only start_requested (or a cancel) moves it."""
    return MachineState(status=ExecutionStatus.queued, stage=None)


def find_row(state: MachineState, event: ExecutionEvent) -> Row | None:
    """The row that accepts this (state, event) pair, or None. Rows never overlap (tested)."""
    for row in TABLE:
        if row.matches(state, event):
            return row
    return None


def can_apply(state: MachineState, event: ExecutionEvent) -> bool:
    """Whether `apply` would accept the pair, without raising: lets the UI grey out a key."""
    return find_row(state, event) is not None


def apply(state: MachineState, event: ExecutionEvent) -> Transition:
    """Run one event through the table: the next state, the task's board state, the actions.

    Pure and deterministic. The actions always begin with persist_event(event) so the runtime
    records the event before anything else happens (the event log rebuilds the board after a
    crash). A coding_completed without `changes_made` matches neither of its rows and is refused:
    guessing would skip or force the cleanup stage silently.
    """
    row = find_row(state, event)
    if row is None:
        raise InvalidTransition(state, event)
    stage = row.next_stage if isinstance(row.next_stage, ExecutionStage) else state.stage
    actions = [ExecutionAction(kind=ActionKind.persist_event, event=event)]
    for kind in row.actions:
        mark = kind is ActionKind.mark_task_state
        actions.append(ExecutionAction(kind=kind, state=row.task_state if mark else None))
    return Transition(
        state=MachineState(status=row.next_status, stage=stage),
        task_state=row.task_state,
        actions=tuple(actions),
    )
