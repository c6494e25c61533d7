"""Telling the person that a task needs review or failed: bell, desktop notification, hooks.

The terminal bell belongs to whoever owns the terminal (the TUI), so `notify` only says whether to
ring it. Everything that runs a program (notify-send, the user's `on_review` / `on_fail` shell
commands) is started in the background with its output discarded and a time limit, and any error
is swallowed: a notification must never slow down or break a run.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from aura_core.config import NotifyConfig

__all__ = ["HOOK_TIMEOUT_S", "Notification", "Notifier", "NotifyKind"]

NotifyKind = Literal["review", "fail"]
HOOK_TIMEOUT_S = 30.0
DESKTOP_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class Notification:
    """What `notify` did: `bell` asks the caller to ring; the others say what was started."""

    kind: NotifyKind
    bell: bool
    desktop: bool
    hook: bool


class Notifier:
    """Carries out `[notify]`: desktop notifications and command hooks, never blocking."""

    def __init__(
        self,
        config: NotifyConfig | None = None,
        *,
        env: Mapping[str, str] | None = None,
        hook_timeout: float = HOOK_TIMEOUT_S,
        desktop_timeout: float = DESKTOP_TIMEOUT_S,
    ) -> None:
        self.config = config or NotifyConfig()
        self.env = dict(os.environ if env is None else env)
        self.hook_timeout = hook_timeout
        self.desktop_timeout = desktop_timeout
        self._lock = threading.Lock()
        self._watchers: list[threading.Thread] = []

    # ---- the one entry point ----------------------------------------------------------------
    def notify(
        self, kind: NotifyKind, title: str, message: str, *, task_id: str = ""
    ) -> Notification:
        """Start the desktop notification and the hook for `kind`; returns at once."""
        if kind not in ("review", "fail"):
            raise ValueError(f"notify kind must be 'review' or 'fail', got {kind!r}")
        desktop = self.config.desktop and self._desktop(kind, title, message)
        command = self.config.on_review if kind == "review" else self.config.on_fail
        hook = bool(command and command.strip()) and self._hook(
            str(command), kind, title, message, task_id
        )
        return Notification(kind=kind, bell=self.config.bell, desktop=desktop, hook=hook)

    def attach(
        self,
        runtime: Any,
        on_notification: Callable[[Notification], None] | None = None,
    ) -> Callable[[], None]:
        """Notify on the runtime's "notify" events; returns the unsubscribe function.

        `on_notification` gets each result, e.g. for the TUI to ring the bell.
        """

        def on_event(event: Any) -> None:
            if getattr(event, "kind", None) != "notify":
                return
            if getattr(runtime, "_closing", False):
                return  # runs interrupted by quitting aura are not failures to alert about
            kind = self._kind(runtime, event)
            if kind is None:
                return
            title = ""
            task_id = event.task_id or ""
            if task_id:
                try:
                    title = runtime.store.get_task(task_id).title
                except Exception:
                    title = ""
            result = self.notify(kind, title or "AURA", event.message, task_id=task_id)
            if on_notification is not None:
                on_notification(result)

        unsubscribe: Callable[[], None] = runtime.subscribe(on_event)
        return unsubscribe

    @staticmethod
    def _kind(runtime: Any, event: Any) -> NotifyKind | None:
        """The runtime says "error" for a failed task and "information" for one in review."""
        if getattr(event, "level", "") == "error":
            return "fail"
        if "needs review" in (event.message or ""):
            return "review"
        try:
            state = runtime.store.get_task(event.task_id).state
        except Exception:
            return None
        return "review" if str(getattr(state, "value", state)) == "review" else None

    # ---- the programs -----------------------------------------------------------------------
    def _desktop(self, kind: NotifyKind, title: str, message: str) -> bool:
        path = shutil.which("notify-send", path=self.env.get("PATH", os.defpath))
        if path is None:
            return False
        urgency = "critical" if kind == "fail" else "normal"
        summary = f"AURA: {title}" if title and title != "AURA" else "AURA"
        argv = [path, "--app-name=AURA", f"--urgency={urgency}", summary, message]
        return self._spawn(argv, self.env, self.desktop_timeout)

    def _hook(self, command: str, kind: NotifyKind, title: str, message: str, task_id: str) -> bool:
        env = dict(self.env)
        env.update(
            AURA_TASK_ID=task_id,
            AURA_TASK_TITLE=title,
            AURA_EVENT=kind,
            AURA_MESSAGE=message,
        )
        return self._spawn(["/bin/sh", "-c", command], env, self.hook_timeout)

    def _spawn(self, argv: list[str], env: dict[str, str], timeout: float) -> bool:
        try:
            proc = subprocess.Popen(
                argv,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # its own group: a timeout kills what it started too
                close_fds=True,
            )
        except OSError:
            return False
        watcher = threading.Thread(
            target=_reap, args=(proc, timeout), name="aura-notify", daemon=True
        )
        with self._lock:
            self._watchers = [w for w in self._watchers if w.is_alive()]
            self._watchers.append(watcher)
        watcher.start()
        return True

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the started programs to end (tests, and a clean exit); True if all did."""
        with self._lock:
            watchers = list(self._watchers)
        for watcher in watchers:
            watcher.join(timeout)
        return not any(w.is_alive() for w in watchers)


def _reap(proc: subprocess.Popen[bytes], timeout: float) -> None:
    """Wait for a notification program; past its time, kill its whole process group."""
    try:
        proc.wait(timeout=timeout)
        return
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        pass
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass
