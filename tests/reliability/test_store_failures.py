"""Store and runner behaviour when SQLite refuses a write: regressions found by the disk-full test.

SQLITE_FULL is simulated here with `PRAGMA max_page_count` and a failing COMMIT with a deferred
foreign key, so these run anywhere, fast; test_disk_full.py does the same on a real full disk.
"""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest

from aura_core.executors.base import RunOptions, RunRequest
from aura_core.executors.command import CommandExecutor
from aura_core.runner import NullSink, SessionRunner, new_id
from aura_core.store.errors import StoreError
from aura_core.store.sqlite import SqliteStore


def _cap(store: SqliteStore, spare_pages: int) -> None:
    """Let the database grow by only `spare_pages` pages: the next big write gets SQLITE_FULL."""
    pages = store.conn.execute("PRAGMA page_count").fetchone()[0]
    store.conn.execute(f"PRAGMA max_page_count = {pages + spare_pages}")


def _rows(n: int, width: int = 1000) -> list[tuple[str, int, str, float, str, None]]:
    return [("s", i, "stdout", 0.0, "x" * width, None) for i in range(n)]


def test_full_database_reports_full_and_leaves_no_open_transaction(tmp_path: Path) -> None:
    """SQLite rolls a transaction back by itself on SQLITE_FULL; our ROLLBACK must not then fail
    with 'cannot rollback - no transaction is active' and hide the real error, which reaches the
    user as a one-line StoreError."""
    store = SqliteStore(tmp_path / "aura.db")
    _cap(store, 5)
    with pytest.raises(StoreError, match="disk is full"):
        store.append_log(_rows(200))
    assert not store.conn.in_transaction
    store.conn.execute("PRAGMA max_page_count = 1000000")
    store.append_log(_rows(3))
    assert store.count_log("s") == 3


def test_failed_commit_does_not_swallow_later_writes(tmp_path: Path) -> None:
    """A COMMIT that fails leaves SQLite's transaction open: the next `transaction()` must not
    take it for a nested one and never commit (every later write would silently be lost)."""
    path = tmp_path / "aura.db"
    store = SqliteStore(path)
    store.conn.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
    store.conn.execute(
        "CREATE TABLE child (pid INTEGER REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED)"
    )
    with pytest.raises(sqlite3.IntegrityError), store.transaction():
        store.conn.execute("INSERT INTO child VALUES (42)")  # fails only at COMMIT
    assert not store.conn.in_transaction
    store.set_setting("after", "1")
    other = sqlite3.connect(path)
    try:
        assert other.execute("SELECT value FROM settings WHERE key = 'after'").fetchone() == ("1",)
        assert other.execute("SELECT count(*) FROM child").fetchone() == (0,)
    finally:
        other.close()


def _request(tmp_path: Path, script: str) -> RunRequest:
    return RunRequest(
        session_id=new_id(),
        prompt="fill the disk",
        cwd=tmp_path,
        options=RunOptions(base_command=sys.executable, params=["-c", script]),
    )


def test_runner_fails_the_session_with_a_reason_when_the_store_is_full(tmp_path: Path) -> None:
    """Logging into a full database: the run ends 'failed' with the reason, no exception escapes,
    the agent is stopped, and rows committed earlier are kept."""
    store = SqliteStore(tmp_path / "aura.db")
    first = SessionRunner(
        store, CommandExecutor(), _request(tmp_path, "print('kept')"), executor_name="custom"
    ).run()
    assert first.status == "completed"
    _cap(store, 40)
    script = "import sys\nfor i in range(400000): print(f'line {i:08d} ' + 'y' * 60)"
    runner = SessionRunner(
        store, CommandExecutor(), _request(tmp_path, script), executor_name="custom"
    )
    result = runner.run()
    assert result.status == "failed"
    assert result.error and "full" in result.error
    row = store.find_session_row(result.session_id)
    assert row["status"] == "failed" and "full" in (row["error"] or "")
    assert [r[3] for r in store.iter_log_rows(first.session_id)] == ["kept"]
    assert store.integrity_check() == "ok"
    store.conn.execute("PRAGMA max_page_count = 1000000")
    again = SessionRunner(
        store, CommandExecutor(), _request(tmp_path, "print('again')"), executor_name="custom"
    ).run()
    assert again.status == "completed"
    assert [r[3] for r in store.iter_log_rows(again.session_id)] == ["again"]


class _CheckingSink(NullSink):
    """Looks, from another connection, for every line it is handed: it must already be stored."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.other = sqlite3.connect(path)
        self.seen = 0
        self.missing: list[str] = []

    def lines(self, rows: list[Any]) -> None:
        for row in rows:
            found = self.other.execute(
                "SELECT 1 FROM log_lines WHERE session_id = ? AND seq = ?", (row[0], row[1])
            ).fetchone()
            if found is None:
                self.missing.append(row[4])
            self.seen += 1


def test_lines_are_stored_before_anyone_is_shown_them(tmp_path: Path) -> None:
    """Regression: the runner queued lines for the 200 ms background flush and printed them at
    once, so a kill -9 lost lines the user had already seen (found by test_kill9)."""
    path = tmp_path / "aura.db"
    store = SqliteStore(path)
    sink = _CheckingSink(path)
    script = "import time\nfor i in range(20):\n    print(i, flush=True)\n    time.sleep(0.01)"
    runner = SessionRunner(
        store, CommandExecutor(), _request(tmp_path, script), executor_name="custom", sink=sink
    )
    assert runner.run().status == "completed"
    sink.other.close()
    assert sink.seen == 20 and sink.missing == []
