"""A session's log: normalised entries, or the raw lines (toggle), both following the tail."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from aura_tui.widgets.entry_view import EntryView
from aura_tui.widgets.log_view import Loader, LogView


class LogPane(Vertical):
    """Shows one session at a time; the screen feeds it (it never reads the store itself)."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, classes="log-pane")
        self.session_id: str | None = None
        self.structured = False
        self.raw = False
        self._status = Static("", classes="log-pane-status", id="log-status")
        self._status_text = ""

    def compose(self) -> ComposeResult:
        yield self._status
        yield EntryView(id="entries")
        yield LogView(id="raw-log")

    def on_mount(self) -> None:
        self._apply_mode()

    @property
    def entry_view(self) -> EntryView:
        return self.query_one(EntryView)

    @property
    def log_view(self) -> LogView:
        return self.query_one(LogView)

    def show_session(
        self, session_id: str | None, loader: Loader | None, count: int, *, structured: bool
    ) -> None:
        self.session_id = session_id
        self.structured = structured
        self.log_view.set_source(loader, count)
        self.entry_view.set_entries([])
        self._apply_mode()

    def set_entries(self, entries: list[Any]) -> None:
        self.entry_view.set_entries(entries)

    def add_rows(self, rows: list[Any]) -> None:
        self.log_view.add_rows(rows)
        self._update_status()

    def apply_patches(self, patches: list[Any]) -> None:
        self.entry_view.apply(patches)

    def toggle_raw(self) -> None:
        self.raw = not self.raw
        self._apply_mode()

    def follow(self) -> None:
        if self.showing_raw:
            self.log_view.action_follow()
        else:
            self.entry_view.action_follow()

    @property
    def showing_raw(self) -> bool:
        return self.raw or not self.structured

    def _apply_mode(self) -> None:
        raw = self.showing_raw
        self.log_view.display = raw
        self.entry_view.display = not raw
        shown = self.log_view if raw else self.entry_view
        if shown.follow:
            self.call_after_refresh(shown.scroll_end, animate=False)
        self._update_status()

    def _update_status(self) -> None:
        mode = "raw lines" if self.showing_raw else "entries"
        lines = self.log_view.line_count
        text = f"{mode} · {lines:,} lines" + ("" if self.structured else " · plain output")
        if self.showing_raw:
            text += " · ▌ stderr  · aura"
        if text != self._status_text:
            self._status_text = text
            self._status.update(text, layout=False)  # one fixed-height line: no layout needed
