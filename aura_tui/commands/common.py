"""What every store-using command does first: open the database and recover dead runs."""

from __future__ import annotations

import argparse
import time

from aura_core.paths import db_path
from aura_core.recovery import recover_sessions
from aura_core.store.sqlite import SqliteStore


def open_store(args: argparse.Namespace, *, recover: bool = True) -> SqliteStore:
    store = SqliteStore(db_path(getattr(args, "data_dir", None)))
    if recover:
        recover_sessions(store)
    return store


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def fmt_time(ts: float | None) -> str:
    if ts is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))
