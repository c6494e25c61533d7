"""Batched log persistence: lines are queued and written in transactions, never one per commit.

A background thread flushes at least every 200 ms (or sooner when a batch fills); `flush()` and
`close()` write whatever is pending, so a normal exit or a handled signal loses nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

FLUSH_INTERVAL_S = 0.2
BATCH_LINES = 20_000


class LogWriter:
    def __init__(self, store: Any, interval: float = FLUSH_INTERVAL_S) -> None:
        self._store = store
        self._interval = interval
        self._pending: list[tuple[Any, ...]] = []
        self._cond = threading.Condition()
        self._write_lock = threading.Lock()
        self._closed = False
        self.error: BaseException | None = None
        self.written = 0
        self._thread = threading.Thread(target=self._loop, name="aura-logwriter", daemon=True)
        self._thread.start()

    def add(self, rows: Sequence[tuple[Any, ...]]) -> None:
        with self._cond:
            self._pending.extend(rows)
            if len(self._pending) >= BATCH_LINES:
                self._cond.notify()

    def _take(self) -> list[tuple[Any, ...]]:
        with self._cond:
            rows, self._pending = self._pending, []
        return rows

    def flush(self) -> None:
        with self._write_lock:
            rows = self._take()
            if not rows:
                return
            try:
                self._store.append_log(rows)
                self.written += len(rows)
            except BaseException as exc:
                # keep the rows so a later flush (after space returns, say) can retry them
                with self._cond:
                    self._pending[:0] = rows
                self.error = exc
                raise
            else:
                self.error = None

    def discard(self) -> int:
        """Drop the rows not yet written (the store refuses them); returns how many."""
        with self._write_lock:
            return len(self._take())

    def _loop(self) -> None:
        while True:
            with self._cond:
                if self._closed:
                    return
                self._cond.wait(self._interval)
                closed = self._closed
            try:
                self.flush()
            except Exception:
                pass  # kept in self.error and retried; the runner reports it
            if closed:
                return

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join(timeout=5)
        self.flush()
