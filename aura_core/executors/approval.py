"""Supervised mode on a terminal: `aura run --auto-approve false` asks the person about each
permission request (ACP session/request_permission), approve / always / deny with a reason.

The board sets its own `RunOptions.approver` (a modal); `aura run` calls `attach_tty_approver`.
The executor calls the approver from one of its threads while the agent waits; one question is
asked at a time.
"""

from __future__ import annotations

import sys
import threading
from typing import TextIO

from aura_core.executors.base import ApprovalDecision, ApprovalRequest, RunOptions
from aura_core.executors.settings import interactive

_ASKING = threading.Lock()


class TtyApprover:
    """Reads answers from `inp`, writes questions to `out` (stdin / stderr by default)."""

    def __init__(self, inp: TextIO | None = None, out: TextIO | None = None) -> None:
        self.inp = inp or sys.stdin
        self.out = out or sys.stderr

    def _line(self, question: str) -> str | None:
        self.out.write(question)
        self.out.flush()
        line = self.inp.readline()
        return None if not line else line.strip()

    def __call__(self, req: ApprovalRequest) -> ApprovalDecision:
        with _ASKING:
            who = req.agent or "the agent"
            self.out.write(f"\n? {who} asks to use {req.tool_name}: {req.title}\n")
            can_always = any(o.startswith("allow_always") for o in req.options) or not req.options
            choices = "[y]es / [a]lways / [n]o" if can_always else "[y]es / [n]o"
            while True:
                answer = self._line(f"  allow? {choices} (n REASON to say why): ")
                if answer is None:
                    return ApprovalDecision(False, "no answer (end of input)")
                word, _, rest = answer.partition(" ")
                word = word.lower()
                if word in ("y", "yes"):
                    return ApprovalDecision(True)
                if word in ("a", "always") and can_always:
                    return ApprovalDecision(True, always=True)
                if word in ("n", "no"):
                    reason = rest.strip()
                    if not reason:
                        reason = self._line("  reason (Enter for none): ") or ""
                    return ApprovalDecision(False, reason or None)
                self.out.write("  answer y, a or n\n")


def attach_tty_approver(options: RunOptions) -> bool:
    """Supervised mode on a terminal: ask there. True when an approver was attached."""
    if options.auto_approve is not False or options.approver is not None or not interactive():
        return False
    options.approver = TtyApprover()
    return True
