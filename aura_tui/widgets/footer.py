"""The key bar at the bottom: one widget drawing the current keys, cheap to update.

Textual's `Footer` mounts one widget per key and rebuilds them all on every bindings signal (each
focus change, each `refresh_bindings`): ~30-40 ms of style work per rebuild on a busy screen, which
showed up as key latency. This bar renders the same information as one line of `Content`, redraws
only when what it shows changes, and maps a click back to the key under the pointer.
"""

from __future__ import annotations

from typing import Any

from textual import events
from textual.binding import Binding
from textual.content import Content
from textual.screen import Screen
from textual.widget import Widget

Item = tuple[str, str, str, bool, str]  # key, key display, description, enabled, action


class AuraFooter(Widget):
    """Shown keys of the focused context (`Binding.show`), plus the command palette on the right."""

    ALLOW_SELECT = False
    DEFAULT_CSS = """
    AuraFooter {
        dock: bottom;
        height: 1;
        width: 1fr;
        background: $footer-background;
        color: $footer-foreground;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._items: tuple[Item, ...] = ()
        self._palette: Item | None = None
        self._spans: list[tuple[int, int, Item]] = []
        self._hover: int | None = None

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)
        self._collect()

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def _bindings_changed(self, screen: Screen[Any]) -> None:
        if screen is self.screen:
            self._collect()

    def _collect(self) -> None:
        app = self.app
        items: list[Item] = []
        palette: Item | None = None
        seen: set[str] = set()
        for _node, binding, enabled, _tooltip in self.screen.active_bindings.values():
            if binding.action == "command_palette" and app.ENABLE_COMMAND_PALETTE:
                palette = self._item(binding, enabled)
                continue
            if not binding.show or binding.action in seen:
                continue
            seen.add(binding.action)
            items.append(self._item(binding, enabled))
        shown = (tuple(items), palette)
        if shown != (self._items, self._palette):
            self._items, self._palette = shown
            self.refresh()

    def _item(self, binding: Binding, enabled: bool) -> Item:
        display = self.app.get_key_display(binding)
        return (binding.key, display, binding.description, enabled, binding.action)

    # --- drawing --------------------------------------------------------------------------------
    def render(self) -> Content:
        parts: list[Content] = []
        spans: list[tuple[int, int, Item]] = []
        x = 0
        for index, item in enumerate(self._items):
            piece = self._piece(item, hover=index == self._hover)
            spans.append((x, x + piece.cell_length, item))
            parts.append(piece)
            x += piece.cell_length
        line = Content("").join(parts)
        width = self.size.width
        if self._palette is not None:
            palette = Content.from_markup("[$foreground 20%]▏[/]") + self._piece(self._palette)
            gap = width - line.cell_length - palette.cell_length
            if gap >= 1:
                start = width - palette.cell_length
                spans.append((start + 1, width, self._palette))
                line = line + Content(" " * gap) + palette
        self._spans = spans
        return line.truncate(width, ellipsis=True) if line.cell_length > width else line

    def _piece(self, item: Item, hover: bool = False) -> Content:
        _key, display, description, enabled, _action = item
        piece = Content.from_markup(
            "[bold $footer-key-foreground] $key [/]$description ",
            key=display,
            description=description,
        )
        if not enabled:
            piece = piece.stylize("dim")
        if hover:
            piece = piece.stylize("on $block-hover-background")
        return piece

    # --- pointer --------------------------------------------------------------------------------
    def _at(self, x: int) -> int | None:
        for index, (start, end, _item) in enumerate(self._spans):
            if start <= x < end:
                return index
        return None

    def on_mouse_move(self, event: events.MouseMove) -> None:
        index = self._at(event.x)
        hover = index if index is not None and index < len(self._items) else None
        if hover != self._hover:
            self._hover = hover
            self.refresh()

    def on_leave(self) -> None:
        if self._hover is not None:
            self._hover = None
            self.refresh()

    def on_click(self, event: events.Click) -> None:
        index = self._at(event.x)
        if index is None:
            return
        key, _display, _description, enabled, _action = self._spans[index][2]
        event.stop()
        if not enabled:
            self.app.bell()
            return
        self.app.simulate_key(key.split(",")[0])
