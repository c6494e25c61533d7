"""SQLite specifics: file location, schema versions, corrupt files, concurrent writers, batching."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import platformdirs
import pytest

from aura_core import paths
from aura_core.contracts import Session
from aura_core.store.errors import CorruptDatabase, SchemaTooNew
from aura_core.store.logwriter import LogWriter
from aura_core.store.schema import SCHEMA_VERSION
from aura_core.store.sqlite import SqliteStore


def test_wal_and_schema_version(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "a.db")
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    store.close()
    con = sqlite3.connect(tmp_path / "a.db")
    assert con.execute("SELECT max(version) FROM schema_version").fetchone()[0] == SCHEMA_VERSION
    indexes = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert {"sessions_created", "sessions_status", "tasks_column"} <= indexes
    con.close()


def test_newer_schema_refused_and_untouched(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    SqliteStore(db).close()
    con = sqlite3.connect(db)
    con.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION + 5,))
    con.commit()
    con.close()
    before = db.read_bytes()
    with pytest.raises(SchemaTooNew, match="upgrade aura"):
        SqliteStore(db)
    assert db.read_bytes() == before


def test_corrupt_file_refused_and_untouched(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    db.write_bytes(b"this is not sqlite at all" * 100)
    before = db.read_bytes()
    with pytest.raises(CorruptDatabase, match="untouched"):
        SqliteStore(db)
    assert db.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.db"]


def test_foreign_sqlite_file_refused(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE people (name TEXT)")
    con.commit()
    con.close()
    with pytest.raises(CorruptDatabase, match="not an AURA database"):
        SqliteStore(db)


def test_paths_agree_with_platformdirs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("AURA_HOME")
    assert paths.data_dir() == Path(platformdirs.user_data_dir("aura", appauthor=False))
    assert paths.config_dir() == Path(platformdirs.user_config_dir("aura", appauthor=False))
    assert paths.cache_dir() == Path(platformdirs.user_cache_dir("aura", appauthor=False))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert paths.db_path() == tmp_path / "xdg" / "aura" / "aura.db"
    monkeypatch.setenv("AURA_HOME", str(tmp_path / "custom"))
    assert paths.db_path() == tmp_path / "custom" / "aura.db"
    assert paths.db_path(tmp_path / "flag") == tmp_path / "flag" / "aura.db"


def test_logwriter_batches_and_flushes_on_close(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "a.db")
    store.create_session(Session(id="s1", executor="custom", cwd="/", created_at=1.0))
    commits = []
    original = store.append_log

    def counting(rows: list[tuple[object, ...]]) -> None:
        commits.append(len(rows))
        original(rows)  # type: ignore[arg-type]

    store.append_log = counting  # type: ignore[method-assign]
    writer = LogWriter(store, interval=0.05)
    for i in range(0, 10_000, 100):
        writer.add([("s1", j, "stdout", 1.0, f"l{j}", None) for j in range(i, i + 100)])
    writer.add([("s1", 10_000, "stdout", 1.0, "last", None)])
    writer.close()
    assert store.count_log("s1") == 10_001
    assert len(commits) < 100  # batched: far fewer commits than the 101 adds


def test_logwriter_flushes_within_interval(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "a.db")
    store.create_session(Session(id="s1", executor="custom", cwd="/", created_at=1.0))
    writer = LogWriter(store, interval=0.2)
    writer.add([("s1", 0, "stdout", 1.0, "hello", None)])
    other = SqliteStore(tmp_path / "a.db")
    deadline = time.monotonic() + 5
    while other.count_log("s1") == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert other.count_log("s1") == 1  # visible to another connection without close()
    writer.close()


def test_two_processes_write_concurrently(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    SqliteStore(db).close()
    code = (
        "import sys\n"
        "from aura_core.store.sqlite import SqliteStore\n"
        "from aura_core.contracts import Session\n"
        "s = SqliteStore(sys.argv[1]); sid = sys.argv[2]\n"
        "s.create_session(Session(id=sid, executor='custom', cwd='/', created_at=1.0))\n"
        "for b in range(200):\n"
        "    s.append_log([(sid, b*50+i, 'stdout', 1.0, 'x', None) for i in range(50)])\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(db), f"p{i}"], stderr=subprocess.PIPE)
        for i in range(3)
    ]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()
    store = SqliteStore(db)
    assert [store.count_log(f"p{i}") for i in range(3)] == [10_000] * 3
    assert store.integrity_check() == "ok"
