"""One board column: its title with the WIP count, and a window of pooled cards.

A column can be a summary (`-summary`: narrow, one line per card): Done and Cancelled are, while
the cursor is elsewhere, so the board keeps its width for the columns where work happens.

Only the cards that fit are mounted; scrolling re-binds them to other tasks, so a column of a
thousand tasks costs as much as a column of five. The board screen owns the cursor and tells the
column which row to show as selected.
"""

from __future__ import annotations

from collections.abc import Callable

from textual.app import ComposeResult
from textual.color import Color
from textual.containers import Vertical
from textual.content import Content
from textual.widgets import Static

from aura_core.contracts import BoardColumn
from aura_tui.services import CardInfo
from aura_tui.widgets.card import Card

CARD_PITCH = 5  # a card's height (4) plus its bottom margin (1), as styles/board.tcss sets them
SUMMARY_PITCH = 1  # a one-line card in a summary column


class Column(Vertical):
    """A column of the board; `column_id` is the board model's id."""

    def __init__(self, column: BoardColumn, *, clock: Callable[[], float]) -> None:
        super().__init__(id=f"col-{column.id}", classes="column")
        self.column = column
        self.clock = clock
        self.cards: list[CardInfo] = []
        self.total = 0  # cards in the column before filtering (for the WIP count)
        self.cursor: int | None = None
        self.window_start = 0
        self.summary = False
        self.current = False
        self._border: tuple[str, str] | None = None
        self._slots: list[Card] = []
        self._title = Static(classes="column-title")
        self._more = Static(classes="column-more")
        self._title_key: tuple[str, bool] | None = None
        self._more_text = ""
        self._body = Vertical(classes="column-body")

    @property
    def column_id(self) -> str:
        return self.column.id

    def compose(self) -> ComposeResult:
        yield self._title
        yield self._body
        yield self._more

    def on_mount(self) -> None:
        self._update_title()
        self._apply_border()
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self._apply_border(True))

    # --- the border: which column has the cursor, over its WIP limit, a drop target ------------
    def set_current(self, current: bool) -> None:
        """The cursor's column. An inline border, not a class: a class on a column restyles its
        whole subtree (~5-10 ms a move), an inline colour only repaints the column."""
        if current != self.current:
            self.current = current
            self._apply_border()

    def set_drop(self, target: bool, refused: bool = False) -> None:
        self.set_class(target, "-drop-target")
        self.set_class(target and refused, "-drop-refused")
        self._apply_border()

    def _apply_border(self, force: bool = False) -> None:
        if not self.is_mounted:
            return
        if self.has_class("-drop-target"):
            want = ("double", "error" if self.has_class("-drop-refused") else "accent")
        elif self.has_class("-over-limit"):
            want = ("round", "error")
        elif self.current:
            want = ("round", "primary")
        else:
            want = ("round", "panel")
        if want == self._border and not force:
            return
        self._border = want
        kind, name = want
        variables = self.app.theme_variables
        color = Color.parse(variables.get(name, "#808080"))
        if name == "primary":
            color = color.with_alpha(0.6)
        self.styles.border = (kind, color)  # type: ignore[assignment]

    def on_resize(self) -> None:
        self.fit()

    def set_summary(self, summary: bool) -> None:
        """Narrow, one line per card (or back to full cards)."""
        if summary == self.summary:
            return
        self.summary = summary
        self.set_class(summary, "-summary")
        for slot in self._slots:
            slot.set_compact(summary)
        if self.is_mounted:
            self.fit()

    # --- data -----------------------------------------------------------------------------------
    def set_cards(self, cards: list[CardInfo], total: int) -> None:
        self.cards = cards
        self.total = total
        if self.cursor is not None:
            self.cursor = min(self.cursor, len(cards) - 1) if cards else None
        self._update_title()
        self.render_window()

    def _update_title(self) -> None:
        col = self.column
        count = f"{self.total}/{col.wip_limit}" if col.wip_limit else str(self.total)
        over = col.wip_limit is not None and self.total > col.wip_limit
        at = col.wip_limit is not None and self.total == col.wip_limit
        if over != self.has_class("-over-limit"):
            self.set_class(over, "-over-limit")
            self._apply_border()
        self.set_class(at, "-at-limit")
        key = (count, over)
        if key == self._title_key:
            return
        self._title_key = key
        self._title.update(
            Content.from_markup("$name [$text-muted]$count[/]", name=col.name, count=count)
            if not over
            else Content.from_markup("$name [$error]$count[/]", name=col.name, count=count),
            layout=False,  # one fixed line: a new count never needs a layout
        )

    def index_of(self, task_id: str) -> int | None:
        for i, info in enumerate(self.cards):
            if info.id == task_id:
                return i
        return None

    # --- the window of pooled cards ------------------------------------------------------------
    @property
    def slots(self) -> list[Card]:
        return list(self._slots)

    def fit(self) -> None:
        """Mount or drop card slots so that exactly the cards that fit are mounted."""
        height = self.content_size.height - 2  # the title and the "more" line
        pitch = SUMMARY_PITCH if self.summary else CARD_PITCH
        want = max(1, (height + 1) // pitch) if height > 0 else 1
        if want > len(self._slots):
            new = [Card(clock=self.clock) for _ in range(want - len(self._slots))]
            for card in new:
                card.display = False
                card.set_compact(self.summary)
            self._slots.extend(new)
            self._body.mount(*new)
        elif want < len(self._slots):
            extra = self._slots[want:]
            del self._slots[want:]
            for card in extra:
                card.remove()
        self.render_window()

    def render_window(self) -> None:
        slots = len(self._slots)
        if not slots:
            return
        if self.cursor is not None:
            if self.cursor < self.window_start:
                self.window_start = self.cursor
            elif self.cursor >= self.window_start + slots:
                self.window_start = self.cursor - slots + 1
        self.window_start = max(0, min(self.window_start, max(0, len(self.cards) - slots)))
        for i, slot in enumerate(self._slots):
            index = self.window_start + i
            slot.show(self.cards[index] if index < len(self.cards) else None)
            slot.set_class(self.cursor is not None and index == self.cursor, "-cursor")
        above = self.window_start
        below = max(0, len(self.cards) - self.window_start - slots)
        parts = []
        if above:
            parts.append(f"↑ {above} more")
        if below:
            parts.append(f"↓ {below} more")
        more = "  ".join(parts)
        if more != self._more_text:
            self._more_text = more
            self._more.update(more, layout=False)

    def set_cursor(self, row: int | None) -> None:
        self.cursor = row
        self.render_window()

    def scroll_cards(self, delta: int) -> None:
        self.window_start += delta
        self.render_window()

    def on_mouse_scroll_down(self) -> None:
        self.scroll_cards(1)

    def on_mouse_scroll_up(self) -> None:
        self.scroll_cards(-1)

    def card_for(self, task_id: str) -> Card | None:
        for slot in self._slots:
            if slot.task_id == task_id:
                return slot
        return None

    def tick(self, frame: int) -> None:
        for slot in self._slots:
            slot.tick(frame)
