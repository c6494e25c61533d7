"""Shared helpers for the benchmark scripts: timing, isolated homes, result tables."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"


def aura_bin() -> str:
    candidate = Path(sys.executable).parent / "aura"
    return str(candidate) if candidate.exists() else "aura"


def isolated_env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        HOME=str(home),
        XDG_DATA_HOME=str(home / "data"),
        XDG_CONFIG_HOME=str(home / "config"),
        XDG_CACHE_HOME=str(home / "cache"),
        AURA_HOME=str(home / "aura"),
    )
    return env


def temp_home() -> Path:
    return Path(tempfile.mkdtemp(prefix="aura-bench-"))


def time_command(argv: Sequence[str], env: dict[str, str], runs: int, **kw: object) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, env=env, check=True, **kw)  # type: ignore[call-overload]
        times.append(time.perf_counter() - start)
    return times


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def report(name: str, rows: list[dict[str, object]], json_path: str | None = None) -> None:
    """Print a table: figure, value, baseline, ratio, target."""
    print(f"\n{name} ({os.cpu_count()} cores)")
    header = ("figure", "value", "baseline", "ratio", "target")
    table = [
        (
            str(r["figure"]),
            str(r["value"]),
            str(r.get("baseline", "-")),
            str(r.get("ratio", "-")),
            str(r.get("target", "-")),
        )
        for r in rows
    ]
    widths = [max(len(h), *(len(t[i]) for t in table)) for i, h in enumerate(header)]
    for line in (header, *table):
        print("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)))
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = Path(json_path) if json_path else RESULTS / f"{name}.json"
    path.write_text(json.dumps({"name": name, "cores": os.cpu_count(), "rows": rows}, indent=2))
