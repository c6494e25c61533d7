"""The headless board: default columns and rules, refusals with reasons, WIP limits, config."""

from __future__ import annotations

import itertools
import tomllib
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aura_core.board import (
    DEFAULT_COLUMNS,
    DEFAULT_RULES,
    Board,
    BoardConfigError,
    MoveDecision,
    MoveIntent,
    default_rules,
)
from aura_core.contracts.board import BoardColumn, TransitionRule
from aura_core.contracts.engine import CanonicalTaskState as CS
from aura_core.contracts.tasks import Task

COLUMN_STATE = {
    "backlog": CS.backlog,
    "ready": CS.ready,
    "in_progress": CS.running,
    "review": CS.review,
    "done": CS.done,
    "blocked": CS.blocked,
    "cancelled": CS.cancelled,
}
IDS = list(COLUMN_STATE)


def task(column_id: str, state: CS | None = None, title: str = "Fix login") -> Task:
    return Task(
        id="t1",
        title=title,
        column_id=column_id,
        state=state if state is not None else COLUMN_STATE.get(column_id, CS.backlog),
        created_at=0.0,
        updated_at=0.0,
    )


def move(
    board: Board,
    t: Task,
    to: str,
    *,
    counts: dict[str, int] | None = None,
    git: object = True,
    proc: bool = False,
) -> MoveDecision:
    return board.move(
        t,
        to,
        tasks_in_columns=counts or {},
        git_clean=git,  # type: ignore[arg-type]
        has_running_process=proc,
    )


def column(id: str, state: CS, order: int, wip: int | None = None, name: str | None = None):
    return BoardColumn(
        id=id, name=name or id.title(), canonical_state=state, order=order, wip_limit=wip
    )


# --- defaults -------------------------------------------------------------------------------


def test_default_columns():
    assert [(c.id, c.name, c.canonical_state, c.order) for c in DEFAULT_COLUMNS] == [
        ("backlog", "Backlog", CS.backlog, 0),
        ("ready", "Ready", CS.ready, 1),
        ("in_progress", "In Progress", CS.running, 2),
        ("review", "Review", CS.review, 3),
        ("done", "Done", CS.done, 4),
        ("blocked", "Blocked", CS.blocked, 5),
        ("cancelled", "Cancelled", CS.cancelled, 6),
    ]
    assert all(c.wip_limit is None for c in DEFAULT_COLUMNS)


# (from, to, requires_clean_git, requires_no_running_process, intent): engine.md "Board defaults"
EXPECTED_RULES = [
    ("backlog", "ready", False, False, MoveIntent.none),
    ("ready", "backlog", False, False, MoveIntent.none),
    ("ready", "in_progress", False, True, MoveIntent.start),
    ("review", "in_progress", False, True, MoveIntent.follow_up),
    ("review", "done", True, True, MoveIntent.approve),
    ("blocked", "backlog", False, False, MoveIntent.reopen),
    ("blocked", "ready", False, False, MoveIntent.reopen),
    ("cancelled", "backlog", False, False, MoveIntent.reopen),
    ("cancelled", "ready", False, False, MoveIntent.reopen),
    ("done", "backlog", False, False, MoveIntent.reopen),
    ("done", "ready", False, False, MoveIntent.reopen),
    ("backlog", "cancelled", False, False, MoveIntent.cancel),
    ("ready", "cancelled", False, False, MoveIntent.cancel),
    ("in_progress", "cancelled", False, False, MoveIntent.cancel),
    ("review", "cancelled", False, False, MoveIntent.cancel),
    ("done", "cancelled", False, False, MoveIntent.cancel),
    ("blocked", "cancelled", False, False, MoveIntent.cancel),
]
ALLOWED = {(f, t) for f, t, *_ in EXPECTED_RULES}


def test_default_rules_are_exactly_the_documented_ones():
    got = {
        (r.from_column_id, r.to_column_id, r.requires_clean_git, r.requires_no_running_process)
        for r in DEFAULT_RULES
    }
    assert got == {row[:4] for row in EXPECTED_RULES}
    assert len(DEFAULT_RULES) == len(EXPECTED_RULES)


@pytest.mark.parametrize(
    ("src", "dst", "intent"),
    [(f, t, i) for f, t, _, _, i in EXPECTED_RULES],
    ids=[f"{f}->{t}" for f, t, *_ in EXPECTED_RULES],
)
def test_every_default_rule_moves_with_its_intent(src, dst, intent):
    d = move(Board.default(), task(src), dst)
    assert d == MoveDecision(True, intent, "", src, dst)


