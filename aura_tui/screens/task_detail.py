"""One task: its live log (entries or raw lines), its session history, and the review keys."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Header, OptionList, Static, TabbedContent, TabPane
from textual.widgets.option_list import Option

from aura_core.contracts import CanonicalTaskState, Session
from aura_tui.services import CardInfo, session_label
from aura_tui.widgets.card import status_line
from aura_tui.widgets.footer import AuraFooter
from aura_tui.widgets.log_pane import LogPane

if TYPE_CHECKING:
    from aura_tui.app import AuraApp

CS = CanonicalTaskState


class TaskDetailScreen(Screen[None]):
    BINDINGS = [
        Binding("escape", "back", "Back", id="detail.back"),
        Binding("r", "toggle_raw", "Raw", id="detail.raw"),
        Binding("end,G", "follow", "Follow", id="detail.follow"),
        Binding("l", "tab('log')", "Log", id="detail.log", show=False),
        Binding("S", "tab('sessions')", "Sessions", id="detail.sessions"),
        Binding("d", "diff", "Diff", id="detail.diff"),
        Binding("a", "approve", "Approve", id="detail.approve"),
        Binding("f", "follow_up", "Follow-up", id="detail.follow_up"),
        Binding("x", "cancel_task", "Cancel task", id="detail.cancel", show=False),
    ]

    def __init__(self, task_id: str) -> None:
        super().__init__()
        self.task_id = task_id
        self.session: Session | None = None
        self.sessions: list[Session] = []
        self.pinned = False  # the person chose a session: don't jump to new ones

    @property
    def aura(self) -> AuraApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="task-head")
        with TabbedContent(initial="log"):
            with TabPane("Log", id="log"):
                yield LogPane(id="log-pane")
            with TabPane("Sessions", id="sessions"):
                yield OptionList(id="session-list")
        yield AuraFooter()

    def on_mount(self) -> None:
        self.refresh_task()
        self.load_sessions()

    @property
    def pane(self) -> LogPane:
        return self.query_one(LogPane)

    # --- task header ----------------------------------------------------------------------------
    def refresh_task(self) -> None:
        service = self.aura.service
        try:
            task = service.task(self.task_id)
        except Exception:
            self.notify("This task no longer exists.", severity="warning")
            self.dismiss()
            return
        card: CardInfo = service.card(task)
        self.sub_title = task.title
        agent = task.executor + (f" · {task.model}" if task.model else "")
        head = (
            Content.from_markup(
                "[b]$title[/b]  [$text-muted]$agent · $column · $id[/]\n",
                title=task.title,
                agent=agent,
                column=service.board.get_column(task.column_id).name  # type: ignore[union-attr]
                if service.board.get_column(task.column_id)
                else task.column_id,
                id=task.id[:8],
            )
            + status_line(card, self.aura.clock(), 0)
        )
        self.query_one("#task-head", Static).update(head)
        self.task_state = task.state
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("approve", "follow_up", "diff"):
            return getattr(self, "task_state", None) is CS.review
        return True

    # --- sessions -------------------------------------------------------------------------------
    def load_sessions(self) -> None:
        service = self.aura.service
        self.sessions = sorted(service.sessions(self.task_id), key=lambda s: s.created_at)
        options = self.query_one("#session-list", OptionList)
        options.clear_options()
        options.add_options(
            [Option(session_label(s, self.aura.clock), id=s.id) for s in reversed(self.sessions)]
        )
        if self.sessions:
            options.highlighted = 0
        if not self.pinned and self.sessions:
            latest = self.sessions[-1]
            if self.session is None or self.session.id != latest.id:
                self.show_session(latest)
        elif not self.sessions:
            self.pane.show_session(None, None, 0, structured=False)

    def show_session(self, session: Session) -> None:
        service = self.aura.service
        self.session = session
        structured = service.normalizer(session.executor) is not None
        sid = session.id

        def loader(start: int, limit: int) -> list[tuple[int, str, str]]:
            return service.log_page(sid, start, limit)

        self.pane.show_session(sid, loader, service.log_count(sid), structured=structured)
        if structured:
            self.load_entries(session)

    @work(thread=True, exclusive=True, group="entries")
    def load_entries(self, session: Session) -> None:
        entries = self.aura.service.entries(session) or []
        self.app.call_from_thread(self._entries_loaded, session.id, entries)

    def _entries_loaded(self, session_id: str, entries: list[Any]) -> None:
        if self.pane.session_id == session_id:
            self.pane.set_entries(entries)

    @on(OptionList.OptionSelected, "#session-list")
    def _session_chosen(self, event: OptionList.OptionSelected) -> None:
        chosen = next((s for s in self.sessions if s.id == event.option.id), None)
        if chosen is not None:
            self.pinned = chosen is not self.sessions[-1]
            self.show_session(chosen)
            self.query_one(TabbedContent).active = "log"
            self.set_focus(None)

    # --- live feed (from the app's event pump) ---------------------------------------------------
    def tasks_changed(self, task_ids: set[str]) -> None:
        if self.task_id in task_ids:
            self.refresh_task()

    def session_started(self, task_id: str | None, _session_id: str | None) -> None:
        if task_id == self.task_id:
            self.load_sessions()

    def feed_rows(self, session_id: str, rows: list[Any]) -> None:
        if session_id == self.pane.session_id:
            self.pane.add_rows(rows)

    def feed_patches(self, session_id: str, patches: list[Any]) -> None:
        if session_id == self.pane.session_id and self.pane.structured:
            self.pane.apply_patches(patches)

    # --- actions --------------------------------------------------------------------------------
    def action_back(self) -> None:
        self.dismiss()

    def action_toggle_raw(self) -> None:
        self.pane.toggle_raw()

    def action_follow(self) -> None:
        self.pane.follow()

    def action_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab
        if tab == "sessions":
            self.load_sessions()
            self.query_one("#session-list", OptionList).focus()

    def action_diff(self) -> None:
        from aura_tui.screens.review import ReviewScreen

        self.app.push_screen(ReviewScreen(self.task_id))

    def action_approve(self) -> None:
        from aura_tui.screens.dialogs import approve_task

        approve_task(self.aura, self.aura.service.task(self.task_id))

    def action_follow_up(self) -> None:
        from aura_tui.screens.board import BoardScreen

        board = self.aura.get_screen_of(BoardScreen)
        if board is not None:
            board.ask_follow_up(self.task_id)

    def action_cancel_task(self) -> None:
        from aura_tui.screens.board import BoardScreen

        board = self.aura.get_screen_of(BoardScreen)
        if board is not None:
            cancelled = self.aura.service.board.column_for_state(CS.cancelled).id
            board.request_move(self.task_id, cancelled)
