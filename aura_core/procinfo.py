"""Process identity that survives pid reuse: a pid plus its start time from /proc."""

from __future__ import annotations

import os


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot, or None if it does not exist."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: split after the last ')'
    fields = data[data.rfind(b")") + 2 :].split()
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def is_alive(pid: int | None, started: int | None) -> bool:
    """True when the process `pid` that started at `started` still runs (zombies count as dead)."""
    if not pid:
        return False
    now = start_time(pid)
    if now is None:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return started is None  # no /proc (not Linux): trust kill(0) only without a start time
    if started is not None and now != started:
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            state = fh.read().rsplit(b")", 1)[1].split()[0]
        return state not in (b"Z", b"X")
    except (OSError, IndexError):
        return False


def kill_group(pgid: int, sig: int) -> bool:
    """Send `sig` to a process group; False when the group is gone."""
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def group_alive(pgid: int) -> bool:
    return kill_group(pgid, 0)


def _stat_fields(pid: int) -> list[bytes] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    return data[data.rfind(b")") + 2 :].split()


def descendants(root: int) -> list[tuple[int, int, int]]:
    """(pid, pgid, start time) of every process below `root`, found by walking /proc.

    Agents run tool commands in sessions of their own (so signalling the agent's group misses
    them); knowing the tree lets a stop reach them too. Empty where /proc does not exist.
    """
    try:
        pids = [int(name) for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return []
    children: dict[int, list[tuple[int, int, int]]] = {}
    for pid in pids:
        fields = _stat_fields(pid)
        if fields is None or len(fields) < 20:
            continue
        try:
            ppid, pgid, started = int(fields[1]), int(fields[2]), int(fields[19])
        except ValueError:
            continue
        children.setdefault(ppid, []).append((pid, pgid, started))
    out: list[tuple[int, int, int]] = []
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child[0])
    return out
