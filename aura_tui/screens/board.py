"""The board: columns of cards, a cursor moved with arrows / hjkl, moves by keys or by drag.

Every move goes through the service, hence through the headless board model: a refused move is
explained in a notification and the card stays where it was.
"""

from __future__ import annotations

import bisect
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container, HorizontalScroll
from textual.content import Content
from textual.geometry import Offset
from textual.screen import Screen
from textual.widgets import Header, Input, Static
from textual.worker import get_current_worker

from aura_core.board import AFTER, MoveDecision, MoveIntent
from aura_core.contracts import CanonicalTaskState
from aura_tui.services import CardInfo, ExecutorChoice, NewTask
from aura_tui.widgets.card import Card
from aura_tui.widgets.column import Column
from aura_tui.widgets.footer import AuraFooter

if TYPE_CHECKING:
    from aura_tui.app import AuraApp

CS = CanonicalTaskState
HIDDEN_WHEN_EMPTY = (CS.blocked, CS.cancelled)
SUMMARY_STATES = (CS.done, CS.cancelled)  # narrow one-line columns while the cursor is elsewhere
MIN_WIDTH = 24  # a column narrower than this cuts titles: the board scrolls sideways instead
MIN_WIDTH_NARROW = 22  # terminals under 110 columns
SUMMARY_WIDTH = 18
SUMMARY_WIDTH_NARROW = 16
INCREMENTAL_MAX = 64  # more changed tasks than this in one tick: reload the board
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
        Binding(
            "v",
            "dev_server",
            "Dev server",
            id="board.dev_server",
            show=False,
            tooltip="Start or stop the task's dev server ([scripts] dev_server) on its own port",
        ),
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
        self._refresh_all = False
        self._refresh_ids: set[str] = set()
        self._bindings_key: tuple[object, ...] | None = None
        self._cards: dict[str, CardInfo] = {}
        self._by_col: dict[str, list[CardInfo]] = {}
        self._executors: list[ExecutorChoice] | None = None
        self._probing = False
        self._empty_text: Content | None = None
        self._widths_key: tuple[object, ...] | None = None
        self._scroll_x = 0

    @property
    def aura(self) -> AuraApp:
        return self.app  # type: ignore[return-value]

    # --- layout ---------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Header()
        yield Input(
            placeholder="filter cards: words (title, agent, model, id) · @worker · @local",
            id="filter",
        )
        board = self.aura.service.board
        self.columns = [Column(col, clock=self.aura.clock) for col in board.columns]
        with Container(id="board-area"):
            with HorizontalScroll(id="board"):
                yield from self.columns
            yield Static("", id="empty-state")
            yield Static("", id="board-hint")
        yield AuraFooter()

    def on_mount(self) -> None:
        self.query_one("#filter", Input).display = False
        self.query_one("#empty-state", Static).display = False
        self.query_one("#board-hint", Static).display = False
        # the mouse (wheel, shift+wheel, scrollbar) scrolls the board sideways too: keep the
        # line naming the columns off either edge true to what is on screen
        board = self.query_one("#board", HorizontalScroll)
        self.watch(board, "scroll_x", self._board_scrolled, init=False)
        self.refresh_board()
        problem = self.aura.service.repo_problem
        if problem is not None and self._cards:
            self.notify(
                f"{problem} New tasks need a repository: name one in the new-task form.",
                severity="warning",
                timeout=10,
            )
        if self.aura.ticking:
            self.set_interval(TICK, self._tick)
        if self._executors is None and not self._probing:
            # ask which agents are installed now, so the new-task form opens with the answer
            self._probing = True
            self.probe_executors()

    def _tick(self) -> None:
        self.frame += 1
        for col in self.visible_columns:
            col.tick(self.frame)

    # --- data -----------------------------------------------------------------------------------
    def refresh_board(self) -> None:
        """Reload every card from the service (one query, pooled widgets): first load and resync."""
        service = self.aura.service
        tasks = service.tasks()
        cards = service.cards(tasks)
        first_load = self._states is None
        self._alert_transitions(cards)
        self._cards = {info.id: info for info in cards}
        self._by_col = {c.column_id: [] for c in self.columns}
        for info in cards:  # the service lists them in board order already
            self._by_col[self._column_for(info)].append(info)
        current = self.current_card
        follow = self._follow or (current.id if current else None)
        self._show_columns(set(self._by_col))
        if follow is not None:
            self._focus_task(follow)
        elif first_load:
            cols = self.visible_columns
            self.cursor_col = next((i for i, c in enumerate(cols) if c.cards), 0)
        self._follow = None
        self._place_cursor()
        self._want_stats(cards)

    def update_tasks(self, task_ids: set[str]) -> None:
        """Re-read only these tasks and redraw only the columns they left or joined."""
        service = self.aura.service
        running = service.running_task_ids()
        current = self.current_card
        follow = self._follow or (current.id if current else None)
        task_ids = task_ids | {  # cards that run after these show whether they are done
            info.id
            for info in self._cards.values()
            if set(info.task.options.get(AFTER) or ()) & task_ids
        }
        dirty: set[str] = set()
        infos: list[CardInfo] = []
        for task_id in task_ids:
            try:
                task = service.task(task_id)
            except Exception:  # deleted
                task = None
            info = None if task is None else service.card(task, running)
            dirty |= self._put(task_id, info)
            self._alert_transition(info)
            if info is not None:
                infos.append(info)
        self._show_columns(dirty)
        if follow is not None:
            self._focus_task(follow)
        self._follow = None
        self._place_cursor()
        self._want_stats(infos)

    def _want_stats(self, cards: list[CardInfo]) -> None:
        wanted = self.aura.service.stats_wanted(cards)
        if wanted:
            self._compute_stats(wanted)

    @work(thread=True, group="diff-stats")
    def _compute_stats(self, task_ids: list[str]) -> None:
        """Cards in review show their +/- counts without opening the diff first."""
        service = self.aura.service
        done = {task_id for task_id in task_ids if service.compute_diff_stats(task_id)}
        if done and not get_current_worker().is_cancelled:
            self.app.call_from_thread(self.update_tasks, done)

    def _column_for(self, info: CardInfo) -> str:
        col_id = info.task.column_id
        if col_id in self._by_col:
            return col_id
        for col in reversed(self.columns):  # a column the board no longer has: by state
            if col.column.canonical_state is info.task.state:
                return col.column_id
        return self.columns[0].column_id

    def _put(self, task_id: str, info: CardInfo | None) -> set[str]:
        """Place (or, with None, remove) one card in the model; returns the columns touched."""
        touched: set[str] = set()
        old = self._cards.pop(task_id, None)
        if old is not None:
            col_id = self._column_for(old)
            cards = self._by_col[col_id]
            at = _index(cards, old)
            if at is not None:
                del cards[at]
            touched.add(col_id)
        if info is not None:
            self._cards[task_id] = info
            col_id = self._column_for(info)
            bisect.insort(self._by_col[col_id], info, key=_order)
            touched.add(col_id)
        return touched

    def _show_columns(self, col_ids: set[str]) -> None:
        """Hand the (filtered) cards to these columns; hide empty Blocked/Cancelled."""
        needle = self.filter_text
        for col in self.columns:
            if col.column_id not in col_ids:
                continue
            all_cards = self._by_col[col.column_id]
            shown = [c for c in all_cards if _matches(c, needle)] if needle else all_cards
            col.set_cards(shown, len(all_cards))
            hide = col.column.canonical_state in HIDDEN_WHEN_EMPTY and not all_cards
            if col.display == hide:
                col.display = not hide
                self._widths_key = None
        self._update_empty_state()

    def _alert_transitions(self, cards: list[CardInfo]) -> None:
        states = {c.id: c.task.state for c in cards}
        old = self._states
        self._states = states
        if old is None:
            return
        for info in cards:
            before = old.get(info.id)
            if before is not None and before is not info.task.state:
                self._alert(info)

    def _alert_transition(self, info: CardInfo | None) -> None:
        if info is None or self._states is None:
            return
        before = self._states.get(info.id)
        self._states[info.id] = info.task.state
        if before is not None and before is not info.task.state:
            self._alert(info)

    def _alert(self, info: CardInfo) -> None:
        if info.task.state is CS.review:
            self.aura.alert(f"'{info.task.title}' needs review")
        elif info.task.state is CS.blocked:
            reason = info.reason or "failed"
            self.aura.alert(f"'{info.task.title}' failed: {reason}", error=True)

    def request_refresh(self, task_ids: set[str] | None = None) -> None:
        """Coalesce reloads: many events in one tick cost one update (None: everything)."""
        if task_ids is None:
            self._refresh_all = True
        else:
            self._refresh_ids |= task_ids
        if not self._refresh_pending:
            self._refresh_pending = True
            self.call_later(self._do_refresh)

    def _do_refresh(self) -> None:
        self._refresh_pending = False
        ids, self._refresh_ids = self._refresh_ids, set()
        everything, self._refresh_all = self._refresh_all, False
        if everything or self._states is None or len(ids) > INCREMENTAL_MAX:
            self.refresh_board()
        elif ids:
            self.update_tasks(ids)

    def tasks_changed(self, task_ids: set[str]) -> None:
        self.request_refresh(task_ids)

    def session_started(self, task_id: str | None, _session_id: str | None) -> None:
        self.request_refresh({task_id} if task_id else None)

    # --- empty board ----------------------------------------------------------------------------
    def _update_empty_state(self) -> None:
        box = self.query_one("#empty-state", Static)
        empty = not self._cards
        problem = self.aura.service.repo_problem
        show = empty  # (tasks of other repos on the board: the problem was a toast at mount)
        if show != box.display:
            box.display = show
        if not show:
            return
        text = empty_state_text(problem, self._executors, empty)
        if text != self._empty_text:
            self._empty_text = text
            box.update(text)
        if self._executors is None and not self._probing:
            self._probing = True
            self.probe_executors()

    @work(thread=True, exclusive=True, group="executors")
    def probe_executors(self) -> None:
        try:
            choices = self.aura.service.executors()
        except Exception:
            choices = []
        self.app.call_from_thread(self._probed, choices)

    def _probed(self, choices: list[ExecutorChoice]) -> None:
        self._executors = choices
        self._probing = False
        self._update_empty_state()

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
        resized = False
        for col in self.columns:
            summary = col is not current and col.column.canonical_state in SUMMARY_STATES
            if summary != col.summary:
                col.set_summary(summary)
                resized = True
            if col is current:
                if col.cursor is None and col.cards:
                    col.cursor = 0
                col.set_current(True)
                col.render_window()
            else:
                col.set_current(False)
                for slot in col.slots:
                    slot.remove_class("-cursor")
        if self._size_columns() or resized:  # the widths change with the next layout
            self.call_after_refresh(self._scroll_to_current)
        else:
            self._scroll_to_current()
        self._refresh_bindings()

    def on_resize(self) -> None:
        if self._size_columns():
            self.call_after_refresh(self._scroll_to_current)

    def _size_columns(self) -> bool:
        """Column widths for this terminal: all visible columns share the width while each gets
        at least MIN_WIDTH (summaries a fixed narrow width); beyond that the board scrolls
        sideways, the columns that fit from the left filling the view with no column cut in
        half. True if any width changed."""
        width = self.app.size.width
        cols = self.visible_columns
        key = (width, tuple((c.column_id, c.summary) for c in cols))
        if key == self._widths_key or not cols or width <= 0:
            return False
        self._widths_key = key
        narrow = width < 110
        min_width = MIN_WIDTH_NARROW if narrow else MIN_WIDTH
        summary_width = SUMMARY_WIDTH_NARROW if narrow else SUMMARY_WIDTH
        regular = [c for c in cols if not c.summary]
        fixed = summary_width * (len(cols) - len(regular))
        widths: dict[str, int] = {c.column_id: summary_width for c in cols if c.summary}
        if regular:
            room = width - fixed
            if room >= min_width * len(regular):  # all fit: share the room exactly
                base, extra = divmod(room, len(regular))
                for i, col in enumerate(regular):
                    widths[col.column_id] = base + (1 if i < extra else 0)
            else:  # scroll: the columns that fit from the left fill the view exactly
                used, in_view = 0, list[Column]()
                for col in cols:
                    need = summary_width if col.summary else min_width
                    if in_view and used + need > width:
                        break
                    used += need
                    in_view.append(col)
                shown = [c for c in in_view if not c.summary] or regular[:1]
                base, extra = divmod(max(0, width - used), len(shown))
                for col in regular:
                    widths[col.column_id] = min_width + base
                for col in shown[:extra]:
                    widths[col.column_id] += 1
        changed = False
        for col in cols:
            want = widths[col.column_id]
            if col.styles.width is None or col.styles.width.value != want:
                col.styles.width = want
                changed = True
        return changed

    def _scroll_to_current(self) -> None:
        """Keep the focused column in view (the board scrolls sideways when columns overflow),
        and name the columns off either edge in the line under the board."""
        cols = self.visible_columns
        current = self.current_column
        if not cols or current is None:
            return
        view = self.app.size.width
        starts: list[int] = []
        x = 0
        for col in cols:
            starts.append(x)
            x += _width(col)
        total = x
        at = cols.index(current)
        left, right = starts[at], starts[at] + _width(current)
        sx = self._scroll_x
        if left < sx:
            sx = left
        elif right > sx + view:  # the first column edge that brings it fully into view
            sx = min((start for start in starts if start >= right - view), default=left)
        sx = max(0, min(sx, max(0, total - view)))
        self._scroll_x = sx
        self.query_one("#board", HorizontalScroll).scroll_to(x=sx, animate=False, force=True)
        self._hint_at(sx)

    def _board_scrolled(self, scroll_x: float) -> None:
        sx = round(scroll_x)
        if sx != self._scroll_x:
            self._scroll_x = sx
            self._hint_at(sx)

    def _hint_at(self, sx: int) -> None:
        cols = self.visible_columns
        view = self.app.size.width
        before: list[Column] = []
        after: list[Column] = []
        x = 0
        for col in cols:
            width = _width(col)
            if x < sx:
                before.append(col)
            if x + width > sx + view:
                after.append(col)
            x += width
        self._update_hint(before, after)

    def _update_hint(self, before: list[Column], after: list[Column]) -> None:
        hint = self.query_one("#board-hint", Static)
        hint.display = bool(before or after)
        if not (before or after):
            return

        def names(cols: list[Column]) -> Content:
            parts = []
            for col in cols:
                part = Content(f"{col.column.name} {col.total}")
                if col.total and col.column.canonical_state is CS.blocked:
                    part = part.stylize("bold $error")
                parts.append(part)
            return Content(" · ").join(parts)

        line = Content("")
        if before:
            line = Content("← ") + names(before)
        if after:
            right = names(after) + Content(" →")
            gap = max(2, self.app.size.width - 3 - line.cell_length - right.cell_length)
            line = line + Content(" " * gap) + right
        hint.update(line, layout=False)

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
        needs_card = ("move_card", "open_task", "start", "cancel_task", "dev_server")
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
        if decision.intent is MoveIntent.wait:  # stays where it is; the engine says until when
            self.run_move(task_id, column_id, None)
            return
        if decision.from_column_id == column_id:
            return
        self._place_now(task_id, column_id)
        self.run_move(task_id, column_id, None)

    def _place_now(self, task_id: str, column_id: str) -> None:
        """Show an accepted move at once, redrawing only the two columns: the engine's record
        follows on a worker thread, and its task_changed event re-reads the task (so a move the
        engine turns down, or carries further, is corrected a moment later)."""
        info = self._cards.get(task_id)
        if info is None:
            return
        column = self.aura.service.board.get_column(column_id)
        if column is None:
            return
        task = info.task.model_copy(
            update={"column_id": column_id, "state": column.canonical_state}
        )
        self._follow = task_id
        self._show_columns(self._put(task_id, replace(info, task=task)))
        self._focus_task(task_id)
        self._follow = task_id  # keep following it when the engine's event arrives
        self._place_cursor()

    def refuse(self, decision: MoveDecision) -> None:
        self.notify(decision.reason, title="Move refused", severity="warning", timeout=6)

    @work(thread=True, group="moves")
    def run_move(self, task_id: str, column_id: str, feedback: str | None) -> None:
        self._move_now(task_id, column_id, feedback)

    @work(thread=True, group="moves")
    def run_moves(self, task_id: str, column_ids: list[str]) -> None:
        """Several moves in order; stops at the first one the engine turns down."""
        for column_id in column_ids:
            if not self._move_now(task_id, column_id, None):
                return

    def _move_now(self, task_id: str, column_id: str, feedback: str | None) -> bool:
        service = self.aura.service
        try:
            decision = service.move(task_id, column_id, feedback=feedback)
        except Exception as exc:
            self.app.call_from_thread(self.notify, str(exc), severity="error")
            return False
        if get_current_worker().is_cancelled:
            return False
        self.app.call_from_thread(self._moved, task_id, decision)
        return decision.ok

    def _moved(self, task_id: str, decision: MoveDecision) -> None:
        if not decision.ok:
            self.refuse(decision)
        self._follow = task_id
        self.request_refresh({task_id})

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
        target.set_drop(True, refused=not decision.ok)

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
            self._drag_target.set_drop(False)
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
        self._refilter()

    def _refilter(self) -> None:
        """Show the cards matching the filter (no reload: the cards are all here)."""
        current = self.current_card
        self._show_columns(set(self._by_col))
        if current is not None:
            self._focus_task(current.id)
        self._place_cursor()

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
        self._refilter()

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
                after=data.get("after") or None,
            )
        except Exception as exc:
            self.notify(f"Could not create the task: {exc}", severity="error")
            if "title" in data and "options_text" in data:  # typed in the form: nothing is lost
                from aura_tui.screens.new_task import NewTaskScreen

                form = NewTaskScreen(service, prefill=data)
                self.app.push_screen(form, self._new_task_done)
            return
        self._follow = task.id
        self.update_tasks({task.id})
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
        """Start now, from Backlog too: `s` is an explicit command, so the card goes through
        Ready on its way (a drag from Backlog straight to In Progress is still refused)."""
        card = self.current_card
        if card is None:
            return
        board = self.aura.service.board
        running = board.column_for_state(CS.running).id
        if card.task.state is CS.backlog:
            ready = board.column_for_state(CS.ready).id
            decision = self.aura.service.check_move(card.id, ready)
            if not decision.ok:
                self.refuse(decision)
                return
            self._place_now(card.id, ready)
            self.run_moves(card.id, [ready, running])
            return
        self.request_move(card.id, running)

    def action_cancel_task(self) -> None:
        card = self.current_card
        if card is not None:
            cancelled = self.aura.service.board.column_for_state(CS.cancelled).id
            self.request_move(card.id, cancelled)

    def action_dev_server(self) -> None:
        card = self.current_card
        if card is not None:
            self.toggle_dev_server(card.id, card.task.title)

    @work(thread=True, group="dev_server")
    def toggle_dev_server(self, task_id: str, title: str) -> None:
        """Start or stop it off the UI thread (starting waits for the process, stopping for
        its whole group to end); a toast says how it went."""
        try:
            started, url = self.aura.service.toggle_dev_server(task_id)
        except Exception as exc:
            self.app.call_from_thread(
                self.notify, str(exc), title="Dev server", severity="error", timeout=8
            )
            return
        message = f"'{title}': dev server on {url}" if started else f"'{title}': dev server stopped"
        self.app.call_from_thread(self.notify, message, title="Dev server", timeout=8)
        self.app.call_from_thread(self.request_refresh, {task_id})

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


