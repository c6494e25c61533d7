"""A virtualised view of a session's raw lines: a million lines open instantly.

Only line counts live in the widget; lines are paged in from the store on demand (a few hundred at
a time, LRU-bounded) and live lines are added to their page as they arrive. Rendering touches only
the visible rows. Follow-tail keeps the end in view until the person scrolls up, and comes back
when they scroll to the end (or press end).
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

PAGE = 512
MAX_PAGES = 64  # ~32k lines cached at most
# an OSC body never holds ESC: excluding it keeps an unterminated storm linear (no backtracking)
_ANSI = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|[\x00-\x08\x0b-\x1f\x7f]"
)

Loader = Callable[[int, int], list[tuple[int, str, str]]]  # (start, limit) -> (seq, stream, text)


def clean(text: str) -> str:
    """No ANSI escapes or control characters on screen; tabs as spaces."""
    if "\x1b" in text or any(ord(c) < 32 for c in text[:200]):
        text = _ANSI.sub("", text.replace("\t", "    "))
    return text


class LineSource:
    """Lines by index: pages from the store, plus live lines added as they arrive."""

    def __init__(self, loader: Loader | None = None, count: int = 0) -> None:
        self.loader = loader
        self.count = count
        self._pages: OrderedDict[int, list[tuple[str, str] | None]] = OrderedDict()
        self._complete: set[int] = set()

    def _page(self, number: int) -> list[tuple[str, str] | None]:
        page = self._pages.get(number)
        if page is None:
            page = [None] * PAGE
            self._pages[number] = page
            while len(self._pages) > MAX_PAGES:
                old, _ = self._pages.popitem(last=False)
                self._complete.discard(old)
        else:
            self._pages.move_to_end(number)
        return page

    def line(self, index: int) -> tuple[str, str] | None:
        if index < 0 or index >= self.count:
            return None
        number, at = divmod(index, PAGE)
        page = self._page(number)
        item = page[at]
        if item is None and number not in self._complete and self.loader is not None:
            start = number * PAGE
            for seq, stream, text in self.loader(start, PAGE):
                if start <= seq < start + PAGE:
                    page[seq - start] = (stream, text)
            end = min(PAGE, self.count - start)
            if all(page[i] is not None for i in range(end)) and end == PAGE:
                self._complete.add(number)
            item = page[at]
        return item

    def add(self, rows: Iterable[Any]) -> int:
        """Live rows (session_id, seq, stream, ts, text, raw); returns how many were new."""
        before = self.count
        for row in rows:
            seq, stream, text = row[1], row[2], row[4]
            number, at = divmod(seq, PAGE)
            page = self._pages.get(number)
            if page is None:
                if seq < before - PAGE * 2:
                    continue  # an old page not in view: the store has it
                page = self._page(number)
            page[at] = (stream, text)
            if seq >= self.count:
                self.count = seq + 1
        return self.count - before


class LogView(ScrollView, can_focus=True):
    """Raw lines of one session, virtualised."""

    BINDINGS = [
        Binding("end,G", "follow", "Follow", id="log.follow", show=False),
        Binding("home,g", "top", "Top", id="log.top", show=False),
        Binding("up,k", "scroll_up", "Up", show=False),
        Binding("down,j", "scroll_down", "Down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
    ]
    COMPONENT_CLASSES = {"log-view--stderr", "log-view--system"}

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

    def set_source(self, loader: Loader | None, count: int) -> None:
        self.source = LineSource(loader, count)
        self.follow = True
        self._resize()
        self.scroll_end(animate=False, immediate=True)
        self.refresh()

    @property
    def line_count(self) -> int:
        return self.source.count

    def add_rows(self, rows: list[Any]) -> None:
        following = self.follow
        if self.source.add(rows) or rows:
            self._resize()
            if following:
                self.scroll_end(animate=False, immediate=True)
            self.refresh()

    def _resize(self) -> None:
        self.virtual_size = Size(self.scrollable_content_region.width, self.source.count)

    def on_resize(self) -> None:
        self._resize()
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

    def render_line(self, y: int) -> Strip:
        index = round(self.scroll_y) + y
        width = self.scrollable_content_region.width
        item = self.source.line(index)
        if item is None:
            return Strip.blank(width, self.rich_style)
        stream, text = item
        text = clean(text)
        base = self.rich_style
        style: Style = base
        if stream == "stderr":
            style = base + self.get_component_rich_style("log-view--stderr")
        elif stream == "system":
            style = base + self.get_component_rich_style("log-view--system")
        if len(text) > width:
            text = text[: max(0, width - 1)] + "…"
        strip = Strip([Segment(text, style)], len(text))
        return strip.extend_cell_length(width, base)
