"""SVG snapshots of the board and its screens at 120x40 and 80x24 (baselines in `snapshots/`).

Deterministic: a fixed clock, fixed ids, no spinner animation, a fixed executor list.
"""

from __future__ import annotations

from typing import Any

import pytest

from aura_core.contracts import SessionStatus
from aura_core.store.memory import MemoryStore
from aura_tui.services import WAITING

from .fakes import FakeService, add_session
from .helpers import NOW, make_app, make_task

SIZES = [pytest.param((120, 40), id="120x40"), pytest.param((80, 24), id="80x24")]
LOG = [
    "say: I'll add an **email** field to `User` and update the README.",
    "tool: rg -n 'class User' => app/models.py:5:class User:",
    "tool: pytest -q => 12 passed in 0.4s",
    "say: Done. The tests pass:\\n\\n- `User.email` is optional\\n- README mentions it",
    "error: ruff: 1 warning (E501 line too long)",
]


async def _settle(pilot: Any) -> None:
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def busy_app() -> Any:
    store = MemoryStore()
    tasks = [
        make_task(1, "Plan the API", "backlog", executor="claude", model="opus"),
        make_task(2, "Add dark mode", "ready", executor="codex", model="gpt-5"),
        make_task(3, "Refactor store", "in_progress", executor="claude", model="sonnet"),
        make_task(4, "Migrate DB", "in_progress", executor="gemini", worker_id="build-box"),
        make_task(5, "Add email field", "review", executor="fake"),
        make_task(6, "Ship v1", "done", executor="custom"),
        make_task(
            7, "Flaky test fix", "blocked", executor="custom", blocked_reason="exited with code 2"
        ),
        make_task(8, "Old idea", "cancelled", executor="custom"),
    ]
    for task in tasks:
        store.create_task(task)
    add_session(store, tasks[2].id, ["x"], n=1, status=SessionStatus.running)
    add_session(store, tasks[3].id, ["x"], n=2, status=SessionStatus.running)
    add_session(store, tasks[4].id, LOG, n=3)
    service = FakeService(store)
    service.running = {tasks[2].id, tasks[3].id}
    service._live[tasks[3].id] = (WAITING, NOW - 95)
    service.set_diff_stats(tasks[2].id, 42, 7)
    service.set_diff_stats(tasks[4].id, 4, 1)
    return make_app(service=service)


@pytest.mark.parametrize("size", SIZES)
def test_board_empty(snap_compare: Any, size: tuple[int, int]) -> None:
    """A new user's first screen: what to do next, and which agents are ready."""
    assert snap_compare(make_app([]), terminal_size=size, run_before=_settle)


@pytest.mark.parametrize("size", SIZES)
def test_board_busy(snap_compare: Any, size: tuple[int, int]) -> None:
    assert snap_compare(busy_app(), terminal_size=size, run_before=_settle)


@pytest.mark.parametrize("size", SIZES)
def test_new_task_modal(snap_compare: Any, size: tuple[int, int]) -> None:
    async def run_before(pilot: Any) -> None:
        await _settle(pilot)
        await pilot.press("n")
        await _settle(pilot)
        await pilot.press(*"Add email field")

    assert snap_compare(make_app([]), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_detail_with_log(snap_compare: Any, size: tuple[int, int]) -> None:
    async def run_before(pilot: Any) -> None:
        await _settle(pilot)
        pilot.app.screen._focus_task(make_task(5, "x").id)
        pilot.app.screen._place_cursor()
        await pilot.press("enter")
        await _settle(pilot)
        await pilot.pause(0.1)

    assert snap_compare(busy_app(), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_diff_view(snap_compare: Any, size: tuple[int, int]) -> None:
    async def run_before(pilot: Any) -> None:
        await _settle(pilot)
        pilot.app.screen._focus_task(make_task(5, "x").id)
        pilot.app.screen._place_cursor()
        await pilot.press("d")
        await _settle(pilot)
        await pilot.press("j", "j", "j", "j", "j", "j")
        await pilot.pause()

    assert snap_compare(busy_app(), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_help(snap_compare: Any, size: tuple[int, int]) -> None:
    assert snap_compare(make_app([]), terminal_size=size, press=["question_mark"])
