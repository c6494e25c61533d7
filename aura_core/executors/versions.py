"""Agent CLI versions, remembered: `node cli.js --version` costs 0.3-2.5 s per agent, and the
board, `aura doctor` and every new-task form ask for all twelve.

A version is kept in the cache dir keyed by the binary's resolved path, size and mtime (an npm
shim resolves to the package's script, which an upgrade replaces), so an upgrade is seen at once
and nothing goes stale. Only versions actually read are kept; failures are asked again.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Callable
from pathlib import Path

from aura_core.paths import cache_dir

CACHE_NAME = "versions.json"
_LOCK = threading.Lock()


def _key(path: str) -> str | None:
    try:
        real = os.path.realpath(path)
        st = os.stat(real)
    except OSError:
        return None
    return f"{real}|{st.st_size}|{st.st_mtime_ns}"


def _file() -> Path:
    return cache_dir() / CACHE_NAME


def _load() -> dict[str, str]:
    try:
        data = json.loads(_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _save(data: dict[str, str]) -> None:
    target = _file()
    with contextlib.suppress(OSError):  # a read-only cache dir only costs speed
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps(data, indent=0, sort_keys=True), encoding="utf-8")
        os.replace(tmp, target)


def remembered_version(path: str, read: Callable[[str], str | None]) -> str | None:
    """The version of the binary at `path`: from the cache, or `read(path)` and kept."""
    key = _key(path)
    if key is None:
        return read(path)
    with _LOCK:
        known = _load().get(key)
    if known:
        return known
    version = read(path)
    if version:
        with _LOCK:
            data = _load()
            real = key.split("|", 1)[0]
            # one entry per binary: an upgrade replaces the old one
            data = {k: v for k, v in data.items() if k.split("|", 1)[0] != real}
            data[key] = version
            _save(data)
    return version
