"""Shared tools of the reliability tests: isolated lanes, process scans, the store check.

The consistency check reads the database with plain sqlite3 (not the store code under test) and
replays every execution's event log through the pure state machine: whatever a crash left behind
must be a state the engine could have reached.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

MARK_VAR = "AURA_RELIABILITY_MARK"


def lane_env(base: Path, **extra: str) -> dict[str, str]:
    """An environment whose HOME, XDG dirs and AURA_HOME all live under `base` (made here)."""
    env = dict(os.environ)
    for var, sub in (
        ("XDG_CONFIG_HOME", ".config"),
        ("XDG_DATA_HOME", ".local/share"),
        ("XDG_CACHE_HOME", ".cache"),
        ("XDG_STATE_HOME", ".local/state"),
    ):
        (base / sub).mkdir(parents=True, exist_ok=True)
        env[var] = str(base / sub)
    env["HOME"] = str(base)
    env["AURA_HOME"] = str(base / "aura-data")
    env.pop("AURA_CONFIG_DIR", None)
    env.update(extra)
    return env


def write_config(env: dict[str, str], text: str) -> Path:
    path = Path(env["XDG_CONFIG_HOME"]) / "aura" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def db_file(env: dict[str, str]) -> Path:
    return Path(env["AURA_HOME"]) / "aura.db"


def aura_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "aura_tui", *args]


def run_aura(
    env: dict[str, str], *args: str, timeout: float = 60, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        aura_argv(*args), env=env, capture_output=True, text=True, timeout=timeout, cwd=cwd
    )


def has_traceback(text: str) -> bool:
    return "Traceback (most recent call last)" in text


# ---- processes --------------------------------------------------------------------------------


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, pgrp) of a process, or None when it is gone."""
    try:
        data = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    fields = data[data.rfind(b")") + 2 :].split()
    return fields[0].decode(), int(fields[2])


def live_group_members(pgid: int) -> list[int]:
    """Non-zombie processes of a process group (a zombie holds no resources: it is dead)."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _stat(int(entry))
            if st is not None and st[1] == pgid and st[0] not in ("Z", "X"):
                out.append(int(entry))
    return out


def marked_pids(mark: str) -> list[int]:
    """Live processes whose environment carries MARK_VAR=mark: every descendant of a run does."""
    needle = f"{MARK_VAR}={mark}\0".encode()
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            environ = Path(f"/proc/{entry}/environ").read_bytes()
        except OSError:
            continue
        st = _stat(int(entry))
        if needle in environ + b"\0" and st is not None and st[0] not in ("Z", "X"):
            out.append(int(entry))
    return out


def describe(pids: list[int]) -> str:
    parts = []
    for pid in pids:
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            cmd = "?"
        parts.append(f"{pid}: {cmd[:120]}")
    return "; ".join(parts)


def wait_until(predicate: Callable[[], bool], timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(step)


def end_marked(mark: str) -> None:
    """Last-resort cleanup of a test's own processes (found by their mark), so none outlive it."""
    for pid in marked_pids(mark):
        try:
            os.kill(pid, 9)
        except OSError:
            pass


# ---- the store ----------------------------------------------------------------------------------


def connect(db: Path) -> sqlite3.Connection:
    con = sqlite3.connect(db, timeout=30)
    con.row_factory = sqlite3.Row
    return con


def integrity(db: Path) -> str:
    con = connect(db)
    try:
        return "\n".join(r[0] for r in con.execute("PRAGMA integrity_check"))
    finally:
        con.close()


