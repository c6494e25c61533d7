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


# Stream names <-> the small integers log_rows stores (0 and 1 take no bytes in a SQLite record).
STREAM_CODES = {"stdout": 0, "stderr": 1, "system": 2}
# SQL turning a stream code back into its name; anything not coded is stored as given.
_STREAM_NAME = (
    "CASE {col} WHEN 0 THEN 'stdout' WHEN 1 THEN 'stderr' WHEN 2 THEN 'system' ELSE {col} END"
)
# ... and a stream name into its code (unknown names are kept as text, losing nothing).
_STREAM_CODE = (
    "CASE {col} WHEN 'stdout' THEN 0 WHEN 'stderr' THEN 1 WHEN 'system' THEN 2 ELSE {col} END"
)


def stream_name(col: str) -> str:
    return _STREAM_NAME.format(col=col)


def stream_code(col: str) -> str:
    return _STREAM_CODE.format(col=col)


def _v2(db: Any) -> None:
    """Compact log rows: each row carries a small session number and a stream code instead of
    the 32-hex session id and the stream name (about 40% smaller). `log_lines` stays, as a
    view with the old columns (reads and inserts), for ad-hoc SQL and older running processes."""
    # AUTOINCREMENT: a number is never reused, even after its session is deleted.
    db.execute(
        "CREATE TABLE session_keys (num INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE)"
    )
    db.execute(
        "CREATE TABLE log_rows (session_num INTEGER NOT NULL, seq INTEGER NOT NULL, "
        "stream INTEGER NOT NULL, ts REAL NOT NULL, text TEXT NOT NULL, raw BLOB, "
        "PRIMARY KEY (session_num, seq)) WITHOUT ROWID"
    )
    # numbers in session-id order, so the copy below reads and writes both b-trees in order
    db.execute(
        "INSERT INTO session_keys (id) "
        "SELECT DISTINCT session_id FROM log_lines ORDER BY session_id"
    )
    db.execute(
        "INSERT INTO log_rows (session_num, seq, stream, ts, text, raw) "
        f"SELECT k.num, l.seq, {stream_code('l.stream')}, l.ts, l.text, l.raw "
        "FROM log_lines l JOIN session_keys k ON k.id = l.session_id ORDER BY k.num, l.seq"
    )
    db.execute("DROP TABLE log_lines")
    db.execute(
        f"CREATE VIEW log_lines AS SELECT k.id AS session_id, l.seq AS seq, "
        f"{stream_name('l.stream')} AS stream, l.ts AS ts, l.text AS text, l.raw AS raw "
        "FROM log_rows l JOIN session_keys k ON k.num = l.session_num"
    )
    # Writes through the view still work (an aura started before this migration, ad-hoc SQL).
    db.execute(
        "CREATE TRIGGER log_lines_insert INSTEAD OF INSERT ON log_lines BEGIN "
        "INSERT INTO session_keys (id) SELECT new.session_id WHERE NOT EXISTS "
        "(SELECT 1 FROM session_keys WHERE id = new.session_id); "
        "INSERT INTO log_rows (session_num, seq, stream, ts, text, raw) VALUES ("
        "(SELECT num FROM session_keys WHERE id = new.session_id), new.seq, "
        f"{stream_code('new.stream')}, new.ts, new.text, new.raw); END"
    )
    # Deleting a session deletes its number, and that its lines: no orphan rows either way.
    db.execute(
        "CREATE TRIGGER sessions_delete_log AFTER DELETE ON sessions BEGIN "
        "DELETE FROM session_keys WHERE id = old.id; END"
    )
    db.execute(
        "CREATE TRIGGER session_keys_delete_log AFTER DELETE ON session_keys BEGIN "
        "DELETE FROM log_rows WHERE session_num = old.num; END"
    )


MIGRATIONS: list[Migration] = [_v1, _v2]
SCHEMA_VERSION = len(MIGRATIONS)
