"""The execution state machine against engine.md's table.

The expectations here are written out by hand (literal rows, and an independent `oracle` made of
if-statements) rather than read from `TABLE`, so a wrong row in the table makes these tests fail.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

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
from aura_core.engine.state_machine import TABLE, apply, can_apply, initial_state

St = ExecutionStatus
Sg = ExecutionStage
Ev = EventKind
Ts = CanonicalTaskState
Ak = ActionKind

ALL_STAGES: list[ExecutionStage | None] = [None, *ExecutionStage]
CHANGES: list[bool | None] = [None, True, False]


def ev(kind: EventKind, changes_made: bool | None = None, message: str | None = None):
    return ExecutionEvent(kind=kind, changes_made=changes_made, message=message)


def kinds(t: Transition) -> list[tuple[ActionKind, CanonicalTaskState | None]]:
    """The actions after persist_event, as (kind, state) pairs easy to compare with a literal."""
    return [(a.kind, a.state) for a in t.actions[1:]]


def mark(state: CanonicalTaskState) -> tuple[ActionKind, CanonicalTaskState]:
    return (Ak.mark_task_state, state)


def do(kind: ActionKind) -> tuple[ActionKind, None]:
    return (kind, None)


# ---------------------------------------------------------------------------------------------
# Every row of the table, written out literally from engine.md
# ---------------------------------------------------------------------------------------------

# (status, stage, event, expected status, expected stage, expected task state, expected actions)
ROWS = [
    pytest.param(
        St.queued, None, ev(Ev.start_requested),
        St.running, Sg.prepare_workspace, Ts.running,
        [mark(Ts.running), do(Ak.prepare_workspace)],
        id="start_requested",
    ),
    pytest.param(
        St.running, Sg.prepare_workspace, ev(Ev.workspace_prepared),
        St.running, Sg.setup, None, [do(Ak.run_setup)],
        id="workspace_prepared",
    ),
    pytest.param(
        St.running, Sg.setup, ev(Ev.setup_completed),
        St.running, Sg.coding_initial, None, [do(Ak.run_coding_initial)],
        id="setup_completed",
    ),
    pytest.param(
        St.running, Sg.coding_initial, ev(Ev.coding_completed, changes_made=True),
        St.running, Sg.cleanup, None, [do(Ak.run_cleanup)],
        id="coding_completed-initial-changes",
    ),
    pytest.param(
        St.running, Sg.coding_follow_up, ev(Ev.coding_completed, changes_made=True),
        St.running, Sg.cleanup, None, [do(Ak.run_cleanup)],
        id="coding_completed-follow_up-changes",
    ),
    pytest.param(
        St.running, Sg.coding_initial, ev(Ev.coding_completed, changes_made=False),
        St.running, Sg.review, None, [do(Ak.run_review)],
        id="coding_completed-initial-no-changes",
    ),
    pytest.param(
        St.running, Sg.coding_follow_up, ev(Ev.coding_completed, changes_made=False),
        St.running, Sg.review, None, [do(Ak.run_review)],
        id="coding_completed-follow_up-no-changes",
    ),
    pytest.param(
        St.running, Sg.cleanup, ev(Ev.cleanup_completed),
        St.running, Sg.review, None, [do(Ak.run_review)],
        id="cleanup_completed",
    ),
    pytest.param(
        St.running, Sg.review, ev(Ev.review_completed),
        St.completed, Sg.review, Ts.review, [mark(Ts.review), do(Ak.complete_execution)],
        id="review_completed",
    ),
    pytest.param(
        St.completed, Sg.review, ev(Ev.follow_up_requested, message="rename foo"),
        St.running, Sg.coding_follow_up, Ts.running,
        [mark(Ts.running), do(Ak.run_coding_follow_up)],
        id="follow_up_requested-completed",
    ),
    pytest.param(
        St.running, Sg.review, ev(Ev.follow_up_requested, message="rename foo"),
        St.running, Sg.coding_follow_up, Ts.running,
        [mark(Ts.running), do(Ak.run_coding_follow_up)],
        id="follow_up_requested-running",
    ),
    pytest.param(
        St.running, Sg.setup, ev(Ev.stage_failed, message="npm install exited 1"),
        St.failed, Sg.setup, Ts.blocked, [mark(Ts.blocked)],
        id="stage_failed",
    ),
    pytest.param(
        St.running, Sg.coding_initial, ev(Ev.worker_lost, message="silent for 15 s"),
        St.failed, Sg.coding_initial, Ts.blocked,
        [do(Ak.fail_as_worker_lost), mark(Ts.blocked)],
        id="worker_lost",
    ),
    pytest.param(
        St.queued, None, ev(Ev.cancel_requested),
        St.killed, None, Ts.cancelled, [do(Ak.interrupt_execution), mark(Ts.cancelled)],
        id="cancel_requested-queued",
    ),
    pytest.param(
        St.running, Sg.cleanup, ev(Ev.cancel_requested),
        St.killed, Sg.cleanup, Ts.cancelled, [do(Ak.interrupt_execution), mark(Ts.cancelled)],
        id="cancel_requested-running",
    ),
    pytest.param(
        St.running, Sg.review, ev(Ev.interrupted),
        St.killed, Sg.review, Ts.cancelled, [mark(Ts.cancelled)],
        id="interrupted",
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("status", "stage", "event", "to_status", "to_stage", "task_state", "actions"), ROWS
)
def test_every_row(status, stage, event, to_status, to_stage, task_state, actions):
    t = apply(MachineState(status=status, stage=stage), event)
    assert t.state == MachineState(status=to_status, stage=to_stage)
    assert t.task_state == task_state
    assert t.actions[0] == ExecutionAction(kind=Ak.persist_event, event=event)
    assert kinds(t) == actions


def test_rows_cover_the_whole_table():
    """12 lines in engine.md; coding_completed has two (changes or not) -> 12 rows in TABLE."""
    assert len(TABLE) == 12
    assert {row.event for row in TABLE} == set(EventKind)


def test_follow_up_feedback_travels_in_the_persisted_event():
    feedback = "Use pathlib here.\nsrc/app.py:12 — this branch is never reached"
    t = apply(
        MachineState(status=St.completed, stage=Sg.review),
        ev(Ev.follow_up_requested, message=feedback),
    )
    persisted = t.actions[0].event
    assert persisted is not None and persisted.message == feedback


def test_initial_state_is_queued_without_stage():
    assert initial_state() == MachineState(status=St.queued, stage=None)


def test_happy_path_with_one_follow_up():
    steps = [
        (ev(Ev.start_requested), St.running, Sg.prepare_workspace),
        (ev(Ev.workspace_prepared), St.running, Sg.setup),
        (ev(Ev.setup_completed), St.running, Sg.coding_initial),
        (ev(Ev.coding_completed, changes_made=True), St.running, Sg.cleanup),
        (ev(Ev.cleanup_completed), St.running, Sg.review),
        (ev(Ev.review_completed), St.completed, Sg.review),
        (ev(Ev.follow_up_requested, message="add a test"), St.running, Sg.coding_follow_up),
        (ev(Ev.coding_completed, changes_made=False), St.running, Sg.review),
        (ev(Ev.review_completed), St.completed, Sg.review),
    ]
    state = initial_state()
    for event, status, stage in steps:
        state = apply(state, event).state
        assert (state.status, state.stage) == (status, stage), event.kind


def test_invalid_transition_names_stage_status_and_event():
    with pytest.raises(InvalidTransition) as info:
        apply(MachineState(status=St.completed, stage=Sg.review), ev(Ev.setup_completed))
    text = str(info.value)
    assert "setup_completed" in text and "completed" in text and "review" in text
    assert info.value.state.status is St.completed
    assert info.value.event.kind is Ev.setup_completed


def test_invalid_transition_before_start_says_stage_none():
    with pytest.raises(InvalidTransition, match="stage none"):
        apply(initial_state(), ev(Ev.review_completed))


def test_coding_completed_without_changes_made_is_refused():
    """A malformed event must not silently pick cleanup or review."""
    with pytest.raises(InvalidTransition):
        apply(MachineState(status=St.running, stage=Sg.coding_initial), ev(Ev.coding_completed))


# ---------------------------------------------------------------------------------------------
# Every (status, stage, event) combination against an independent oracle
# ---------------------------------------------------------------------------------------------


def oracle(
    status: ExecutionStatus,
    stage: ExecutionStage | None,
    kind: EventKind,
    changes: bool | None,
) -> tuple[ExecutionStatus, ExecutionStage | None, CanonicalTaskState | None, list] | None:
    """engine.md's table re-typed as plain if-statements; None means "must raise"."""
    running = status == St.running
    if kind == Ev.start_requested:
        if status == St.queued and stage is None:
            return (
                St.running,
                Sg.prepare_workspace,
                Ts.running,
                [mark(Ts.running), do(Ak.prepare_workspace)],
            )
        return None
    if kind == Ev.workspace_prepared:
        if running and stage == Sg.prepare_workspace:
            return St.running, Sg.setup, None, [do(Ak.run_setup)]
        return None
    if kind == Ev.setup_completed:
        if running and stage == Sg.setup:
            return St.running, Sg.coding_initial, None, [do(Ak.run_coding_initial)]
        return None
    if kind == Ev.coding_completed:
        if running and stage in (Sg.coding_initial, Sg.coding_follow_up):
            if changes is True:
                return St.running, Sg.cleanup, None, [do(Ak.run_cleanup)]
            if changes is False:
                return St.running, Sg.review, None, [do(Ak.run_review)]
        return None
    if kind == Ev.cleanup_completed:
        if running and stage == Sg.cleanup:
            return St.running, Sg.review, None, [do(Ak.run_review)]
        return None
    if kind == Ev.review_completed:
        if running and stage == Sg.review:
            return St.completed, Sg.review, Ts.review, [mark(Ts.review), do(Ak.complete_execution)]
        return None
    if kind == Ev.follow_up_requested:
        if status in (St.running, St.completed) and stage == Sg.review:
            return (
                St.running,
                Sg.coding_follow_up,
                Ts.running,
                [mark(Ts.running), do(Ak.run_coding_follow_up)],
            )
        return None
    if kind == Ev.stage_failed:
        return (St.failed, stage, Ts.blocked, [mark(Ts.blocked)]) if running else None
    if kind == Ev.worker_lost:
        if running:
            return St.failed, stage, Ts.blocked, [do(Ak.fail_as_worker_lost), mark(Ts.blocked)]
        return None
    if kind == Ev.cancel_requested:
        if status in (St.queued, St.running):
            return St.killed, stage, Ts.cancelled, [do(Ak.interrupt_execution), mark(Ts.cancelled)]
        return None
    if kind == Ev.interrupted:
        return (St.killed, stage, Ts.cancelled, [mark(Ts.cancelled)]) if running else None
    raise AssertionError(f"oracle does not know {kind}")


