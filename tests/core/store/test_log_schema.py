"""The compact log table (schema v2): the migration from v1, deletes, and session numbers made by
two processes at once."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlite_utils

from aura_core.contracts import LogLine, LogStream, Session
from aura_core.store.schema import MIGRATIONS, SCHEMA_VERSION
from aura_core.store.sqlite import SqliteStore

SID_A = "0123456789abcdef0123456789abcdef"
SID_B = "fedcba9876543210fedcba9876543210"
SID_LOOSE = "aaaa0000bbbb1111cccc2222dddd3333"  # lines but no session row (as some tests write)
BAD_BYTES = b"caf\xe9 \xff\xfe half a line\r"

V1_LINES: list[tuple[str, int, str, float, str, bytes | None]] = [
    (SID_A, 0, "stdout", 1_700_000_000.123456, "hello", None),
    (SID_A, 1, "stderr", 1_700_000_000.5, "warning: é ✓ 日本", None),
    (SID_A, 2, "stdout", 1_700_000_001.0, "caf\ufffd \ufffd\ufffd half a line", BAD_BYTES),
    (SID_A, 3, "system", 1_700_000_002.25, "", None),
    (SID_A, 70_000, "stdout", 1_700_000_003.0, "after a gap\tand a tab", None),
    (SID_B, 0, "system", 2.0, "session b", None),
    (SID_B, 1, "stdout", 2.5, "x" * 5000, None),
    (SID_LOOSE, 5, "stderr", 3.0, "loose", b"\x00\x01"),
]


def _q(store: SqliteStore, sql: str) -> list[tuple[object, ...]]:
    return [tuple(r) for r in store.conn.execute(sql)]


def _session(sid: str, created: float) -> Session:
    return Session(id=sid, executor="custom", cwd="/", created_at=created)


def _make_v1(db: Path) -> None:
    """A database exactly as schema version 1 made it, with rows."""
    con = sqlite3.connect(db, isolation_level=None)
    con.execute("BEGIN IMMEDIATE")
    con.execute("CREATE TABLE schema_version (version INTEGER)")
    MIGRATIONS[0](sqlite_utils.Database(con))
    con.execute("INSERT INTO schema_version (version) VALUES (1)")
    for i, sid in enumerate((SID_A, SID_B)):
        con.execute(
            "INSERT INTO sessions (id, executor, cwd, status, created_at) VALUES (?, ?, ?, ?, ?)",
            (sid, "custom", "/", "completed", float(i)),
        )
    con.executemany("INSERT INTO log_lines VALUES (?, ?, ?, ?, ?, ?)", V1_LINES)
    con.execute("COMMIT")
    con.close()


def _all_lines(db: Path) -> list[tuple[object, ...]]:
    con = sqlite3.connect(db)
    rows = con.execute("SELECT * FROM log_lines ORDER BY session_id, seq").fetchall()
    con.close()
    return rows


def test_v1_database_migrates_and_reads_back_identically(tmp_path: Path) -> None:
    db = tmp_path / "aura.db"
    _make_v1(db)
    before = _all_lines(db)
    assert before == sorted(V1_LINES)

    store = SqliteStore(db)
    version = store.conn.execute("SELECT max(version) FROM schema_version").fetchone()[0]
    assert version == SCHEMA_VERSION >= 2
    kinds = dict(_q(store, "SELECT name, type FROM sqlite_master"))
    assert kinds["log_lines"] == "view" and kinds["log_rows"] == "table"
    assert store.integrity_check() == "ok"
    # the old columns through the view, byte for byte (raw stays bytes, ts the same float)
    assert _all_lines(db) == before
    # and through the Store API
    for sid in (SID_A, SID_B, SID_LOOSE):
        want = [r for r in V1_LINES if r[0] == sid]
        got = store.read_log(sid)
        assert [(x.session_id, x.seq, x.stream.value, x.ts, x.text, x.raw) for x in got] == want
        assert list(store.iter_log_rows(sid)) == [(r[1], r[2], r[3], r[4]) for r in want]
        assert store.count_log(sid) == len(want)
        assert store.last_seq(sid) == want[-1][1]
    assert store.read_log(SID_A)[2].raw == BAD_BYTES
    assert [x.seq for x in store.read_log(SID_A, start_seq=2, limit=2)] == [2, 3]
    # the stored rows are the compact ones: a small number and a stream code
    stored = _q(store, "SELECT typeof(session_num), typeof(stream) FROM log_rows")
    assert set(stored) == {("integer", "integer")}
    # appends carry on after the migrated lines
    store.append_log([(SID_A, 70_001, "stdout", 9.0, "new", None)])
    assert store.last_seq(SID_A) == 70_001
    store.close()
    # opening again migrates nothing more
    again = SqliteStore(db)
    assert again.count_log(SID_A) == 6
    again.close()


def test_the_upgrade_gives_the_old_tables_space_back(tmp_path: Path) -> None:
    db = tmp_path / "aura.db"
    _make_v1(db)
    con = sqlite3.connect(db, isolation_level=None)
    rows = [
        (SID_B, 10 + i, "stdout", 3.0 + i, f"line {i} " + "y" * 60, None) for i in range(20_000)
    ]
    con.executemany("INSERT INTO log_lines VALUES (?, ?, ?, ?, ?, ?)", rows)
    con.close()
    size_v1 = db.stat().st_size
    store = SqliteStore(db)
    # the old table's pages went back to the disk, not left free inside the file
    assert store.conn.execute("PRAGMA freelist_count").fetchone()[0] == 0
    assert store.count_log(SID_B) == 20_002
    store.close()
    assert db.stat().st_size < size_v1


def test_migration_runs_in_one_transaction(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A migration that fails half-way leaves the v1 database as it was."""
    from aura_core.store import sqlite

    db = tmp_path / "aura.db"
    _make_v1(db)
    before = _all_lines(db)

    def broken(database: object) -> None:
        MIGRATIONS[1](database)
        raise RuntimeError("power cut")

    monkeypatch.setattr(sqlite, "MIGRATIONS", [MIGRATIONS[0], broken])
    with pytest.raises(RuntimeError, match="power cut"):
        SqliteStore(db)
    con = sqlite3.connect(db)
    assert con.execute("SELECT max(version) FROM schema_version").fetchone()[0] == 1
    kinds = dict(con.execute("SELECT name, type FROM sqlite_master").fetchall())
    assert kinds["log_lines"] == "table" and "log_rows" not in kinds
    con.close()
    assert _all_lines(db) == before