@pytest.mark.parametrize(
    ("src", "dst"),
    [(f, t) for f, t in itertools.permutations(IDS, 2) if (f, t) not in ALLOWED],
    ids=lambda v: v,
)
def test_every_other_move_is_refused_with_a_one_line_reason(src, dst):
    d = move(Board.default(), task(src), dst)
    assert not d.ok
    assert d.intent is MoveIntent.none
    assert d.reason and "\n" not in d.reason
    assert (d.from_column_id, d.to_column_id) == (src, dst)


def test_moving_to_the_same_column_is_a_no_op():
    d = move(Board.default(), task("review"), "review", counts={"review": 99})
    assert d.ok and d.intent is MoveIntent.none


def test_follow_up_needs_a_prompt():
    board = Board.default()
    assert move(board, task("review"), "in_progress").needs_prompt
    assert not move(board, task("ready"), "in_progress").needs_prompt
    assert not move(board, task("backlog"), "in_progress").needs_prompt  # refused


# --- refusals that protect the engine --------------------------------------------------------


@pytest.mark.parametrize("dst", ["backlog", "ready", "review", "done", "blocked"])
def test_a_running_task_can_only_be_cancelled(dst):
    d = move(Board.default(), task("in_progress"), dst)
    assert not d.ok
    assert d.reason == "'Fix login' is running; stop it first (move it to Cancelled)."


def test_running_state_wins_over_a_stale_column():
    """A card whose state says running is refused even if it sits in Ready."""
    d = move(Board.default(), task("ready", state=CS.running), "backlog")
    assert not d.ok and "stop it first" in d.reason
    assert move(Board.default(), task("ready", state=CS.running), "cancelled").ok


def test_backlog_to_done_is_refused_as_unreviewed():
    d = move(Board.default(), task("backlog"), "done")
    assert not d.ok
    assert "has not been reviewed" in d.reason and "Review" in d.reason


def test_done_to_running_needs_a_new_prompt():
    d = move(Board.default(), task("done"), "in_progress")
    assert not d.ok
    assert "new prompt" in d.reason and "reopen it to Ready" in d.reason


@pytest.mark.parametrize("src", ["backlog", "blocked", "cancelled"])
def test_runs_start_from_ready_only(src):
    d = move(Board.default(), task(src), "in_progress")
    assert d.reason == "Tasks start from Ready: move 'Fix login' to Ready first."


@pytest.mark.parametrize("src", ["backlog", "ready", "blocked", "done", "cancelled"])
def test_review_is_filled_by_the_engine(src):
    d = move(Board.default(), task(src), "review")
    assert not d.ok and "filled by runs that finish" in d.reason


def test_a_move_without_rule_says_how_to_allow_it():
    d = move(Board.default(), task("backlog"), "blocked")
    assert d.reason == (
        "The board rules do not allow Backlog → Blocked; "
        "add a [[board.rules]] entry from 'backlog' to 'blocked' to allow it."
    )


def test_engine_protection_holds_even_when_a_rule_allows_the_move():
    rules = [*DEFAULT_RULES, TransitionRule(from_column_id="backlog", to_column_id="done")]
    board = Board(DEFAULT_COLUMNS, rules)
    d = move(board, task("backlog"), "done")
    assert not d.ok and "has not been reviewed" in d.reason


def test_unknown_destination_lists_the_columns():
    d = move(Board.default(), task("ready"), "doing")
    assert not d.ok
    assert "no column 'doing'" in d.reason and "in_progress" in d.reason


def test_task_in_a_removed_column_is_treated_by_its_state():
    d = move(Board.default(), task("icebox", state=CS.ready), "in_progress")
    assert d.ok and d.intent is MoveIntent.start and d.from_column_id == "ready"


def test_long_titles_are_shortened_in_reasons():
    d = move(Board.default(), task("in_progress", title="x" * 100), "done")
    assert "x" * 39 + "…" in d.reason and "x" * 41 not in d.reason


# --- guards ---------------------------------------------------------------------------------


def test_approve_requires_a_clean_worktree():
    board = Board.default()
    d = move(board, task("review"), "done", git=False)
    assert not d.ok
    assert d.reason == (
        "The worktree of 'Fix login' has uncommitted changes; "
        "commit or discard them before moving it to Done."
    )
    assert move(board, task("review"), "done", git=lambda: False).reason == d.reason
    assert move(board, task("review"), "done", git=lambda: True).intent is MoveIntent.approve


