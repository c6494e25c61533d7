"""A virtualised view of a session's raw lines: a million lines open instantly, a flood costs O(1).

Only line counts live in the widget. Live rows are kept as the batches they arrived in (one list
append per batch, never a loop over its lines; the newest `LIVE_KEEP` lines, older batches are
dropped because the store has them), and older lines are paged in from the store on demand (a few
hundred at a time, LRU-bounded). Growing the log never asks for a layout: the virtual size is set
in place and only the visible rows are repainted, at most once per frame. Rendering touches only
the visible rows and builds their segments directly (no Rich rendering per line).

stderr lines carry a red `▌` in a two-cell gutter and the warning colour; system lines (aura's
own notes) a `·` and a muted italic style, so they read apart from stdout even without colour.
"""

from __future__ import annotations

import re
import time
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

PAGE = 512
MAX_PAGES = 64  # ~32k stored lines cached at most
LIVE_KEEP = 100_000  # live lines kept in memory (the batches they came in); older: from the store
MERGE = 512  # a run shorter than this is merged into the previous one
RETRY_INCOMPLETE = 0.5  # s before a page the store had only part of is asked for again
GUTTER = 2
MARKS = {"stderr": "▌", "system": "·"}
_SCAN = 4096  # characters of a line looked at when rendering it (an 8 MB line costs the same)
# an OSC body never holds ESC: excluding it keeps an unterminated storm linear (no backtracking)
_ANSI = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|[\x00-\x08\x0b-\x1f\x7f]"
)

Loader = Callable[[int, int], list[tuple[int, str, str]]]  # (start, limit) -> (seq, stream, text)
Row = Sequence[Any]  # (session_id, seq, stream, ts, text, raw)


def clean(text: str) -> str:
    """No ANSI escapes or control characters on screen; tabs as spaces."""
    if "\x1b" in text or any(ord(c) < 32 for c in text[:200]):
        text = _ANSI.sub("", text.replace("\t", "    "))
    return text


class LineSource:
    """Lines by index: live batches as they arrived, older lines paged in from the store."""

    def __init__(self, loader: Loader | None = None, count: int = 0) -> None:
        self.loader = loader
        self.count = count
        self._pages: OrderedDict[int, list[tuple[str, str] | None]] = OrderedDict()
        self._incomplete: dict[int, float] = {}  # page -> when the store had only part of it
        self._chunks: list[Sequence[Row]] = []  # contiguous runs of live rows, from `_head` on
        self._starts: list[int] = []  # first seq of each chunk (ascending)
        self._head = 0  # chunks before it were dropped (compacted now and then)
        self._end = 0  # one past the last live seq held
        self._live = 0  # live lines held

    # --- reading --------------------------------------------------------------------------------
    def line(self, index: int) -> tuple[str, str] | None:
        """(stream, text) of line `index`, or None when it is not known (yet)."""
        if index < 0 or index >= self.count:
            return None
        starts, head = self._starts, self._head
        if head < len(starts) and starts[head] <= index < self._end:
            at = bisect_right(starts, index, lo=head) - 1
            chunk = self._chunks[at]
            offset = index - starts[at]
            if offset < len(chunk):
                row = chunk[offset]
                return row[2], row[4]
        return self._stored(index)

    def _stored(self, index: int) -> tuple[str, str] | None:
        number, at = divmod(index, PAGE)
        page = self._pages.get(number)
        if page is None:
            page = [None] * PAGE
            self._pages[number] = page
            while len(self._pages) > MAX_PAGES:
                old, _ = self._pages.popitem(last=False)
                self._incomplete.pop(old, None)
            self._fill(number, page)
        else:
            self._pages.move_to_end(number)
            missed = self._incomplete.get(number)
            stale = missed is not None and time.monotonic() - missed >= RETRY_INCOMPLETE
            if page[at] is None and stale:
                self._fill(number, page)
        return page[at]

    def _fill(self, number: int, page: list[tuple[str, str] | None]) -> None:
        if self.loader is None:
            return
        start = number * PAGE
        for seq, stream, text in self.loader(start, PAGE):
            if start <= seq < start + PAGE:
                page[seq - start] = (stream, text)
        end = min(PAGE, self.count - start)
        if any(page[i] is None for i in range(max(0, end))):
            self._incomplete[number] = time.monotonic()
        else:
            self._incomplete.pop(number, None)

    # --- live rows ------------------------------------------------------------------------------
    def add(self, rows: Sequence[Row]) -> int:
        """A batch of live rows (session_id, seq, stream, ts, text, raw); returns how many were new.

        O(1) for the usual batch (consecutive seqs): the batch itself is kept, not its lines.
        """
        if not rows:
            return 0
        before = self.count
        first, last = rows[0][1], rows[-1][1]
        if last - first + 1 == len(rows):
            self._add_run(rows, first)
        else:  # out of order or with gaps: split into runs (rare)
            run_start = 0
            for i in range(1, len(rows) + 1):
                if i == len(rows) or rows[i][1] != rows[i - 1][1] + 1:
                    self._add_run(rows[run_start:i], rows[run_start][1])
                    run_start = i
        return self.count - before

    def _add_run(self, rows: Sequence[Row], first: int) -> None:
        chunks, starts = self._chunks, self._starts
        held = self._head < len(chunks)
        if held and first < self._end:
            skip = self._end - first  # already held (a batch seen twice, or overlapping)
            if skip >= len(rows):
                return
            rows, first = rows[skip:], first + skip
        if held and first == self._end and len(chunks[-1]) + len(rows) <= MERGE:
            chunks[-1] = [*chunks[-1], *rows]  # trickles of a few lines: merge, keep chunks few
        else:
            chunks.append(rows)
            starts.append(first)
        self._end = first + len(rows)
        self._live += len(rows)
        if self._end > self.count:
            self.count = self._end
        # drop the oldest batches beyond what is kept (the store has them all)
        if self.loader is not None:
            while self._live - len(chunks[self._head]) >= LIVE_KEEP:
                self._live -= len(chunks[self._head])
                chunks[self._head] = ()
                self._head += 1
            if self._head > 256 and self._head * 2 > len(chunks):
                del chunks[: self._head]
                del starts[: self._head]
                self._head = 0
        # lines now held live: forget stored pages that missed them
        number = first // PAGE
        for n in list(self._incomplete):
            if n >= number:
                self._incomplete.pop(n, None)
                self._pages.pop(n, None)


