"""The review loop end to end: the real Runtime, the command executor, a real git repository.

Create a task with keys, start it, open its diff, comment on a line, send the comment back as a
follow-up, then approve it (with a merge) — all through the board's keys.
"""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest

from aura_core.config import AuraConfig
from aura_core.contracts import CanonicalTaskState
from aura_core.engine.runtime import Runtime
from aura_core.store.sqlite import SqliteStore
from aura_tui.screens.dialogs import ApproveScreen, CommentScreen, FollowUpScreen
from aura_tui.screens.new_task import NewTaskScreen
from aura_tui.screens.review import ReviewScreen
from aura_tui.services import AuraService
from aura_tui.widgets.diff_view import DiffView

from .helpers import EXECUTORS, make_app, screen_text

CS = CanonicalTaskState
pytestmark = pytest.mark.anyio


def git(cwd: Path, *args: str) -> str:
    out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return out.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    (path / "README.md").write_text("hello\n")
    git(path, "add", "README.md")
    git(path, "commit", "-q", "-m", "initial")
    return path


async def settle(app, pilot) -> None:
    await pilot.pause()
    await app.workers.wait_for_complete()
    await pilot.pause(0.1)


async def wait_state(app, pilot, runtime: Runtime, task_id: str, state: CS) -> None:
    await asyncio.to_thread(runtime.wait, task_id, 60)
    for _ in range(100):
        await settle(app, pilot)
        if runtime.store.get_task(task_id).state is state:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"task stayed {runtime.store.get_task(task_id).state}, not {state}")


async def test_review_loop_end_to_end(repo: Path, tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "aura.db")
    runtime = Runtime(store, AuraConfig(), data_dir=str(tmp_path / "data"))
    service = AuraService(store, runtime, executors=lambda: list(EXECUTORS), repo=str(repo))
    app = make_app(service=service)
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(app, pilot)
            # 1. a new task, created with keys
            await pilot.press("n")
            await settle(app, pilot)
            modal = app.screen
            assert isinstance(modal, NewTaskScreen)
            await pilot.press(*"Add notes")
            modal.query_one("#options").value = "base_command=\"sh -c 'echo note >> notes.txt'\""
            modal.query_one("#start").value = True
            await pilot.press("ctrl+s")
            await settle(app, pilot)
            task = next(t for t in runtime.tasks() if t.title == "Add notes")
            assert task.repos == [str(repo)]
            # 2. it runs, then waits in Review
            await wait_state(app, pilot, runtime, task.id, CS.review)
            assert "needs review" in screen_text(app)
            assert app.screen.current_card.id == task.id
            # the card counts the change before anyone opens the diff
            for _ in range(50):
                if app.screen.current_card.additions is not None:
                    break
                await settle(app, pilot)
            assert app.screen.current_card.additions == 1
            assert "+1 -0" in screen_text(app)
            # 3. the diff, a comment on the added line
            await pilot.press("d")
            await settle(app, pilot)
            review = app.screen
            assert isinstance(review, ReviewScreen)
            assert [f.path for f in review.diff.files] == ["notes.txt"]
            view = review.query_one(DiffView)
            while view.current is not None and view.current.kind != "add":
                await pilot.press("j")
            assert view.current.text == "+note"
            await pilot.press("c")
            await settle(app, pilot)
            assert isinstance(app.screen, CommentScreen)
            await pilot.press(*"say more")
            await pilot.press("enter")
            await settle(app, pilot)
            assert len(review.comments) == 1
            await pilot.press("m")  # mark the file reviewed
            assert review.reviewed == {"notes.txt"}
            # 4. every comment goes back as one follow-up
            await pilot.press("f")
            await settle(app, pilot)
            editor = app.screen
            assert isinstance(editor, FollowUpScreen)
            text = editor.query_one("#feedback").text
            assert "notes.txt:1" in text and "say more" in text and "+note" in text
            await pilot.press("ctrl+s")
            await settle(app, pilot)
            await wait_state(app, pilot, runtime, task.id, CS.review)
            assert len([s for s in runtime.sessions(task.id) if s.stage == "coding_follow_up"]) == 1
            # the review screen closed itself when the task left Review
            while not hasattr(app.screen, "current_card"):
                await pilot.press("escape")
                await settle(app, pilot)
            # 5. approve, with a merge
            await pilot.press("a")
            await settle(app, pilot)
            assert isinstance(app.screen, ApproveScreen)
            app.screen.query_one("#merge").value = True
            await pilot.press("enter")
            await settle(app, pilot)
            for _ in range(50):
                if store.get_task(task.id).state is CS.done:
                    break
                await asyncio.sleep(0.05)
                await settle(app, pilot)
            assert store.get_task(task.id).state is CS.done
            assert (repo / "notes.txt").read_text() == "note\nnote\n"
    finally:
        runtime.shutdown(stop_running=True)
        store.close()


async def test_a_task_that_cannot_be_created_reopens_the_form_as_typed(tmp_path: Path) -> None:
    """The real Runtime refuses a folder that is not a git repository: the error is shown and
    the form comes back with everything typed, so the person can fix the one field."""
    store = SqliteStore(tmp_path / "aura.db")
    runtime = Runtime(store, AuraConfig(), data_dir=str(tmp_path / "data"))
    plain = tmp_path / "not-a-repo"
    plain.mkdir()
    service = AuraService(store, runtime, executors=lambda: list(EXECUTORS), repo=str(plain))
    app = make_app(service=service)
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(app, pilot)
            await pilot.press("n")
            await settle(app, pilot)
            await pilot.press(*"Keep me")
            await pilot.press("tab")
            await pilot.press(*"a long prompt I do not want to type again")
            form = app.screen
            assert isinstance(form, NewTaskScreen)
            form.query_one("#options").value = "yolo=true"
            await pilot.press("ctrl+s")
            await settle(app, pilot)
            again = app.screen
            assert isinstance(again, NewTaskScreen) and again is not form
            assert again.query_one("#title").value == "Keep me"
            assert again.query_one("#prompt").text == "a long prompt I do not want to type again"
            assert again.query_one("#options").value == "yolo=true"
            assert again.query_one("#repo").value == str(plain)
            assert store.list_tasks() == []
            # fixing the folder creates it
            repo = tmp_path / "repo"
            repo.mkdir()
            git(repo, "init", "-q")
            again.query_one("#repo").value = str(repo)
            await pilot.press("ctrl+s")
            await settle(app, pilot)
            (task,) = store.list_tasks()
            assert task.title == "Keep me" and task.repos == [str(repo)]
    finally:
        runtime.shutdown()


async def test_s_starts_a_backlog_task_through_ready(repo: Path, tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "aura.db")
    runtime = Runtime(store, AuraConfig(), data_dir=str(tmp_path / "data"))
    service = AuraService(store, runtime, executors=lambda: list(EXECUTORS), repo=str(repo))
    task = service.add_task(
        "Backlog job", "p", "custom", options={"base_command": "sh -c 'echo x > x.txt'"},
        repos=[str(repo)],
    )  # fmt: skip
    assert task.state is CS.backlog
    app = make_app(service=service)
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(app, pilot)
            assert app.screen.current_card.id == task.id
            await pilot.press("s")
            await wait_state(app, pilot, runtime, task.id, CS.review)
            assert "Move refused" not in screen_text(app)
            assert [f.path for f in runtime.diff(task.id).files] == ["x.txt"]
    finally:
        runtime.shutdown()
