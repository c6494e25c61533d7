"""The headless board: the user's columns, the moves their rules allow, and what a move means.

Columns and rules belong to the user (TOML config); the engine only knows canonical states. `move`
answers one question for the UI and the CLI alike: may this card go there, and if so what must the
engine do (start, follow up, approve, cancel...)? A refusal is one line that says what to do, so
every front end shows the same reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from aura_core.contracts.board import BoardColumn, TransitionRule
from aura_core.contracts.engine import CanonicalTaskState
from aura_core.contracts.tasks import Task

__all__ = [
    "AFTER",
    "DEFAULT_COLUMNS",
    "DEFAULT_RULES",
    "DEFAULT_STATE_RULES",
    "REQUIRED_STATES",
    "START_WHEN_READY",
    "Board",
    "BoardConfigError",
    "MoveDecision",
    "MoveIntent",
    "default_rules",
    "unfinished_after",
]

CS = CanonicalTaskState

AFTER: Final = "after"  # the task option listing the ids of the tasks it runs after
START_WHEN_READY: Final = "start_when_ready"  # the task option of a start waiting for them


class BoardConfigError(ValueError):
    """Bad board configuration; the message starts with the key at fault, e.g. board.rules[2].to."""


class MoveIntent(StrEnum):
    """What an accepted move asks of the engine."""

    none = "none"  # a plain move: nothing for the engine to do
    start = "start"  # ready -> running: create an execution, send start_requested
    wait = "wait"  # a start of a task whose dependencies are not done: it waits in Ready
    follow_up = "follow_up"  # review -> running: ask the person for feedback first
    approve = "approve"  # review -> done
    cancel = "cancel"  # -> cancelled: send cancel_requested if an execution is live
    reopen = "reopen"  # done / blocked / cancelled -> backlog or ready


@dataclass(frozen=True)
class MoveDecision:
    """The answer to a move: ok with an intent, or refused with a one-line reason."""

    ok: bool
    intent: MoveIntent
    reason: str
    from_column_id: str
    to_column_id: str

    @property
    def needs_prompt(self) -> bool:
        """A follow-up needs the person's feedback before the engine can act on it."""
        return self.ok and self.intent is MoveIntent.follow_up


DEFAULT_COLUMNS: Final[tuple[BoardColumn, ...]] = (
    BoardColumn(id="backlog", name="Backlog", canonical_state=CS.backlog, order=0),
    BoardColumn(id="ready", name="Ready", canonical_state=CS.ready, order=1),
    BoardColumn(id="in_progress", name="In Progress", canonical_state=CS.running, order=2),
    BoardColumn(id="review", name="Review", canonical_state=CS.review, order=3),
    BoardColumn(id="done", name="Done", canonical_state=CS.done, order=4),
    BoardColumn(id="blocked", name="Blocked", canonical_state=CS.blocked, order=5),
    BoardColumn(id="cancelled", name="Cancelled", canonical_state=CS.cancelled, order=6),
)

_StatePair = tuple[CanonicalTaskState, CanonicalTaskState]

# fmt: off
# Default moves between canonical states -> (requires_clean_git, requires_no_running_process).
# Moves between two columns of the same state are allowed too, except for running.
DEFAULT_STATE_RULES: Final[dict[_StatePair, tuple[bool, bool]]] = {
    (CS.backlog, CS.ready):     (False, False),  # plan freely
    (CS.ready, CS.backlog):     (False, False),
    (CS.ready, CS.running):     (False, True),   # start
    (CS.review, CS.running):    (False, True),   # follow-up (asks for feedback)
    (CS.review, CS.done):       (True, True),    # approve: no uncommitted changes in the worktree
    (CS.blocked, CS.backlog):   (False, False),  # reopen after a failure
    (CS.blocked, CS.ready):     (False, False),
    (CS.cancelled, CS.backlog): (False, False),  # reopen a cancelled task
    (CS.cancelled, CS.ready):   (False, False),
    (CS.done, CS.backlog):      (False, False),  # reopen: a new run needs a new prompt
    (CS.done, CS.ready):        (False, False),
    **{(state, CS.cancelled): (False, False) for state in CS if state is not CS.cancelled},
    **{(state, state): (False, False) for state in CS if state is not CS.running},
}
# fmt: on

REQUIRED_STATES: Final[tuple[CanonicalTaskState, ...]] = (
    CS.ready,
    CS.running,
    CS.review,
    CS.done,
    CS.blocked,
    CS.cancelled,
)
"""States the engine moves tasks into (or starts from): a board without one could lose a card."""

_REOPEN_FROM = (CS.done, CS.blocked, CS.cancelled)
_REOPEN_TO = (CS.backlog, CS.ready)


