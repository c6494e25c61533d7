"""AuraApp: the board. (A first frame: columns from the store; issue D grows it.)"""

from __future__ import annotations

from typing import Any

from textual.app import App, ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Footer, Header, Label, Static

from aura_tui.styles import STYLES_DIR

COLUMNS = [
    ("backlog", "Backlog"),
    ("ready", "Ready"),
    ("running", "In Progress"),
    ("review", "Review"),
    ("done", "Done"),
]


class AuraApp(App[int]):
    CSS_PATH = [STYLES_DIR / "app.tcss"]
    TITLE = "AURA"
    BINDINGS = [("q", "quit", "Quit")]

    def __init__(self, store: Any) -> None:
        super().__init__()
        self.store = store

    def compose(self) -> ComposeResult:
        yield Header()
        tasks = self.store.list_tasks()
        with Horizontal(id="board"):
            for state, name in COLUMNS:
                mine = [t for t in tasks if t.state == state]
                with Vertical(classes="column", id=f"col-{state}"):
                    yield Label(f"{name} {len(mine)}", classes="column-title")
                    for task in mine:
                        yield Static(task.title, classes="card")
        yield Footer()