@pytest.mark.parametrize("kind", list(EventKind))
def test_every_combination_matches_the_oracle(kind: EventKind):
    mismatches: list[tuple[object, ...]] = []
    accepted = 0
    for status, stage, changes in itertools.product(ExecutionStatus, ALL_STAGES, CHANGES):
        state = MachineState(status=status, stage=stage)
        event = ev(kind, changes_made=changes)
        expected = oracle(status, stage, kind, changes)
        label = (status.value, stage.value if stage else None, changes)
        if expected is None:
            try:
                got = apply(state, event)
            except InvalidTransition:
                assert not can_apply(state, event)
                continue
            mismatches.append((label, "accepted but should raise", got))
            continue
        accepted += 1
        assert can_apply(state, event)
        t = apply(state, event)
        got_tuple = (t.state.status, t.state.stage, t.task_state, kinds(t))
        if got_tuple != expected:
            mismatches.append((label, expected, got_tuple))
    assert mismatches == []
    assert accepted > 0  # every event kind is accepted somewhere


def test_rows_never_overlap():
    """At most one row accepts any pair, so the order of TABLE never changes an outcome."""
    for status, stage, kind, changes in itertools.product(
        ExecutionStatus, ALL_STAGES, EventKind, CHANGES
    ):
        state = MachineState(status=status, stage=stage)
        event = ev(kind, changes_made=changes)
        assert sum(row.matches(state, event) for row in TABLE) <= 1, (status, stage, kind)