def default_rules(columns: Iterable[BoardColumn]) -> tuple[TransitionRule, ...]:
    """Rules for any set of columns, from the default moves between their canonical states.

    Lets a user rename or add columns without writing rules: two columns mapped onto backlog and
    ready get the backlog <-> ready moves, and so on.
    """
    cols = list(columns)
    rules = []
    for a in cols:
        for b in cols:
            guards = DEFAULT_STATE_RULES.get((a.canonical_state, b.canonical_state))
            if a.id != b.id and guards is not None:
                rules.append(
                    TransitionRule(
                        from_column_id=a.id,
                        to_column_id=b.id,
                        requires_clean_git=guards[0],
                        requires_no_running_process=guards[1],
                    )
                )
    return tuple(rules)


DEFAULT_RULES: Final[tuple[TransitionRule, ...]] = default_rules(DEFAULT_COLUMNS)


def _intent(src: CanonicalTaskState, dst: CanonicalTaskState) -> MoveIntent:
    if dst is CS.cancelled and src is not CS.cancelled:
        return MoveIntent.cancel
    if dst is CS.running and src is CS.ready:
        return MoveIntent.start
    if dst is CS.running and src is CS.review:
        return MoveIntent.follow_up
    if dst is CS.done and src is CS.review:
        return MoveIntent.approve
    if src in _REOPEN_FROM and dst in _REOPEN_TO:
        return MoveIntent.reopen
    return MoveIntent.none


def unfinished_after(task: Task, lookup: Callable[[str], Task | None]) -> list[Task]:
    """The tasks `task` runs after (`options["after"]`) that are not Done yet, looked up by id;
    a removed one (lookup gives None) no longer counts."""
    out = []
    for dep_id in task.options.get(AFTER) or []:
        dep = lookup(dep_id) if isinstance(dep_id, str) else None
        if dep is not None and dep.state is not CS.done:
            out.append(dep)
    return out


def _label(task: Task) -> str:
    title = task.title if len(task.title) <= 40 else task.title[:39] + "…"
    return f"'{title}'"


