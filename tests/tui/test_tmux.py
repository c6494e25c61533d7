"""A real terminal: `aura tui` under tmux, a task created with keys, a card dragged with SGR mouse
sequences (`send-keys -l`), the screen read back with `capture-pane`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")

WIDTH, HEIGHT = 120, 40


class Tmux:
    def __init__(self, cwd: Path) -> None:
        self.socket = f"aura-test-{uuid.uuid4().hex[:8]}"
        self.cwd = cwd

    def run(self, *args: str) -> str:
        out = subprocess.run(
            ["tmux", "-L", self.socket, "-f", "/dev/null", *args],
            capture_output=True,
            text=True,
            check=True,
            env=dict(os.environ),
        )
        return out.stdout

    def start(self, command: str) -> None:
        self.run(
            "new-session",
            "-d",
            "-s",
            "aura",
            "-x",
            str(WIDTH),
            "-y",
            str(HEIGHT),
            "-c",
            str(self.cwd),
            command,
        )

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", "aura")

    def keys(self, *keys: str) -> None:
        self.run("send-keys", "-t", "aura", *keys)

    def literal(self, text: str) -> None:
        self.run("send-keys", "-t", "aura", "-l", text)

    def wait_for(self, check: Callable[[str], bool], timeout: float = 20) -> str:
        deadline = time.monotonic() + timeout
        text = ""
        while time.monotonic() < deadline:
            text = self.screen()
            if check(text):
                return text
            time.sleep(0.1)
        raise AssertionError(f"screen never matched; last screen:\n{text}")

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    path.mkdir()
    for args in (["init", "-q", "-b", "main"], ["commit", "-q", "--allow-empty", "-m", "init"]):
        subprocess.run(["git", *args], cwd=path, check=True, capture_output=True)
    return path


@pytest.fixture
def tmux(repo: Path) -> Iterator[Tmux]:
    session = Tmux(repo)
    yield session
    session.close()


def find(text: str, needle: str) -> tuple[int, int]:
    """1-based (x, y) of the first cell of `needle` on the captured screen."""
    for y, line in enumerate(text.splitlines(), start=1):
        x = line.find(needle)
        if x >= 0:
            return x + 1, y
    raise AssertionError(f"{needle!r} not on screen:\n{text}")


def test_tui_in_tmux_create_and_drag(tmux: Tmux, repo: Path) -> None:
    tmux.start(f"{sys.executable} -m aura_tui tui")
    tmux.wait_for(lambda s: "Backlog 0" in s and "Ready 0" in s)
    # create a task with keys
    tmux.keys("n")
    tmux.wait_for(lambda s: "New task" in s and "ready" in s)
    tmux.literal("Drag me")
    tmux.keys("C-s")
    board = tmux.wait_for(
        lambda s: "Backlog 1" in s and "Drag me" in s and "Ready 0" in s and "New task" not in s
    )
    # drag it from Backlog to Ready with SGR mouse sequences
    x, y = find(board, "Drag me")
    tx, ty = find(board, "Ready 0")
    tmux.literal(f"\x1b[<0;{x};{y}M")
    for step in range(1, 6):
        mx = x + (tx + 4 - x) * step // 5
        my = y + (ty + 6 - y) * step // 5
        tmux.literal(f"\x1b[<32;{mx};{my}M")
        time.sleep(0.05)
    tmux.literal(f"\x1b[<0;{tx + 4};{ty + 6}m")
    moved = tmux.wait_for(lambda s: "Ready 1" in s and "Backlog 0" in s)
    rx, _ = find(moved, "Drag me")
    assert rx >= tx - 2  # the card now sits in the Ready column
    tmux.keys("q")
