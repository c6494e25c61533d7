"""Small modal dialogs: choice, follow-up editor, approve, line comment, permission request."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, Static, TextArea

from aura_core.contracts import CanonicalTaskState, Task
from aura_tui.services import PermissionRequest

if TYPE_CHECKING:
    from aura_tui.app import AuraApp


class ChoiceScreen(ModalScreen[str | None]):
    """A question with a few buttons; dismisses with the chosen id (None on escape)."""

    BINDINGS = [Binding("escape", "dismiss_none", "Cancel", id="dialog.cancel")]

    def __init__(self, title: str, question: str, choices: list[tuple[str, str]]) -> None:
        super().__init__(classes="dialog-screen")
        self.title_text = title
        self.question = question
        self.choices = choices

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.title_text, classes="dialog-title")
            yield Static(self.question, classes="dialog-body")
            with Horizontal(classes="dialog-buttons"):
                for i, (choice_id, label) in enumerate(self.choices):
                    yield Button(
                        label,
                        id=f"choice-{choice_id}",
                        variant="primary" if i == 0 else "default",
                    )

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        button_id = event.button.id or ""
        self.dismiss(button_id.removeprefix("choice-"))

    def action_dismiss_none(self) -> None:
        self.dismiss(None)


class FollowUpScreen(ModalScreen[str | None]):
    """The prompt editor for a follow-up, prefilled with the review comments."""

    BINDINGS = [
        Binding("ctrl+s", "send", "Send", id="followup.send"),
        Binding("escape", "cancel", "Cancel", id="followup.cancel"),
    ]

    def __init__(self, task_title: str, prefill: str = "") -> None:
        super().__init__(classes="dialog-screen")
        self.task_title = task_title
        self.prefill = prefill

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog dialog-wide"):
            yield Label(f"Follow-up for '{self.task_title}'", classes="dialog-title")
            yield TextArea(self.prefill, id="feedback", soft_wrap=True, show_line_numbers=False)
            yield Static("ctrl+s send · esc cancel", classes="dialog-hint")

    def on_mount(self) -> None:
        area = self.query_one("#feedback", TextArea)
        area.focus()
        area.move_cursor(area.document.end)

    def action_send(self) -> None:
        text = self.query_one("#feedback", TextArea).text.strip()
        if not text:
            self.notify("Write what the agent should change first.", severity="warning")
            return
        self.dismiss(text)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ApproveScreen(ModalScreen[bool | None]):
    """Approve a task (→ Done); optionally merge its branch. Dismisses with `merge` or None."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="approve.cancel"),
        Binding("enter", "approve", "Approve", id="approve.confirm", show=False),
    ]

    def __init__(self, task_title: str) -> None:
        super().__init__(classes="dialog-screen")
        self.task_title = task_title

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Approve", classes="dialog-title")
            yield Static(f"Move '{self.task_title}' to Done?", classes="dialog-body")
            yield Checkbox("Merge the task's branch into its base branch", id="merge")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Approve", id="approve", variant="success")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#approve", Button).focus()

    @on(Button.Pressed, "#approve")
    def action_approve(self) -> None:
        self.dismiss(self.query_one("#merge", Checkbox).value)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


def approve_task(app: AuraApp, task: Task) -> None:
    """Ask, check the move with the board model, then approve in a thread (merge may be slow)."""
    service = app.service
    done_col = service.board.column_for_state(CanonicalTaskState.done).id
    decision = service.check_move(task.id, done_col)
    if not decision.ok:
        app.notify(decision.reason, title="Move refused", severity="warning", timeout=6)
        return

    def answered(merge: bool | None) -> None:
        if merge is None:
            return

        def work() -> None:
            try:
                service.approve(task.id, merge=merge)
            except Exception as exc:
                app.call_from_thread(app.notify, str(exc), title="Approve failed", severity="error")
                return
            app.call_from_thread(app.notify, f"'{task.title}' approved", timeout=3)
            app.call_from_thread(app.dispatch_events, [_changed(task.id)])

        app.run_worker(work, thread=True, group="approve")

    app.push_screen(ApproveScreen(task.title), answered)


def _changed(task_id: str) -> Any:
    from aura_tui.services import UiEvent

    return UiEvent("task_changed", task_id=task_id)


class CommentScreen(ModalScreen[str | None]):
    """One comment on a diff line."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="comment.cancel")]

    def __init__(self, where: str, text: str = "") -> None:
        super().__init__(classes="dialog-screen")
        self.where = where
        self.text = text

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog dialog-wide"):
            yield Label(f"Comment on {self.where}", classes="dialog-title")
            yield Input(self.text, placeholder="what should change here?", id="comment")
            yield Static(
                "enter save · esc cancel (an empty comment removes it)", classes="dialog-hint"
            )

    @on(Input.Submitted, "#comment")
    def _save(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip())

    def action_cancel(self) -> None:
        self.dismiss(None)


PermissionAnswer = tuple[str, bool, str, bool]  # request id, approve, reason, always


class PermissionScreen(ModalScreen[PermissionAnswer | None]):
    """An agent in supervised mode asks before acting: approve (once, or always for the rest
    of its session), or deny with a reason that goes back to the agent."""

    BINDINGS = [
        Binding("y", "approve", "Approve", id="permission.approve"),
        Binding("a", "always", "Always", id="permission.always"),
        Binding("n", "deny", "Deny", id="permission.deny"),
    ]

    def __init__(self, request: PermissionRequest, *, who: str = "", task_title: str = "") -> None:
        super().__init__(classes="dialog-screen")
        self.request = request
        self.who = who
        self.task_title = task_title
        self._lock = threading.Lock()

    def compose(self) -> ComposeResult:
        who = self.who or "The agent"
        where = f" on '{self.task_title}'" if self.task_title else ""
        with Vertical(classes="dialog dialog-wide"):
            yield Label(f"{who}{where} asks to use {self.request.tool}", classes="dialog-title")
            yield Static(self.request.detail or "(no details)", classes="dialog-body", markup=False)
            yield Input(placeholder="reason, if you deny (Enter denies)", id="reason")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Approve (y)", id="approve", variant="success")
                yield Button("Always (a)", id="always")
                yield Button("Deny (n)", id="deny", variant="error")

    def on_mount(self) -> None:
        self.query_one("#approve", Button).focus()

    @on(Button.Pressed, "#approve")
    def action_approve(self) -> None:
        self.dismiss((self.request.request_id, True, "", False))

    @on(Button.Pressed, "#always")
    def action_always(self) -> None:
        self.dismiss((self.request.request_id, True, "", True))

    @on(Button.Pressed, "#deny")
    def action_deny(self) -> None:
        reason = self.query_one("#reason", Input).value.strip()
        self.dismiss((self.request.request_id, False, reason, False))

    @on(Input.Submitted, "#reason")
    def _reason_entered(self) -> None:
        self.action_deny()
