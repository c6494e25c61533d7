"""Normalising agent output vs bare `json.loads` on the same lines.

The budget: normalising must run at >= 0.5x the speed of `json.loads` alone (the parse is the
floor; everything the normaliser adds must cost no more than the parse itself). Lines are real
captures of each CLI (tests/executors/fixtures) cycled up to N lines; the partial-message stream
of claude and gemini's delta messages are the small-line worst cases.

Usage: python benchmarks/bench_normalize.py [N]   (default 100000; exit 1 if a ratio < 0.5)
"""

from __future__ import annotations

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

FIXTURES = ROOT / "tests" / "executors" / "fixtures"
BUDGET = 0.5


def lines_of(prefix: str, n: int) -> list[str]:
    base: list[str] = []
    for path in sorted(FIXTURES.glob(f"{prefix}-*.jsonl")):
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


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    print(f"normalise vs json.loads, {n} lines each (ratio = json.loads time / normalise time)")
    ratios = [
        bench("claude", lines_of("claude", n), ClaudeNormalizer),
        bench("codex", lines_of("codex", n), CodexNormalizer),
        bench("gemini", lines_of("gemini", n), GeminiNormalizer),
    ]
    worst = min(ratios)
    print(f"worst ratio {worst:.2f}x (budget >= {BUDGET}x)")
    return 0 if worst >= BUDGET else 1


if __name__ == "__main__":
    raise SystemExit(main())
