"""The board screen: cursor keys, moves by key and by drag, refused moves, filter, keymap."""

from __future__ import annotations

import pytest

from aura_core.board import DEFAULT_RULES, Board
from aura_core.contracts import CanonicalTaskState
from aura_core.store.memory import MemoryStore
from aura_tui.screens.board import BoardScreen
from aura_tui.services import AuraService, UiEvent
from aura_tui.widgets.column import Column

from .helpers import EXECUTORS, clock, make_app, make_task, screen_text

CS = CanonicalTaskState
pytestmark = pytest.mark.anyio


def board_tasks() -> list:
    return [
        make_task(1, "Fix login bug", "backlog", executor="claude", model="sonnet"),
        make_task(2, "Second backlog", "backlog"),
        make_task(3, "Add dark mode", "ready", executor="codex"),
        make_task(4, "Refactor store", "in_progress"),
        make_task(5, "Write docs", "review"),
    ]


async def settle(app, pilot) -> None:
    await pilot.pause()
    await app.workers.wait_for_complete()
    await pilot.pause()


def column_of(app, title: str) -> str:
    for task in app.service.tasks():
        if task.title == title:
            return task.column_id
    raise KeyError(title)


def current_title(app) -> str | None:
    card = app.screen.current_card
    return None if card is None else card.task.title


async def test_board_shows_columns_and_cards() -> None:
    app = make_app(board_tasks())
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        text = screen_text(app)
        for name in ("Backlog 2", "Ready 1", "In Progress 1", "Review 1", "Done 0"):
            assert name in text
        assert "Blocked" not in text and "Cancelled" not in text  # hidden while empty
        assert "Fix login bug" in text and "claude · sonnet" in text
        assert "needs review" in text


async def test_blocked_column_shows_when_non_empty() -> None:
    task = make_task(1, "Broken", "blocked", blocked_reason="exited with code 2")
    app = make_app([task])
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        text = screen_text(app)
        assert "Blocked 1" in text and "✗ exited" in text


async def test_cursor_moves_with_arrows_and_hjkl() -> None:
    app = make_app(board_tasks())
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        assert current_title(app) == "Fix login bug"
        await pilot.press("down")
        assert current_title(app) == "Second backlog"
        await pilot.press("k")
        assert current_title(app) == "Fix login bug"
        await pilot.press("j")
        await pilot.press("right")
        assert current_title(app) == "Add dark mode"
        await pilot.press("l")
        assert current_title(app) == "Refactor store"
        await pilot.press("h")
        await pilot.press("left")
        assert current_title(app) == "Fix login bug"  # row clamped in the 1-card columns


async def test_shift_arrows_and_HL_move_the_card() -> None:
    app = make_app(board_tasks())
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("shift+right")
        await settle(app, pilot)
        assert column_of(app, "Fix login bug") == "ready"
        assert current_title(app) == "Fix login bug"  # the cursor follows the card
        await pilot.press("shift+left")
        await settle(app, pilot)
        assert column_of(app, "Fix login bug") == "backlog"
        await pilot.press("L")
        await settle(app, pilot)
        assert column_of(app, "Fix login bug") == "ready"
        await pilot.press("H")
        await settle(app, pilot)
        assert column_of(app, "Fix login bug") == "backlog"


async def test_refused_move_explains_and_card_stays() -> None:
    app = make_app(board_tasks())
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("l", "l")  # In Progress
        assert current_title(app) == "Refactor store"
        await pilot.press("L")
        await settle(app, pilot)
        assert column_of(app, "Refactor store") == "in_progress"
        messages = [n.message for n in app._notifications]
        assert any("is running; stop it first" in m for m in messages)


async def test_wip_limit_shown_and_enforced() -> None:
    columns = [
        c.model_copy(update={"wip_limit": 1}) if c.id == "ready" else c
        for c in Board.default().columns
    ]
    board = Board(columns, DEFAULT_RULES)
    store = MemoryStore()
    service = AuraService(store, board=board, clock=clock, executors=lambda: list(EXECUTORS))
    app = make_app(board_tasks(), store=store, service=service)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        assert "Ready 1/1" in screen_text(app)
        await pilot.press("L")
        await settle(app, pilot)
        assert column_of(app, "Fix login bug") == "backlog"
        assert any("WIP limit 1/1" in n.message for n in app._notifications)


async def test_over_limit_column_is_highlighted() -> None:
    columns = [
        c.model_copy(update={"wip_limit": 1}) if c.id == "backlog" else c
        for c in Board.default().columns
    ]
    store = MemoryStore()
    service = AuraService(store, board=Board(columns, DEFAULT_RULES), clock=clock)
    app = make_app(board_tasks(), store=store, service=service)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        col = app.screen.query_one("#col-backlog", Column)
        assert col.has_class("-over-limit")
        assert "Backlog 2/1" in screen_text(app)


async def test_drag_moves_card_to_highlighted_column() -> None:
    app = make_app(board_tasks())
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        screen = app.screen
        source = screen.query_one("#col-backlog", Column)
        card = source.card_for(make_task(1, "x").id)
        assert card is not None
        target = screen.query_one("#col-ready", Column)
        await pilot.mouse_down(card, offset=(3, 1))
        await pilot.hover(target, offset=(5, 10))
        await pilot.pause()
        assert target.has_class("-drop-target")
        assert not target.has_class("-drop-refused")
        await pilot.mouse_up(target, offset=(5, 10))
        await settle(app, pilot)
        assert not target.has_class("-drop-target")
        assert column_of(app, "Fix login bug") == "ready"


