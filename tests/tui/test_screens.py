"""Task detail (live log, raw toggle, follow-tail, sessions), new task, help, review keys,
permission and quit dialogs."""

from __future__ import annotations

import pytest

from aura_core.contracts import SessionStatus
from aura_core.executors import entries as E
from aura_core.store.memory import MemoryStore
from aura_tui.screens.board import BoardScreen
from aura_tui.screens.dialogs import ChoiceScreen, PermissionScreen
from aura_tui.screens.help import HelpScreen
from aura_tui.screens.new_task import NewTaskScreen, parse_options
from aura_tui.screens.review import ReviewScreen, format_comments
from aura_tui.screens.task_detail import TaskDetailScreen
from aura_tui.services import AuraService, UiEvent
from aura_tui.widgets.diff_view import DiffView, parse_patch
from aura_tui.widgets.entry_view import EntryItem, EntryView
from aura_tui.widgets.log_view import LogView

from .fakes import FakeRuntime, FakeService, add_session
from .helpers import make_app, make_task, screen_text

pytestmark = pytest.mark.anyio

LOG = [
    "say: I will **fix** the bug.\\n\\n- first\\n- second",
    "tool: pytest -q => 3 passed",
    "error: the linter failed",
    "plain line",
]


async def settle(app, pilot) -> None:
    await pilot.pause()
    await app.workers.wait_for_complete()
    await pilot.pause()


async def wait_for_screen(app, pilot, cls) -> None:
    for _ in range(100):
        await pilot.pause(0.02)
        if isinstance(app.screen, cls) and app.screen.is_mounted and screen_text(app).strip():
            await pilot.pause()
            return
    raise AssertionError(f"{cls.__name__} never showed; screen is {app.screen}")


def detail_app(lines: list[str] | None = None, **kw):
    store = MemoryStore()
    task = make_task(1, "Fix login bug", "review", executor="fake")
    store.create_task(task)
    add_session(store, task.id, lines if lines is not None else LOG, **kw)
    service = FakeService(store)
    return make_app(service=service), task, service


async def test_enter_opens_detail_with_entries() -> None:
    app, _task, _ = detail_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("enter")
        await settle(app, pilot)
        assert isinstance(app.screen, TaskDetailScreen)
        text = screen_text(app)
        assert "fix the bug" in text and "• first" in text
        assert "$ pytest -q (exit 0)" in text
        assert "error: the linter failed" in text
        errors = [i for i in app.screen.query(EntryItem) if i.has_class("-error")]
        assert len(errors) == 1
        await pilot.press("escape")
        assert isinstance(app.screen, BoardScreen)


async def test_tool_call_expands_its_output() -> None:
    app, _task, _ = detail_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("enter")
        await settle(app, pilot)
        tool = next(i for i in app.screen.query(EntryItem) if i.has_class("-tool"))
        assert "3 passed" not in screen_text(app)
        tool.focus()
        await pilot.press("enter")
        await pilot.pause()
        assert "3 passed" in screen_text(app)


async def test_raw_toggle_shows_lines() -> None:
    app, _task, _ = detail_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("enter")
        await settle(app, pilot)
        await pilot.press("r")
        await pilot.pause()
        assert app.screen.query_one(LogView).display
        assert "tool: pytest -q => 3 passed" in screen_text(app)
        await pilot.press("r")
        await pilot.pause()
        assert not app.screen.query_one(LogView).display


async def test_live_rows_and_patches_follow_the_tail() -> None:
    store = MemoryStore()
    task = make_task(1, "Long run", "in_progress", executor="fake")
    store.create_task(task)
    session = add_session(
        store, task.id, [f"line {i}" for i in range(500)], status=SessionStatus.running
    )
    service = FakeService(store)
    app = make_app(service=service)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("enter")
        await settle(app, pilot)
        screen = app.screen
        await pilot.press("r")
        await pilot.pause()
        view = screen.query_one(LogView)
        assert view.line_count == 500
        assert "line 499" in screen_text(app)
        rows = [(session.id, 500 + i, "stdout", 0.0, f"live {i}", None) for i in range(100)]
        app.dispatch_events([UiEvent("log", task.id, session.id, rows=rows)])
        await pilot.pause()
        assert view.line_count == 600
        assert "live 99" in screen_text(app)
        # scrolling up stops the follow; new lines no longer move the view
        view.focus()
        await pilot.press("pageup")
        await pilot.pause()
        assert not view.follow
        more = [(session.id, 600 + i, "stdout", 0.0, f"later {i}", None) for i in range(10)]
        app.dispatch_events([UiEvent("log", task.id, session.id, rows=more)])
        await pilot.pause()
        assert "later 9" not in screen_text(app)
        await pilot.press("end")
        await pilot.pause()
        assert view.follow and "later 9" in screen_text(app)
        # entries patches append in place
        await pilot.press("r")
        patch = E.EntryPatch("append", 500, E.AssistantMessage("all **done**"))
        app.dispatch_events([UiEvent("entries", task.id, session.id, patches=[patch])])
        for _ in range(20):
            await pilot.pause(0.05)
            if "all done" in screen_text(app):
                break
        assert "all done" in screen_text(app)
        assert len(screen.query_one(EntryView).entries) == 501


