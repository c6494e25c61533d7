"""`aura run` on a terminal: one task's live view alone.

A log pane, a status bar (executor, model, session, elapsed, tokens and cost when known) and a
composer: prompts typed while the agent runs are queued (the queue is visible and editable) and
sent as follow-ups in order; `/model`, `/mode`, `/help`. Esc or ctrl+c stops the agent (after a
confirmation). The runner streams on a worker thread; its lines reach the UI in batches.

Entry point for `aura_tui/commands/run.py`: `run_single(...) -> exit code`.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from typing import Any

from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from aura_core.executors import entries as E
from aura_tui.services import fmt_elapsed, log_page
from aura_tui.styles import STYLES_DIR
from aura_tui.widgets.footer import AuraFooter
from aura_tui.widgets.log_pane import LogPane

PUMP_INTERVAL = 0.02
MODES = ("default", "force", "yolo")
HELP = (
    "Type a prompt and press enter: it is sent now if the agent is idle, queued otherwise. "
    "/model NAME sets the model, /mode default|force|yolo the permissions, for the next "
    "follow-ups. In the queue: enter edits, delete removes. esc or ctrl+c stops the agent."
)


class _Sink:
    """The runner's RunSink: collects batches from the runner thread for the UI pump."""

    def __init__(self, app: SingleRunApp) -> None:
        self.app = app

    def started(self, session: dict[str, Any]) -> None:
        self.app.queue_event(("started", session))

    def lines(self, rows: list[Any]) -> None:
        self.app.queue_event(("rows", rows))

    def patches(self, patches: list[Any]) -> None:
        self.app.queue_event(("patches", patches))

    def finished(self, result: Any) -> None:
        self.app.queue_event(("finished", result))