async def test_drag_to_refused_column_is_marked_and_refused() -> None:
    app = make_app(board_tasks())
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        screen = app.screen
        card = screen.query_one("#col-backlog", Column).card_for(make_task(1, "x").id)
        target = screen.query_one("#col-done", Column)
        await pilot.mouse_down(card, offset=(3, 1))
        await pilot.hover(target, offset=(5, 10))
        await pilot.pause()
        assert target.has_class("-drop-refused")
        await pilot.mouse_up(target, offset=(5, 10))
        await settle(app, pilot)
        assert column_of(app, "Fix login bug") == "backlog"
        assert any("has not been reviewed" in n.message for n in app._notifications)


async def test_escape_cancels_a_drag() -> None:
    app = make_app(board_tasks())
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        screen = app.screen
        card = screen.query_one("#col-backlog", Column).card_for(make_task(1, "x").id)
        target = screen.query_one("#col-ready", Column)
        await pilot.mouse_down(card, offset=(3, 1))
        await pilot.hover(target, offset=(5, 10))
        await pilot.press("escape")
        await pilot.mouse_up(target, offset=(5, 10))
        await settle(app, pilot)
        assert not target.has_class("-drop-target")
        assert column_of(app, "Fix login bug") == "backlog"


async def test_filter_cards() -> None:
    app = make_app(board_tasks())
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("slash")
        await pilot.press(*"dark")
        await pilot.pause()
        text = screen_text(app)
        assert "Add dark mode" in text and "Fix login bug" not in text
        assert "Backlog 2" in text  # counts stay the column's real counts
        await pilot.press("enter")
        await pilot.press("escape")
        await pilot.pause()
        assert "Fix login bug" in screen_text(app)


async def test_keymap_remaps_binding_ids() -> None:
    app = make_app(board_tasks(), keymap={"board.move_right": "ctrl+l"})
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("ctrl+l")
        await settle(app, pilot)
        assert column_of(app, "Fix login bug") == "ready"


async def test_footer_shows_review_keys_only_on_review_cards() -> None:
    app = make_app(board_tasks())
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        assert "Approve" not in screen_text(app)
        await pilot.press("l", "l", "l")
        await pilot.pause()
        assert current_title(app) == "Write docs"
        text = screen_text(app)
        assert "Approve" in text and "Follow-up" in text and "Diff" in text


async def test_command_palette_lists_board_actions() -> None:
    app = make_app(board_tasks())
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for title in (
            "Move the card to the next column",
            "Move the card to the previous column",
            "New task",
            "Filter cards",
            "Help: every key",
            "Quit",
            "Theme",
        ):
            assert title in titles
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"next column")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await settle(app, pilot)
        assert column_of(app, "Fix login bug") == "ready"


async def test_theme_is_remembered() -> None:
    app = make_app(board_tasks())
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        app.theme = "nord"
        await pilot.pause()
        assert app.service.get_setting("tui.theme") == "nord"
    store = app.service.store
    app2 = make_app(store=store)
    async with app2.run_test(size=(120, 40)) as pilot:
        await settle(app2, pilot)
        assert app2.theme == "nord"


async def test_bell_and_toast_when_a_task_needs_review_or_fails() -> None:
    app = make_app(board_tasks())
    bells: list[int] = []
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        app.bell = lambda: bells.append(1)  # type: ignore[method-assign]
        store = app.service.store
        running = make_task(4, "x").id
        store.update_task(running, state=CS.review, column_id="review")
        app.dispatch_events([UiEvent("task_changed", task_id=running)])
        await pilot.pause()
        assert bells == [1]
        assert any("needs review" in n.message for n in app._notifications)
        store.update_task(running, state=CS.blocked, column_id="blocked", blocked_reason="boom")
        app.dispatch_events([UiEvent("task_changed", task_id=running)])
        await pilot.pause()
        assert len(bells) == 2
        assert any("failed: boom" in n.message for n in app._notifications)


async def test_events_from_threads_are_batched() -> None:
    import threading

    app = make_app(board_tasks())
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        seen: list[int] = []
        original = app.dispatch_events

        def counting(events) -> None:
            events = list(events)
            seen.append(len(events))
            original(events)

        app.dispatch_events = counting  # type: ignore[method-assign]

        def flood() -> None:
            for i in range(2000):
                app._on_service_event(
                    UiEvent("log", session_id="s", rows=[("s", i, "stdout", 0.0, "x", None)])
                )

        thread = threading.Thread(target=flood)
        thread.start()
        thread.join()
        await pilot.pause(0.2)
        assert sum(seen) == 2000
        assert len(seen) < 20  # a few drains, never one message per line


async def test_many_cards_are_pooled() -> None:
    tasks = [make_task(i, f"Task {i}", "backlog") for i in range(300)]
    app = make_app(tasks)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        col = app.screen.query_one("#col-backlog", Column)
        assert len(col.slots) < 15
        assert "↓" in screen_text(app)
        for _ in range(20):
            await pilot.press("j")
        assert current_title(app) == "Task 20"
        assert "Task 20" in screen_text(app)


async def test_quit_without_running_tasks_exits() -> None:
    app = make_app(board_tasks())
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 0


async def test_board_screen_is_default() -> None:
    app = make_app([])
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        assert isinstance(app.screen, BoardScreen)
