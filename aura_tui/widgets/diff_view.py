"""A unified diff of one file, syntax-highlighted, with a line cursor and comment marks.

Virtualised like the log view: only visible lines are highlighted (and cached), so a 50k-line diff
scrolls as fast as a small one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from rich.segment import Segment
from rich.style import Style
from rich.syntax import Syntax
from rich.text import Text
from textual.binding import Binding
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from aura_tui.widgets.log_view import clean

_HUNK = re.compile(r"^@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@")
GUTTER = 6


@dataclass(frozen=True, slots=True)
class DiffLine:
    text: str
    kind: str  # header, hunk, add, del, ctx
    new_no: int | None
    old_no: int | None


def parse_patch(patch: str) -> list[DiffLine]:
    out: list[DiffLine] = []
    old_no = new_no = 0
    in_hunk = False
    for text in patch.splitlines():
        m = _HUNK.match(text)
        if m:
            old_no, new_no = int(m.group(1)), int(m.group(2))
            in_hunk = True
            out.append(DiffLine(text, "hunk", None, None))
        elif not in_hunk:
            out.append(DiffLine(text, "header", None, None))
        elif text.startswith("+"):
            out.append(DiffLine(text, "add", new_no, None))
            new_no += 1
        elif text.startswith("-"):
            out.append(DiffLine(text, "del", None, old_no))
            old_no += 1
        elif text.startswith("\\"):
            out.append(DiffLine(text, "header", None, None))
        else:
            out.append(DiffLine(text, "ctx", new_no, old_no))
            new_no += 1
            old_no += 1
    return out


@lru_cache(maxsize=64)
def _lexer_for(path: str) -> str:
    try:
        return Syntax.guess_lexer(path, code="")
    except Exception:
        return "text"


class DiffView(ScrollView, can_focus=True):
    BINDINGS = [
        Binding("up,k", "cursor(-1)", "Up", show=False),
        Binding("down,j", "cursor(1)", "Down", show=False),
        Binding("pageup", "cursor(-20)", "Page up", show=False),
        Binding("pagedown", "cursor(20)", "Page down", show=False),
        Binding("home,g", "cursor(-1000000000)", "Top", show=False),
        Binding("end,G", "cursor(1000000000)", "End", show=False),
    ]
    COMPONENT_CLASSES = {
        "diff-view--add",
        "diff-view--del",
        "diff-view--hunk",
        "diff-view--header",
        "diff-view--cursor",
        "diff-view--gutter",
        "diff-view--comment",
    }

    class CursorMoved(Message):
        def __init__(self, view: DiffView, line: int) -> None:
            super().__init__()
            self.view = view
            self.line = line

        @property
        def control(self) -> DiffView:
            return self.view

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.path = ""
        self.lines: list[DiffLine] = []
        self.cursor = 0
        self.commented: set[int] = set()
        self._cache: dict[int, Text] = {}
        self._lexer = "text"
        self._syntax_theme = "ansi_dark"

    def show(self, path: str, patch: str, commented: set[int] | None = None) -> None:
        self.path = path
        self.lines = parse_patch(patch)
        self.commented = set(commented or ())
        self.cursor = 0
        self._cache.clear()
        self._lexer = _lexer_for(path) if path else "text"
        self._syntax_theme = "ansi_dark" if self.app.current_theme.dark else "ansi_light"
        self.virtual_size = Size(self.scrollable_content_region.width, len(self.lines))
        self.scroll_home(animate=False, immediate=True)
        self.refresh()

    def set_commented(self, commented: set[int]) -> None:
        self.commented = set(commented)
        self.refresh()

    @property
    def current(self) -> DiffLine | None:
        return self.lines[self.cursor] if 0 <= self.cursor < len(self.lines) else None

    def on_resize(self) -> None:
        self.virtual_size = Size(self.scrollable_content_region.width, len(self.lines))

    def action_cursor(self, delta: int) -> None:
        if not self.lines:
            return
        self.cursor = max(0, min(self.cursor + delta, len(self.lines) - 1))
        self.scroll_to_region(Region(0, self.cursor, 1, 1), animate=False, immediate=True)
        self.refresh()
        self.post_message(self.CursorMoved(self, self.cursor))

    def _highlight(self, index: int) -> Text:
        cached = self._cache.get(index)
        if cached is not None:
            return cached
        line = self.lines[index]
        body = clean(line.text)
        if line.kind in ("add", "del", "ctx") and self._lexer != "text":
            syntax = Syntax("", self._lexer, theme=self._syntax_theme)
            text = Text(body[:1]) + syntax.highlight(body[1:]).split("\n")[0]
            text.rstrip()
        else:
            text = Text(body)
        if len(self._cache) > 2000:
            self._cache.clear()
        self._cache[index] = text
        return text

    def render_line(self, y: int) -> Strip:
        index = round(self.scroll_y) + y
        width = self.scrollable_content_region.width
        base = self.rich_style
        if index >= len(self.lines):
            return Strip.blank(width, base)
        line = self.lines[index]
        kind_style: Style = base
        if line.kind in ("add", "del", "hunk", "header"):
            kind_style = base + self.get_component_rich_style(f"diff-view--{line.kind}")
        no = line.new_no if line.new_no is not None else line.old_no
        gutter_text = f"{no:>{GUTTER - 2}} " if no is not None else " " * (GUTTER - 1)
        mark = "●" if index in self.commented else " "
        gutter_style = base + self.get_component_rich_style("diff-view--gutter")
        mark_style = base + self.get_component_rich_style("diff-view--comment")
        text = self._highlight(index)
        segments = [Segment(gutter_text, gutter_style), Segment(mark, mark_style)]
        body_segments = list(text.render(self.app.console))
        body = Strip(body_segments).apply_style(kind_style)
        body = body.crop(0, max(0, width - GUTTER)).extend_cell_length(
            max(0, width - GUTTER), kind_style
        )
        strip = Strip([*segments, *body])
        if index == self.cursor:
            cursor_style = self.get_component_rich_style("diff-view--cursor")
            strip = Strip(Segment.apply_style(list(strip), post_style=cursor_style))
        return strip.crop(0, width)
