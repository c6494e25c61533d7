"""Run every benchmarks/bench_*.py, print one table, write benchmarks/results/all.json.

    python benchmarks/run_all.py [--quick] [--only NAME ...]

Each script is run with `--json PATH` (its figures) and, with --quick, `--quick` (CI smoke mode:
small sizes; it checks that every benchmark still runs and asserts nothing about times). A script
that does not take those flags yet is still run, without them, and named at the end. The exit
status is 1 when any benchmark failed to run (non-zero exit or timeout), else 0.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
COLUMNS = ("bench", "figure", "value", "baseline", "ratio", "target", "ok")


def discover(only: list[str]) -> list[Path]:
    scripts = sorted(HERE.glob("bench_*.py"))
    if only:
        scripts = [s for s in scripts if s.stem in only or s.stem.removeprefix("bench_") in only]
    return scripts


def supports(script: Path) -> dict[str, bool]:
    """Which of our flags the script declares (read from its source: nothing is imported)."""
    source = script.read_text(encoding="utf-8")
    return {flag: f'"--{flag}"' in source for flag in ("quick", "json")}


def _scalars(data: dict[str, Any], prefix: str = "") -> list[dict[str, Any]]:
    """Rows from a free-form result: every number and flag, dotted by its path."""
    rows: list[dict[str, Any]] = []
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            rows += _scalars(value, f"{name}.")
        elif isinstance(value, bool):
            rows.append({"figure": name, "value": str(value).lower()})
        elif isinstance(value, (int, float)):
            rows.append({"figure": name, "value": f"{value:.4g}"})
    return rows


def rows_of(result: Any) -> list[dict[str, Any]]:
    """The figure rows of a result file: common.report's {"rows": [...]} or any JSON object."""
    if isinstance(result, dict) and isinstance(result.get("rows"), list):
        return [r for r in result["rows"] if isinstance(r, dict)]
    if isinstance(result, dict):
        return _scalars(result)
    return [{"figure": "result", "value": json.dumps(result)[:80]}]


def run_one(script: Path, quick: bool, timeout: float) -> dict[str, Any]:
    flags = supports(script)
    out = Path(tempfile.mkstemp(prefix=f"{script.stem}-", suffix=".json")[1])
    argv = [sys.executable, str(script)]
    if quick and flags["quick"]:
        argv.append("--quick")
    if flags["json"]:
        argv += ["--json", str(out)]
    print(f"\n=== {script.name} {' '.join(argv[2:])}", flush=True)
    started = time.perf_counter()
    tail: list[str] = []
    proc = subprocess.Popen(
        argv,
        cwd=HERE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    )
    timed_out = threading.Event()

    def expire() -> None:
        timed_out.set()
        proc.kill()

    timer = threading.Timer(timeout, expire)
    timer.start()
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            sys.stdout.write(f"  {line}")
            sys.stdout.flush()
            tail = [*tail[-19:], line.rstrip("\n")]
        code = proc.wait()
    finally:
        timer.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    seconds = time.perf_counter() - started
    result: Any = None
    try:
        if out.stat().st_size:
            result = json.loads(out.read_text())
    except (OSError, ValueError):
        result = None
    finally:
        out.unlink(missing_ok=True)
    rows = rows_of(result) if result is not None else []
    if not rows:
        last = next((t for t in reversed(tail) if t.strip()), "")
        rows = [{"figure": "output (no --json)", "value": last[:100]}]
    return {
        "name": script.stem.removeprefix("bench_"),
        "script": script.name,
        "argv": argv[1:],
        "supports": flags,
        "returncode": code,
        "timed_out": timed_out.is_set(),
        "seconds": round(seconds, 2),
        "ok": code == 0 and not timed_out.is_set(),
        "result": result,
        "rows": rows,
        "tail": tail if code != 0 or timed_out.is_set() else [],
    }


def _cell(row: dict[str, Any], key: str) -> str:
    value = row.get(key)
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    return str(value)


def print_table(benches: list[dict[str, Any]]) -> None:
    table: list[tuple[str, ...]] = []
    for bench in benches:
        status = "ok" if bench["ok"] else f"FAILED (exit {bench['returncode']})"
        if bench["timed_out"]:
            status = "TIMED OUT"
        table.append((bench["name"], f"[{status}, {bench['seconds']:.1f} s]", "", "", "", "", ""))
        for row in bench["rows"]:
            table.append(("", *(_cell(row, k) for k in COLUMNS[1:])))
    widths = [max(len(c), *(len(r[i]) for r in table)) for i, c in enumerate(COLUMNS)]
    print(f"\nbenchmarks ({os.cpu_count()} cores, Python {platform.python_version()})")
    for line in (COLUMNS, *table):
        print("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="CI smoke mode, passed to each")
    parser.add_argument("--only", nargs="*", default=[], metavar="NAME", help="e.g. store cli")
    parser.add_argument("--timeout", type=float, help="seconds per benchmark (default 900/7200)")
    args = parser.parse_args(argv)
    timeout = args.timeout or (900.0 if args.quick else 7200.0)
    scripts = discover(args.only)
    if not scripts:
        print("no benchmarks found", file=sys.stderr)
        return 1
    benches = [run_one(s, args.quick, timeout) for s in scripts]
    print_table(benches)
    lacking = [
        f"{b['script']} (no {' '.join('--' + f for f, ok in b['supports'].items() if not ok)})"
        for b in benches
        if not all(b["supports"].values())
    ]
    if lacking:
        print(f"\nnot yet taking --quick/--json (run without): {', '.join(lacking)}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    summary = {
        "quick": args.quick,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "benchmarks": benches,
    }
    path = RESULTS / "all.json"
    path.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"wrote {path.relative_to(HERE.parent)}")
    failed = [b["script"] for b in benches if not b["ok"]]
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
