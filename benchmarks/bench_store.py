"""A big store: 10,000 sessions and 10M log lines, and the read commands on it.

    python benchmarks/bench_store.py [--quick] [--json PATH] [--runs N] [--dir DIR]

The database is a real AURA one (created by SqliteStore, so the schema and pragmas are ours),
filled with direct executemany in large transactions. Then, each against a baseline measured in
the same run:

- `aura session list` and `aura session latest` vs `python -c pass` (interpreter start: the
  floor of any CLI command);
- `aura session show <id of a 100k-line session>` vs a bare sqlite3 script that SELECTs the same
  rows and writes them to /dev/null (the floor of printing a log);

all with stdout to /dev/null, median of --runs. Target: each < 200 ms. Also, in process on the big
store: appending 100k lines through `SqliteStore.append_log` in the log writer's batches, and
reading the 100k-line session back (`iter_log_rows`, `read_log`); and the database size per
million lines. `--quick` (1,000 sessions / 200k lines, 3 runs) checks it all still works; the
figures are only meaningful at full size.
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from itertools import repeat
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import aura_bin, isolated_env, median, report, time_command

from aura_core.store.logwriter import BATCH_LINES
from aura_core.store.schema import STREAM_CODES
from aura_core.store.sqlite import SqliteStore

TARGET_MS = 200.0
BIG_SESSION = 100_000
BATCH = 200_000
WORDS = (
    "compiling",
    "running tests",
    "PASS tests/test_store.py::test_append",
    "warning: unused variable",
    "Downloading dependency 3 of 17",
    "{'type': 'assistant', 'text': 'Looking at the failing test now'}",
)

# The baseline for `session show`: the same rows, selected and written out, nothing else.
BARE_SHOW = r"""
import sqlite3, sys
con = sqlite3.connect(sys.argv[1])
out = sys.stdout
buf = []
for (text,) in con.execute(
    "SELECT text FROM log_rows WHERE session_num = (SELECT num FROM session_keys WHERE id = ?)"
    " ORDER BY seq",
    (sys.argv[2],),
):
    buf.append(text)
    if len(buf) >= 4096:
        out.write("\n".join(buf) + "\n")
        buf.clear()
