"""AuraApp: the board and its screens, the theme, the keymap, and the one service it talks to.

Runtime events arrive on worker threads; `_on_service_event` queues them and one pump on the UI
thread drains the queue every ~20 ms, so a flood of log lines costs a few messages a second, not
one per line. Screens that show a live session implement `feed_rows` / `feed_patches`.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textual import on
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen

from aura_tui.services import AuraService, NewTask, UiEvent
from aura_tui.styles import STYLES_DIR

PUMP_INTERVAL = 0.02
THEME_SETTING = "tui.theme"
STYLE_FILES = ("app.tcss", "board.tcss", "detail.tcss", "dialogs.tcss", "review.tcss")


@dataclass(slots=True)
class StartRequest:
    """`aura tui --executor X --prompt P`: a task to create and start as the board opens."""

    title: str
    prompt: str
    executor: str
    model: str | None = None
    options: dict[str, Any] | None = None
    repos: list[str] | None = None
    review: bool = False


def load_keymap(config: Any = None) -> dict[str, str]:
    """`[keymap]` from the user's config: binding id -> keys, e.g. "board.move_right" = "ctrl+l"."""
    if config is None:
        from aura_core.config import ConfigError, load_config

        try:
            config = load_config()
        except ConfigError:
            return {}
    keymap = getattr(config, "keymap", None) or {}
    return {str(k): str(v) for k, v in keymap.items()}


