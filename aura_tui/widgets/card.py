"""One card on the board: a task's title, agent, live status and diff stats; drag it to move it.

Cards are pooled by their column (a column mounts only the cards that fit, and re-binds them to
tasks as it scrolls), so a card shows whatever `CardInfo` it is given and carries no task state of
its own beyond that. Pressing a card selects it; moving the pointer two cells with the button down
(or, under Pilot, without it) starts a drag; releasing it drops the card where the pointer is.
"""

from __future__ import annotations

from collections.abc import Callable

from textual import events
from textual.content import Content
from textual.geometry import Offset
from textual.message import Message
from textual.widget import Widget

from aura_tui.services import (
    CANCELLED,
    DONE,
    FAILED,
    QUEUED,
    REVIEW,
    RUNNING,
    WAITING,
    CardInfo,
    fmt_elapsed,
)

SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
DRAG_THRESHOLD = 2
STATUS_CLASSES = {
    RUNNING: "-running",
    QUEUED: "-running",
    WAITING: "-waiting",
    REVIEW: "-review",
    FAILED: "-failed",
    DONE: "-done",
    CANCELLED: "-cancelled",
}


def status_line(info: CardInfo, now: float, frame: int) -> Content:
    """The card's third line: what the task is doing, in words and one mark."""
    status = info.status
    if status == RUNNING:
        elapsed = fmt_elapsed(None if info.started_at is None else max(0.0, now - info.started_at))
        return Content.from_markup(
            "[$accent]$spin running[/] $elapsed",
            spin=SPINNER[frame % len(SPINNER)],
            elapsed=elapsed,
        )
    if status == QUEUED:
        return Content.from_markup("[$text-muted]… queued[/]")
    if status == WAITING:
        return Content.from_markup("[$warning]? waiting for approval[/]")
    if status == REVIEW:
        return Content.from_markup("[$success]● needs review[/]")
    if status == FAILED:
        reason = info.reason or "failed"
        return Content.from_markup("[$error]✗ $reason[/]", reason=reason)
    if status == DONE:
        return Content.from_markup("[$text-muted]✓ done[/]")
    if status == CANCELLED:
        return Content.from_markup("[$text-muted]⊘ cancelled[/]")
    return Content.from_markup("[$text-muted]· idle[/]")


class Card(Widget):
    """A card slot: shows one task (or nothing, hidden) and reports presses and drags."""

    ALLOW_SELECT = False

    class Pressed(Message):
        """The card was pressed (selected)."""

        def __init__(self, card: Card, task_id: str) -> None:
            super().__init__()
            self.card = card
            self.task_id = task_id

        @property
        def control(self) -> Card:
            return self.card

    class Activated(Message):
        """The card was double-clicked: open it."""

        def __init__(self, card: Card, task_id: str) -> None:
            super().__init__()
            self.card = card
            self.task_id = task_id

        @property
        def control(self) -> Card:
            return self.card

    class DragMoved(Message):
        """The card is being dragged; the pointer is at `screen_offset`."""

        def __init__(self, card: Card, task_id: str, screen_offset: Offset) -> None:
            super().__init__()
            self.card = card
            self.task_id = task_id
            self.screen_offset = screen_offset

        @property
        def control(self) -> Card:
            return self.card

    class Dropped(Message):
        """The card was dropped at `screen_offset` (cancelled: False when escape ended it)."""

        def __init__(self, card: Card, task_id: str, screen_offset: Offset | None) -> None:
            super().__init__()
            self.card = card
            self.task_id = task_id
            self.screen_offset = screen_offset

        @property
        def control(self) -> Card:
            return self.card

    def __init__(self, *, clock: Callable[[], float], id: str | None = None) -> None:
        super().__init__(id=id)
        self.info: CardInfo | None = None
        self.clock = clock
        self.frame = 0
        self._press: Offset | None = None
        self._dragging = False

    # --- content --------------------------------------------------------------------------------
    def show(self, info: CardInfo | None) -> None:
        """Bind this slot to a task's card info (None hides it)."""
        if info == self.info and self.display == (info is not None):
            return
        old = None if self.info is None else STATUS_CLASSES.get(self.info.status)
        new = None if info is None else STATUS_CLASSES.get(info.status)
        self.info = info
        self.display = info is not None
        if old != new:
            if old:
                self.remove_class(old)
            if new:
                self.add_class(new)
        self.refresh()

    def tick(self, frame: int) -> None:
        self.frame = frame
        if self.info is not None and self.info.status == RUNNING:
            self.refresh()

    @property
    def task_id(self) -> str | None:
        return None if self.info is None else self.info.id

    def render(self) -> Content:
        info = self.info
        if info is None:
            return Content("")
        task = info.task
        title = Content.from_markup("[b]$title[/b]", title=task.title)
        agent = task.executor + (f" · {task.model}" if task.model else "")
        if info.worker:
            agent += f" @ {info.worker}"
        meta = Content.from_markup("[$text-muted]$agent[/]", agent=agent)
        if info.additions is not None or info.deletions is not None:
            stats = Content.from_markup(
                "[$success]+$a[/] [$error]-$d[/] ",
                a=str(info.additions or 0),
                d=str(info.deletions or 0),
            )
            meta = stats + meta
        status = status_line(info, self.clock(), self.frame)
        return Content("\n").join([title, meta, status])

    # --- pointer --------------------------------------------------------------------------------
    @property
    def dragging(self) -> bool:
        return self._dragging

    def on_mouse_down(self, event: events.MouseDown) -> None:
        if self.info is None or event.button not in (0, 1):
            return
        event.stop()
        self._press = event.screen_offset
        self._dragging = False
        self.capture_mouse()
        self.post_message(self.Pressed(self, self.info.id))

    def on_mouse_move(self, event: events.MouseMove) -> None:
        # Pilot's hover sends moves without a button held: only the press is required.
        if self._press is None or self.info is None:
            return
        event.stop()
        point = event.screen_offset
        if not self._dragging:
            dx = abs(point.x - self._press.x)
            dy = abs(point.y - self._press.y)
            if max(dx, dy) < DRAG_THRESHOLD:
                return
            self._dragging = True
            self.add_class("-dragging")
        self.post_message(self.DragMoved(self, self.info.id, point))

    def on_mouse_up(self, event: events.MouseUp) -> None:
        if self._press is None:
            return
        event.stop()
        was_dragging = self._dragging
        self._end()
        if was_dragging and self.info is not None:
            self.post_message(self.Dropped(self, self.info.id, event.screen_offset))

    def on_click(self, event: events.Click) -> None:
        if self.info is not None and event.chain >= 2:
            event.stop()
            self.post_message(self.Activated(self, self.info.id))

    def cancel_drag(self) -> bool:
        """Escape during a drag: put everything back. True if there was a drag to cancel."""
        if self._press is None:
            return False
        was_dragging = self._dragging
        self._end()
        if was_dragging and self.info is not None:
            self.post_message(self.Dropped(self, self.info.id, None))
        return was_dragging

    def _end(self) -> None:
        self._press = None
        self._dragging = False
        self.remove_class("-dragging")
        if self.app.mouse_captured is self:
            self.release_mouse()