def test_deleting_a_session_deletes_its_lines(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "aura.db")
    for i, sid in enumerate(("s1", "s2")):
        store.create_session(_session(sid, float(i)))
        store.append_log([(sid, n, "stdout", 1.0, f"{sid}-{n}", None) for n in range(100)])
    old_num = store.conn.execute("SELECT num FROM session_keys WHERE id = 's1'").fetchone()[0]
    with store.transaction():
        store.conn.execute("DELETE FROM sessions WHERE id = 's1'")
    assert store.count_log("s1") == 0 and store.read_log("s1") == []
    assert store.count_log("s2") == 100
    assert store.conn.execute("SELECT count(*) FROM log_rows").fetchone()[0] == 100
    orphans = store.conn.execute(
        "SELECT count(*) FROM log_rows WHERE session_num NOT IN (SELECT num FROM session_keys)"
    ).fetchone()[0]
    assert orphans == 0
    assert _q(store, "SELECT id FROM session_keys") == [("s2",)]
    # a new session never gets the number of a deleted one
    store.create_session(_session("s3", 3.0))
    store.append_log([("s3", 0, "stdout", 1.0, "s3-0", None)])
    new_num = store.conn.execute("SELECT num FROM session_keys WHERE id = 's3'").fetchone()[0]
    assert new_num > old_num
    assert [x.text for x in store.read_log("s3")] == ["s3-0"]
    store.close()


