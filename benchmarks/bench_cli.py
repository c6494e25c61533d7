"""CLI cold start and log ingest, each against a baseline measured in the same run.

- `aura session latest` and `aura --help` wall time vs `python -c pass` (target <= 3x)
- 1,000,000 lines through the custom executor, persisted, vs a minimal pipe -> SQLite batch
  ingester written below (target <= 2x); the persisted count must be exactly 1,000,000.
"""

from __future__ import annotations

import argparse
import sqlite3
import subprocess
import sys
import time

from common import aura_bin, isolated_env, median, report, temp_home, time_command

# The baseline: the least a pipe -> SQLite ingester must do (read, batch, insert in transactions).
INGESTER = r"""
import sqlite3, sys, time
con = sqlite3.connect(sys.argv[1], isolation_level=None)
con.execute("PRAGMA journal_mode=WAL")
con.execute("PRAGMA synchronous=NORMAL")
con.execute("CREATE TABLE IF NOT EXISTS lines (session TEXT, seq INTEGER, stream TEXT, ts REAL,"
            " text TEXT, PRIMARY KEY (session, seq)) WITHOUT ROWID")
batch, seq = [], 0
for line in sys.stdin.buffer:
    batch.append(("s", seq, "stdout", time.time(), line.rstrip(b"\n").decode()))
    seq += 1
    if len(batch) >= 20000:
        con.execute("BEGIN"); con.executemany("INSERT INTO lines VALUES (?,?,?,?,?)", batch)
        con.execute("COMMIT"); batch = []
if batch:
    con.execute("BEGIN"); con.executemany("INSERT INTO lines VALUES (?,?,?,?,?)", batch)
    con.execute("COMMIT")
"""


def bench_cold_start(runs: int) -> list[dict[str, object]]:
    home = temp_home()
    env = isolated_env(home)
    aura = aura_bin()
    seed = [aura, "run", "-e", "custom", "-p", "x", "--base-command", "echo", "--no-tui"]
    subprocess.run(seed, env=env, check=True, capture_output=True)
    quiet = {"stdout": subprocess.DEVNULL}
    base = median(time_command([sys.executable, "-c", "pass"], env, runs, **quiet))
    latest = median(time_command([aura, "session", "latest"], env, runs, **quiet))
    helps = median(time_command([aura, "--help"], env, runs, **quiet))
    return [
        {"figure": "python -c pass", "value": f"{base * 1000:.1f} ms"},
        {
            "figure": "aura session latest",
            "value": f"{latest * 1000:.1f} ms",
            "baseline": f"{base * 1000:.1f} ms",
            "ratio": f"{latest / base:.2f}x",
            "target": "<= 3x",
        },
        {
            "figure": "aura --help",
            "value": f"{helps * 1000:.1f} ms",
            "baseline": f"{base * 1000:.1f} ms",
            "ratio": f"{helps / base:.2f}x",
            "target": "<= 3x",
        },
    ]


def bench_ingest(lines: int) -> list[dict[str, object]]:
    home = temp_home()
    env = isolated_env(home)
    start = time.perf_counter()
    seq = subprocess.Popen(["seq", "1", str(lines)], stdout=subprocess.PIPE)
    subprocess.run(
        [sys.executable, "-c", INGESTER, str(home / "baseline.db")], stdin=seq.stdout, check=True
    )
    seq.wait()
    baseline = time.perf_counter() - start
    start = time.perf_counter()
    subprocess.run(
        [aura_bin(), "run", "-e", "custom", "-p", "ingest", "--base-command", "seq",
         "--param", "1", "--param", str(lines), "--no-tui"],
        env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    ours = time.perf_counter() - start
    con = sqlite3.connect(home / "aura" / "aura.db")
    persisted = con.execute("SELECT count(*) FROM log_lines WHERE stream = 'stdout'").fetchone()[0]
    last = con.execute(
        "SELECT text FROM log_lines WHERE stream = 'stdout' ORDER BY seq DESC LIMIT 1"
    ).fetchone()[0]
    size = sum(p.stat().st_size for p in (home / "aura").glob("aura.db*"))
    if persisted != lines or last != str(lines):
        raise SystemExit(f"ingest lost lines: persisted {persisted} of {lines}, last {last!r}")
    return [
        {
            "figure": f"ingest {lines:,} lines",
            "value": f"{ours:.2f} s ({lines / ours:,.0f} lines/s)",
            "baseline": f"{baseline:.2f} s",
            "ratio": f"{ours / baseline:.2f}x",
            "target": "<= 2x",
        },
        {"figure": "lines persisted", "value": f"{persisted:,}", "target": f"= {lines:,}"},
        {"figure": "database size per 1M lines", "value": f"{size / lines:.1f} MB"},
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes: checks it still works")
    parser.add_argument("--json", help="write results here")
    args = parser.parse_args()
    runs, lines = (3, 20_000) if args.quick else (15, 1_000_000)
    rows = bench_cold_start(runs) + bench_ingest(lines)
    report("cli", rows, args.json)


if __name__ == "__main__":
    main()