async def test_million_line_log_opens_virtualised() -> None:
    import time

    store = MemoryStore()
    task = make_task(1, "Huge", "review", executor="custom")
    store.create_task(task)
    session = add_session(store, task.id, [], executor="custom")
    store.append_log([(session.id, i, "stdout", 0.0, f"row {i}", None) for i in range(200_000)])
    app = make_app(service=FakeService(store))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        start = time.perf_counter()
        await pilot.press("enter")
        await settle(app, pilot)
        assert time.perf_counter() - start < 2
        view = app.screen.query_one(LogView)
        assert view.line_count == 200_000
        assert "row 199999" in screen_text(app)
        assert view.source._pages.__len__() <= 2  # only the visible pages were read


async def test_sessions_tab_lists_history_and_switches() -> None:
    store = MemoryStore()
    task = make_task(1, "Two turns", "review", executor="fake")
    store.create_task(task)
    add_session(store, task.id, ["say: first turn"], n=1)
    add_session(store, task.id, ["say: second turn"], n=2, stage="coding_follow_up")
    app = make_app(service=FakeService(store))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("enter")
        await settle(app, pilot)
        assert "second turn" in screen_text(app)
        await pilot.press("S")
        await pilot.pause()
        text = screen_text(app)
        assert "coding_follow_up" in text and "coding_initial" in text
        await pilot.press("down", "enter")
        await settle(app, pilot)
        assert "first turn" in screen_text(app)


async def test_new_task_modal_creates_a_card() -> None:
    app = make_app([])
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("n")
        await settle(app, pilot)
        assert isinstance(app.screen, NewTaskScreen)
        text = screen_text(app)
        assert "custom  ready" in text or "custom" in text
        await pilot.press(*"Write tests")
        await pilot.press("tab")
        await pilot.press(*"cover the parser")
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        assert isinstance(app.screen, BoardScreen)
        (task,) = app.service.tasks()
        assert task.title == "Write tests" and task.prompt == "cover the parser"
        assert task.executor == "custom" and task.column_id == "backlog"


async def test_new_task_modal_escape_and_validation() -> None:
    app = make_app([])
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("n")
        await settle(app, pilot)
        await pilot.press("ctrl+s")  # no title
        await pilot.pause()
        assert isinstance(app.screen, NewTaskScreen)
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, BoardScreen)
        assert app.service.tasks() == []


def test_parse_options() -> None:
    assert parse_options('base_command="make test" yolo=true review=false') == {
        "base_command": "make test",
        "yolo": True,
        "review": False,
    }
    with pytest.raises(ValueError):
        parse_options("oops")


async def test_help_lists_every_context_with_remaps() -> None:
    app = make_app([], keymap={"board.move_right": "ctrl+l"})
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        text = screen_text(app)
        for context in ("Everywhere", "Board", "Task detail"):
            assert context in text
        assert "board.move_right" in text and "^l" in text
        await pilot.press("escape")
        assert isinstance(app.screen, BoardScreen)


async def test_review_screen_keys() -> None:
    store = MemoryStore()
    task = make_task(1, "Add email", "review", executor="fake")
    store.create_task(task)
    app = make_app(service=FakeService(store))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("d")
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, ReviewScreen)
        assert "app/models.py" in screen_text(app)
        view = screen.query_one(DiffView)
        await pilot.press("j", "j", "j", "j", "j", "j")
        line = view.current
        assert line is not None and line.text == "+from typing import Optional"
        await pilot.press("c")
        await pilot.pause()
        await pilot.press(*"why Optional")
        await pilot.press("enter")
        await pilot.pause()
        assert ("app/models.py", 6) in screen.comments
        assert "1 comment" in screen_text(app)
        await pilot.press("n")
        assert screen.current_file.path == "README.md"
        await pilot.press("p")
        await pilot.press("m")
        assert "app/models.py" in screen.reviewed
        assert screen.current_file.path == "README.md"  # marking moves on
        await pilot.press("t")
        await settle(app, pilot)
        assert screen.turn == 1 and "turn 1 of 2" in screen_text(app)
        await pilot.press("t", "t")
        await settle(app, pilot)
        assert screen.turn is None
        await pilot.press("tab")
        assert screen.query_one("#review-files").has_focus
        await pilot.press("f")
        await pilot.pause()
        text = app.screen.query_one("#feedback").text
        assert "app/models.py:2" in text and "why Optional" in text
        await pilot.press("escape")
        await pilot.press("escape")
        assert isinstance(app.screen, BoardScreen)