def test_streams_and_multi_session_batches_roundtrip(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "aura.db")
    rows = [
        (sid, n, stream, float(n), f"{sid}:{n}", None)
        for n in range(30)
        for sid, stream in (
            ("a", LogStream.stdout),
            ("b", "stderr"),
            ("c", LogStream.system),
        )
    ]
    store.append_log(rows)
    for sid, stream in (("a", "stdout"), ("b", "stderr"), ("c", "system")):
        lines = store.read_log(sid)
        assert lines == [
            LogLine(session_id=sid, seq=n, stream=LogStream(stream), ts=float(n), text=f"{sid}:{n}")
            for n in range(30)
        ]
    store.close()


def test_old_columns_still_writable_through_the_view(tmp_path: Path) -> None:
    """An aura started before the migration (or ad-hoc SQL) still inserts into log_lines."""
    store = SqliteStore(tmp_path / "aura.db")
    store.append_log([("s1", 0, "stdout", 1.0, "new api", None)])
    con = sqlite3.connect(tmp_path / "aura.db", isolation_level=None)
    con.executemany(
        "INSERT INTO log_lines (session_id, seq, stream, ts, text, raw) VALUES (?, ?, ?, ?, ?, ?)",
        [("s1", 1, "stderr", 2.0, "old api", BAD_BYTES), ("s2", 0, "system", 3.0, "fresh", None)],
    )
    with pytest.raises(sqlite3.IntegrityError):
        con.execute("INSERT INTO log_lines VALUES ('s1', 1, 'stdout', 1.0, 'dup', NULL)")
    con.close()
    got = [(x.seq, x.stream.value, x.text, x.raw) for x in store.read_log("s1")]
    assert got == [(0, "stdout", "new api", None), (1, "stderr", "old api", BAD_BYTES)]
    assert [x.text for x in store.read_log("s2")] == ["fresh"]
    assert len(_q(store, "SELECT id FROM session_keys")) == 2
    store.close()


def test_failed_append_leaves_no_session_number(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "aura.db")
    store.append_log([("s1", 0, "stdout", 1.0, "x", None)])
    with pytest.raises(sqlite3.IntegrityError):
        store.append_log([("s2", 0, "stdout", 1.0, "y", None), ("s1", 0, "stdout", 1.0, "z", None)])
    assert _q(store, "SELECT id FROM session_keys") == [("s1",)]
    assert [x.text for x in store.read_log("s1")] == ["x"]
    store.close()


# Each process creates its own sessions and writes lines to them, and also writes to sessions
# both share (their numbers are made by whichever process gets there first), all at once.
WRITER = r"""
import sys, time
from pathlib import Path
from aura_core.contracts import Session
from aura_core.store.sqlite import SqliteStore

db, me, go = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
store = SqliteStore(db)
while not go.exists():
    time.sleep(0.001)
for i in range(60):
    own = f"p{me}-{i:03d}"
    store.create_session(Session(id=own, executor="custom", cwd="/", created_at=time.time()))
    shared = f"shared-{i:03d}"
    base = me * 1000
    store.append_log([(own, n, "stdout", 1.0, f"{own}:{n}", None) for n in range(20)])
    store.append_log([(shared, base + n, "stderr", 1.0, f"{shared}:{base + n}", None)
                      for n in range(20)])
store.close()
"""


def test_two_processes_make_session_numbers_at_once(tmp_path: Path) -> None:
    db = tmp_path / "aura.db"
    SqliteStore(db).close()
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(db), str(me), str(go)], stderr=subprocess.PIPE
        )
        for me in range(2)
    ]
    time.sleep(0.5)  # both have opened the store and are waiting
    go.touch()
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()
    store = SqliteStore(db)
    assert store.integrity_check() == "ok"
    keys = _q(store, "SELECT num, id FROM session_keys")
    assert len(keys) == 180 and len({k[1] for k in keys}) == 180
    for me in range(2):
        for i in range(60):
            own = f"p{me}-{i:03d}"
            assert [(x.seq, x.text) for x in store.read_log(own)] == [
                (n, f"{own}:{n}") for n in range(20)
            ]
    for i in range(60):
        shared = f"shared-{i:03d}"
        seqs = [n for me in range(2) for n in range(me * 1000, me * 1000 + 20)]
        assert [(x.seq, x.text) for x in store.read_log(shared)] == [
            (n, f"{shared}:{n}") for n in seqs
        ]
    store.close()