class SingleRunApp(App[int]):
    CSS_PATH = [STYLES_DIR / "app.tcss", STYLES_DIR / "detail.tcss", STYLES_DIR / "dialogs.tcss"]
    TITLE = "AURA run"
    BINDINGS = [
        Binding("escape,ctrl+c", "stop", "Stop agent", id="run.stop", priority=True),
        Binding("ctrl+r", "toggle_raw", "Raw", id="run.raw"),
        Binding("ctrl+t", "follow", "Follow", id="run.follow"),
        Binding("ctrl+q", "quit", "Quit", id="run.quit", priority=True),
        Binding("tab", "focus_queue", "Queue", id="run.queue", show=False, priority=True),
    ]

    class _Pump(Message):
        pass

    def __init__(
        self,
        *,
        executor: Any,
        executor_name: str,
        request: Any,
        store: Any,
        runner_factory: Callable[..., Any],
        parent_id: str | None = None,
        clock: Callable[[], float] = time.time,
        animate: bool = True,
        start: bool = True,
    ) -> None:
        super().__init__()
        self.executor = executor
        self.executor_name = executor_name
        self.request = request
        self.store = store
        self.runner_factory = runner_factory
        self.parent_id = parent_id
        self.clock = clock
        self.ticking = animate
        self.autostart = start
        self.model: str | None = request.model
        self.mode = "default"
        self.queue: list[str] = []
        self.runner: Any = None
        self.running = False
        self.session_id: str | None = None
        self.agent_session_id: str | None = None
        self.started_at: float | None = None
        self.turn = 0
        self.tokens: E.TokenUsage | None = None
        self.last_result: Any = None
        self.stopped = False
        self._pending: list[tuple[str, Any]] = []
        self._lock = threading.Lock()
        self._scheduled = False
        self.structured = executor.normalizer() is not None

    # --- layout ---------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Static("", id="run-status")
        yield LogPane(id="log-pane")
        yield Static("", id="queue-title")
        yield OptionList(id="queue")
        yield Input(
            placeholder="prompt for a follow-up (queued while the agent runs) · /help",
            id="composer",
        )
        yield AuraFooter()

    def on_mount(self) -> None:
        self.query_one("#composer", Input).focus()
        self._render_queue()
        self._render_status()
        if self.ticking:
            self.set_interval(1.0, self._render_status)
        if self.autostart:
            self.start_turn(self.request)

    @property
    def pane(self) -> LogPane:
        return self.query_one(LogPane)

    # --- runs -----------------------------------------------------------------------------------
    def start_turn(self, request: Any) -> None:
        self.turn += 1
        self.running = True
        self.stopped = False
        self.started_at = self.clock()
        self.session_id = request.session_id
        sid, store = request.session_id, self.store

        def loader(start: int, limit: int) -> list[tuple[int, str, str]]:
            return log_page(store, sid, start, limit)  # lines the live window no longer holds

        self.pane.show_session(sid, loader, 0, structured=self.structured)
        if self.turn > 1:
            self.pane.apply_patches([E.EntryPatch("append", 0, E.UserMessage(request.prompt))])
        self.runner = self.runner_factory(
            self.store,
            self.executor,
            request,
            executor_name=self.executor_name,
            sink=_Sink(self),
            parent_id=self.parent_id,
        )
        self._render_status()
        self.run_agent(self.runner)

    @work(thread=True, group="agent")
    def run_agent(self, runner: Any) -> None:
        try:
            runner.run()
        except Exception as exc:
            self.queue_event(("error", str(exc)))

    def follow_up_request(self, prompt: str) -> Any:
        from aura_core.executors.base import RunMode
        from aura_core.runner import new_id

        options = dataclasses.replace(
            self.request.options, yolo=self.mode == "yolo", force=self.mode in ("force", "yolo")
        )
        return dataclasses.replace(
            self.request,
            session_id=new_id(),
            prompt=prompt,
            model=self.model,
            mode=RunMode.follow_up,
            resume_id=self.agent_session_id or self.session_id,
            options=options,
        )

    # --- batches from the runner thread ---------------------------------------------------------
    def queue_event(self, event: tuple[str, Any]) -> None:
        with self._lock:
            self._pending.append(event)
            if self._scheduled:
                return
            self._scheduled = True
        self.post_message(self._Pump())

    @on(_Pump)
    def _pump(self) -> None:
        self.set_timer(PUMP_INTERVAL, self.drain)

    def drain(self) -> None:
        with self._lock:
            events, self._pending = self._pending, []
            self._scheduled = False
        rows: list[Any] = []
        patches: list[Any] = []
        for kind, data in events:
            if kind == "rows":
                rows.extend(data)
                continue
            if kind == "patches":
                patches.extend(data)
                continue
            self._feed(rows, patches)
            rows, patches = [], []
            if kind == "started":
                self.parent_id = self.parent_id  # the first session's parent stays
            elif kind == "finished":
                self._finished(data)
            elif kind == "error":
                self.running = False
                self.notify(str(data), title="aura error", severity="error")
        self._feed(rows, patches)
        self._render_status()

    def _feed(self, rows: list[Any], patches: list[Any]) -> None:
        if rows:
            self.pane.add_rows(rows)
        if patches:
            offset = 1 if self.turn > 1 else 0  # the user's prompt is entry 0 of follow-ups
            shifted = [E.EntryPatch(p.op, p.index + offset, p.entry) for p in patches]
            for p in patches:
                if isinstance(p.entry, E.TokenUsage):
                    self.tokens = p.entry
            self.pane.apply_patches(shifted)

    def _finished(self, result: Any) -> None:
        self.running = False
        self.last_result = result
        self.agent_session_id = getattr(result, "agent_session_id", None) or self.agent_session_id
        self.parent_id = result.session_id
        if result.status == "killed":
            self.queue.clear()
            self._render_queue()
        if result.status != "completed":
            self.bell()
            self.notify(
                f"agent {result.status}: {result.error or ''}".strip(),
                severity="error" if result.status == "failed" else "warning",
            )
        if self.queue and result.status == "completed":
            self.start_turn(self.follow_up_request(self.queue.pop(0)))
            self._render_queue()

    # --- status bar and queue -------------------------------------------------------------------
    def _render_status(self) -> None:
        parts = [self.executor_name]
        if self.model:
            parts.append(self.model)
        if self.mode != "default":
            parts.append(f"mode {self.mode}")
        if self.session_id:
            parts.append(f"session {self.session_id[:8]}")
        if self.turn > 1:
            parts.append(f"turn {self.turn}")
        if self.running:
            elapsed = None if self.started_at is None else self.clock() - self.started_at
            parts.append(f"running {fmt_elapsed(elapsed)}")
        elif self.last_result is not None:
            r = self.last_result
            code = "" if r.exit_code is None else f" (exit {r.exit_code})"
            parts.append(f"{r.status}{code} in {fmt_elapsed(r.duration)}")
        t = self.tokens
        if t is not None:
            if t.input_tokens is not None or t.output_tokens is not None:
                parts.append(f"tokens {t.input_tokens or 0:,} in / {t.output_tokens or 0:,} out")
            if t.cost_usd is not None:
                parts.append(f"${t.cost_usd:.4f}")
        self.query_one("#run-status", Static).update(" · ".join(parts))

    def _render_queue(self) -> None:
        queue = self.query_one("#queue", OptionList)
        queue.clear_options()
        queue.add_options([Option(f"{i + 1}. {p}", id=str(i)) for i, p in enumerate(self.queue)])
        queue.display = bool(self.queue)
        title = self.query_one("#queue-title", Static)
        title.display = bool(self.queue)
        title.update(f"queued follow-ups ({len(self.queue)}): enter edits · delete removes")

    # --- composer -------------------------------------------------------------------------------
    @on(Input.Submitted, "#composer")
    def _submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        event.input.value = ""
        if not text:
            return
        if text.startswith("/"):
            self.slash(text)
            return
        if self.running:
            self.queue.append(text)
            self._render_queue()
            self.notify(f"queued ({len(self.queue)})", timeout=2)
            return
        self.start_turn(self.follow_up_request(text))

    def slash(self, text: str) -> None:
        command, _, arg = text[1:].partition(" ")
        arg = arg.strip()
        if command == "help":
            self.notify(HELP, title="Help", timeout=12)
        elif command == "model":
            self.model = arg or None
            self.notify(f"model for the next follow-ups: {self.model or 'agent default'}")
        elif command == "mode":
            if arg not in MODES:
                self.notify(f"/mode takes one of: {', '.join(MODES)}", severity="warning")
                return
            self.mode = arg
            self.notify(f"mode for the next follow-ups: {arg}")
        else:
            self.notify(f"unknown command /{command}: try /help", severity="warning")
        self._render_status()

    @on(OptionList.OptionSelected, "#queue")
    def _edit_queued(self, event: OptionList.OptionSelected) -> None:
        index = int(event.option.id or 0)
        if index < len(self.queue):
            composer = self.query_one("#composer", Input)
            composer.value = self.queue.pop(index)
            self._render_queue()
            composer.focus()

    def on_key(self, event: Any) -> None:
        queue = self.query_one("#queue", OptionList)
        if event.key in ("delete", "backspace") and queue.has_focus:
            index = queue.highlighted
            if index is not None and index < len(self.queue):
                event.stop()
                self.queue.pop(index)
                self._render_queue()
                if self.queue:
                    queue.highlighted = min(index, len(self.queue) - 1)
                if not self.queue:
                    self.query_one("#composer", Input).focus()

    def action_focus_queue(self) -> None:
        queue = self.query_one("#queue", OptionList)
        if self.queue and not queue.has_focus:
            queue.focus()
            if queue.highlighted is None:
                queue.highlighted = 0
        else:
            self.query_one("#composer", Input).focus()

    # --- stop and quit --------------------------------------------------------------------------
    def action_stop(self) -> None:
        from aura_tui.screens.dialogs import ChoiceScreen

        if not self.running:
            self.exit(self.exit_code())
            return
        if isinstance(self.screen, ChoiceScreen):
            return

        def answered(choice: str | None) -> None:
            if choice == "stop" and self.runner is not None:
                self.stopped = True
                self.runner.stop()

        self.push_screen(
            ChoiceScreen(
                "Stop the agent?",
                "The agent's whole process group will be stopped.",
                [("stop", "Stop it"), ("cancel", "Keep running")],
            ),
            answered,
        )

    async def action_quit(self) -> None:
        if self.running and self.runner is not None:
            self.stopped = True
            self.runner.stop()
        self.exit(self.exit_code())

    def action_toggle_raw(self) -> None:
        self.pane.toggle_raw()

    def action_follow(self) -> None:
        self.pane.follow()

    def exit_code(self) -> int:
        r = self.last_result
        if self.stopped:
            return 130
        if r is None or r.exit_code is None:
            return 1 if r is not None else 0
        return int(r.exit_code)


def run_single(
    executor: Any,
    executor_name: str,
    request: Any,
    store: Any,
    runner_factory: Callable[..., Any] | None = None,
    *,
    parent_id: str | None = None,
) -> int:
    """Run one agent session in the single-run view; returns the exit code for `aura run`.

    `runner_factory(store, executor, request, executor_name=, sink=, parent_id=)` builds the
    runner (default: `aura_core.runner.SessionRunner`).
    """
    if runner_factory is None:
        from aura_core.runner import SessionRunner

        runner_factory = SessionRunner
    app = SingleRunApp(
        executor=executor,
        executor_name=executor_name,
        request=request,
        store=store,
        runner_factory=runner_factory,
        parent_id=parent_id,
    )
    code = app.run()
    runner = app.runner
    if runner is not None and app.running:
        runner.stop()
    return int(code if code is not None else app.exit_code())
