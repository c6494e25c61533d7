"""Crash recovery for sessions: a run whose aura process is gone is marked interrupted.

Runs at the start of every aura command that opens the store; it is one indexed query when there
is nothing to do.
"""

from __future__ import annotations

import signal
import time
from typing import Any

from aura_core import procinfo


def recover_sessions(store: Any) -> list[str]:
    """Mark dead-owner sessions interrupted and end any agent processes they left. Returns ids."""
    recovered = []
    for row in store.running_session_rows():
        if procinfo.is_alive(row.get("owner_pid"), row.get("owner_start")):
            continue
        pgid = row.get("pgid")
        agent_start = (row.get("options") or {}).get("agent_start")
        if pgid and procinfo.group_alive(pgid):
            leader = procinfo.start_time(pgid)
            if leader is None or agent_start is None or leader == agent_start:
                procinfo.kill_group(pgid, signal.SIGKILL)
        store.update_session_row(
            row["id"],
            status="interrupted",
            finished_at=time.time(),
            error=(
                f"interrupted: its aura process (pid {row.get('owner_pid')}) died; "
                f"continue it with `aura run --session {row['id'][:8]} --prompt ...`"
            ),
        )
        recovered.append(row["id"])
    return recovered