class AuraApp(App[int]):
    CSS_PATH = [STYLES_DIR / name for name in STYLE_FILES]
    TITLE = "AURA"
    ENABLE_COMMAND_PALETTE = True
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-wide")]
    BINDINGS = [
        Binding("q", "quit", "Quit", id="app.quit", tooltip="Quit AURA"),
        Binding("question_mark", "help", "Help", id="app.help", tooltip="Help: every key"),
        Binding("ctrl+p", "command_palette", "Commands", id="app.commands", show=False),
    ]

    class _Pump(Message):
        """Events are waiting in the queue (posted once per drain, from any thread)."""

    def __init__(
        self,
        service: AuraService,
        *,
        clock: Callable[[], float] | None = None,
        animate: bool = True,
        keymap: dict[str, str] | None = None,
        start: StartRequest | None = None,
        title: str | None = None,
    ) -> None:
        super().__init__()
        self.service = service
        self.clock = clock or service.clock
        self.ticking = animate
        self.start_request = start
        self._keymap = keymap if keymap is not None else {}
        self._pending: list[UiEvent] = []
        self._pending_lock = threading.Lock()
        self._pump_scheduled = False
        if title:
            self.sub_title = title

    # --- lifecycle ------------------------------------------------------------------------------
    def get_default_screen(self) -> Screen[Any]:
        from aura_tui.screens.board import BoardScreen

        return BoardScreen()

    def on_mount(self) -> None:
        theme = self.service.get_setting(THEME_SETTING)
        if theme and theme in self.available_themes:
            self.theme = theme
        self.theme_changed_signal.subscribe(self, self._remember_theme)
        if self._keymap:
            self.set_keymap(self._keymap)
        self.service.subscribe(self._on_service_event)
        if self.start_request is not None:
            self.call_after_refresh(self._start_requested)
        self.call_after_refresh(freeze_heap)

    def _remember_theme(self, theme: Any) -> None:
        self.service.set_setting(THEME_SETTING, getattr(theme, "name", str(theme)))

    def _start_requested(self) -> None:
        req = self.start_request
        if req is None:
            return
        self.start_request = None
        self.create_task(
            {
                "title": req.title,
                "prompt": req.prompt,
                "executor": req.executor,
                "model": req.model,
                "options": req.options or {},
                "repos": req.repos or [],
                "review": req.review,
                "start": True,
            }
        )

    # --- events from the runtime ------------------------------------------------------------------
    def _on_service_event(self, event: UiEvent) -> None:
        """Called from any thread: queue it; one pump message per drain."""
        with self._pending_lock:
            self._pending.append(event)
            if self._pump_scheduled:
                return
            self._pump_scheduled = True
        self.post_message(self._Pump())

    @on(_Pump)
    def _pump(self) -> None:
        self.set_timer(PUMP_INTERVAL, self.drain_events)

    def drain_events(self) -> None:
        with self._pending_lock:
            events, self._pending = self._pending, []
            self._pump_scheduled = False
        if events:
            self.dispatch_events(events)

    def dispatch_events(self, events: Iterable[UiEvent]) -> None:
        changed: set[str] = set()
        rows: dict[str, list[Any]] = {}
        patches: dict[str, list[Any]] = {}
        started: list[UiEvent] = []
        for ev in events:
            if ev.kind == "task_changed" and ev.task_id:
                changed.add(ev.task_id)
            elif ev.kind == "session_started":
                started.append(ev)
                if ev.task_id:
                    changed.add(ev.task_id)
            elif ev.kind == "log" and ev.session_id:
                rows.setdefault(ev.session_id, []).extend(ev.rows)
            elif ev.kind == "entries" and ev.session_id:
                patches.setdefault(ev.session_id, []).extend(ev.patches)
                if ev.task_id:
                    changed.add(ev.task_id)
            elif ev.kind == "notify":
                severity = {"warning": "warning", "error": "error"}.get(ev.level, "information")
                self.notify(ev.message, severity=severity)  # type: ignore[arg-type]
            elif ev.kind == "permission" and ev.permission is not None:
                from aura_tui.screens.dialogs import PermissionScreen

                task = self._task_or_none(ev.permission.task_id)
                asking = PermissionScreen(
                    ev.permission,
                    who=task.executor if task else "",
                    task_title=task.title if task else "",
                )
                self.push_screen(asking, self._answer_permission)
        if changed or started:
            self.service.invalidate()
        for screen in self.screen_stack:
            if changed and hasattr(screen, "tasks_changed"):
                screen.tasks_changed(changed)
            for ev in started:
                if hasattr(screen, "session_started"):
                    screen.session_started(ev.task_id, ev.session_id)
            if hasattr(screen, "feed_rows"):
                for sid, batch in rows.items():
                    screen.feed_rows(sid, batch)
            if hasattr(screen, "feed_patches"):
                for sid, batch in patches.items():
                    screen.feed_patches(sid, batch)

    def _task_or_none(self, task_id: str | None) -> Any:
        if not task_id:
            return None
        try:
            return self.service.task(task_id)
        except Exception:  # deleted meanwhile: ask anyway
            return None

    def _answer_permission(self, answer: tuple[str, bool, str, bool] | None) -> None:
        if answer is None:
            return
        request_id, approve, reason, always = answer
        try:
            self.service.answer_permission(request_id, approve, reason, always=always)
        except Exception as exc:
            self.notify(str(exc), severity="error")

    # --- alerts ---------------------------------------------------------------------------------
    def alert(self, message: str, *, error: bool = False) -> None:
        """A task needs the person: ring the terminal bell and show a toast."""
        self.bell()
        self.notify(message, severity="error" if error else "information", timeout=8)

    # --- actions shared by screens ------------------------------------------------------------
    def create_task(self, data: NewTask) -> None:
        from aura_tui.screens.board import BoardScreen

        board = self.get_screen_of(BoardScreen)
        if board is not None:
            board.create_task(data)

    def get_screen_of(self, cls: type[Screen[Any]]) -> Any:
        for screen in self.screen_stack:
            if isinstance(screen, cls):
                return screen
        return None

    def action_help(self) -> None:
        from aura_tui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    async def action_quit(self) -> None:
        running = self.service.running_task_ids()
        if not running:
            self.service.shutdown(stop_running=False)
            self.exit(0)
            return
        from aura_tui.screens.dialogs import ChoiceScreen

        n = len(running)
        question = (
            f"{n} task{'s are' if n != 1 else ' is'} still running. Stop "
            f"{'them' if n != 1 else 'it'}, or leave {'them' if n != 1 else 'it'} to resume later?"
        )
        choices = [("stop", "Stop and quit"), ("leave", "Leave for resume"), ("cancel", "Cancel")]
        self.push_screen(ChoiceScreen("Quit AURA", question, choices), self._quit_choice)

    def _quit_choice(self, choice: str | None) -> None:
        if choice in ("stop", "leave"):
            self.service.shutdown(stop_running=choice == "stop")
            self.exit(0)

    # --- command palette: every action of the current context ----------------------------------
    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        seen: set[str] = set()
        for key, active in screen.active_bindings.items():
            binding = active.binding
            if not binding.description or binding.action in seen or not active.enabled:
                continue
            if binding.action in ("command_palette",):
                continue
            seen.add(binding.action)
            keys = self.get_key_display(binding) or key
            yield SystemCommand(
                binding.tooltip or binding.description,
                f"key: {keys}",
                _runner(active.node, binding.action),
            )
        yield from super().get_system_commands(screen)


def freeze_heap() -> None:
    """Move everything alive once the app is up (modules, styles, the first screen) out of the
    garbage collector's reach: a full collection then scans only what came later. Without it a
    gen-2 collection over Textual's heap paused the UI for 100-160 ms every few seconds under load
    (the p95 of the key latency)."""
    gc.freeze()


def _runner(node: Any, action: str) -> Callable[[], Any]:
    async def run() -> None:
        await node.run_action(action)

    return run


def create_app(
    store: Any,
    runtime: Any = None,
    *,
    clock: Callable[[], float] | None = None,
    animate: bool = True,
    keymap: dict[str, str] | None = None,
    start: StartRequest | None = None,
    repo: str | None = None,
    service: AuraService | None = None,
    repo_problem: str | None = None,
) -> AuraApp:
    """The one app factory, used by the CLI and the tests."""
    if service is None:
        service = AuraService(
            store, runtime, clock=clock or time.time, repo=repo, repo_problem=repo_problem
        )
    return AuraApp(
        service,
        clock=clock,
        animate=animate,
        keymap=load_keymap() if keymap is None else keymap,
        start=start,
        title=Path(repo).name if repo else None,
    )