def check_store(db: Path, *, allow_running: bool = False) -> list[str]:
    """Every inconsistency a crash could have left, as readable lines (empty when all is well).

    - PRAGMA integrity_check is ok;
    - no session is 'running' (after any aura command has recovered dead runs);
    - every session's log is a gap-free prefix seq 0..n-1; every event log is gap-free;
    - every execution's (status, stage) is what replaying its events through `apply` gives;
    - every task's state is the one its latest execution's events imply, in the matching column.
    """
    from aura_core.board import Board
    from aura_core.contracts import (
        CanonicalTaskState,
        EventKind,
        ExecutionEvent,
        InvalidTransition,
    )
    from aura_core.engine.state_machine import apply, initial_state

    problems: list[str] = []
    board = Board.default()
    con = connect(db)
    try:
        ok = [r[0] for r in con.execute("PRAGMA integrity_check")]
        if ok != ["ok"]:
            problems.append(f"integrity_check: {ok[:5]}")
        sessions = con.execute("SELECT * FROM sessions").fetchall()
        executions = con.execute("SELECT * FROM executions ORDER BY created_at, id").fetchall()
        exec_ids = {e["id"] for e in executions}
        for s in sessions:
            sid = s["id"][:8]
            if s["status"] == "running" and not allow_running:
                problems.append(f"session {sid} still 'running'")
            n, top = con.execute(
                "SELECT count(*), max(seq) FROM log_lines WHERE session_id = ?", (s["id"],)
            ).fetchone()
            if n and top != n - 1:
                problems.append(f"session {sid}: log has gaps ({n} lines, last seq {top})")
            if s["execution_id"] and s["execution_id"] not in exec_ids:
                problems.append(f"session {sid}: unknown execution {s['execution_id'][:8]}")
        implied: dict[str, tuple[Any, bool]] = {}  # task id -> (task state, recovered-queued)
        for e in executions:
            eid = e["id"][:8]
            rows = con.execute(
                "SELECT seq, kind, payload FROM events WHERE execution_id = ? ORDER BY seq",
                (e["id"],),
            ).fetchall()
            if [r["seq"] for r in rows] != list(range(len(rows))):
                problems.append(f"execution {eid}: event seqs have gaps")
            state, task_state = initial_state(), None
            try:
                for r in rows:
                    event = ExecutionEvent(kind=r["kind"], **json.loads(r["payload"] or "{}"))
                    transition = apply(state, event)
                    state = transition.state
                    task_state = transition.task_state or task_state
            except InvalidTransition as exc:
                problems.append(f"execution {eid}: its event log does not replay: {exc}")
                continue
            stage = state.stage.value if state.stage else None
            if (e["status"], e["stage"]) != (state.status.value, stage):
                problems.append(
                    f"execution {eid}: stored {e['status']}/{e['stage']} but its events give "
                    f"{state.status.value}/{stage}"
                )
            if not allow_running and e["status"] in ("queued", "running"):
                problems.append(f"execution {eid} still {e['status']} after recovery")
            kinds = [r["kind"] for r in rows]
            recovered_queued = kinds == [EventKind.cancel_requested.value]
            implied[e["task_id"]] = (task_state, recovered_queued)
        for t in con.execute("SELECT * FROM tasks").fetchall():
            tid = t["id"][:8]
            try:
                column = board.column_for_state(CanonicalTaskState(t["state"]))
                if column.id != t["column_id"]:
                    problems.append(f"task {tid}: state {t['state']} but column {t['column_id']}")
            except Exception as exc:
                problems.append(f"task {tid}: state {t['state']!r}: {exc}")
            if t["id"] not in implied:
                if t["state"] not in ("backlog", "ready"):
                    problems.append(f"task {tid}: {t['state']} without any execution")
                continue
            want, recovered_queued = implied[t["id"]]
            if allow_running:
                continue
            if recovered_queued:
                want = CanonicalTaskState.ready  # recovery puts a never-started task back
            if want is None:
                continue
            if t["state"] != want.value and not (t["state"] == "done" and want.value == "review"):
                problems.append(f"task {tid}: state {t['state']}, its events say {want.value}")
    finally:
        con.close()
    return problems


def stored_lines(db: Path, task_id: str | None = None) -> set[tuple[str, str]]:
    """(stream, text) of every stored log line (of one task's sessions, if given)."""
    con = connect(db)
    try:
        sql = "SELECT l.stream, l.text FROM log_lines l"
        args: tuple[str, ...] = ()
        if task_id:
            sql += " JOIN sessions s ON s.id = l.session_id WHERE s.task_id = ?"
            args = (task_id,)
        return {(r[0], r[1]) for r in con.execute(sql, args)}
    finally:
        con.close()


def printed_lines(stdout: bytes) -> list[tuple[str, str]]:
    """(stream, text) of every complete line `aura task start` printed (a cut last line is not
    counted: it was not printed)."""
    text = stdout.decode("utf-8", "replace")
    complete = text.split("\n")[:-1]
    out = []
    for line in complete:
        if line.startswith("[stderr] "):
            out.append(("stderr", line[len("[stderr] ") :]))
        elif line.startswith("[aura] "):
            out.append(("system", line[len("[aura] ") :]))
        elif line.startswith("{"):
            continue  # a --json summary line
        else:
            out.append(("stdout", line))
    return out
