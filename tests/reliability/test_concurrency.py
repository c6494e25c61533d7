"""Several `aura` processes writing one database at once: nobody sees "database is locked", no row
is lost.

For AURA_RELIABILITY_SECONDS (default 60; shorten it locally) three loops share a fresh AURA_HOME:
an `aura run` streaming numbered lines the whole time, an `aura task add` + `aura task start` loop
(each task's agent prints a known number of lines), and a reader running `aura session list` and
`aura task list` (each also runs crash recovery on open). All start together on a database that
does not exist yet, so the first migration races too.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

from tests.reliability.support import (
    aura_argv,
    check_store,
    connect,
    db_file,
    has_traceback,
    lane_env,
    run_aura,
)
from tests.support.gitrepo import make_repo

SECONDS = float(os.environ.get("AURA_RELIABILITY_SECONDS", "60"))
TASK_LINES = 300
# 100 lines every 20 ms (5,000 lines/s) for the given seconds, then the total
STREAM = (
    "import sys, time\n"
    "end = time.monotonic() + float(sys.argv[1]); n = 0\n"
    "while time.monotonic() < end:\n"
    "    sys.stdout.write(''.join(f'stream {n + i}\\n' for i in range(100)))\n"
    "    sys.stdout.flush(); n += 100; time.sleep(0.02)\n"
    "print(f'TOTAL {n}')\n"
)
TASK_AGENT = (
    f'seq -f "task-%g" 1 {TASK_LINES // 2}; sleep 0.05; seq -f "more-%g" 1 {TASK_LINES // 2}'
)
LOCKED = "database is locked"


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    env = lane_env(tmp_path / "home")
    repo = make_repo(tmp_path / "repo")
    db = db_file(env)
    out_path, err_path = tmp_path / "run.out", tmp_path / "run.err"
    failures: list[str] = []
    started_tasks: list[str] = []
    reads = [0]
    deadline = time.monotonic() + SECONDS

    def check(res: subprocess.CompletedProcess[str], what: str) -> None:
        if res.returncode != 0 or LOCKED in res.stderr or has_traceback(res.stderr):
            failures.append(f"{what}: exit {res.returncode}: {res.stderr.strip()[-500:]}")

    def task_loop() -> None:
        n = 0
        while time.monotonic() < deadline and len(failures) < 5:
            n += 1
            add = run_aura(
                env,
                *("task", "add", "--title", f"Concurrent {n}", "--repo", str(repo)),
                *("--base-command", "sh", "--param", "-c", "--param", TASK_AGENT),
            )
            check(add, f"task add {n}")
            if add.returncode != 0:
                return
            task_id = add.stdout.strip()
            started_tasks.append(task_id)
            check(run_aura(env, "task", "start", task_id, timeout=120), f"task start {n}")

    def reader_loop() -> None:
        while time.monotonic() < deadline and len(failures) < 5:
            check(run_aura(env, "session", "list", "-n", "5"), "session list")
            check(run_aura(env, "task", "list"), "task list")
            reads[0] += 1

    with out_path.open("wb") as out, err_path.open("wb") as err:
        stream = subprocess.Popen(
            aura_argv(
                *("run", "--executor", "custom", "--prompt", "stream", "--no-tui"),
                *("--base-command", "python3", "--param", "-c", "--param", STREAM),
                *("--param", str(SECONDS)),
            ),
            env=env,
            stdout=out,
            stderr=err,
            cwd=tmp_path,
        )
        threads = [threading.Thread(target=task_loop), threading.Thread(target=reader_loop)]
        try:
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(SECONDS + 180)
            stream.wait(timeout=120)
        finally:
            if stream.poll() is None:
                stream.kill()
                stream.wait()
    run_err = err_path.read_text(errors="replace")
    assert stream.returncode == 0 and LOCKED not in run_err, run_err[-2000:]
    assert not has_traceback(run_err), run_err[-2000:]
    assert not failures, "\n".join(failures)
    assert len(started_tasks) >= 2 and reads[0] >= 2, "the loops hardly ran"

    printed = out_path.read_bytes().split(b"\n")[:-1]
    total = int(printed[-1].split()[1])
    assert len(printed) == total + 1  # every streamed line, then TOTAL
    con = connect(db)
    try:
        session = con.execute("SELECT id FROM sessions WHERE prompt = 'stream'").fetchone()["id"]
        count, top = con.execute(
            "SELECT count(*), max(seq) FROM log_lines WHERE session_id = ? AND stream = 'stdout'",
            (session,),
        ).fetchone()
        assert count == total + 1, f"stored {count} of {total + 1} streamed lines"
        assert top == total, "the streamed lines are not a gap-free sequence"
        last = con.execute(
            "SELECT text FROM log_lines WHERE session_id = ? ORDER BY seq DESC LIMIT 1", (session,)
        ).fetchone()[0]
        assert last == f"TOTAL {total}"
        for task_id in started_tasks:
            state = con.execute("SELECT state FROM tasks WHERE id = ?", (task_id,)).fetchone()[0]
            assert state == "review", f"task {task_id[:8]} ended {state}"
            rows = con.execute(
                "SELECT s.id, count(l.seq) FROM sessions s LEFT JOIN log_lines l "
                "ON l.session_id = s.id AND l.stream = 'stdout' WHERE s.task_id = ? "
                "GROUP BY s.id",
                (task_id,),
            ).fetchall()
            assert [r[1] for r in rows] == [TASK_LINES], (
                f"task {task_id[:8]}: {list(map(tuple, rows))}"
            )
    finally:
        con.close()
    assert check_store(db) == []