def test_the_oracle_accepts_a_plausible_number_of_pairs():
    """Guards the oracle itself from being vacuous: count accepted pairs by hand per event."""
    counts = {
        kind: sum(
            oracle(status, stage, kind, changes) is not None
            for status, stage, changes in itertools.product(ExecutionStatus, ALL_STAGES, CHANGES)
        )
        for kind in EventKind
    }
    # per (status, stage) pair the event is tried with 3 values of changes_made
    assert counts == {
        Ev.start_requested: 3,
        Ev.workspace_prepared: 3,
        Ev.setup_completed: 3,
        Ev.coding_completed: 4,  # 2 stages x (True, False)
        Ev.cleanup_completed: 3,
        Ev.review_completed: 3,
        Ev.follow_up_requested: 6,  # running or completed, at review
        Ev.stage_failed: 21,  # running, 7 stages (incl. none)
        Ev.worker_lost: 21,
        Ev.cancel_requested: 42,  # queued or running, 7 stages
        Ev.interrupted: 21,
    }


# ---------------------------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------------------------

statuses = st.sampled_from(list(ExecutionStatus))
stages = st.sampled_from(ALL_STAGES)
events = st.builds(
    ExecutionEvent,
    kind=st.sampled_from(list(EventKind)),
    changes_made=st.sampled_from(CHANGES),
    message=st.none() | st.text(max_size=40),
)
states = st.builds(MachineState, status=statuses, stage=stages)


