"""Normalised entries of a session: assistant text as Markdown, tool calls one line each (enter
expands their output), errors highlighted. Patches arrive in batches; only the newest entries are
mounted (older ones are a line that points at the raw view, which holds everything).
"""

from __future__ import annotations

import time
from typing import Any

from rich.markdown import Markdown
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.content import Content
from textual.timer import Timer
from textual.widgets import Static

from aura_core.executors import entries as E

MAX_MOUNTED = 300  # entries mounted at most (the newest); the raw view holds every line
KEEP_ENTRIES = 5000  # entries held in memory per session view (older: the raw view)
SYNC_EVERY = 0.08  # s between two updates of the mounted tail while entries flood in
MOUNT_PER_BATCH = 40  # entries one batch mounts at least room for (more when the view is taller)
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

    def rebind(self, index: int, entry: Any) -> None:
        """Show another entry in this widget (a flood re-uses widgets instead of mounting)."""
        self.index = index
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


class EntryLog:
    """A session's entries by index, holding only the newest `keep` (a long flood must not grow
    the heap without end: the collector's full passes grow with it; the raw view has it all)."""

    def __init__(self, entries: list[Any] | None = None, keep: int = KEEP_ENTRIES) -> None:
        items = list(entries or [])
        self.keep = keep
        self.offset = max(0, len(items) - keep)
        self._items = items[self.offset :]

    def __len__(self) -> int:
        return self.offset + len(self._items)

    def __getitem__(self, index: int) -> Any:
        if index < self.offset:
            raise IndexError(f"entry {index} is no longer held (the raw log has it)")
        return self._items[index - self.offset]

    def put(self, index: int, entry: Any) -> bool:
        """Append or replace entry `index`; False if it is older than what is held."""
        at = index - self.offset
        if at < 0:
            return False
        items = self._items
        if at < len(items):
            items[at] = entry
            return True
        if at > len(items):
            items.extend([E.SystemMessage("…")] * (at - len(items)))
        items.append(entry)
        if len(items) > self.keep + self.keep // 4:  # trim now and then, not on every append
            drop = len(items) - self.keep
            del items[:drop]
            self.offset += drop
        return True

    def put_many(self, latest: dict[int, Any]) -> None:
        """A batch at once (index -> newest entry). Under a flood a batch holds more entries
        than are kept: only those that would survive the trim are stored."""
        if not latest:
            return
        cut = max(latest) + 1 - self.keep
        put = self.put
        for index, entry in latest.items():
            if index >= cut:
                put(index, entry)


class EntryView(VerticalScroll):
    """The entries of one session, following the tail until the person scrolls up.

    Every entry is kept (a list), but only a tail window is mounted (at most `MAX_MOUNTED`), and
    a batch mounts at most what fits on screen: a flood of thousands of entries per tick costs a
    list update and a screenful of widgets, never one widget per entry. While the person reads
    further up, new entries are only counted; following again (end, or scrolling to the bottom)
    mounts the tail.
    """

    BINDINGS = [Binding("end,G", "follow", "Follow", id="entries.follow", show=False)]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.entries = EntryLog()
        self.items: dict[int, EntryItem] = {}
        self.follow = True
        self._notice = Static("", classes="entry-notice")
        self._below = Static("", classes="entry-notice entry-below")
        self._sync_pending = False
        self._sync_timer: Timer | None = None
        self._last_sync = 0.0

    def on_mount(self) -> None:
        self.mount(self._notice)
        self.mount(self._below)
        self._notice.display = False
        self._below.display = False

    @property
    def _budget(self) -> int:
        """Most entries one batch mounts: a screenful (each entry is at least a line)."""
        return max(MOUNT_PER_BATCH, self.size.height)

    def set_entries(self, entries: list[Any]) -> None:
        self.entries = EntryLog(entries)
        for item in self.items.values():
            item.remove()
        self.items = {}
        self.follow = True
        self._sync_tail(budget=MAX_MOUNTED)
        self.call_after_refresh(self.scroll_end, animate=False)

    def apply(self, patches: list[Any]) -> None:
        """A batch of EntryPatch(op, index, entry): append or replace in place."""
        following = self.follow or self.scroll_y >= self.max_scroll_y
        latest = {patch.index: patch.entry for patch in patches}  # the last word per entry
        self.entries.put_many(latest)
        items = self.items
        if items:
            for index in items.keys() & latest.keys():
                items[index].show_entry(latest[index])
        if following:
            self._request_sync()
        else:
            self._update_notices()

    def _request_sync(self) -> None:
        """Mount the tail now, or (if it was done less than SYNC_EVERY ago) once that has passed:
        under a flood the view moves ~12 times a second, the widgets are not rebuilt per batch."""
        if self._sync_timer is not None:
            return
        wait = self._last_sync + SYNC_EVERY - time.monotonic()
        if wait <= 0:
            self._synced()
        else:
            self._sync_timer = self.set_timer(wait, self._synced)

    def _synced(self) -> None:
        self._sync_timer = None
        self._last_sync = time.monotonic()
        self._sync_tail(budget=self._budget)
        self.call_after_refresh(self.scroll_end, animate=False)

    def _sync_tail(self, budget: int) -> None:
        """Mount the newest entries (at most `budget` new widgets), drop the oldest mounted."""
        total = len(self.entries)
        last = max(self.items) if self.items else -1
        new_count = total - 1 - last
        if new_count > budget:  # more than a screenful arrived: show only the newest screenful,
            first = total - budget  # in the widgets already mounted where there are enough
            mounted = [self.items[i] for i in sorted(self.items)]
            keep, drop = mounted[-budget:], mounted[:-budget]
            for item in drop:
                item.remove()
            self.items = {}
            for offset, item in enumerate(keep):
                item.rebind(first + offset, self.entries[first + offset])
                self.items[item.index] = item
            last = first + len(keep) - 1
        new = [EntryItem(i, self.entries[i]) for i in range(last + 1, total)]
        for item in new:
            self.items[item.index] = item
        if new:
            self.mount_all(new, before=self._below)
        if len(self.items) > MAX_MOUNTED:
            for index in sorted(self.items)[: len(self.items) - MAX_MOUNTED]:
                self.items.pop(index).remove()
        self._update_notices()

    def _update_notices(self) -> None:
        hidden = min(self.items) if self.items else len(self.entries)
        self._notice.display = hidden > 0
        if hidden:
            self._notice.update(
                f"{hidden:,} earlier entries not shown (r: raw log has them all)", layout=False
            )
        last = max(self.items) if self.items else -1
        below = len(self.entries) - 1 - last
        self._below.display = below > 0
        if below > 0:
            self._below.update(f"▼ {below:,} new entries below · end follows", layout=False)

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        if self.display and self.size.height:
            follow = round(new) >= self.max_scroll_y
            if follow and not self.follow and not self._sync_pending:
                self._sync_pending = True
                self.call_later(self._caught_up)
            self.follow = follow

    def _caught_up(self) -> None:
        """Scrolled back to the bottom: mount what arrived meanwhile."""
        self._sync_pending = False
        last = max(self.items) if self.items else -1
        if last < len(self.entries) - 1:
            self._sync_tail(budget=self._budget)

    def action_follow(self) -> None:
        self.follow = True
        self._sync_tail(budget=self._budget)
        self.call_after_refresh(self.scroll_end, animate=False)
