"""The schema, as forward migrations applied in order. Each migration runs in one transaction.

Opening checks the version with plain sqlite3; sqlite-utils is imported only when a migration
actually has to run, so read-only commands start fast.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Migration = Callable[[Any], None]  # receives a sqlite_utils.Database


def _v1(db: Any) -> None:
    db["sessions"].create(
        {
            "id": str,
            "executor": str,
            "model": str,
            "prompt": str,
            "cwd": str,
            "status": str,
            "exit_code": int,
            "agent_session_id": str,
            "parent_id": str,
            "task_id": str,
            "execution_id": str,
            "stage": str,
            "created_at": float,
            "started_at": float,
            "finished_at": float,
            "error": str,
            "owner_pid": int,
            "owner_start": int,
            "pid": int,
            "pgid": int,
            "options": str,
        },
        pk="id",
        not_null={"executor", "cwd", "status", "created_at"},
        defaults={"prompt": "", "options": "{}"},
    )
    db["sessions"].create_index(["created_at"], index_name="sessions_created")
    db["sessions"].create_index(["status"], index_name="sessions_status")
    db["sessions"].create_index(["task_id", "created_at"], index_name="sessions_task")
    # One b-tree keyed by (session, seq): appends are sequential and reads are range scans.
    db.execute(
        "CREATE TABLE log_lines (session_id TEXT NOT NULL, seq INTEGER NOT NULL, "
        "stream TEXT NOT NULL, ts REAL NOT NULL, text TEXT NOT NULL, raw BLOB, "
        "PRIMARY KEY (session_id, seq)) WITHOUT ROWID"
    )
    db["tasks"].create(
        {
            "id": str,
            "title": str,
            "prompt": str,
            "executor": str,
            "model": str,
            "options": str,
            "repos": str,
            "base_branch": str,
            "column_id": str,
            "state": str,
            "review": int,
            "position": float,
            "blocked_reason": str,
            "worker_id": str,
            "created_at": float,
            "updated_at": float,
        },
        pk="id",
        not_null={"title", "column_id", "state", "created_at", "updated_at"},
    )
    db["tasks"].create_index(["column_id", "position"], index_name="tasks_column")
    db["executions"].create(
        {
            "id": str,
            "task_id": str,
            "status": str,
            "stage": str,
            "workspace": str,
            "branch": str,
            "error": str,
            "owner_pid": int,
            "owner_start": int,
            "created_at": float,
            "updated_at": float,
        },
        pk="id",
        not_null={"task_id", "status", "created_at", "updated_at"},
    )
    db["executions"].create_index(["task_id", "created_at"], index_name="executions_task")
    db["executions"].create_index(["status"], index_name="executions_status")
    db["events"].create(
        {"execution_id": str, "seq": int, "kind": str, "payload": str, "ts": float},
        pk=("execution_id", "seq"),
        not_null={"kind", "ts"},
    )
    db["settings"].create({"key": str, "value": str}, pk="key")


MIGRATIONS: list[Migration] = [_v1]
SCHEMA_VERSION = len(MIGRATIONS)