@given(st.sampled_from([St.failed, St.killed]), stages, events)
def test_failed_and_killed_absorb_every_event(status, stage, event):
    with pytest.raises(InvalidTransition):
        apply(MachineState(status=status, stage=stage), event)


@given(stages, events.filter(lambda e: e.kind != Ev.follow_up_requested))
def test_completed_absorbs_everything_but_follow_up(stage, event):
    with pytest.raises(InvalidTransition):
        apply(MachineState(status=St.completed, stage=stage), event)


@given(st.sampled_from([St.queued, St.running]), stages, st.none() | st.text(max_size=20))
def test_cancel_from_queued_or_running_always_kills(status, stage, message):
    event = ev(Ev.cancel_requested, message=message)
    t = apply(MachineState(status=status, stage=stage), event)
    assert t.state == MachineState(status=St.killed, stage=stage)
    assert t.task_state is Ts.cancelled
    assert (Ak.mark_task_state, Ts.cancelled) in kinds(t)
    assert (Ak.interrupt_execution, None) in kinds(t)


@given(states, events)
def test_persist_event_is_always_first_and_only_once(state, event):
    try:
        t = apply(state, event)
    except InvalidTransition:
        return
    assert t.actions[0] == ExecutionAction(kind=Ak.persist_event, event=event)
    assert [a.kind for a in t.actions].count(Ak.persist_event) == 1


@given(states, events)
def test_apply_is_deterministic(state, event):
    def outcome():
        try:
            return apply(state, event)
        except InvalidTransition as exc:
            return str(exc)

    first, second = outcome(), outcome()
    assert first == second
    assert state == MachineState(status=state.status, stage=state.stage)  # input untouched


@given(states, events)
def test_task_state_and_mark_action_agree(state, event):
    try:
        t = apply(state, event)
    except InvalidTransition:
        return
    marks = [a.state for a in t.actions if a.kind is Ak.mark_task_state]
    assert marks == ([] if t.task_state is None else [t.task_state])


@given(st.lists(events, max_size=40))
def test_random_walks_from_the_start_stay_consistent(walk):
    """Whatever order events arrive in, only reachable, coherent states come out."""
    state = initial_state()
    for event in walk:
        try:
            state = apply(state, event).state
        except InvalidTransition:
            continue
        if state.status in (St.running, St.completed, St.failed):
            assert state.stage is not None
        if state.status is St.completed:
            assert state.stage is Sg.review
        if state.status is St.queued:
            raise AssertionError("nothing leads back to queued")