class LogView(ScrollView, can_focus=True):
    """Raw lines of one session, virtualised."""

    DEFAULT_CSS = """
    LogView {
        overflow-y: scroll;
        overflow-x: hidden;
    }
    """

    BINDINGS = [
        Binding("end,G", "follow", "Follow", id="log.follow", show=False),
        Binding("home,g", "top", "Top", id="log.top", show=False),
        Binding("up,k", "scroll_up", "Up", show=False),
        Binding("down,j", "scroll_down", "Down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
    ]
    COMPONENT_CLASSES = {
        "log-view--stderr",
        "log-view--system",
        "log-view--stderr-mark",
        "log-view--system-mark",
    }

    class FollowChanged(Message):
        def __init__(self, view: LogView, follow: bool) -> None:
            super().__init__()
            self.view = view
            self.follow = follow

        @property
        def control(self) -> LogView:
            return self.view

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.source = LineSource()
        self.follow = True
        self._styles: dict[str, tuple[Style, Style]] | None = None
        self._styles_key: object = None

    def set_source(self, loader: Loader | None, count: int) -> None:
        self.source = LineSource(loader, count)
        self.follow = True
        self._grow()
        self.refresh()

    @property
    def line_count(self) -> int:
        return self.source.count

    def add_rows(self, rows: Sequence[Row]) -> None:
        """A batch of live rows: O(1) bookkeeping, then one repaint of what is visible."""
        if self.source.add(rows):
            self._grow()
            if self.display:
                self.refresh()

    def _grow(self) -> None:
        """The virtual height follows the line count without a layout (only this view repaints)."""
        size = Size(self.scrollable_content_region.width, self.source.count)
        if size != self.virtual_size:
            self.set_reactive(LogView.virtual_size, size)
            if self.container_size:
                self._scroll_update(size)
        if self.follow:
            self.scroll_to(y=self.max_scroll_y, animate=False, immediate=True)

    def on_resize(self) -> None:
        self.virtual_size = Size(self.scrollable_content_region.width, self.source.count)
        if self.follow:
            self.scroll_end(animate=False, immediate=True)

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        follow = round(new) >= self.max_scroll_y
        if follow != self.follow:
            self.follow = follow
            self.post_message(self.FollowChanged(self, follow))

    def action_follow(self) -> None:
        self.follow = True
        self.scroll_end(animate=False, immediate=True)
        self.post_message(self.FollowChanged(self, True))

    def action_top(self) -> None:
        self.scroll_home(animate=False)

    # --- rendering ------------------------------------------------------------------------------
    def _stream_styles(self) -> dict[str, tuple[Style, Style]]:
        """(text style, gutter mark style) per stream, rebuilt when the theme or CSS changes."""
        key = (self.app.theme, self.styles._cache_key, self.has_focus)
        if self._styles is None or key != self._styles_key:
            base = self.rich_style
            self._styles = {"stdout": (base, base)}
            for stream in ("stderr", "system"):
                text = base + self.get_component_rich_style(f"log-view--{stream}")
                mark = base + self.get_component_rich_style(f"log-view--{stream}-mark")
                self._styles[stream] = (text, mark)
            self._styles_key = key
        return self._styles

    def render_line(self, y: int) -> Strip:
        index = round(self.scroll_y) + y
        width = self.scrollable_content_region.width
        styles = self._stream_styles()
        base = styles["stdout"][0]
        item = self.source.line(index)
        if item is None:
            return Strip.blank(width, base)
        stream, text = item
        style, mark_style = styles.get(stream, styles["stdout"])
        room = max(0, width - GUTTER)
        text = clean(text[:_SCAN] if len(text) > _SCAN else text)
        cells = cell_len(text)
        if cells > room:
            text = set_cell_size(text, max(0, room - 1)) + "…"
            cells = room
        mark = MARKS.get(stream, " ")
        segments = [Segment(mark, mark_style), Segment(" ", base), Segment(text, style)]
        strip = Strip(segments, GUTTER + cells)
        return strip.extend_cell_length(width, base)
