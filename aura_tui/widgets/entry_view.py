"""Normalised entries of a session: assistant text as Markdown, tool calls one line each (enter
expands their output), errors highlighted. Patches arrive in batches; the newest `MAX_MOUNTED`
entries are mounted (older ones are a line that points at the raw view, which holds everything).
"""

from __future__ import annotations

from typing import Any

from rich.markdown import Markdown
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.content import Content
from textual.widgets import Static

from aura_core.executors import entries as E

MAX_MOUNTED = 400
_OUTPUT_LIMIT = 4000


def tool_output(entry: E.ToolUse) -> str:
    action = entry.action
    text: Any = None
    if isinstance(action, E.CommandRun):
        text = action.output
    elif isinstance(action, E.FileEdit):
        text = action.diff
    elif isinstance(action, (E.Generic, E.Subtask)):
        text = action.result
    elif isinstance(action, E.Plan):
        text = action.text
    elif isinstance(action, E.Todo):
        text = "\n".join(f"[{i.status}] {i.text}" for i in action.items)
    if text is None:
        return ""
    text = str(text)
    return text if len(text) <= _OUTPUT_LIMIT else text[:_OUTPUT_LIMIT] + "\n…"


class EntryItem(Static):
    """One entry; tool calls are focusable and expand with enter or a click."""

    BINDINGS = [Binding("enter,space", "expand", "Expand", id="entry.toggle")]

    def __init__(self, index: int, entry: Any) -> None:
        super().__init__(classes="entry")
        self.index = index
        self.entry = entry
        self.expanded = False
        self.can_focus = isinstance(entry, E.ToolUse)
        self.show_entry(entry)

    def show_entry(self, entry: Any) -> None:
        self.entry = entry
        kind = entry.kind
        for cls in ("-assistant", "-tool", "-error", "-user", "-muted", "-failed", "-pending"):
            self.remove_class(cls)
        if kind == E.ASSISTANT_MESSAGE:
            self.add_class("-assistant")
            self.update(Markdown(entry.text or ""))
            return
        if kind == E.TOOL_USE:
            self.add_class("-tool")
            if entry.status in (E.FAILED, E.DENIED, E.TIMED_OUT):
                self.add_class("-failed")
            elif entry.status == E.PENDING_APPROVAL:
                self.add_class("-pending")
            line = Content(E.render_text(entry))
            output = tool_output(entry)
            if output:
                marker = "▾ " if self.expanded else "▸ "
                line = Content(marker) + line
                if self.expanded:
                    line = (
                        line + Content("\n") + Content.from_markup("[$text-muted]$o[/]", o=output)
                    )
            else:
                line = Content("  ") + line
            self.update(line)
            return
        if kind == E.ERROR_MESSAGE:
            self.add_class("-error")
        elif kind == E.USER_MESSAGE:
            self.add_class("-user")
        elif kind in (E.THINKING, E.SYSTEM_MESSAGE, E.TOKEN_USAGE):
            self.add_class("-muted")
        self.update(Content(E.render_text(entry)))

    def action_expand(self) -> None:
        if isinstance(self.entry, E.ToolUse) and tool_output(self.entry):
            self.expanded = not self.expanded
            self.show_entry(self.entry)

    def on_click(self) -> None:
        self.action_expand()


class EntryView(VerticalScroll):
    """The entries of one session, following the tail until the person scrolls up."""

    BINDINGS = [Binding("end,G", "follow", "Follow", id="entries.follow", show=False)]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.entries: list[Any] = []
        self.items: dict[int, EntryItem] = {}
        self.follow = True
        self._notice = Static("", classes="entry-notice")

    def on_mount(self) -> None:
        self.mount(self._notice)
        self._notice.display = False

    def set_entries(self, entries: list[Any]) -> None:
        self.entries = list(entries)
        for item in self.items.values():
            item.remove()
        self.items = {}
        start = max(0, len(self.entries) - MAX_MOUNTED)
        new = [EntryItem(i, self.entries[i]) for i in range(start, len(self.entries))]
        self.items = {item.index: item for item in new}
        if new:
            self.mount_all(new)
        self._update_notice(start)
        self.follow = True
        self.call_after_refresh(self.scroll_end, animate=False)

    def apply(self, patches: list[Any]) -> None:
        """A batch of EntryPatch(op, index, entry): append or replace in place."""
        following = self.follow or self.scroll_y >= self.max_scroll_y
        new: list[EntryItem] = []
        touched: dict[int, Any] = {}
        for patch in patches:
            index, entry = patch.index, patch.entry
            while len(self.entries) < index:
                self.entries.append(E.SystemMessage("…"))
            if index == len(self.entries):
                self.entries.append(entry)
            else:
                self.entries[index] = entry
            touched[index] = entry
        for index, entry in touched.items():
            item = self.items.get(index)
            if item is not None:
                item.show_entry(entry)
            elif index >= len(self.entries) - MAX_MOUNTED:
                item = EntryItem(index, entry)
                self.items[index] = item
                new.append(item)
        if new:
            self.mount_all(new)
        excess = sorted(self.items)[:-MAX_MOUNTED] if len(self.items) > MAX_MOUNTED else []
        for index in excess:
            self.items.pop(index).remove()
        self._update_notice(min(self.items) if self.items else 0)
        if following:
            self.call_after_refresh(self.scroll_end, animate=False)

    def _update_notice(self, hidden: int) -> None:
        self._notice.display = hidden > 0
        if hidden:
            self._notice.update(f"{hidden:,} earlier entries not shown (r: raw log has them all)")

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        if self.display and self.size.height:
            self.follow = round(new) >= self.max_scroll_y

    def action_follow(self) -> None:
        self.follow = True
        self.scroll_end(animate=False)
