"""Deterministic fakes for TUI tests: a tiny normaliser, sessions with logs, a runtime double."""

from __future__ import annotations

import threading
from typing import Any

from aura_core.board import Board, MoveDecision
from aura_core.contracts import CanonicalTaskState, Session, SessionStatus
from aura_core.executors import entries as E
from aura_tui.services import AuraService, DiffData, DiffFile

from .helpers import EXECUTORS, NOW, clock

CS = CanonicalTaskState

PATCH = """diff --git a/app/models.py b/app/models.py
index 1111111..2222222 100644
--- a/app/models.py
+++ b/app/models.py
@@ -1,6 +1,8 @@
 from dataclasses import dataclass
+from typing import Optional


 @dataclass
 class User:
-    name: str
+    name: str
+    email: Optional[str] = None
"""
PATCH2 = """diff --git a/README.md b/README.md
--- a/README.md
+++ b/README.md
@@ -1,2 +1,3 @@
 # App
+Users now have an email.
 Run it with `make`.
"""
DIFF = DiffData(
    (
        DiffFile("app/models.py", 3, 1, PATCH),
        DiffFile("README.md", 1, 0, PATCH2),
    )
)


class LineNormalizer:
    """`say: text` -> assistant, `tool: cmd => output` -> tool call, `error: x` -> error."""

    def __init__(self) -> None:
        self.entries: list[Any] = []
        self.agent_session_id: str | None = None

    def feed(self, stream: str, text: str) -> list[E.EntryPatch]:
        if text.startswith("say: "):
            entry: Any = E.AssistantMessage(text[5:].replace("\\n", "\n"))
        elif text.startswith("tool: "):
            cmd, _, out = text[6:].partition(" => ")
            entry = E.ToolUse("t", "bash", E.CommandRun(cmd, 0, out or None), E.SUCCESS)
        elif text.startswith("error: "):
            entry = E.ErrorMessage(text[7:])
        else:
            entry = E.Raw(text, stream)
        self.entries.append(entry)
        return [E.EntryPatch("append", len(self.entries) - 1, entry)]

    def finish(self) -> list[E.EntryPatch]:
        return []


class FakeService(AuraService):
    """The real service over a MemoryStore, with a normaliser for `fake` and a fixed diff."""

    def __init__(self, store: Any, *, board: Board | None = None, diff: DiffData = DIFF) -> None:
        super().__init__(store, board=board, clock=clock, executors=lambda: list(EXECUTORS))
        self.fixed_diff = diff
        self.running: set[str] = set()

    def normalizer(self, executor: str) -> Any:
        return LineNormalizer() if executor == "fake" else None

    def diff(self, task_id: str, turn: int | None = None) -> DiffData:
        return self.fixed_diff if turn in (None, 1) else DiffData(self.fixed_diff.files[:1])

    def turns(self, task_id: str) -> int:
        return 2

    def running_task_ids(self) -> set[str]:
        return set(self.running)


def add_session(
    store: Any,
    task_id: str | None,
    lines: list[str],
    *,
    n: int = 1,
    executor: str = "fake",
    status: SessionStatus = SessionStatus.completed,
    stage: str = "coding_initial",
) -> Session:
    session = Session(
        id=f"5e55{n:04d}" + "0" * 24,
        executor=executor,
        cwd="/work/repo",
        status=status,
        task_id=task_id,
        stage=stage,
        created_at=NOW - 300 + n,
        started_at=NOW - 300 + n,
        finished_at=None if status is SessionStatus.running else NOW - 200 + n,
        exit_code=None if status is SessionStatus.running else 0,
    )
    store.create_session(session)
    rows = [(session.id, i, "stdout", NOW, text, None) for i, text in enumerate(lines)]
    store.append_log(rows)
    return session


class FakeRuntime:
    """Just enough of the Runtime for the permission and quit flows."""

    def __init__(self, service_store: Any) -> None:
        self.store = service_store
        self.board = Board.default()
        self.answers: list[tuple[str, bool, str]] = []
        self.shutdowns: list[bool] = []
        self.running: set[str] = set()
        self._subs: list[Any] = []
        self.lock = threading.Lock()

    def subscribe(self, cb: Any) -> Any:
        self._subs.append(cb)
        return lambda: self._subs.remove(cb)

    def emit(self, event: Any) -> None:
        for cb in list(self._subs):
            cb(event)

    def tasks(self) -> list[Any]:
        return list(self.store.list_tasks())

    def running_task_ids(self) -> set[str]:
        return set(self.running)

    def check_move(self, task_id: str, column_id: str) -> MoveDecision:
        task = self.store.get_task(task_id)
        return self.board.move(
            task, column_id, tasks_in_columns={}, git_clean=True, has_running_process=False
        )

    def answer_permission(
        self, request_id: str, approve: bool, reason: str, always: bool = False
    ) -> None:
        self.answers.append((request_id, approve, reason, always))

    def shutdown(self, stop_running: bool) -> None:
        self.shutdowns.append(stop_running)