def test_git_is_only_checked_when_the_rule_needs_it():
    calls = []

    def git_clean() -> bool:
        calls.append(1)
        return False

    board = Board.default()
    assert move(board, task("backlog"), "ready", git=git_clean).ok
    assert move(board, task("review"), "in_progress", git=git_clean).ok
    assert calls == []
    assert not move(board, task("review"), "done", git=git_clean).ok
    assert calls == [1]


@pytest.mark.parametrize(("src", "dst"), [("ready", "in_progress"), ("review", "in_progress")])
def test_start_and_follow_up_require_no_running_process(src, dst):
    d = move(Board.default(), task(src), dst, proc=True)
    assert d.reason == "'Fix login' still has a running process; stop it first."


def test_approve_requires_no_running_process():
    d = move(Board.default(), task("review"), "done", proc=True)
    assert not d.ok and "running process" in d.reason


def test_plain_moves_and_cancel_ignore_running_processes():
    board = Board.default()
    assert move(board, task("backlog"), "ready", proc=True).ok
    assert move(board, task("review"), "cancelled", proc=True).intent is MoveIntent.cancel


# --- WIP limits -----------------------------------------------------------------------------


def wip_board() -> Board:
    cols = [
        column("ready", CS.ready, 0),
        column("in_progress", CS.running, 1, wip=2, name="In Progress"),
        column("review", CS.review, 2),
        column("qa", CS.review, 3, wip=3, name="Review"),
        column("done", CS.done, 4),
        column("blocked", CS.blocked, 5),
        column("cancelled", CS.cancelled, 6, wip=1),
    ]
    return Board(cols, default_rules(cols))


def test_moving_into_a_full_column_is_refused():
    d = move(wip_board(), task("review"), "qa", counts={"qa": 3})
    assert not d.ok
    assert d.reason == (
        "Review is at its WIP limit 3/3; finish or move a task out of Review first."
    )


def test_moving_below_the_limit_is_allowed():
    board = wip_board()
    assert move(board, task("review"), "qa", counts={"qa": 2}).ok
    assert move(board, task("review"), "qa", counts={}).ok  # absent = empty


def test_start_respects_the_running_limit():
    board = wip_board()
    d = move(board, task("ready"), "in_progress", counts={"in_progress": 2})
    assert d.reason.startswith("In Progress is at its WIP limit 2/2")
    assert move(board, task("ready"), "in_progress", counts={"in_progress": 1}).ok


def test_wip_limit_counts_over_the_limit_too():
    d = move(wip_board(), task("ready"), "in_progress", counts={"in_progress": 5})
    assert "5/2" in d.reason


def test_cancelling_is_never_blocked_by_a_wip_limit():
    d = move(wip_board(), task("in_progress"), "cancelled", counts={"cancelled": 10})
    assert d.ok and d.intent is MoveIntent.cancel


def test_counts_accept_any_mapping():
    counts = Counter(["in_progress", "in_progress"])
    assert not move(wip_board(), task("ready"), "in_progress", counts=dict(counts)).ok
    d = wip_board().move(
        task("ready"), "in_progress", tasks_in_columns=counts, git_clean=True,
        has_running_process=False,
    )  # fmt: skip
    assert not d.ok


# --- property: every decision is coherent ----------------------------------------------------


@given(
    src=st.sampled_from(IDS),
    dst=st.sampled_from([*IDS, "nowhere"]),
    state=st.sampled_from(list(CS)),
    git=st.booleans(),
    proc=st.booleans(),
    count=st.integers(0, 5),
)
def test_decisions_are_coherent(src, dst, state, git, proc, count):
    limits = {"in_progress": 2, "review": 3, "done": 4}
    cols = [c.model_copy(update={"wip_limit": limits.get(c.id)}) for c in DEFAULT_COLUMNS]
    board = Board(cols, DEFAULT_RULES)
    d = move(
        board, task(src, state=state), dst, counts=dict.fromkeys(IDS, count), git=git, proc=proc
    )
    if d.ok:
        assert d.reason == ""
        dst_state = board.column(d.to_column_id).canonical_state
        if state is CS.running and d.from_column_id != d.to_column_id:
            assert dst_state is CS.cancelled
        if dst_state is CS.done and d.from_column_id != d.to_column_id:
            assert git and not proc
        limit = board.column(d.to_column_id).wip_limit
        if limit is not None and d.from_column_id != d.to_column_id:
            assert count < limit
    else:
        assert d.reason and "\n" not in d.reason and d.intent is MoveIntent.none


# --- next_column ----------------------------------------------------------------------------


def test_next_column_walks_the_order():
    board = Board.default()
    assert board.next_column("ready", 1) == "in_progress"
    assert board.next_column("ready", -1) == "backlog"
    assert board.next_column("backlog", -1) is None
    assert board.next_column("cancelled", 1) is None