class Board:
    """Columns in display order plus the rules between them, validated once at construction."""

    def __init__(self, columns: Iterable[BoardColumn], rules: Iterable[TransitionRule]) -> None:
        cols = list(columns)
        seen: dict[str, int] = {}
        for i, col in enumerate(cols):
            if not col.id:
                raise BoardConfigError(f"board.columns[{i}].id: must not be empty")
            if col.id in seen:
                raise BoardConfigError(
                    f"board.columns[{i}].id: {col.id!r} is already used by "
                    f"board.columns[{seen[col.id]}]; column ids must be unique"
                )
            seen[col.id] = i
        for state in REQUIRED_STATES:
            if not any(c.canonical_state is state for c in cols):
                raise BoardConfigError(
                    f"board.columns: no column has state {state.value!r}; the engine moves tasks "
                    f"there, so add one (e.g. id = {state.value!r}, state = {state.value!r})"
                )
        rule_list = list(rules)
        pairs: dict[tuple[str, str], int] = {}
        for i, rule in enumerate(rule_list):
            for key, ref in (("from", rule.from_column_id), ("to", rule.to_column_id)):
                if ref not in seen:
                    raise BoardConfigError(
                        f"board.rules[{i}].{key}: no column {ref!r}; "
                        f"known columns: {', '.join(seen)}"
                    )
            pair = (rule.from_column_id, rule.to_column_id)
            if pair in pairs:
                raise BoardConfigError(
                    f"board.rules[{i}]: a rule from {pair[0]!r} to {pair[1]!r} already exists "
                    f"(board.rules[{pairs[pair]}]); keep one"
                )
            pairs[pair] = i
        # stable: equal orders keep the configured sequence
        self.columns: tuple[BoardColumn, ...] = tuple(sorted(cols, key=lambda c: c.order))
        self.rules: tuple[TransitionRule, ...] = tuple(rule_list)
        self._by_id = {c.id: c for c in self.columns}
        self._rules = {(r.from_column_id, r.to_column_id): r for r in self.rules}

    # --- construction ---------------------------------------------------------------------------

    @classmethod
    def default(cls) -> Board:
        return cls(DEFAULT_COLUMNS, DEFAULT_RULES)

    @classmethod
    def from_config(cls, data: Mapping[str, Any]) -> Board:
        """A board from parsed TOML: `[[board.columns]]` and `[[board.rules]]`.

        No `[board]` table gives the default board; columns without rules get `default_rules` for
        those columns; `rules = []` means exactly that (only same-column moves).
        """
        if not isinstance(data, Mapping):
            raise BoardConfigError(f"config: must be a table, got {type(data).__name__}")
        board = data.get("board")
        if board is None:
            return cls.default()
        if not isinstance(board, Mapping):
            raise BoardConfigError(f"board: must be a table, got {type(board).__name__}")
        for key in board:
            if key not in ("columns", "rules"):
                raise BoardConfigError(f"board.{key}: unknown key; expected columns or rules")
        if "columns" in board:
            columns = [
                _parse_column(item, i)
                for i, item in enumerate(_table_list(board["columns"], "board.columns"))
            ]
        else:
            columns = list(DEFAULT_COLUMNS)
        if "rules" in board:
            rules = [
                _parse_rule(item, i)
                for i, item in enumerate(_table_list(board["rules"], "board.rules"))
            ]
        else:
            rules = list(default_rules(columns))
        return cls(columns, rules)

    def to_config(self) -> dict[str, Any]:
        """The TOML-shaped data `from_config` reads back into the same board."""
        columns: list[dict[str, Any]] = []
        for c in self.columns:
            entry: dict[str, Any] = {
                "id": c.id,
                "name": c.name,
                "state": c.canonical_state.value,
                "order": c.order,
            }
            if c.wip_limit is not None:
                entry["wip_limit"] = c.wip_limit
            columns.append(entry)
        rules = [
            {
                "from": r.from_column_id,
                "to": r.to_column_id,
                "requires_clean_git": r.requires_clean_git,
                "requires_no_running_process": r.requires_no_running_process,
            }
            for r in self.rules
        ]
        return {"board": {"columns": columns, "rules": rules}}

    # --- lookups --------------------------------------------------------------------------------

    def column(self, column_id: str) -> BoardColumn:
        try:
            return self._by_id[column_id]
        except KeyError:
            raise KeyError(f"no column {column_id!r}") from None

    def get_column(self, column_id: str) -> BoardColumn | None:
        return self._by_id.get(column_id)

    def column_for_state(self, state: CanonicalTaskState) -> BoardColumn:
        """The first column (by order) for a state: where the engine's mark_task_state lands."""
        for col in self.columns:
            if col.canonical_state is state:
                return col
        raise KeyError(f"no column has state {state.value!r}")

    def rule(self, from_column_id: str, to_column_id: str) -> TransitionRule | None:
        return self._rules.get((from_column_id, to_column_id))

    def next_column(self, column_id: str, direction: int) -> str | None:
        """The neighbouring column's id (direction -1 = left, +1 = right), None at the edge."""
        if direction not in (-1, 1):
            raise ValueError(f"direction must be -1 or 1, got {direction}")
        ids = [c.id for c in self.columns]
        if column_id not in self._by_id:
            raise KeyError(f"no column {column_id!r}")
        index = ids.index(column_id) + direction
        return ids[index] if 0 <= index < len(ids) else None

    # --- moves ----------------------------------------------------------------------------------

    def move(
        self,
        task: Task,
        to_column_id: str,
        *,
        tasks_in_columns: Mapping[str, int],
        git_clean: Callable[[], bool] | bool,
        has_running_process: bool,
    ) -> MoveDecision:
        """Decide a person's move of `task` to `to_column_id`; nothing is changed here.

        `tasks_in_columns` counts the cards per column id (for WIP limits); `git_clean` is only
        called when the rule needs it (it may walk a large worktree); `has_running_process` says
        whether any process of this task (agent, dev server) is alive.
        """
        src = self._by_id.get(task.column_id)
        if src is None:  # its column was removed from the config: treat it by its state
            src = self.column_for_state(task.state)
        dst = self._by_id.get(to_column_id)

        def refuse(reason: str) -> MoveDecision:
            return MoveDecision(False, MoveIntent.none, reason, src.id, to_column_id)

        if dst is None:
            names = ", ".join(c.id for c in self.columns)
            return refuse(f"There is no column {to_column_id!r}; pick one of: {names}.")
        if dst.id == src.id:
            return MoveDecision(True, MoveIntent.none, "", src.id, dst.id)

        s, d = src.canonical_state, dst.canonical_state
        who = _label(task)
        cancel_col = self.column_for_state(CS.cancelled)
        if (task.state is CS.running or s is CS.running) and d is not CS.cancelled:
            return refuse(f"{who} is running; stop it first (move it to {cancel_col.name}).")
        if d is CS.running and s not in (CS.ready, CS.review):
            ready = self.column_for_state(CS.ready)
            if s is CS.done:
                return refuse(
                    f"{who} is done; a new run needs a new prompt: reopen it to {ready.name}, "
                    "edit the prompt, then start it."
                )
            return refuse(f"Tasks start from {ready.name}: move {who} to {ready.name} first.")
        if d is CS.done and s not in (CS.review, CS.done):
            review = self.column_for_state(CS.review)
            return refuse(
                f"{who} has not been reviewed; only tasks in {review.name} can move to "
                f"{dst.name} (start it, then approve it there)."
            )
        if d is CS.review and s is not CS.review:
            ready = self.column_for_state(CS.ready)
            return refuse(
                f"{dst.name} is filled by runs that finish; start {who} from {ready.name} instead."
            )

        rule = self._rules.get((src.id, dst.id))
        if rule is None:
            return refuse(
                f"The board rules do not allow {src.name} → {dst.name}; "
                f"add a [[board.rules]] entry from {src.id!r} to {dst.id!r} to allow it."
            )
        intent = _intent(s, d)
        if dst.wip_limit is not None and intent is not MoveIntent.cancel:
            count = tasks_in_columns.get(dst.id, 0)
            if count >= dst.wip_limit:
                return refuse(
                    f"{dst.name} is at its WIP limit {count}/{dst.wip_limit}; "
                    f"finish or move a task out of {dst.name} first."
                )
        if rule.requires_no_running_process and has_running_process:
            return refuse(f"{who} still has a running process; stop it first.")
        if rule.requires_clean_git:
            clean = git_clean() if callable(git_clean) else git_clean
            if not clean:
                return refuse(
                    f"The worktree of {who} has uncommitted changes; commit or discard them "
                    f"before moving it to {dst.name}."
                )
        return MoveDecision(True, intent, "", src.id, dst.id)


