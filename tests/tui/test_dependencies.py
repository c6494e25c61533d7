"""Task dependencies on the board: the real Runtime, the command executor, a real git repo."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from aura_core.config import parse_config
from aura_core.contracts import CanonicalTaskState
from aura_core.engine.runtime import Runtime
from aura_core.store.sqlite import SqliteStore
from aura_tui.screens.new_task import NewTaskScreen
from aura_tui.services import AuraService
from tests.support.gitrepo import make_repo

from .helpers import EXECUTORS, make_app, screen_text
from .test_review_loop import settle, wait_state

CS = CanonicalTaskState
pytestmark = pytest.mark.anyio


async def test_cards_show_what_they_run_after(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"README.md": "hello\n"})
    store = SqliteStore(tmp_path / "aura.db")
    cfg = parse_config({"worktrees": {"root": str(tmp_path / "wt")}})
    runtime = Runtime(store, cfg)
    opts = {"base_command": "sh", "params": ["-c", "echo fixed > login.txt"]}
    a = runtime.add_task("Login", "fix it", "custom", options=opts, repos=[str(repo)])
    c = runtime.add_task("Docs", "d", "custom", repos=[str(repo)], after=[a.id])
    service = AuraService(store, runtime, executors=lambda: list(EXECUTORS), repo=str(repo))
    app = make_app(service=service)
    try:
        async with app.run_test(size=(160, 40)) as pilot:
            await settle(app, pilot)
            assert "⧗ after Login" in screen_text(app)  # Docs, not waiting
            # a new task that runs after Login, started at once: it waits in Ready
            await pilot.press("n")
            await settle(app, pilot)
            modal = app.screen
            assert isinstance(modal, NewTaskScreen)
            await pilot.press(*"Audit")
            modal.query_one("#options").value = "base_command=\"sh -c 'cat login.txt'\""
            modal.query_one("#after").value = "login"
            modal.query_one("#start").value = True
            await pilot.press("ctrl+s")
            await settle(app, pilot)
            b = next(t for t in runtime.tasks() if t.title == "Audit")
            assert b.state is CS.ready and b.options["after"] == [a.id]
            assert runtime.executions(b.id) == []
            text = screen_text(app)
            assert "⧗ starts after Login" in text and "⧗ after Login" in text
            # Login runs and is approved with a merge: Audit starts by itself
            await asyncio.to_thread(runtime.start, a.id)
            await wait_state(app, pilot, runtime, a.id, CS.review)
            await asyncio.to_thread(runtime.approve, a.id, True)
            await wait_state(app, pilot, runtime, b.id, CS.review)
            text = screen_text(app)
            assert "⧗" not in text  # Docs no longer waits on anything unfinished
            assert app.service.card(store.get_task(c.id)).after == ()
    finally:
        runtime.shutdown()
