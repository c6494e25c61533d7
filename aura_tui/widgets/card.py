"""One card on the board: a task's title, agent, live status and diff stats; drag it to move it.

A card is four lines: the title wrapped on up to two, then the agent (with diff stats and the
worker it runs on), then the status. In a summary column (Done, Cancelled while the cursor is
elsewhere) a card is one line: its mark and title. A task blocked because its remote worker went
offline ("worker NAME lost") has its own badge. Cards are pooled by their column (a column mounts
only the cards that fit, and re-binds them to tasks as it scrolls), so a card shows whatever
`CardInfo` it is given and carries no task state of its own beyond that. Pressing a card selects
it; moving the pointer two cells with the button down (or, under Pilot, without it) starts a
drag; releasing it drops the card where the pointer is.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from rich.cells import cell_len, set_cell_size
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


_LOST = re.compile(r"^worker\b.*\blost\b", re.IGNORECASE | re.DOTALL)
MARKS = {DONE: "✓", CANCELLED: "⊘", FAILED: "✗", REVIEW: "●", RUNNING: "⠿", WAITING: "?"}


def worker_lost(info: CardInfo) -> bool:
    """Blocked because the remote worker running it went offline ("worker NAME lost …")."""
    return info.status == FAILED and bool(info.reason) and bool(_LOST.match(info.reason or ""))


def wrap(text: str, width: int, lines: int) -> list[str]:
    """`text` word-wrapped to `width` cells on at most `lines` lines (the last one ellipsised)."""
    width = max(1, width)
    out: list[str] = []
    words = text.split()
    current = ""
    while words:
        word = words[0]
        candidate = f"{current} {word}" if current else word
        if cell_len(candidate) <= width:
            current = candidate
            words.pop(0)
            continue
        if not current:  # one word longer than the line: cut it
            head = set_cell_size(word, width)
            rest = word[len(head.rstrip()) :]
            current, words[0] = head.rstrip(), rest
            if not rest:
                words.pop(0)
        out.append(current)
        current = ""
        if len(out) == lines:
            break
    if current and len(out) < lines:
        out.append(current)
        current = ""
    if words or current:  # more than fits: ellipsise the last line
        last = out[-1] if out else ""
        if cell_len(last) >= width:
            last = set_cell_size(last, width - 1)
        out[-1 if out else 0 :] = [last.rstrip() + "…"]
    return out or [""]


def status_line(info: CardInfo, now: float, frame: int) -> Content:
    """The card's last line: what the task is doing, in words and one mark."""
    status = info.status
    if worker_lost(info):
        worker = info.worker or "worker"
        return Content.from_markup(
            "[bold reverse $warning] LOST [/] [$warning]$worker[/]", worker=worker
        )
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
    if info.after:  # runs after tasks that are not done yet
        names = ", ".join(info.after)
        if info.starts_after:
            return Content.from_markup("[$warning]⧗ starts after $names[/]", names=names)
        return Content.from_markup("[$text-muted]⧗ after $names[/]", names=names)
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
        self.compact = False  # one line: mark and title (summary columns)
        self.info: CardInfo | None = None
        self.clock = clock
        self.frame = 0
        self._press: Offset | None = None
        self._dragging = False

    # --- content --------------------------------------------------------------------------------
    def show(self, info: CardInfo | None) -> None:
        """Bind this slot to a task's card info (None hides it)."""
        if _view(info) == _view(self.info) and self.display == (info is not None):
            self.info = info  # the same on screen (e.g. only updated_at changed): no repaint
            return
        old = None if self.info is None else _status_class(self.info)
        new = None if info is None else _status_class(info)
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

    def set_compact(self, compact: bool) -> None:
        if compact != self.compact:
            self.compact = compact
            self.set_class(compact, "-compact")
            self.refresh()

    def render(self) -> Content:
        info = self.info
        if info is None:
            return Content("")
        task = info.task
        width = self.content_size.width or 20
        if self.compact:
            mark = MARKS.get(info.status, "·")
            return Content.from_markup("$mark [b]$title[/b]", mark=mark, title=task.title)
        lines = wrap(" ".join(task.title.split()), width, 2)
        title = Content.from_markup("[b]$title[/b]", title="\n".join(lines))
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
        if info.dev_port is not None:  # first: a narrow card still shows it
            meta = Content.from_markup("[$accent]:$port[/] ", port=str(info.dev_port)) + meta
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


def _status_class(info: CardInfo) -> str | None:
    if worker_lost(info):
        return "-lost"
    return STATUS_CLASSES.get(info.status)


def _view(info: CardInfo | None) -> tuple[object, ...] | None:
    """What a card draws from its info: equal views need no repaint."""
    if info is None:
        return None
    task = info.task
    return (
        task.id,
        task.title,
        task.executor,
        task.model,
        task.worker_id,
        task.state,
        info.status,
        info.reason,
        info.started_at,
        info.additions,
        info.deletions,
        info.dev_port,
        info.after,
        info.starts_after,
    )