# --- config parsing -----------------------------------------------------------------------------

_COLUMN_KEYS = ("id", "name", "state", "wip_limit", "order")
_RULE_KEYS = ("from", "to", "requires_clean_git", "requires_no_running_process")


def _table_list(value: object, key: str) -> list[Mapping[str, Any]]:
    if not isinstance(value, list):
        raise BoardConfigError(
            f"{key}: must be an array of tables ([[{key}]]), got {type(value).__name__}"
        )
    for i, item in enumerate(value):
        if not isinstance(item, Mapping):
            raise BoardConfigError(f"{key}[{i}]: must be a table, got {type(item).__name__}")
    return value


def _check_keys(item: Mapping[str, Any], where: str, allowed: tuple[str, ...]) -> None:
    for key in item:
        if key not in allowed:
            raise BoardConfigError(
                f"{where}.{key}: unknown key; expected one of {', '.join(allowed)}"
            )


def _text(item: Mapping[str, Any], key: str, where: str, default: str | None = None) -> str:
    if key not in item:
        if default is None:
            raise BoardConfigError(f"{where}.{key}: missing; it is required")
        return default
    value = item[key]
    if not isinstance(value, str) or not value.strip():
        raise BoardConfigError(f"{where}.{key}: must be a non-empty string, got {value!r}")
    return value


def _int(item: Mapping[str, Any], key: str, where: str) -> int | None:
    value = item.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise BoardConfigError(f"{where}.{key}: must be an integer, got {value!r}")
    return value


def _flag(item: Mapping[str, Any], key: str, where: str) -> bool:
    value = item.get(key, False)
    if not isinstance(value, bool):
        raise BoardConfigError(f"{where}.{key}: must be true or false, got {value!r}")
    return value


def _parse_column(item: Mapping[str, Any], i: int) -> BoardColumn:
    where = f"board.columns[{i}]"
    _check_keys(item, where, _COLUMN_KEYS)
    column_id = _text(item, "id", where)
    state_text = _text(item, "state", where)
    try:
        state = CanonicalTaskState(state_text)
    except ValueError:
        raise BoardConfigError(
            f"{where}.state: {state_text!r} is not a state; "
            f"use one of {', '.join(s.value for s in CanonicalTaskState)}"
        ) from None
    wip_limit = _int(item, "wip_limit", where)
    if wip_limit is not None and wip_limit < 1:
        raise BoardConfigError(
            f"{where}.wip_limit: must be at least 1, got {wip_limit} (leave it out for no limit)"
        )
    order = _int(item, "order", where)
    return BoardColumn(
        id=column_id,
        name=_text(item, "name", where, default=column_id),
        canonical_state=state,
        order=i if order is None else order,
        wip_limit=wip_limit,
    )


def _parse_rule(item: Mapping[str, Any], i: int) -> TransitionRule:
    where = f"board.rules[{i}]"
    _check_keys(item, where, _RULE_KEYS)
    return TransitionRule(
        from_column_id=_text(item, "from", where),
        to_column_id=_text(item, "to", where),
        requires_clean_git=_flag(item, "requires_clean_git", where),
        requires_no_running_process=_flag(item, "requires_no_running_process", where),
    )