def test_next_column_follows_order_not_config_position():
    board = Board.from_config(
        {
            "board": {
                "columns": [
                    {"id": "done", "state": "done", "order": 40},
                    {"id": "ready", "state": "ready", "order": 10},
                    {"id": "review", "state": "review", "order": 30},
                    {"id": "doing", "state": "running", "order": 20},
                    {"id": "blocked", "state": "blocked", "order": 50},
                    {"id": "cancelled", "state": "cancelled", "order": 60},
                ]
            }
        }
    )
    assert [c.id for c in board.columns] == [
        "ready", "doing", "review", "done", "blocked", "cancelled"
    ]  # fmt: skip
    assert board.next_column("ready", 1) == "doing"
    assert board.next_column("done", -1) == "review"


def test_next_column_rejects_bad_input():
    board = Board.default()
    with pytest.raises(ValueError):
        board.next_column("ready", 2)
    with pytest.raises(KeyError):
        board.next_column("nowhere", 1)


def test_column_for_state_is_the_first_by_order():
    board = wip_board()
    assert board.column_for_state(CS.review).id == "review"
    with pytest.raises(KeyError):
        board.column_for_state(CS.backlog)


# --- validation -----------------------------------------------------------------------------


def test_duplicate_column_ids_are_refused():
    cols = [*DEFAULT_COLUMNS, column("ready", CS.ready, 9)]
    with pytest.raises(BoardConfigError, match=r"^board\.columns\[7\]\.id: 'ready' is already"):
        Board(cols, [])


@pytest.mark.parametrize(
    "missing", ["ready", "in_progress", "review", "done", "blocked", "cancelled"]
)
def test_every_state_the_engine_needs_must_have_a_column(missing):
    cols = [c for c in DEFAULT_COLUMNS if c.id != missing]
    with pytest.raises(BoardConfigError, match=r"^board\.columns: no column has state"):
        Board(cols, [])


def test_backlog_is_optional():
    cols = [c for c in DEFAULT_COLUMNS if c.id != "backlog"]
    board = Board(cols, default_rules(cols))
    assert move(board, task("ready"), "in_progress").intent is MoveIntent.start


def test_rules_must_reference_existing_columns():
    rules = [TransitionRule(from_column_id="ready", to_column_id="doing")]
    with pytest.raises(BoardConfigError, match=r"^board\.rules\[0\]\.to: no column 'doing'"):
        Board(DEFAULT_COLUMNS, rules)


def test_duplicate_rules_are_refused():
    rules = [*DEFAULT_RULES, TransitionRule(from_column_id="backlog", to_column_id="ready")]
    with pytest.raises(BoardConfigError, match=rf"^board\.rules\[{len(DEFAULT_RULES)}\]: a rule"):
        Board(DEFAULT_COLUMNS, rules)


# --- config ---------------------------------------------------------------------------------


CONFIG = """
[[board.columns]]
id = "todo"
name = "To do"
state = "ready"

[[board.columns]]
id = "doing"
name = "Doing"
state = "running"
wip_limit = 2

[[board.columns]]
id = "review"
name = "Review"
state = "review"
wip_limit = 3

[[board.columns]]
id = "shipped"
name = "Shipped"
state = "done"

[[board.columns]]
id = "stuck"
name = "Stuck"
state = "blocked"

[[board.columns]]
id = "dropped"
name = "Dropped"
state = "cancelled"

[[board.rules]]
from = "todo"
to = "doing"
requires_no_running_process = true

[[board.rules]]
from = "review"
to = "shipped"
requires_clean_git = true
"""


def test_from_config_reads_toml():
    board = Board.from_config(tomllib.loads(CONFIG))
    assert [(c.id, c.name, c.canonical_state, c.order, c.wip_limit) for c in board.columns] == [
        ("todo", "To do", CS.ready, 0, None),
        ("doing", "Doing", CS.running, 1, 2),
        ("review", "Review", CS.review, 2, 3),
        ("shipped", "Shipped", CS.done, 3, None),
        ("stuck", "Stuck", CS.blocked, 4, None),
        ("dropped", "Dropped", CS.cancelled, 5, None),
    ]
    assert board.rules == (
        TransitionRule(
            from_column_id="todo", to_column_id="doing", requires_no_running_process=True
        ),
        TransitionRule(from_column_id="review", to_column_id="shipped", requires_clean_git=True),
    )
    assert move(board, task("todo", CS.ready), "doing").intent is MoveIntent.start
    assert not move(board, task("review", CS.review), "shipped", git=False).ok
    # only the configured rules apply: no cancel rule was written
    assert "board rules do not allow" in move(board, task("todo", CS.ready), "dropped").reason


