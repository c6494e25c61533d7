"""The board's newer behaviour: moves that redraw only two columns, readable columns that scroll
sideways, the worker filter, the lost-worker badge, the empty state, stderr marks in raw logs."""

from __future__ import annotations

import pytest
from textual import events

from aura_core.contracts import SessionStatus
from aura_core.store.memory import MemoryStore
from aura_tui.services import AuraService, UiEvent
from aura_tui.widgets.card import Card, wrap
from aura_tui.widgets.column import Column
from aura_tui.widgets.log_view import LIVE_KEEP, LineSource

from .fakes import FakeService, add_session
from .helpers import EXECUTORS, clock, make_app, make_task, screen_text

pytestmark = pytest.mark.anyio


async def settle(app, pilot) -> None:
    await pilot.pause()
    await app.workers.wait_for_complete()
    await pilot.pause()


def seven_columns() -> list:
    return [
        make_task(1, "Plan the public API for plugins", "backlog", executor="claude"),
        make_task(2, "Add dark mode", "ready", executor="codex"),
        make_task(3, "Refactor store", "in_progress", worker_id="build-box"),
        make_task(4, "Write docs", "review"),
        make_task(5, "Ship v1", "done"),
        make_task(
            6,
            "Migrate DB",
            "blocked",
            worker_id="gpu-1",
            blocked_reason="worker gpu-1 lost (no heartbeat for 30s)",
        ),
        make_task(7, "Flaky", "blocked", blocked_reason="exited with code 2"),
        make_task(8, "Old idea", "cancelled"),
    ]


# --- moves ------------------------------------------------------------------------------------
async def test_a_move_redraws_only_the_two_columns_and_reloads_nothing() -> None:
    tasks = [make_task(i, f"Task {i}", ("backlog", "ready", "review")[i % 3]) for i in range(300)]
    app = make_app(tasks)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        screen = app.screen
        calls: list[str] = []
        for col in screen.columns:
            original = col.set_cards

            def spy(cards, total, col=col, original=original) -> None:
                calls.append(col.column_id)
                original(cards, total)

            col.set_cards = spy  # type: ignore[method-assign]
        loads: list[int] = []
        service_tasks = app.service.tasks
        app.service.tasks = lambda: loads.append(1) or service_tasks()  # type: ignore[method-assign]
        card = screen.current_card
        await pilot.press("L")
        # shown at once (before the engine's record and its event)
        assert screen.current_column.column_id == "ready"
        assert screen.current_card.id == card.id
        await settle(app, pilot)
        await pilot.pause(0.1)
        assert set(calls) == {"backlog", "ready"}
        assert loads == []  # no full reload of the board
        assert app.service.task(card.id).column_id == "ready"
        assert screen.query_one("#col-ready", Column).total == 101


async def test_a_refused_engine_move_is_corrected() -> None:
    class Refusing(AuraService):
        def move(self, task_id, column_id, feedback=None):  # type: ignore[override]
            from aura_core.board import MoveDecision, MoveIntent

            return MoveDecision(False, MoveIntent.none, "the engine said no", "backlog", column_id)

    store = MemoryStore()
    service = Refusing(store, clock=clock, executors=lambda: list(EXECUTORS))
    app = make_app([make_task(1, "Stay", "backlog")], store=store, service=service)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("L")
        await settle(app, pilot)
        await pilot.pause(0.1)
        assert app.screen.query_one("#col-backlog", Column).cards[0].task.title == "Stay"
        assert not app.screen.query_one("#col-ready", Column).cards
        assert any("the engine said no" in n.message for n in app._notifications)


# --- layout -----------------------------------------------------------------------------------
def test_titles_wrap_on_two_lines() -> None:
    assert wrap("Plan the public API for plugins", 18, 2) == ["Plan the public", "API for plugins"]
    assert wrap("Refactor the store layer so that moves are cheap", 16, 2) == [
        "Refactor the",
        "store layer so…",
    ]
    assert wrap("short", 16, 2) == ["short"]


@pytest.mark.parametrize("size", [(120, 40), (80, 24)])
async def test_columns_keep_a_readable_width_and_scroll_to_the_cursor(size) -> None:
    app = make_app(seven_columns())
    async with app.run_test(size=size) as pilot:
        await settle(app, pilot)
        screen = app.screen
        for col in screen.visible_columns:
            width = col.styles.width.value
            assert width >= (16 if col.summary else 22), (col.column_id, width)
        text = screen_text(app)
        assert "Plan the public" in text and "for plugins" in text  # wrapped, not cut
        assert "Blocked 2" in text and "→" in text  # off-screen columns are named
        for _ in range(5):
            await pilot.press("l")
        await pilot.pause()
        assert screen.current_column.column_id == "blocked"
        text = screen_text(app)
        assert "Migrate DB" in text and "←" in text


async def test_done_is_a_summary_column_until_focused() -> None:
    app = make_app(seven_columns())
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        done = app.screen.query_one("#col-done", Column)
        assert done.summary and done.styles.width.value == 18
        assert "✓ Ship v1" in screen_text(app)
        for _ in range(4):
            await pilot.press("l")
        await pilot.pause()
        assert app.screen.current_column is done and not done.summary
        assert done.styles.width.value >= 24


# --- workers ----------------------------------------------------------------------------------
async def test_filter_by_worker() -> None:
    app = make_app(seven_columns())
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("slash")
        await pilot.press(*"@build")
        await pilot.pause()
        shown = {c.task.title for col in app.screen.columns for c in col.cards}
        assert shown == {"Refactor store"}
        await pilot.press(*[("backspace")] * 6)
        await pilot.press(*"@local")
        await pilot.pause()
        shown = {c.task.title for col in app.screen.columns for c in col.cards}
        assert "Refactor store" not in shown and "Migrate DB" not in shown
        assert "Add dark mode" in shown
        await pilot.press("escape")
        await pilot.pause()
        shown = {c.task.title for col in app.screen.columns for c in col.cards}
        assert len(shown) == 8


