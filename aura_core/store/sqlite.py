"""SQLite store: one file, WAL, a busy timeout, forward migrations and batched log writes.

Module-level imports are stdlib only: the read-only CLI commands (`aura session latest`) use the
`*_row` methods, which return plain dicts, and never pay for pydantic. Methods returning models
import the contracts on first use.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aura_core.store.errors import Ambiguous, CorruptDatabase, NotFound, SchemaTooNew, StoreError
from aura_core.store.schema import MIGRATIONS, SCHEMA_VERSION, STREAM_CODES, stream_name

if TYPE_CHECKING:
    from aura_core.contracts import (
        EventRecord,
        Execution,
        ExecutionEvent,
        LogLine,
        Session,
        Task,
    )
    from aura_core.store.base import LogRow

BUSY_TIMEOUT_S = 30.0
# Log rows are keyed by a session's number (schema _v2); this finds it, in the same statement.
_NUM_SQL = "SELECT num FROM session_keys WHERE id = ?"
_PAGE_SQL = (
    f"SELECT seq, {stream_name('stream')}, ts, text FROM log_rows "
    f"WHERE session_num = ({_NUM_SQL}) AND seq >= ? ORDER BY seq LIMIT ?"
)
_JSON_FIELDS = {
    "sessions": ("options",),
    "tasks": ("options", "repos"),
    "executions": ("workspace",),
}
_COLUMNS: dict[str, list[str]] = {
    "sessions": [
        "id",
        "executor",
        "model",
        "prompt",
        "cwd",
        "status",
        "exit_code",
        "agent_session_id",
        "parent_id",
        "task_id",
        "execution_id",
        "stage",
        "created_at",
        "started_at",
        "finished_at",
        "error",
        "owner_pid",
        "owner_start",
        "pid",
        "pgid",
        "options",
    ],
    "tasks": [
        "id",
        "title",
        "prompt",
        "executor",
        "model",
        "options",
        "repos",
        "base_branch",
        "column_id",
        "state",
        "review",
        "position",
        "blocked_reason",
        "worker_id",
        "created_at",
        "updated_at",
    ],
    "executions": [
        "id",
        "task_id",
        "status",
        "stage",
        "workspace",
        "branch",
        "error",
        "owner_pid",
        "owner_start",
        "created_at",
        "updated_at",
    ],
}


def _encode(table: str, values: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in values.items():
        if key in _JSON_FIELDS.get(table, ()):
            value = json.dumps(value)
        elif hasattr(value, "value") and not isinstance(value, (int, float, str)):
            value = value.value
        elif isinstance(value, bool):
            value = int(value)
        out[key] = value
    return out


def _decode(table: str, row: sqlite3.Row) -> dict[str, Any]:
    data = dict(row)
    for key in _JSON_FIELDS.get(table, ()):
        raw = data.get(key)
        data[key] = json.loads(raw) if raw else ({} if key == "options" else [])
    return data


def _no_space(path: Path, exc: sqlite3.Error) -> bool:
    """Did this error come from a full disk? SQLite says "full" when a write comes up short, but
    only "disk I/O error" when it cannot create its shared-memory file, so look at the disk."""
    if "full" in str(exc):
        return True
    try:
        return shutil.disk_usage(path.parent).free < (256 << 10)
    except OSError:
        return False


class SqliteStore:
    def __init__(self, path: str | Path, *, create: bool = True) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        if not self.path.exists():
            if not create:
                raise NotFound(f"no database at {self.path}: run `aura run` to create one")
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.conn = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
        except sqlite3.OperationalError as exc:
            raise StoreError(f"cannot open database {self.path}: {exc}") from None
        self.conn.row_factory = sqlite3.Row
        try:
            self._check_and_migrate()
        except sqlite3.OperationalError as exc:
            self.conn.close()
            raise self._operational(exc, "cannot open") from None
        except BaseException:
            self.conn.close()
            raise

    def _operational(self, exc: sqlite3.OperationalError, what: str) -> StoreError:
        """A one-line StoreError for an error of the disk, not of the data (left untouched)."""
        if _no_space(self.path, exc):
            return StoreError(
                f"{what} database {self.path}: its disk is full ({exc}); free some space and "
                "run the command again (what was stored before is kept)"
            )
        return StoreError(f"{what} database {self.path}: {exc}")

    # ---- opening -----------------------------------------------------------------------
    def _version(self) -> int:
        try:
            tables = {
                r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
            if "schema_version" not in tables:
                if tables:
                    raise CorruptDatabase(
                        f"{self.path} is not an AURA database (unknown tables); "
                        "point --data-dir elsewhere or move the file away"
                    )
                return 0
            row = self.conn.execute("SELECT max(version) FROM schema_version").fetchone()
            return int(row[0] or 0)
        except sqlite3.OperationalError:
            raise  # locked, disk full, I/O: the file itself may be fine (see __init__)
        except sqlite3.DatabaseError as exc:
            raise CorruptDatabase(
                f"database {self.path} is unreadable ({exc}); it was left untouched: "
                "move it away or use --data-dir to start a fresh one"
            ) from None

    def _check_and_migrate(self) -> None:
        version = self._version()
        if version > SCHEMA_VERSION:
            raise SchemaTooNew(
                f"database {self.path} has schema version {version}, newer than this aura "
                f"understands ({SCHEMA_VERSION}); upgrade aura (it was left untouched)"
            )
        self.conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        if version < SCHEMA_VERSION:
            self._migrate(version)
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute("PRAGMA synchronous = NORMAL")
        self.conn.execute("PRAGMA foreign_keys = ON")

    def _migrate(self, current: int) -> None:
        import sqlite_utils

        db = sqlite_utils.Database(self.conn)
        with self.transaction():
            if current == 0:
                self.conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER)")
            # another process may have migrated while we waited for the write lock
            row = self.conn.execute("SELECT max(version) FROM schema_version").fetchone()
            current = int(row[0] or 0)
            moved_logs = current == 1  # v2 copies every log row: the old pages are left free
            for number in range(current + 1, SCHEMA_VERSION + 1):
                MIGRATIONS[number - 1](db)
                self.conn.execute("INSERT INTO schema_version (version) VALUES (?)", (number,))
        if moved_logs:
            self._compact()

    def _compact(self) -> None:
        """Give the space of the old log table back to the disk, once, after the upgrade that
        moved it (a 10M-line database: 1.8 GB -> 0.6 GB in ~5 s). Best effort: VACUUM needs
        about the database's size in free disk and no other process writing; without them the
        free pages simply get reused by new lines."""
        with contextlib.suppress(sqlite3.Error):
            self.conn.execute("VACUUM")
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._lock:
            if self.conn.in_transaction:
                yield  # nested: the outer transaction commits
                return
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield
                self.conn.execute("COMMIT")
            except BaseException as exc:
                # SQLite may already have rolled back (SQLITE_FULL does); a failed COMMIT leaves
                # the transaction open, and later writes would take it for a nested one
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.OperationalError) and _no_space(self.path, exc):
                    raise self._operational(exc, "cannot write to") from None
                raise

    def close(self) -> None:
        with self._lock:
            self.conn.close()

    def integrity_check(self) -> str:
        with self._lock:
            return str(self.conn.execute("PRAGMA integrity_check").fetchone()[0])

    # ---- generic helpers -----------------------------------------------------------------
    def _insert(self, table: str, values: dict[str, Any]) -> None:
        data = _encode(table, values)
        cols = ", ".join(data)
        marks = ", ".join("?" for _ in data)
        with self.transaction():
            self.conn.execute(
                f"INSERT INTO {table} ({cols}) VALUES ({marks})", tuple(data.values())
            )

    def _update(self, table: str, key: str, fields: dict[str, Any]) -> dict[str, Any]:
        unknown = set(fields) - set(_COLUMNS[table])
        if unknown:
            raise ValueError(f"unknown {table} fields: {', '.join(sorted(unknown))}")
        data = _encode(table, fields)
        with self.transaction():
            if data:
                sets = ", ".join(f"{k} = ?" for k in data)
                cur = self.conn.execute(
                    f"UPDATE {table} SET {sets} WHERE id = ?", (*data.values(), key)
                )
                if cur.rowcount == 0:
                    raise NotFound(f"no {table[:-1]} with id {key}")
            return self._get_row(table, key)

    def _get_row(self, table: str, key: str) -> dict[str, Any]:
        with self._lock:
            row = self.conn.execute(f"SELECT * FROM {table} WHERE id = ?", (key,)).fetchone()
        if row is None:
            raise NotFound(f"no {table[:-1]} with id {key}")
        return _decode(table, row)

    def _find_row(self, table: str, prefix: str, noun: str, hint: str) -> dict[str, Any]:
        prefix = prefix.strip().lower()
        if not prefix:
            raise NotFound(f"empty {noun} id: {hint}")
        with self._lock:
            rows = self.conn.execute(
                f"SELECT * FROM {table} WHERE id >= ? AND id < ? ORDER BY id LIMIT 2",
                (prefix, prefix + "\uffff"),
            ).fetchall()
        if not rows:
            raise NotFound(f"no {noun} matches '{prefix}': {hint}")
        if len(rows) > 1:
            raise Ambiguous(f"'{prefix}' matches several {noun}s: give more characters of the id")
        return _decode(table, rows[0])

    # ---- sessions: plain rows (fast path) ---------------------------------------------------
    def find_session_row(self, id_or_prefix: str) -> dict[str, Any]:
        return self._find_row(
            "sessions", id_or_prefix, "session", "list them with `aura session list`"
        )

    def list_session_rows(
        self, limit: int | None = None, task_id: str | None = None
    ) -> list[dict[str, Any]]:
        sql = "SELECT * FROM sessions"
        args: list[Any] = []
        if task_id:
            sql += " WHERE task_id = ?"
            args.append(task_id)
        sql += " ORDER BY created_at DESC, id DESC"
        if limit:
            sql += " LIMIT ?"
            args.append(limit)
        with self._lock:
            return [_decode("sessions", r) for r in self.conn.execute(sql, args)]

    def latest_session_row(self) -> dict[str, Any] | None:
        rows = self.list_session_rows(limit=1)
        return rows[0] if rows else None

    def running_session_rows(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = self.conn.execute("SELECT * FROM sessions WHERE status = 'running'").fetchall()
        return [_decode("sessions", r) for r in rows]

    def update_session_row(self, session_id: str, **fields: Any) -> dict[str, Any]:
        return self._update("sessions", session_id, fields)

    def iter_log_rows(
        self, session_id: str, start_seq: int = 0, batch: int = 5000
    ) -> Iterator[tuple[int, str, float, str]]:
        """(seq, stream, ts, text) in order, fetched in pages so a huge log streams."""
        seq = start_seq
        while True:
            with self._lock:
                cur = self.conn.cursor()
                cur.row_factory = None  # plain tuples: a 100k-line log must not build Row objects
                rows = cur.execute(_PAGE_SQL, (session_id, seq, batch)).fetchall()
            yield from rows
            if len(rows) < batch:
                return
            seq = rows[-1][0] + 1

    # ---- sessions: models ---------------------------------------------------------------
    def create_session(self, session: Session) -> None:
        self._insert("sessions", session.model_dump())

    def update_session(self, session_id: str, **fields: Any) -> Session:
        from aura_core.contracts import Session

        return Session.model_validate(self._update("sessions", session_id, fields))

    def get_session(self, session_id: str) -> Session:
        from aura_core.contracts import Session

        return Session.model_validate(self._get_row("sessions", session_id))

    def find_session(self, id_or_prefix: str) -> Session:
        from aura_core.contracts import Session

        return Session.model_validate(self.find_session_row(id_or_prefix))

    def list_sessions(self, limit: int | None = None, task_id: str | None = None) -> list[Session]:
        from aura_core.contracts import Session

        return [Session.model_validate(r) for r in self.list_session_rows(limit, task_id)]

    def latest_session(self) -> Session | None:
        from aura_core.contracts import Session

        row = self.latest_session_row()
        return Session.model_validate(row) if row else None

    def running_sessions(self) -> list[Session]:
        from aura_core.contracts import Session

        return [Session.model_validate(r) for r in self.running_session_rows()]

    # ---- log lines ----------------------------------------------------------------------
    # log_rows holds (session_num, seq, stream code, ts, text, raw); session_keys maps each
    # session id to its number (schema _v2). Callers only ever see ids and stream names.
    def _session_num(self, session_id: str) -> int | None:
        row = self.conn.execute(_NUM_SQL, (session_id,)).fetchone()
        return None if row is None else int(row[0])

    def _session_nums(self, session_ids: set[str]) -> dict[str, int]:
        """Numbers for these ids, made for those without one. Inside a write transaction, so two
        processes creating sessions at once are serialised by SQLite's write lock."""
        nums = {}
        for session_id in session_ids:
            num = self._session_num(session_id)
            if num is None:
                cur = self.conn.execute("INSERT INTO session_keys (id) VALUES (?)", (session_id,))
                num = int(cur.lastrowid or 0)
            nums[session_id] = num
        return nums

    def append_log(self, rows: Sequence[LogRow]) -> None:
        if not rows:
            return
        codes = STREAM_CODES
        with self.transaction():
            nums = self._session_nums({row[0] for row in rows})
            self.conn.executemany(
                "INSERT INTO log_rows (session_num, seq, stream, ts, text, raw) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (nums[sid], seq, codes.get(stream, stream), ts, text, raw)
                    for sid, seq, stream, ts, text, raw in rows
                ],
            )

    def read_log(
        self, session_id: str, start_seq: int = 0, limit: int | None = None
    ) -> list[LogLine]:
        from aura_core.contracts import LogLine

        with self._lock:
            cur = self.conn.cursor()
            cur.row_factory = None  # plain tuples
            rows = cur.execute(
                f"SELECT seq, {stream_name('stream')}, ts, text, raw FROM log_rows "
                f"WHERE session_num = ({_NUM_SQL}) AND seq >= ? ORDER BY seq LIMIT ?",
                (session_id, start_seq, -1 if limit is None else limit),
            ).fetchall()
        line = {"session_id": session_id}
        return [
            LogLine.model_validate({**line, "seq": q, "stream": s, "ts": t, "text": x, "raw": r})
            for q, s, t, x, r in rows
        ]

    def iter_log(self, session_id: str, start_seq: int = 0) -> Iterator[LogLine]:
        from aura_core.contracts import LogLine, LogStream

        for seq, stream, ts, text in self.iter_log_rows(session_id, start_seq):
            yield LogLine(
                session_id=session_id, seq=seq, stream=LogStream(stream), ts=ts, text=text
            )

    def count_log(self, session_id: str) -> int:
        with self._lock:
            row = self.conn.execute(
                f"SELECT count(*) FROM log_rows WHERE session_num = ({_NUM_SQL})", (session_id,)
            ).fetchone()
        return int(row[0])

    def last_seq(self, session_id: str) -> int:
        with self._lock:
            row = self.conn.execute(
                f"SELECT max(seq) FROM log_rows WHERE session_num = ({_NUM_SQL})", (session_id,)
            ).fetchone()
        return -1 if row[0] is None else int(row[0])

    # ---- tasks --------------------------------------------------------------------------
    def create_task(self, task: Task) -> None:
        self._insert("tasks", task.model_dump())

    def update_task(self, task_id: str, **fields: Any) -> Task:
        from aura_core.contracts import Task

        return Task.model_validate(self._update("tasks", task_id, fields))

    def get_task(self, task_id: str) -> Task:
        from aura_core.contracts import Task

        return Task.model_validate(self._get_row("tasks", task_id))

    def find_task(self, id_or_prefix: str) -> Task:
        from aura_core.contracts import Task

        row = self._find_row("tasks", id_or_prefix, "task", "list them with `aura task list`")
        return Task.model_validate(row)

    def list_tasks(self) -> list[Task]:
        from aura_core.contracts import Task

        with self._lock:
            rows = self.conn.execute(
                "SELECT * FROM tasks ORDER BY position, created_at, id"
            ).fetchall()
        return [Task.model_validate(_decode("tasks", r)) for r in rows]

    def task_counts(self) -> dict[str, int]:
        """Cards per column id, in one indexed query (WIP checks run on every move)."""
        with self._lock:
            rows = self.conn.execute(
                "SELECT column_id, count(*) FROM tasks GROUP BY column_id"
            ).fetchall()
        return {r[0]: int(r[1]) for r in rows}

    def delete_task(self, task_id: str) -> None:
        with self.transaction():
            ids = [
                r[0]
                for r in self.conn.execute(
                    "SELECT id FROM executions WHERE task_id = ?", (task_id,)
                )
            ]
            for exec_id in ids:
                self.conn.execute("DELETE FROM events WHERE execution_id = ?", (exec_id,))
            self.conn.execute("DELETE FROM executions WHERE task_id = ?", (task_id,))
            cur = self.conn.execute("DELETE FROM tasks WHERE id = ?", (task_id,))
            if cur.rowcount == 0:
                raise NotFound(f"no task with id {task_id}")

    # ---- executions and events -----------------------------------------------------------
    def create_execution(self, execution: Execution) -> None:
        self._insert("executions", execution.model_dump())

    def update_execution(self, execution_id: str, **fields: Any) -> Execution:
        from aura_core.contracts import Execution

        return Execution.model_validate(self._update("executions", execution_id, fields))

    def get_execution(self, execution_id: str) -> Execution:
        from aura_core.contracts import Execution

        return Execution.model_validate(self._get_row("executions", execution_id))

    def list_executions(self, task_id: str | None = None) -> list[Execution]:
        from aura_core.contracts import Execution

        sql, args = "SELECT * FROM executions", tuple[str, ...]()
        if task_id:
            sql, args = sql + " WHERE task_id = ?", (task_id,)
        with self._lock:
            rows = self.conn.execute(sql + " ORDER BY created_at, id", args).fetchall()
        return [Execution.model_validate(_decode("executions", r)) for r in rows]

    def append_event(self, execution_id: str, event: ExecutionEvent, ts: float) -> EventRecord:
        from aura_core.contracts import EventRecord

        payload = event.model_dump(exclude={"kind"}, exclude_none=True)
        with self.transaction():
            row = self.conn.execute(
                "SELECT coalesce(max(seq), -1) + 1 FROM events WHERE execution_id = ?",
                (execution_id,),
            ).fetchone()
            seq = int(row[0])
            self.conn.execute(
                "INSERT INTO events (execution_id, seq, kind, payload, ts) VALUES (?, ?, ?, ?, ?)",
                (execution_id, seq, event.kind.value, json.dumps(payload), ts),
            )
        return EventRecord(
            execution_id=execution_id, seq=seq, kind=event.kind, payload=payload, ts=ts
        )

    def list_events(self, execution_id: str) -> list[EventRecord]:
        from aura_core.contracts import EventRecord

        with self._lock:
            rows = self.conn.execute(
                "SELECT * FROM events WHERE execution_id = ? ORDER BY seq", (execution_id,)
            ).fetchall()
        return [
            EventRecord(
                execution_id=r["execution_id"],
                seq=r["seq"],
                kind=r["kind"],
                payload=json.loads(r["payload"] or "{}"),
                ts=r["ts"],
            )
            for r in rows
        ]

    # ---- settings -----------------------------------------------------------------------
    def get_setting(self, key: str, default: str | None = None) -> str | None:
        with self._lock:
            row = self.conn.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return default if row is None else row[0]

    def set_setting(self, key: str, value: str) -> None:
        with self.transaction():
            self.conn.execute(
                "INSERT INTO settings (key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, value),
            )