def test_format_comments_and_parse_patch() -> None:
    from aura_tui.screens.review import Comment

    lines = parse_patch("@@ -3,2 +3,3 @@\n a\n+b\n-c\n")
    assert [(d.kind, d.new_no, d.old_no) for d in lines] == [
        ("hunk", None, None),
        ("ctx", 3, 3),
        ("add", 4, None),
        ("del", None, 4),
    ]
    text = format_comments(
        [Comment("b.py", 2, 4, "+b", "rename"), Comment("a.py", 1, 1, " x", "ok")]
    )
    assert text.index("a.py:1") < text.index("b.py:4")
    assert format_comments([]) == ""


async def test_permission_request_modal_approve_and_deny() -> None:
    store = MemoryStore()
    task = make_task(1, "Supervised", "in_progress")
    store.create_task(task)
    runtime = FakeRuntime(store)
    service = AuraService(store, runtime)
    app = make_app(service=service)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        runtime.emit(
            {
                "kind": "permission",
                "task_id": task.id,
                "request_id": "r1",
                "tool": "bash",
                "detail": "rm -rf build",
            }
        )
        await wait_for_screen(app, pilot, PermissionScreen)
        text = screen_text(app)
        assert "rm -rf build" in text
        assert "custom on 'Supervised' asks to use bash" in text, text
        await pilot.press("y")
        await pilot.pause()
        assert runtime.answers == [("r1", True, "", False)]
        runtime.emit({"kind": "permission", "task_id": task.id, "request_id": "r2", "tool": "bash"})
        await wait_for_screen(app, pilot, PermissionScreen)
        app.screen.query_one("#reason").value = "not now"
        await pilot.press("n")
        await pilot.pause()
        assert runtime.answers[-1] == ("r2", False, "not now", False)
        runtime.emit({"kind": "permission", "task_id": task.id, "request_id": "r3", "tool": "bash"})
        await wait_for_screen(app, pilot, PermissionScreen)
        await pilot.press("a")
        await pilot.pause()
        assert runtime.answers[-1] == ("r3", True, "", True)


async def test_quit_with_running_tasks_asks() -> None:
    store = MemoryStore()
    task = make_task(1, "Busy", "in_progress")
    store.create_task(task)
    runtime = FakeRuntime(store)
    runtime.running = {task.id}
    app = make_app(service=AuraService(store, runtime))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("q")
        await pilot.pause()
        assert isinstance(app.screen, ChoiceScreen)
        assert "still running" in screen_text(app)
        await pilot.click("#choice-cancel")
        await pilot.pause()
        assert runtime.shutdowns == []
        await pilot.press("q")
        await pilot.pause()
        await pilot.click("#choice-leave")
        await pilot.pause()
    assert runtime.shutdowns == [False]


async def test_running_card_shows_spinner_and_elapsed() -> None:
    store = MemoryStore()
    task = make_task(1, "Busy", "in_progress", executor="fake")
    store.create_task(task)
    add_session(store, task.id, ["x"], status=SessionStatus.running)
    app = make_app(service=FakeService(store))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        text = screen_text(app)
        assert "⠋ running 4m59s" in text


def test_entry_log_keeps_the_newest_and_the_last_word_of_a_batch() -> None:
    from aura_tui.widgets.entry_view import EntryLog

    log = EntryLog(keep=100)
    # a flood batch bigger than what is kept, with a replacement of an entry inside it
    batch = {i: E.Raw(f"line {i}", "stdout") for i in range(1000)}
    batch[990] = E.Raw("line 990, replaced", "stdout")
    log.put_many(batch)
    assert len(log) == 1000
    assert log[999].text == "line 999" and log[990].text == "line 990, replaced"
    with pytest.raises(IndexError):
        log[0]  # older than what is held: the raw view has it
    # later batches append after it and replace what is still held
    log.put_many({995: E.Raw("again", "stdout"), 1000: E.Raw("next", "stdout")})
    assert log[995].text == "again" and log[1000].text == "next" and len(log) == 1001
