"""The single-run view of `aura run` on a terminal: live log, status bar, queued follow-ups,
slash commands, stop with confirmation — driven by the real SessionRunner and command executor."""

from __future__ import annotations

from pathlib import Path

import pytest

from aura_core.executors.base import RunOptions, RunRequest
from aura_core.executors.command import CommandExecutor
from aura_core.runner import SessionRunner, new_id
from aura_core.store.memory import MemoryStore
from aura_tui.screens.dialogs import ChoiceScreen
from aura_tui.single_run import SingleRunApp
from aura_tui.widgets.log_view import LogView

from .helpers import screen_text

pytestmark = pytest.mark.anyio


def make(tmp_path: Path, script: str) -> tuple[SingleRunApp, MemoryStore]:
    store = MemoryStore()
    request = RunRequest(
        session_id=new_id(),
        prompt="hello",
        cwd=tmp_path,
        options=RunOptions(base_command="sh", params=["-c", script]),
    )
    app = SingleRunApp(
        executor=CommandExecutor(),
        executor_name="custom",
        request=request,
        store=store,
        runner_factory=SessionRunner,
        animate=False,
    )
    return app, store


async def wait_idle(app: SingleRunApp, pilot, timeout: float = 20) -> None:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await pilot.pause(0.05)
        if not app.running and not app.queue and not app._pending:
            await pilot.pause(0.05)
            if not app.running:
                return
    raise AssertionError("the agent did not finish")


async def test_run_streams_and_reports_status(tmp_path: Path) -> None:
    app, _store = make(tmp_path, 'for i in 1 2 3; do echo "line $i $AURA_RUN_MODE"; done')
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_idle(app, pilot)
        text = screen_text(app)
        assert "line 3 initial" in text
        assert "custom" in text and "completed (exit 0)" in text
        assert app.query_one(LogView).line_count == 3
    assert app.return_code == 0 or app.return_code is None


async def test_prompts_typed_while_running_are_queued_and_sent_in_order(tmp_path: Path) -> None:
    app, store = make(
        tmp_path,
        '[ "$AURA_RUN_MODE" = initial ] && sleep 2; echo "got: $AURA_PROMPT ($AURA_RUN_MODE)"',
    )
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        await pilot.press(*"first")
        await pilot.press("enter")
        await pilot.press(*"second")
        await pilot.press("enter")
        await pilot.pause()
        assert app.queue == ["first", "second"]
        assert "queued follow-ups (2)" in screen_text(app)
        await wait_idle(app, pilot, 30)
        assert app.turn == 3
        sessions = store.list_sessions()
        assert len(sessions) == 3
        assert sorted(s.prompt for s in sessions) == ["first", "hello", "second"]
        assert "got: second (follow_up)" in screen_text(app)


async def test_queue_is_editable(tmp_path: Path) -> None:
    app, _ = make(tmp_path, "sleep 5")
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        for word in ("one", "two"):
            await pilot.press(*word)
            await pilot.press("enter")
        await pilot.press("tab")  # to the queue
        await pilot.press("delete")
        assert app.queue == ["two"]
        await pilot.press("enter")  # edit: back into the composer
        assert app.queue == []
        assert app.query_one("#composer").value == "two"
        await pilot.press("ctrl+q")
    assert app.return_value == 130


async def test_slash_commands(tmp_path: Path) -> None:
    app, _ = make(tmp_path, "true")
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_idle(app, pilot)
        for command in ("/model opus", "/mode yolo", "/help", "/bogus"):
            await pilot.press(*command)
            await pilot.press("enter")
        await pilot.pause()
        assert app.model == "opus" and app.mode == "yolo"
        assert "opus" in screen_text(app) and "mode yolo" in screen_text(app)
        messages = [n.message for n in app._notifications]
        assert any("/model NAME" in m for m in messages)
        assert any("unknown command /bogus" in m for m in messages)
        request = app.follow_up_request("next")
        assert request.model == "opus" and request.options.yolo


async def test_escape_stops_the_agent_after_confirmation(tmp_path: Path) -> None:
    app, _store = make(tmp_path, "echo started; sleep 30")
    async with app.run_test(size=(100, 30)) as pilot:
        for _ in range(100):
            await pilot.pause(0.05)
            if app.query_one(LogView).line_count:
                break
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, ChoiceScreen)
        await pilot.click("#choice-cancel")
        await pilot.pause()
        assert app.running
        await pilot.press("ctrl+c")
        await pilot.pause()
        await pilot.click("#choice-stop")
        await wait_idle(app, pilot)
        assert app.last_result.status == "killed"
        await pilot.press("escape")  # idle: escape leaves
    assert app.return_value == 130


async def test_stderr_and_system_lines_are_marked(tmp_path: Path) -> None:
    app, _store = make(tmp_path, "echo to-stdout; echo to-stderr >&2")
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_idle(app, pilot)
        lines = screen_text(app).splitlines()
        out = next(line for line in lines if "to-stdout" in line)
        err = next(line for line in lines if "to-stderr" in line)
        assert "▌ to-stderr" in err  # the stderr gutter mark
        assert "▌" not in out
        view = app.query_one(LogView)
        streams = {view.source.line(i)[0] for i in range(view.line_count)}
        assert "stderr" in streams
