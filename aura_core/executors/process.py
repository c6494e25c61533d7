"""Subprocess plumbing shared by every process-backed agent.

Each agent runs in its own process group (session), so stopping it stops its whole tree. A tiny
watchdog holds a pipe to this process: if aura dies, even by SIGKILL, the pipe closes and the
watchdog kills the agent's group, grandchildren included. Output is read with a selector, in
chunks, and handed out as batches of lines: the hot path does no per-line syscalls or messages.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from aura_core.executors.base import LaunchSpec, RawLine
from aura_core.procinfo import descendants, group_alive, kill_group

READ_CHUNK = 1 << 20
MAX_LINE = 8 << 20  # a longer run of bytes without a newline is cut into pieces of this size
LADDER = ((signal.SIGINT, 2.0), (signal.SIGTERM, 2.0), (signal.SIGKILL, 1.0))
DRAIN_GRACE_S = 1.0  # after the leader exits, how long its leftovers may hold our pipes open
TREE_INTERVAL_S = 1.0  # how often the tree below a running agent is looked at

# Runs in its own tiny interpreter: a line on stdin means "all is well, exit"; EOF means aura died.
# Then it ends the agent's group and every group below the agent (tools in sessions of their own).
_WATCHDOG = (
    "import os,sys,time,signal\n"
    "g=int(sys.argv[1])\n"
    "if sys.stdin.buffer.readline(): sys.exit(0)\n"
    "def tree():\n"
    "    kids={}\n"
    "    for n in os.listdir('/proc'):\n"
    "        if not n.isdigit(): continue\n"
    "        try: d=open('/proc/'+n+'/stat','rb').read()\n"
    "        except OSError: continue\n"
    "        f=d[d.rfind(b')')+2:].split()\n"
    "        kids.setdefault(int(f[1]),[]).append((int(n),int(f[2])))\n"
    "    out,todo=set(),[g]\n"
    "    while todo:\n"
    "        for p,pg in kids.get(todo.pop(),[]): out.add(pg); todo.append(p)\n"
    "    return out\n"
    "groups={g}\n"
    "for s,w in ((signal.SIGTERM,2.0),(signal.SIGKILL,0)):\n"
    "    try: groups|=tree()\n"
    "    except Exception: pass\n"
    "    alive=[x for x in groups if x>1 and x!=os.getpgrp()]\n"
    "    for x in alive:\n"
    "        try: os.killpg(x,s)\n"
    "        except OSError: pass\n"
    "    end=time.monotonic()+w\n"
    "    while time.monotonic()<end:\n"
    "        time.sleep(0.05)\n"
    "        left=0\n"
    "        for x in alive:\n"
    "            try: os.killpg(x,0); left+=1\n"
    "            except OSError: pass\n"
    "        if not left: sys.exit(0)\n"
)


def exit_code_of(returncode: int) -> int:
    """Shell convention: a death by signal N is 128 + N."""
    return 128 - returncode if returncode < 0 else returncode


def reap_group(pgid: int, grace: float = 1.0) -> None:
    """End whatever is left of a process group: SIGTERM, a short grace, then SIGKILL."""
    if not kill_group(pgid, signal.SIGTERM):
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not group_alive(pgid):
            return
        time.sleep(0.02)
    kill_group(pgid, signal.SIGKILL)


class ProcessRun:
    """A started agent process. Iterate `batches()` to EOF, then `wait()`."""

    def __init__(self, spec: LaunchSpec, cwd: Path, env: dict[str, str]) -> None:
        self.spec = spec
        full_env = {**os.environ, **env, **spec.env}
        stdin: int = subprocess.DEVNULL if spec.stdin is None else subprocess.PIPE
        self._pty_master: int | None = None
        if spec.pty:
            master, slave = os.openpty()
            self.proc = subprocess.Popen(
                spec.argv,
                cwd=cwd,
                env=full_env,
                stdin=slave if spec.stdin is None else subprocess.PIPE,
                stdout=slave,
                stderr=slave,
                start_new_session=True,
            )
            os.close(slave)
            self._pty_master = master
            self._fds = {master: "stdout"}
        else:
            self.proc = subprocess.Popen(
                spec.argv,
                cwd=cwd,
                env=full_env,
                stdin=stdin,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
            assert self.proc.stdout is not None and self.proc.stderr is not None
            self._fds = {self.proc.stdout.fileno(): "stdout", self.proc.stderr.fileno(): "stderr"}
        self.pid: int | None = self.proc.pid
        self.pgid: int | None = self.proc.pid
        self._watchdog = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", _WATCHDOG, str(self.proc.pid)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        if spec.stdin is not None and self.proc.stdin is not None:
            threading.Thread(target=self._feed_stdin, args=(spec.stdin,), daemon=True).start()
        self._interrupting = threading.Event()
        self.interrupted = False
        # groups seen below the agent; tools it starts in their own sessions are stopped too
        self._groups: set[int] = {self.proc.pid}
        self._tree_checked = 0.0

    def _feed_stdin(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        with contextlib.suppress(BrokenPipeError, OSError):
            self.proc.stdin.write(data)
        with contextlib.suppress(BrokenPipeError, OSError):
            self.proc.stdin.close()

    def batches(self, tick: float = 0.2) -> Iterator[list[RawLine]]:
        """Yield lists of (stream, line) until both pipes close; an empty list every `tick`."""
        sel = selectors.DefaultSelector()
        partial: dict[int, bytes] = {}
        for fd in self._fds:
            os.set_blocking(fd, False)
            sel.register(fd, selectors.EVENT_READ)
            partial[fd] = b""
        leader_gone_at: float | None = None
        try:
            while sel.get_map():
                batch: list[RawLine] = []
                for key, _ in sel.select(tick):
                    fd = key.fd
                    stream = self._fds[fd]
                    try:
                        chunk = os.read(fd, READ_CHUNK)
                    except BlockingIOError:
                        continue
                    except OSError:  # a pty reports EIO once the child side is gone
                        chunk = b""
                    if not chunk:
                        sel.unregister(fd)
                        if partial[fd]:
                            batch.append((stream, partial[fd].rstrip(b"\r")))
                            partial[fd] = b""
                        continue
                    data = partial[fd] + chunk
                    lines = data.split(b"\n")
                    rest = lines.pop()
                    while len(rest) > MAX_LINE:
                        lines.append(rest[:MAX_LINE])
                        rest = rest[MAX_LINE:]
                    partial[fd] = rest
                    if self._pty_master is not None:
                        batch.extend((stream, ln.rstrip(b"\r")) for ln in lines)
                    else:
                        batch.extend((stream, ln) for ln in lines)
                yield batch
                now = time.monotonic()
                if now - self._tree_checked > TREE_INTERVAL_S:
                    self._tree_checked = now
                    self.track_tree()
                if self.proc.poll() is not None:
                    now = time.monotonic()
                    leader_gone_at = leader_gone_at or now
                    if now - leader_gone_at > DRAIN_GRACE_S and self.pgid:
                        # leftovers of the agent still hold our pipes: end them
                        self.reap(grace=0.5)
                        if now - leader_gone_at > DRAIN_GRACE_S + 2:
                            break
        finally:
            sel.close()

    def track_tree(self) -> None:
        """Remember the process groups below the agent while their parents are still alive."""
        own = os.getpgrp()
        for _pid, pgid, _start in descendants(self.proc.pid):
            if pgid not in (own, 0, 1):
                self._groups.add(pgid)

    def reap(self, grace: float = 1.0) -> None:
        """After the agent ends: whatever it left behind, in its group or below it, goes too."""
        for pgid in sorted(self._groups):
            reap_group(pgid, grace=grace)

    def wait(self) -> int:
        code = exit_code_of(self.proc.wait())
        self.reap(grace=1.0)
        self._release_watchdog()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
        if self._pty_master is not None:
            with contextlib.suppress(OSError):
                os.close(self._pty_master)
        return code

    def _release_watchdog(self) -> None:
        if self._watchdog.poll() is None and self._watchdog.stdin is not None:
            with contextlib.suppress(BrokenPipeError, OSError):
                self._watchdog.stdin.write(b"done\n")
                self._watchdog.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._watchdog.wait(timeout=2)

    def interrupt(self) -> None:
        """Climb the signal ladder in the background; idempotent."""
        self.interrupted = True
        if self._interrupting.is_set():
            return
        self._interrupting.set()
        threading.Thread(target=self._ladder, name="aura-interrupt", daemon=True).start()

    def _ladder(self) -> None:
        for sig, wait_s in LADDER:
            if self.proc.poll() is None:
                self.track_tree()  # before each step: the tree is whole while the agent lives
            alive = [g for g in sorted(self._groups) if kill_group(g, sig)]
            if not alive:
                return
            deadline = time.monotonic() + wait_s
            while time.monotonic() < deadline:
                if self.proc.poll() is not None and not any(group_alive(g) for g in alive):
                    return
                time.sleep(0.02)


def start_process(spec: LaunchSpec, cwd: Path, env: dict[str, str] | None = None) -> ProcessRun:
    return ProcessRun(spec, cwd, env or {})
