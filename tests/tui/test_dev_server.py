"""The board's dev-server key with the real Runtime: a real worktree, a real HTTP server."""

from __future__ import annotations

import asyncio
import socket
import sys
import urllib.request
from pathlib import Path

import pytest

from aura_core import procinfo
from aura_core.config import parse_config
from aura_core.contracts import CanonicalTaskState
from aura_core.engine.runtime import Runtime
from aura_core.store.sqlite import SqliteStore
from aura_tui.services import AuraService
from tests.support.gitrepo import make_repo

from .helpers import EXECUTORS, make_app, screen_text

pytestmark = pytest.mark.anyio


async def settle(app, pilot) -> None:
    await pilot.pause()
    await app.workers.wait_for_complete()
    await pilot.pause(0.1)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


async def test_v_starts_and_stops_the_dev_server_of_the_card(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    store = SqliteStore(tmp_path / "aura.db")
    config = parse_config(
        {
            "worktrees": {"root": str(tmp_path / "wt")},
            "runtime": {"dev_port_base": free_port(), "dev_port_count": 10},
            "scripts": {
                "dev_server": f"exec {sys.executable} -m http.server $AURA_PORT --bind 127.0.0.1"
            },
        }
    )
    runtime = Runtime(store, config)
    options = {"base_command": "sh", "params": ["-c", "echo hi > notes.txt"]}
    task = runtime.add_task("Serve me", "p", "custom", options=options, repos=[str(repo)])
    runtime.start(task.id)
    assert runtime.wait(task.id, 60)
    assert store.get_task(task.id).state is CanonicalTaskState.review
    port = runtime.dev_port(task.id)
    service = AuraService(store, runtime, executors=lambda: list(EXECUTORS), repo=str(repo))
    app = make_app(service=service)
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(app, pilot)
            for _ in range(8):
                card = app.screen.current_card
                if card is not None and card.id == task.id:
                    break
                await pilot.press("right")
            assert app.screen.current_card.id == task.id
            await pilot.press("v")
            await settle(app, pilot)
            url = f"http://127.0.0.1:{port}"
            assert await asyncio.to_thread(answers, url)
            # a toast with the URL
            assert any(url in n.message for n in app._notifications)
            for _ in range(50):
                if f":{port}" in screen_text(app):
                    break
                await settle(app, pilot)
            assert f":{port}" in screen_text(app)  # on the card
            assert app.screen.current_card.dev_port == port
            dev = runtime.dev_server(task.id)
            assert dev is not None
            pgid = store.get_session(dev.session_id).pgid
            assert pgid and procinfo.group_alive(pgid)
            # the sessions list has it, with its stage
            assert any(s.stage == "dev_server" for s in service.sessions(task.id))
            # v again stops it: the card drops the port
            await pilot.press("v")
            await settle(app, pilot)
            for _ in range(50):
                if app.screen.current_card.dev_port is None:
                    break
                await settle(app, pilot)
            assert app.screen.current_card.dev_port is None
            assert runtime.dev_server(task.id) is None
            assert not procinfo.group_alive(pgid)
            assert any("dev server stopped" in n.message for n in app._notifications)
            # with no worktree, the error is a toast
            fresh = runtime.add_task("Fresh", "p", "custom", repos=[str(repo)])
            await settle(app, pilot)
            with pytest.raises(Exception, match="no worktree yet"):
                service.toggle_dev_server(fresh.id)
    finally:
        runtime.shutdown(stop_running=True)
        store.close()
