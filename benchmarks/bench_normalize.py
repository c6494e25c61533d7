"""Normalising agent output vs bare `json.loads` on the same lines.

The budget: normalising must run at >= 0.5x the speed of `json.loads` alone (the parse is the
floor; everything the normaliser adds must cost no more than the parse itself). Lines are real
captures of each CLI (tests/executors/fixtures) cycled up to N lines; the partial-message stream
of claude and gemini's delta messages are the small-line worst cases.

The part-2 agents (qwen, opencode, copilot, droid, and an ACP transcript) are measured the same
way, through the normaliser their executor gives for a stored session.

Usage: python benchmarks/bench_normalize.py [N] [--quick] [--json PATH]
(default 100000 lines; --quick: 10000; exit 1 if a ratio < 0.5)
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aura_core.executors.claude import ClaudeNormalizer  # noqa: E402
from aura_core.executors.codex import CodexNormalizer  # noqa: E402
from aura_core.executors.entries import JsonlNormalizer  # noqa: E402
from aura_core.executors.gemini import GeminiNormalizer  # noqa: E402
from aura_core.executors.registry import get_executor  # noqa: E402
from benchmarks.common import report  # noqa: E402

FIXTURES = ROOT / "tests" / "executors" / "fixtures"
BUDGET = 0.5


def lines_of(prefix: str, n: int) -> list[str]:
    base: list[str] = []
    paths = sorted(FIXTURES.glob(f"{prefix}-*.jsonl")) if "." not in prefix else [FIXTURES / prefix]
    for path in paths:
        if "app-server" in path.name and "." not in prefix:
            continue  # another transport: its own row
        base += [ln for ln in path.read_text().splitlines() if ln.strip()]
    return [base[i % len(base)] for i in range(n)]


def timed(fn: Callable[[], object]) -> float:
    """CPU time of one call: steadier than wall time when the machine is busy."""
    gc.collect()
    t0 = time.process_time()
    fn()
    return time.process_time() - t0


def bench(name: str, lines: list[str], make: Callable[[], JsonlNormalizer]) -> float:
    loads = json.loads

    def parse_only() -> None:
        for line in lines:
            loads(line)

    def normalise() -> None:
        n = make()
        feed = n.feed
        for line in lines:
            feed("stdout", line)
        n.finish()

    # interleaved and best of 5, so other load on the machine hits both sides alike
    pairs = [(timed(parse_only), timed(normalise)) for _ in range(5)]
    t_json = min(p for p, _ in pairs)
    t_norm = min(n for _, n in pairs)
    ratio = t_json / t_norm
    mb = sum(map(len, lines)) / 1e6
    print(
        f"{name:<8} {len(lines):>7} lines {mb:7.1f} MB   json.loads {t_json * 1e3:8.1f} ms   "
        f"normalise {t_norm * 1e3:8.1f} ms   speed ratio {ratio:.2f}x "
        f"({'ok' if ratio >= BUDGET else 'TOO SLOW'})"
    )
    return ratio


def stored(executor: str) -> Callable[[], JsonlNormalizer]:
    """The normaliser a stored session of this executor is re-rendered with."""
    return lambda: get_executor(executor).normalizer()  # type: ignore[return-value]


CASES: list[tuple[str, str, Callable[[], JsonlNormalizer]]] = [
    ("claude", "claude", ClaudeNormalizer),
    ("codex", "codex", CodexNormalizer),
    ("gemini", "gemini", GeminiNormalizer),
    ("qwen", "qwen-stream-json.jsonl", stored("qwen-code")),
    ("opencode", "opencode-run-json.jsonl", stored("opencode")),
    ("copilot", "copilot-json.jsonl", stored("copilot")),
    ("droid", "droid-exec-stream-json.jsonl", stored("droid")),
    ("acp", "qwen-acp.jsonl", stored("qwen-code")),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lines", nargs="?", type=int, default=None)
    parser.add_argument("--quick", action="store_true", help="10,000 lines: checks it still runs")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()
    n = args.lines or (10_000 if args.quick else 100_000)
    print(f"normalise vs json.loads, {n} lines each (ratio = json.loads time / normalise time)")
    rows: list[dict[str, object]] = []
    for name, source, make in CASES:
        ratio = bench(name, lines_of(source, n), make)
        rows.append(
            {
                "figure": f"{name} normalise speed vs json.loads",
                "value": f"{ratio:.2f}x",
                "baseline": "json.loads",
                "ratio": round(ratio, 3),
                "target": f">= {BUDGET}x",
            }
        )
    worst = min(float(str(r["ratio"])) for r in rows)
    print(f"worst ratio {worst:.2f}x (budget >= {BUDGET}x)")
    report("normalize", rows, args.json)
    return 0 if worst >= BUDGET or args.quick else 1  # --quick: printed, not judged


if __name__ == "__main__":
    raise SystemExit(main())
