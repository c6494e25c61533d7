"""The board: columns of cards, a cursor moved with arrows / hjkl, moves by keys or by drag.

Every move goes through the service, hence through the headless board model: a refused move is
explained in a notification and the card stays where it was.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import HorizontalScroll
from textual.geometry import Offset
from textual.screen import Screen
from textual.widgets import Footer, Header, Input
from textual.worker import get_current_worker

from aura_core.board import MoveDecision
from aura_core.contracts import CanonicalTaskState
from aura_tui.services import CardInfo, NewTask
from aura_tui.widgets.card import Card
from aura_tui.widgets.column import Column

if TYPE_CHECKING:
    from aura_tui.app import AuraApp

CS = CanonicalTaskState
HIDDEN_WHEN_EMPTY = (CS.blocked, CS.cancelled)
TICK = 0.1


class BoardScreen(Screen[None]):
    AUTO_FOCUS = ""  # nothing: the board itself takes the keys
    BINDINGS = [
        Binding("left,h", "cursor_column(-1)", "Left", id="board.left", show=False),
        Binding("right,l", "cursor_column(1)", "Right", id="board.right", show=False),
        Binding("up,k", "cursor_row(-1)", "Up", id="board.up", show=False),
        Binding("down,j", "cursor_row(1)", "Down", id="board.down", show=False),
        Binding(
            "shift+left,H",
            "move_card(-1)",
            "Move ←",
            id="board.move_left",
            tooltip="Move the card to the previous column",
        ),
        Binding(
            "shift+right,L",
            "move_card(1)",
            "Move →",
            id="board.move_right",
            tooltip="Move the card to the next column",
        ),
        Binding("n", "new_task", "New", id="board.new", tooltip="New task"),
        Binding(
            "enter", "open_task", "Open", id="board.open", tooltip="Open the task (log, sessions)"
        ),
        Binding("s", "start", "Start", id="board.start", tooltip="Start the task"),
        Binding("d", "diff", "Diff", id="board.diff", tooltip="Review the diff"),
        Binding(
            "a",
            "approve",
            "Approve",
            id="board.approve",
            tooltip="Approve (move to Done, optionally merge)",
        ),
        Binding("f", "follow_up", "Follow-up", id="board.follow_up", tooltip="Ask for a follow-up"),
        Binding("x", "cancel_task", "Cancel task", id="board.cancel", show=False),
        Binding("slash", "filter", "Filter", id="board.filter", tooltip="Filter cards"),
        Binding("escape", "escape", "Clear", id="board.escape", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.columns: list[Column] = []
        self.cursor_col = 0
        self.filter_text = ""
        self.frame = 0
        self._states: dict[str, CanonicalTaskState] | None = None
        self._drag_target: Column | None = None
        self._drag_checks: dict[str, MoveDecision] = {}
        self._follow: str | None = None  # a task id the cursor should follow after a reload
        self._refresh_pending = False
        self._bindings_key: tuple[object, ...] | None = None

    @property
    def aura(self) -> AuraApp:
        return self.app  # type: ignore[return-value]

    # --- layout ---------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Header()
        yield Input(placeholder="filter cards (title, agent, model, id)", id="filter")
        board = self.aura.service.board
        self.columns = [Column(col, clock=self.aura.clock) for col in board.columns]
        with HorizontalScroll(id="board"):
            yield from self.columns
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#filter", Input).display = False
        self.refresh_board()
        if self.aura.ticking:
            self.set_interval(TICK, self._tick)

    def _tick(self) -> None:
        self.frame += 1
        for col in self.visible_columns:
            col.tick(self.frame)

    # --- data -----------------------------------------------------------------------------------
    def refresh_board(self) -> None:
        """Reload every card from the service (cheap: one query, pooled widgets)."""
        service = self.aura.service
        tasks = service.tasks()
        cards = service.cards(tasks)
        first_load = self._states is None
        self._alert_transitions(cards)
        by_col: dict[str, list[CardInfo]] = {c.column_id: [] for c in self.columns}
        fallback = {c.column.canonical_state: c.column_id for c in reversed(self.columns)}
        for info in cards:
            col_id = info.task.column_id
            if col_id not in by_col:
                col_id = fallback.get(info.task.state, self.columns[0].column_id)
            by_col[col_id].append(info)
        current = self.current_card
        follow = self._follow or (current.id if current else None)
        needle = self.filter_text.lower()
        for col in self.columns:
            all_cards = by_col[col.column_id]
            shown = [c for c in all_cards if _matches(c, needle)] if needle else all_cards
            col.set_cards(shown, len(all_cards))
            hide = col.column.canonical_state in HIDDEN_WHEN_EMPTY and not all_cards
            col.display = not hide
        if follow is not None:
            self._focus_task(follow)
        elif first_load:
            cols = self.visible_columns
            self.cursor_col = next((i for i, c in enumerate(cols) if c.cards), 0)
        self._follow = None
        self._place_cursor()

    def _alert_transitions(self, cards: list[CardInfo]) -> None:
        states = {c.id: c.task.state for c in cards}
        old = self._states
        self._states = states
        if old is None:
            return
        for info in cards:
            before = old.get(info.id)
            if before is None or before is info.task.state:
                continue
            if info.task.state is CS.review:
                self.aura.alert(f"'{info.task.title}' needs review")
            elif info.task.state is CS.blocked:
                reason = info.reason or "failed"
                self.aura.alert(f"'{info.task.title}' failed: {reason}", error=True)

    def request_refresh(self) -> None:
        """Coalesce reloads: many events in one tick cost one reload."""
        if not self._refresh_pending:
            self._refresh_pending = True
            self.call_later(self._do_refresh)

    def _do_refresh(self) -> None:
        self._refresh_pending = False
        self.refresh_board()

    def tasks_changed(self, _task_ids: set[str]) -> None:
        self.request_refresh()

    def session_started(self, _task_id: str | None, _session_id: str | None) -> None:
        self.request_refresh()

    # --- cursor ---------------------------------------------------------------------------------
    @property
    def visible_columns(self) -> list[Column]:
        return [c for c in self.columns if c.display]

    @property
    def current_column(self) -> Column | None:
        cols = self.visible_columns
        if not cols:
            return None
        self.cursor_col = max(0, min(self.cursor_col, len(cols) - 1))
        return cols[self.cursor_col]

    @property
    def current_card(self) -> CardInfo | None:
        col = self.current_column
        if col is None or col.cursor is None or col.cursor >= len(col.cards):
            return None
        return col.cards[col.cursor]

    def _place_cursor(self) -> None:
        current = self.current_column
        for col in self.columns:
            if col is current:
                if col.cursor is None and col.cards:
                    col.cursor = 0
                col.add_class("-current")
                col.render_window()
                self.query_one("#board").scroll_to_widget(col, animate=False)
            else:
                col.remove_class("-current")
                for slot in col.slots:
                    slot.remove_class("-cursor")
        self._refresh_bindings()

    def _refresh_bindings(self) -> None:
        card = self.current_card
        key = (card is not None, card is not None and card.task.state is CS.review)
        if key != self._bindings_key:
            self._bindings_key = key
            self.refresh_bindings()

    def _focus_task(self, task_id: str) -> bool:
        for i, col in enumerate(self.visible_columns):
            row = col.index_of(task_id)
            if row is not None:
                self.cursor_col = i
                col.cursor = row
                return True
        return False

    def action_cursor_column(self, delta: int) -> None:
        cols = self.visible_columns
        if not cols:
            return
        current = self.current_column
        row = current.cursor if current is not None and current.cursor is not None else 0
        self.cursor_col = max(0, min(self.cursor_col + delta, len(cols) - 1))
        target = cols[self.cursor_col]
        target.cursor = min(row, len(target.cards) - 1) if target.cards else None
        self._place_cursor()

    def action_cursor_row(self, delta: int) -> None:
        col = self.current_column
        if col is None or not col.cards:
            return
        row = 0 if col.cursor is None else col.cursor + delta
        col.set_cursor(max(0, min(row, len(col.cards) - 1)))
        self._refresh_bindings()

    # --- bindings per context -----------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        card = self.current_card
        needs_card = ("move_card", "open_task", "start", "cancel_task")
        if action in needs_card:
            return card is not None
        if action in ("diff", "approve", "follow_up"):
            return card is not None and card.task.state is CS.review
        return True

    # --- moves ----------------------------------------------------------------------------------
    def action_move_card(self, direction: int) -> None:
        card = self.current_card
        col = self.current_column
        if card is None or col is None:
            return
        board = self.aura.service.board
        target = board.next_column(col.column_id, direction)
        cols = {c.column_id: c for c in self.columns}
        while target is not None and not cols[target].display:
            nxt = board.next_column(target, direction)
            # hidden columns (empty Blocked/Cancelled) are skipped by the keys
            target = nxt
        if target is None:
            self.notify("No column that way.", severity="warning")
            return
        self.request_move(card.id, target)

    def request_move(self, task_id: str, column_id: str) -> None:
        """Ask the board model first; a follow-up needs feedback before anything moves."""
        service = self.aura.service
        decision = service.check_move(task_id, column_id)
        if not decision.ok:
            self.refuse(decision)
            return
        if decision.needs_prompt:
            self.ask_follow_up(task_id, column_id=column_id)
            return
        if decision.from_column_id == column_id:
            return
        self._follow = task_id
        self.run_move(task_id, column_id, None)

    def refuse(self, decision: MoveDecision) -> None:
        self.notify(decision.reason, title="Move refused", severity="warning", timeout=6)

    @work(thread=True, group="moves")
    def run_move(self, task_id: str, column_id: str, feedback: str | None) -> None:
        service = self.aura.service
        try:
            decision = service.move(task_id, column_id, feedback=feedback)
        except Exception as exc:
            self.app.call_from_thread(self.notify, str(exc), severity="error")
            return
        if get_current_worker().is_cancelled:
            return
        self.app.call_from_thread(self._moved, task_id, decision)

    def _moved(self, task_id: str, decision: MoveDecision) -> None:
        if not decision.ok:
            self.refuse(decision)
        self._follow = task_id
        self.request_refresh()

    # --- drag and drop --------------------------------------------------------------------------
    def _column_at(self, offset: Offset) -> Column | None:
        try:
            widget, _ = self.get_widget_at(offset.x, offset.y)
        except Exception:
            return None
        node: Any = widget
        while node is not None and not isinstance(node, Column):
            node = node.parent
        return node if isinstance(node, Column) else None

    @on(Card.Pressed)
    def _card_pressed(self, event: Card.Pressed) -> None:
        if self._focus_task(event.task_id):
            self._place_cursor()

    @on(Card.Activated)
    def _card_activated(self, event: Card.Activated) -> None:
        self.open_task(event.task_id)

    @on(Card.DragMoved)
    def _card_dragged(self, event: Card.DragMoved) -> None:
        target = self._column_at(event.screen_offset)
        if target is self._drag_target:
            return
        self._clear_drop_target()
        if target is None:
            return
        self._drag_target = target
        decision = self._drag_checks.get(target.column_id)
        if decision is None:
            decision = self.aura.service.check_move(event.task_id, target.column_id)
            self._drag_checks[target.column_id] = decision
        target.add_class("-drop-target")
        target.set_class(not decision.ok, "-drop-refused")

    @on(Card.Dropped)
    def _card_dropped(self, event: Card.Dropped) -> None:
        target = self._drag_target
        self._clear_drop_target()
        self._drag_checks.clear()
        if event.screen_offset is None:
            self.notify("Move cancelled.", timeout=2)
            return
        target = self._column_at(event.screen_offset) or target
        if target is None:
            return
        self.request_move(event.task_id, target.column_id)

    def _clear_drop_target(self) -> None:
        if self._drag_target is not None:
            self._drag_target.remove_class("-drop-target", "-drop-refused")
        self._drag_target = None

    def _dragging_card(self) -> Card | None:
        for col in self.columns:
            for slot in col.slots:
                if slot.dragging or slot is self.app.mouse_captured:
                    return slot
        return None

    def action_escape(self) -> None:
        card = self._dragging_card()
        if card is not None:
            card.cancel_drag()
            self._clear_drop_target()
            return
        if self.filter_text or self.query_one("#filter", Input).display:
            self._set_filter("")

    # --- filter ---------------------------------------------------------------------------------
    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.display = True
        box.focus()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value
        self.refresh_board()

    @on(Input.Submitted, "#filter")
    def _filter_done(self, event: Input.Submitted) -> None:
        box = self.query_one("#filter", Input)
        if not event.value:
            box.display = False
        self.set_focus(None)

    def _set_filter(self, text: str) -> None:
        box = self.query_one("#filter", Input)
        box.value = text
        self.filter_text = text
        box.display = bool(text)
        self.set_focus(None)
        self.refresh_board()

    def on_key(self, event: Any) -> None:
        box = self.query_one("#filter", Input)
        if event.key == "escape" and box.has_focus:
            event.stop()
            self._set_filter("")

    # --- tasks ----------------------------------------------------------------------------------
    def action_new_task(self) -> None:
        from aura_tui.screens.new_task import NewTaskScreen

        self.app.push_screen(NewTaskScreen(self.aura.service), self._new_task_done)

    def _new_task_done(self, data: NewTask | None) -> None:
        if data is not None:
            self.create_task(data)

    def create_task(self, data: NewTask) -> None:
        service = self.aura.service
        start = bool(data.get("start"))
        board = service.board
        column = board.column_for_state(CS.ready if start else CS.backlog).id
        try:
            task = service.add_task(
                data["title"],
                data["prompt"],
                data["executor"],
                model=data.get("model") or None,
                options=data.get("options") or None,
                repos=data.get("repos") or None,
                base_branch=data.get("base_branch") or None,
                review=bool(data.get("review")),
                column_id=column,
            )
        except Exception as exc:
            self.notify(f"Could not create the task: {exc}", severity="error")
            return
        self._follow = task.id
        self.refresh_board()
        if start:
            self.request_move(task.id, board.column_for_state(CS.running).id)

    def action_open_task(self) -> None:
        card = self.current_card
        if card is not None:
            self.open_task(card.id)

    def open_task(self, task_id: str) -> None:
        from aura_tui.screens.task_detail import TaskDetailScreen

        self.app.push_screen(TaskDetailScreen(task_id))

    def action_start(self) -> None:
        card = self.current_card
        if card is not None:
            running = self.aura.service.board.column_for_state(CS.running).id
            self.request_move(card.id, running)

    def action_cancel_task(self) -> None:
        card = self.current_card
        if card is not None:
            cancelled = self.aura.service.board.column_for_state(CS.cancelled).id
            self.request_move(card.id, cancelled)

    def action_diff(self) -> None:
        card = self.current_card
        if card is not None:
            from aura_tui.screens.review import ReviewScreen

            self.app.push_screen(ReviewScreen(card.id))

    def action_approve(self) -> None:
        card = self.current_card
        if card is not None:
            from aura_tui.screens.dialogs import approve_task

            approve_task(self.aura, card.task)

    def action_follow_up(self) -> None:
        card = self.current_card
        if card is not None:
            self.ask_follow_up(card.id)

    def ask_follow_up(
        self, task_id: str, *, column_id: str | None = None, prefill: str = ""
    ) -> None:
        from aura_tui.screens.dialogs import FollowUpScreen

        task = self.aura.service.task(task_id)

        def done(feedback: str | None) -> None:
            if not feedback:
                return
            target = column_id or self.aura.service.board.column_for_state(CS.running).id
            self._follow = task_id
            self.run_move(task_id, target, feedback)

        self.app.push_screen(FollowUpScreen(task.title, prefill), done)


def _matches(card: CardInfo, needle: str) -> bool:
    task = card.task
    hay = " ".join(
        (task.title, task.executor, task.model or "", task.id, card.status, task.worker_id or "")
    ).lower()
    return all(word in hay for word in needle.split())
