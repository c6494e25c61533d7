"""`?`: every key of every context, with the user's remappings applied."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Label, Static

if TYPE_CHECKING:
    from aura_tui.app import AuraApp


def contexts() -> list[tuple[str, list[Binding]]]:
    from aura_tui.app import AuraApp
    from aura_tui.screens.board import BoardScreen
    from aura_tui.screens.dialogs import FollowUpScreen, PermissionScreen
    from aura_tui.screens.new_task import NewTaskScreen
    from aura_tui.screens.review import ReviewScreen
    from aura_tui.screens.task_detail import TaskDetailScreen

    def bindings(cls: Any) -> list[Binding]:
        return [b for b in cls.BINDINGS if isinstance(b, Binding)]

    return [
        ("Everywhere", bindings(AuraApp)),
        ("Board", bindings(BoardScreen)),
        ("Task detail", bindings(TaskDetailScreen)),
        ("Diff review", bindings(ReviewScreen)),
        ("New task", bindings(NewTaskScreen)),
        ("Follow-up editor", bindings(FollowUpScreen)),
        ("Permission request", bindings(PermissionScreen)),
    ]


def key_text(app: Any, binding: Binding, keymap: dict[str, str]) -> str:
    keys = keymap.get(binding.id or "", binding.key) if binding.id else binding.key
    shown = []
    for key in keys.split(","):
        key = key.strip()
        shown.append(app.get_key_display(Binding(key, binding.action)))
    return " / ".join(shown)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape,question_mark,q", "close", "Close", id="help.close"),
    ]

    def compose(self) -> ComposeResult:
        app: AuraApp = self.app  # type: ignore[assignment]
        keymap = dict(getattr(app, "_keymap", {}) or {})
        with Vertical(classes="dialog dialog-help"):
            yield Label("Keys", classes="dialog-title")
            with VerticalScroll(id="help-body"):
                for title, bindings in contexts():
                    yield Label(title, classes="help-context")
                    lines = []
                    for b in bindings:
                        desc = b.description or b.action.replace("_", " ")
                        keys = key_text(app, b, keymap)
                        lines.append(
                            Content.from_markup(
                                "[$accent]$keys[/]  $desc  [$text-muted]$id[/]",
                                keys=f"{keys:<18}",
                                desc=f"{desc:<22}",
                                id=b.id or "",
                            )
                        )
                    yield Static(Content("\n").join(lines), classes="help-keys")
                yield Static(
                    'Remap keys in config.toml under [keymap], e.g. "board.move_right" = "ctrl+l". '
                    "ctrl+p opens the command palette with every action.",
                    classes="dialog-hint",
                )

    def action_close(self) -> None:
        self.dismiss(None)
