"""`aura doctor`: for each executor, is it installed, which binary, and what is missing."""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from typing import Any

from aura_core.executors.base import Availability, SetupRequired
from aura_core.executors.registry import EXECUTOR_NAMES, get_executor


def collect(overrides: dict[str, str] | None = None, config: Any = None) -> list[Availability]:
    from aura_core.executors.registry import configured_names

    overrides = overrides or {}

    def probe(name: str) -> Availability:
        try:
            executor = get_executor(name, config=config)
        except SetupRequired as exc:
            return Availability(name=name, found=False, missing=[str(exc)])
        try:
            return executor.availability(overrides.get(name))
        except Exception as exc:  # a broken probe must not hide the other executors
            return Availability(name=name, found=False, missing=[f"probe failed: {exc}"])

    names = [*EXECUTOR_NAMES, *configured_names(config)]
    # each probe mostly waits for a `--version` child: ask them all at once
    with ThreadPoolExecutor(max_workers=min(8, len(names) or 1)) as pool:
        return list(pool.map(probe, names))


def main(args: argparse.Namespace) -> int:
    from aura_core.config import ConfigError, load_config
    from aura_core.executors import overrides
    from aura_tui.cli import UserError
    from aura_tui.commands.common import open_store

    try:
        config = load_config()
    except ConfigError as exc:
        raise UserError(str(exc)) from None
    store = open_store(args)
    try:
        paths = {
            name: path
            for name in EXECUTOR_NAMES
            if (path := overrides.resolve(store, config, name)) is not None
        }
    finally:
        store.close()
    rows = collect(paths, config)
    if args.json:
        json.dump([asdict(r) for r in rows], sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    header = ("EXECUTOR", "STATUS", "VERSION", "PATH", "WHAT TO DO")
    table = []
    for r in rows:
        status = "ready" if r.found and not r.missing else ("found" if r.found else "missing")
        todo = "; ".join(r.missing) or (r.note or "")
        path = r.path or "-"
        if r.override:
            path += " (override)"
        table.append((r.name, status, r.version or "-", path, todo))
    widths = [max(len(h), *(len(t[i]) for t in table)) for i, h in enumerate(header[:-1])]
    for line in (header, *table):
        cells = [c.ljust(w) for c, w in zip(line[:-1], widths, strict=True)]
        sys.stdout.write("  ".join([*cells, line[-1]]).rstrip() + "\n")
    ready = sum(1 for r in rows if r.found and not r.missing)
    sys.stdout.write(f"\n{ready} of {len(rows)} executors ready.\n")
    return 0