out.write("\n".join(buf) + "\n")
"""


def _columns(count: int, start_ts: float) -> tuple[list[int], list[float], list[str]]:
    """Per-seq streams, timestamps and texts, made once and shared by every session's rows
    (zip() then builds the rows in C: the build is bound by SQLite, not by Python)."""
    out, err = STREAM_CODES["stdout"], STREAM_CODES["stderr"]
    streams = [err if seq % 50 == 49 else out for seq in range(count)]
    stamps = [start_ts + seq * 1e-3 for seq in range(count)]
    texts = [f"{seq:07d} {WORDS[seq % len(WORDS)]}" for seq in range(count)]
    return streams, stamps, texts


def build(db: Path, sessions: int, lines: int) -> tuple[str, float]:
    """Make the database; returns (id of the 100k-line session, seconds taken)."""
    started = time.perf_counter()
    SqliteStore(db).close()  # our schema, migrations and WAL mode
    con = sqlite3.connect(db, isolation_level=None)
    con.execute("PRAGMA synchronous = OFF")
    con.execute("PRAGMA cache_size = -262144")
    ids = sorted(uuid.uuid4().hex for _ in range(sessions))
    big = ids[len(ids) // 2]
    rest = lines - BIG_SESSION
    per, extra = divmod(rest, sessions - 1)
    small = [s for s in ids if s != big]
    counts = {sid: per + (1 if i < extra else 0) for i, sid in enumerate(small)}
    counts[big] = BIG_SESSION
    now = time.time() - sessions * 60
    order = list(ids)
    order.remove(big)
    order.insert(len(order) // 2, big)  # the big one is neither the newest nor the oldest
    session_rows = []
    for i, sid in enumerate(order):
        created = now + i * 60
        session_rows.append(
            (sid, "custom", f"prompt number {i}: fix the thing", "/tmp/repo", "completed", 0,
             created, created, created + 30, "{}")
        )  # fmt: skip
    con.execute("BEGIN")
    con.executemany(
        "INSERT INTO sessions (id, executor, prompt, cwd, status, exit_code, created_at, "
        "started_at, finished_at, options) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        session_rows,
    )
    # session numbers in id order, so the log b-tree below is filled in key order
    con.executemany("INSERT INTO session_keys (id) VALUES (?)", [(sid,) for sid in ids])
    nums = dict(con.execute("SELECT id, num FROM session_keys"))
    con.execute("COMMIT")
    streams, stamps, texts = _columns(max(counts.values()), now)

    def rows(group: list[str]) -> Iterator[tuple[object, ...]]:
        for sid in group:
            n = counts[sid]
            num = nums[sid]
            columns = (repeat(num, n), range(n), streams[:n], stamps[:n], texts[:n], repeat(None))
            yield from zip(*columns, strict=False)  # repeat(None) is endless

    group: list[str] = []
    pending = 0
    for sid in [*ids, ""]:  # primary-key order: the b-tree only ever appends
        if (not sid or pending >= BATCH) and group:
            con.execute("BEGIN")
            con.executemany("INSERT INTO log_rows VALUES (?, ?, ?, ?, ?, ?)", rows(group))
            con.execute("COMMIT")
            group, pending = [], 0
        if sid:
            group.append(sid)
            pending += counts[sid]
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    total = con.execute("SELECT count(*) FROM log_rows").fetchone()[0]
    con.close()
    if total != lines:
        raise SystemExit(f"built {total} lines, wanted {lines}")
    return big, time.perf_counter() - started


def in_process(db: Path, big: str, runs: int) -> dict[str, float]:
    """Seconds to append 100k lines to a new session through the Store in the log writer's
    batches (on the big store), and to read the 100k-line session back (best of runs)."""
    store = SqliteStore(db)
    sid = uuid.uuid4().hex
    _, stamps, texts = _columns(BIG_SESSION, time.time())
    lines = [
        (sid, seq, "stderr" if seq % 50 == 49 else "stdout", stamps[seq], texts[seq], None)
        for seq in range(BIG_SESSION)
    ]
    started = time.perf_counter()
    for at in range(0, BIG_SESSION, BATCH_LINES):
        store.append_log(lines[at : at + BATCH_LINES])
    append = time.perf_counter() - started

    def best(read: object) -> float:
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            read()  # type: ignore[operator]
            times.append(time.perf_counter() - started)
        return min(times)

    rows = best(lambda: list(store.iter_log_rows(big)))
    models = best(lambda: store.read_log(big))
    tail = best(lambda: [store.read_log(big, BIG_SESSION - 10) for _ in range(100)]) / 100
    if store.count_log(sid) != BIG_SESSION or store.last_seq(big) != BIG_SESSION - 1:
        raise SystemExit("in-process append/read lost lines")
    store.close()
    return {"append": append, "rows": rows, "models": models, "tail": tail}


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 sessions / 200k lines")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--runs", type=int, help="timed runs per command (median)")
    parser.add_argument("--dir", help="where to build the database (default: a temp dir)")
    args = parser.parse_args(argv)
    sessions, lines = (1_000, 200_000) if args.quick else (10_000, 10_000_000)
    runs = args.runs or (3 if args.quick else 11)
    home = Path(tempfile.mkdtemp(prefix="aura-bench-store-", dir=args.dir))
    try:
        env = isolated_env(home)
        db = Path(env["AURA_HOME"]) / "aura.db"
        db.parent.mkdir(parents=True)
        print(f"building {sessions:,} sessions / {lines:,} lines in {db} ...", flush=True)
        big, took = build(db, sessions, lines)
        size = db.stat().st_size
        print(f"built in {took:.1f}s ({lines / took:,.0f} lines/s), {size / 1e6:,.0f} MB")
        aura = aura_bin()
        quiet = {"stdout": subprocess.DEVNULL}
        py = sys.executable
        for warm in ([aura, "session", "list"], [py, "-c", BARE_SHOW, str(db), big]):
            subprocess.run(warm, env=env, check=True, stdout=subprocess.DEVNULL)  # warm cache
        base = median(time_command([py, "-c", "pass"], env, runs, **quiet))
        bare = median(time_command([py, "-c", BARE_SHOW, str(db), big], env, runs, **quiet))
        listed = median(time_command([aura, "session", "list"], env, runs, **quiet))
        latest = median(time_command([aura, "session", "latest"], env, runs, **quiet))
        shown = median(time_command([aura, "session", "show", big], env, runs, **quiet))
        check = subprocess.run(
            [aura, "session", "show", big, "--raw"], env=env, check=True, capture_output=True
        )
        printed = check.stdout.count(b"\n")
        if printed < BIG_SESSION:
            raise SystemExit(f"`session show` printed {printed} lines, wanted >= {BIG_SESSION}")
        timed = in_process(db, big, runs)  # last: its appends change the database
    finally:
        shutil.rmtree(home, ignore_errors=True)

    def row(figure: str, value: float, baseline: float, what: str) -> dict[str, object]:
        return {
            "figure": figure,
            "value": ms(value),
            "baseline": f"{ms(baseline)} ({what})",
            "ratio": f"{value / baseline:.2f}x",
            "target": f"< {TARGET_MS:.0f} ms",
            "ok": value * 1000 < TARGET_MS,
        }

    rows: list[dict[str, object]] = [
        {"figure": "store", "value": f"{sessions:,} sessions, {lines:,} lines"},
        {"figure": "build (executemany)", "value": f"{took:.1f} s ({lines / took:,.0f} lines/s)"},
        {"figure": "python -c pass", "value": ms(base)},
        {"figure": "bare SELECT of 100k rows to /dev/null", "value": ms(bare)},
        row("aura session list", listed, base, "python -c pass"),
        row("aura session latest", latest, base, "python -c pass"),
        row(f"aura session show ({BIG_SESSION // 1000}k lines)", shown, bare, "bare SELECT"),
        {
            "figure": f"append_log {BIG_SESSION // 1000}k lines ({BATCH_LINES:,}-line batches)",
            "value": f"{ms(timed['append'])} ({BIG_SESSION / timed['append']:,.0f} lines/s)",
        },
        {"figure": f"iter_log_rows {BIG_SESSION // 1000}k lines", "value": ms(timed["rows"])},
        {"figure": f"read_log {BIG_SESSION // 1000}k lines", "value": ms(timed["models"])},
        {"figure": "read_log of the last 10 lines", "value": f"{timed['tail'] * 1e6:.0f} us"},
        {"figure": "database size per 1M lines", "value": f"{size / (lines / 1e6) / 1e6:.1f} MB"},
    ]
    report("store", rows, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
