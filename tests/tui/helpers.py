"""Test helpers: a deterministic service over an in-memory store, and screen text."""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console

from aura_core.contracts import CanonicalTaskState, Task
from aura_core.store.memory import MemoryStore
from aura_tui.app import AuraApp, create_app
from aura_tui.services import AuraService, ExecutorChoice

NOW = 1_700_000_000.0
EXECUTORS = [
    ExecutorChoice("custom", True, "runs --base-command"),
    ExecutorChoice("claude", True, "2.1.0"),
    ExecutorChoice("codex", False, "npm install -g @openai/codex"),
]


def clock() -> float:
    return NOW


def make_task(
    n: int,
    title: str,
    column: str = "backlog",
    state: str | None = None,
    **fields: Any,
) -> Task:
    return Task(
        id=f"{n:08x}" + "0" * 24,
        title=title,
        column_id=column,
        state=CanonicalTaskState(state or column.replace("in_progress", "running")),
        position=float(n),
        created_at=NOW - 600,
        updated_at=NOW - 600,
        **fields,
    )


def make_app(
    tasks: list[Task] | None = None,
    *,
    store: Any = None,
    runtime: Any = None,
    service: AuraService | None = None,
    keymap: dict[str, str] | None = None,
) -> AuraApp:
    store = store if store is not None else MemoryStore()
    for task in tasks or []:
        store.create_task(task)
    if service is None:
        service = AuraService(store, runtime, clock=clock, executors=lambda: list(EXECUTORS))
    return create_app(store, service=service, animate=False, keymap=keymap or {}, clock=clock)


def screen_text(app: AuraApp) -> str:
    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), record=True)
    render = app.screen._compositor.render_update(full=True, screen_stack=app._background_screens)
    console.print(render)
    return console.export_text()