def _width(col: Column) -> int:
    width = col.styles.width
    return int(width.value) if width is not None else 24


def _order(info: CardInfo) -> tuple[float, float, str]:
    """The store's board order: position, then creation, then id."""
    task = info.task
    return (task.position, task.created_at, task.id)


def _index(cards: list[CardInfo], info: CardInfo) -> int | None:
    """Where `info`'s task sits in a column's ordered cards (by its order key, then by id)."""
    at = bisect.bisect_left(cards, _order(info), key=_order)
    if at < len(cards) and cards[at].id == info.id:
        return at
    for i, other in enumerate(cards):  # its order changed under us: look it up
        if other.id == info.id:
            return i
    return None


def _matches(card: CardInfo, needle: str) -> bool:
    """Every word of the filter matches; `@name` keeps the tasks on worker `name` (prefix, any
    case) and `@local` the tasks that run here."""
    task = card.task
    hay = " ".join(
        (task.title, task.executor, task.model or "", task.id, card.status, task.worker_id or "")
    ).lower()
    worker = (task.worker_id or "").lower()
    for word in needle.lower().split():
        if word.startswith("@") and len(word) > 1:
            name = word[1:]
            if name == "local":
                if worker:
                    return False
            elif not worker.startswith(name):
                return False
        elif word not in hay:
            return False
    return True