def test_no_board_table_gives_the_default_board():
    board = Board.from_config({"other": {"x": 1}})
    assert board.columns == DEFAULT_COLUMNS and board.rules == DEFAULT_RULES


def test_columns_without_rules_get_default_rules_by_state():
    data = tomllib.loads(CONFIG.split("[[board.rules]]")[0])
    board = Board.from_config(data)
    assert move(board, task("review", CS.review), "doing").intent is MoveIntent.follow_up
    assert move(board, task("doing", CS.running), "dropped").intent is MoveIntent.cancel
    assert move(board, task("shipped", CS.done), "todo").intent is MoveIntent.reopen


def test_empty_rules_allow_nothing():
    board = Board.from_config({"board": {"rules": []}})
    assert not move(board, task("backlog"), "ready").ok
    assert move(board, task("backlog"), "backlog").ok


def test_name_and_order_default():
    data = tomllib.loads(CONFIG.replace('name = "Doing"\n', ""))
    doing = Board.from_config(data).column("doing")
    assert doing.name == "doing" and doing.order == 1


def test_to_config_round_trips():
    for board in (Board.default(), Board.from_config(tomllib.loads(CONFIG)), wip_board()):
        again = Board.from_config(board.to_config())
        assert again.columns == board.columns
        assert again.rules == board.rules


def config_with(column_patch: dict | None = None, rule_patch: dict | None = None, index: int = 1):
    data = tomllib.loads(CONFIG)
    if column_patch is not None:
        data["board"]["columns"][index].update(column_patch)
    if rule_patch is not None:
        data["board"]["rules"][0].update(rule_patch)
    return data


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"board": []}, "board: must be a table"),
        ({"board": {"colums": []}}, "board.colums: unknown key"),
        ({"board": {"columns": {"id": "x"}}}, "board.columns: must be an array of tables"),
        ({"board": {"columns": [{"id": "a", "state": "ready"}, "b"]}}, "board.columns[1]: must be"),
        ({"board": {"rules": "none"}}, "board.rules: must be an array"),
        (config_with({"colour": "red"}), "board.columns[1].colour: unknown key"),
        (config_with({"state": "doing"}), "board.columns[1].state: 'doing' is not a state"),
        (config_with({"id": ""}), "board.columns[1].id: must be a non-empty string"),
        (config_with({"id": 7}), "board.columns[1].id: must be a non-empty string"),
        (config_with({"name": ["x"]}), "board.columns[1].name: must be a non-empty string"),
        (config_with({"wip_limit": 0}), "board.columns[1].wip_limit: must be at least 1"),
        (config_with({"wip_limit": "3"}), "board.columns[1].wip_limit: must be an integer"),
        (config_with({"wip_limit": True}), "board.columns[1].wip_limit: must be an integer"),
        (config_with({"order": 1.5}), "board.columns[1].order: must be an integer"),
        (config_with({"id": "todo"}), "board.columns[1].id: 'todo' is already used"),
        (config_with({"state": "ready"}), "board.columns: no column has state 'running'"),
        (config_with(rule_patch={"to": "nowhere"}), "board.rules[0].to: no column 'nowhere'"),
        (config_with(rule_patch={"from": 3}), "board.rules[0].from: must be a non-empty string"),
        (
            config_with(rule_patch={"requires_clean_git": "yes"}),
            "board.rules[0].requires_clean_git: must be true or false",
        ),
        (config_with(rule_patch={"when": "x"}), "board.rules[0].when: unknown key"),
    ],
)
def test_bad_config_names_the_key(data, key):
    with pytest.raises(BoardConfigError) as info:
        Board.from_config(data)
    assert str(info.value).startswith(key), str(info.value)
    assert "\n" not in str(info.value)


def test_missing_required_keys_are_named():
    data = config_with()
    del data["board"]["columns"][2]["state"]
    with pytest.raises(BoardConfigError, match=r"^board\.columns\[2\]\.state: missing"):
        Board.from_config(data)
    data = config_with()
    del data["board"]["rules"][0]["to"]
    with pytest.raises(BoardConfigError, match=r"^board\.rules\[0\]\.to: missing"):
        Board.from_config(data)


def test_bad_state_lists_the_valid_ones():
    with pytest.raises(BoardConfigError) as info:
        Board.from_config(config_with({"state": "doing"}))
    for state in CS:
        assert state.value in str(info.value)