async def test_lost_worker_has_its_own_badge() -> None:
    app = make_app(seven_columns())
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        for _ in range(5):
            await pilot.press("l")
        await pilot.pause()
        blocked = app.screen.query_one("#col-blocked", Column)
        lost = blocked.card_for(make_task(6, "x").id)
        other = blocked.card_for(make_task(7, "x").id)
        assert lost is not None and other is not None
        assert lost.has_class("-lost") and not lost.has_class("-failed")
        assert other.has_class("-failed") and not other.has_class("-lost")
        text = screen_text(app)
        assert "LOST  gpu-1" in text
        assert "✗ exited with cod" in text


# --- empty state ------------------------------------------------------------------------------
async def test_empty_board_says_what_to_do_next() -> None:
    app = make_app([])
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await settle(app, pilot)
        text = screen_text(app)
        assert "No tasks yet" in text and "Press n to add a task" in text
        assert "Agents ready: custom, claude" in text and "Not installed: codex" in text
        assert "aura doctor" in text
        await pilot.press("n")
        await settle(app, pilot)
        await pilot.press(*"First")
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        assert not app.screen.query_one("#empty-state").display


async def test_not_a_repo_is_explained() -> None:
    store = MemoryStore()
    service = AuraService(
        store,
        clock=clock,
        executors=lambda: list(EXECUTORS),
        repo="/tmp/plain",
        repo_problem="/tmp/plain is not in a git repository.",
    )
    app = make_app(store=store, service=service)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        text = screen_text(app)
        assert "not in a git repository" in text and "git init" in text


# --- raw lines --------------------------------------------------------------------------------
async def test_raw_view_marks_stderr_and_system_lines() -> None:
    store = MemoryStore()
    task = make_task(1, "Mixed", "in_progress", executor="custom")
    store.create_task(task)
    session = add_session(store, task.id, [], executor="custom", status=SessionStatus.running)
    app = make_app(service=FakeService(store))
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        await pilot.press("enter")
        await settle(app, pilot)
        rows = [
            (session.id, 0, "stdout", 0.0, "the stdout line", None),
            (session.id, 1, "stderr", 0.0, "warning: on stderr", None),
            (session.id, 2, "system", 0.0, "aura: agent exited 0", None),
        ]
        app.dispatch_events([UiEvent("log", task.id, session.id, rows=rows)])
        await pilot.pause()
        lines = screen_text(app).splitlines()
        out = next(line for line in lines if "the stdout line" in line)
        err = next(line for line in lines if "warning: on stderr" in line)
        sys_ = next(line for line in lines if "aura: agent exited" in line)
        assert "▌ warning: on stderr" in err and "▌" not in out
        assert "· aura: agent exited 0" in sys_


def test_line_source_keeps_batches_not_lines() -> None:
    pages: list[tuple[int, int]] = []

    def loader(start: int, limit: int) -> list[tuple[int, str, str]]:
        pages.append((start, limit))
        return [(i, "stdout", f"stored {i}") for i in range(start, min(start + limit, 10))]

    source = LineSource(loader, 10)
    batch = [("s", i, "stdout", 0.0, f"live {i}", None) for i in range(10, 2010)]
    assert source.add(batch) == 2000
    assert source._chunks[-1] is batch  # the batch itself is kept: O(1) per batch
    assert source.line(10) == ("stdout", "live 10")
    assert source.add(batch[-5:]) == 0  # seen twice: ignored
    assert source.line(3) == ("stdout", "stored 3") and pages == [(0, 512)]
    big = 2010
    while source.count < 2010 + LIVE_KEEP + 5000:
        source.add([("s", i, "stderr", 0.0, "x", None) for i in range(big, big + 5000)])
        big += 5000
    assert source._live <= LIVE_KEEP + 5000  # old batches dropped: the store has them
    assert source.line(source.count - 1) == ("stderr", "x")


async def test_footer_keys_are_clickable() -> None:
    app = make_app([])
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        from aura_tui.screens.new_task import NewTaskScreen
        from aura_tui.widgets.footer import AuraFooter

        footer = app.screen.query_one(AuraFooter)
        start, _end, _item = footer._spans[0]
        await pilot.click(AuraFooter, offset=(start + 1, 0))
        await settle(app, pilot)
        assert isinstance(app.screen, NewTaskScreen)


def test_card_class_for_lost_worker() -> None:
    from aura_tui.services import CardInfo

    task = make_task(1, "x", "blocked", worker_id="w", blocked_reason="worker w lost")
    card = Card(clock=clock)
    card.show(CardInfo(task, "failed", "worker w lost"))
    assert card.has_class("-lost")


async def test_scrolling_sideways_with_the_mouse_updates_the_off_screen_line() -> None:
    app = make_app(seven_columns())
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        hint = app.screen.query_one("#board-hint")
        assert "←" not in str(hint.render()) and "→" in str(hint.render())
        board = app.screen.query_one("#board")
        for _ in range(30):  # shift+wheel, as a mouse scrolls a board sideways
            board.post_message(
                events.MouseScrollDown(board, 10, 5, 0, 0, 0, shift=True, meta=False, ctrl=False)
            )
        await pilot.pause(0.3)
        assert board.scroll_x > 0
        line = str(hint.render())
        assert "←" in line, line  # columns now off the left edge are named
        board.scroll_home(animate=False)
        await pilot.pause()
        assert "←" not in str(hint.render())