def empty_state_text(
    problem: str | None, executors: list[ExecutorChoice] | None, empty: bool
) -> Content:
    """What a new user reads on an empty board: what to do next, and which agents are ready."""
    if problem is not None:
        return Content.from_markup(
            "[b $warning]$problem[/]\n\n"
            "AURA runs each task in a git worktree, so a task needs a repository. Run "
            "[b]git init[/b] here (and commit once), or start [b]aura tui --cwd PATH[/b] in a "
            "repository. In the new-task form ([b $accent]n[/]) you can also name the repo.",
            problem=problem,
        )
    lines = [
        Content.from_markup("[b]No tasks yet.[/b]"),
        Content(""),
        Content.from_markup(
            "Press [b $accent]n[/] to add a task: a title, a prompt, and the agent to run it."
        ),
    ]
    if executors is None:
        lines.append(Content.from_markup("[$text-muted]Checking which agents are installed…[/]"))
    else:
        ready = [e.name for e in executors if e.ready]
        missing = [e.name for e in executors if not e.ready]
        if ready:
            lines.append(
                Content.from_markup("Agents ready: [b $success]$names[/]", names=", ".join(ready))
            )
        else:
            lines.append(Content.from_markup("[b $warning]No agent is installed yet.[/]"))
        if missing:
            lines.append(
                Content.from_markup(
                    "[$text-muted]Not installed: $names[/]", names=", ".join(missing)
                )
            )
    lines.append(
        Content.from_markup(
            "[$text-muted][b]aura doctor[/b] says what each agent needs · [b]?[/b] every key[/]"
        )
    )
    return Content("\n").join(lines)
