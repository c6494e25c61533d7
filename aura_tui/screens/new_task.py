"""The new-task form: title, prompt, agent (with its availability), model, repo, branch, options."""

from __future__ import annotations

import shlex
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, Select, Static, TextArea

from aura_tui.services import AuraService, ExecutorChoice, NewTask


def parse_options(text: str) -> dict[str, Any]:
    """`key=value` pairs split like a shell would; `base_command="pytest -x"` keeps its spaces."""
    out: dict[str, Any] = {}
    for token in shlex.split(text):
        key, sep, value = token.partition("=")
        if not sep or not key:
            raise ValueError(f"option {token!r} needs KEY=VALUE")
        low = value.lower()
        out[key] = True if low == "true" else False if low == "false" else value
    return out


def parse_after(text: str) -> list[str]:
    """`Fix login, 3f2a9c1b` -> the task ids or titles a new task runs after."""
    return [part.strip() for part in text.split(",") if part.strip()]


class NewTaskScreen(ModalScreen[NewTask | None]):
    BINDINGS = [
        Binding("ctrl+s", "create", "Create", id="new.create"),
        Binding("escape", "cancel", "Cancel", id="new.cancel"),
    ]

    def __init__(self, service: AuraService, *, prefill: NewTask | None = None) -> None:
        super().__init__(classes="dialog-screen")
        self.service = service
        self.prefill = prefill or {}

    def compose(self) -> ComposeResult:
        p = self.prefill
        with Vertical(classes="dialog dialog-form"):
            yield Label("New task", classes="dialog-title")
            with VerticalScroll(classes="form"):
                yield Label("Title", classes="field-label")
                yield Input(
                    p.get("title", ""), placeholder="what to do, in a few words", id="title"
                )
                yield Label("Prompt", classes="field-label")
                yield TextArea(p.get("prompt", ""), id="prompt", soft_wrap=True)
                with Horizontal(classes="field-row"):
                    with Vertical(classes="field"):
                        yield Label("Agent", classes="field-label")
                        yield Select[str]([], prompt="checking agents…", id="executor")
                    with Vertical(classes="field"):
                        yield Label("Model", classes="field-label")
                        yield Input(p.get("model", ""), placeholder="agent default", id="model")
                with Horizontal(classes="field-row"):
                    with Vertical(classes="field"):
                        yield Label("Repo / folder", classes="field-label")
                        yield Input(p.get("repo", self.service.repo or ""), id="repo")
                    with Vertical(classes="field"):
                        yield Label("Base branch", classes="field-label")
                        yield Input(p.get("base_branch", ""), placeholder="default", id="base")
                yield Label("After (starts once these are done)", classes="field-label")
                yield Input(
                    p.get("after_text", ""),
                    placeholder="task ids or titles, comma-separated",
                    id="after",
                )
                yield Label("Options (KEY=VALUE …)", classes="field-label")
                yield Input(
                    p.get("options_text", ""),
                    placeholder='e.g. base_command="make test" yolo=true',
                    id="options",
                )
                with Horizontal(classes="field-row checks"):
                    yield Checkbox("Review pass after coding", p.get("review", False), id="review")
                    yield Checkbox("Start now", p.get("start", False), id="start")
            yield Static("", id="agent-note", classes="dialog-hint")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Create (ctrl+s)", id="create", variant="primary")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#title", Input).focus()
        self.load_executors()

    @work(thread=True, exclusive=True, group="doctor")
    def load_executors(self) -> None:
        choices = self.service.executors()
        self.app.call_from_thread(self._set_executors, choices)

    def _set_executors(self, choices: list[ExecutorChoice]) -> None:
        self.choices = {c.name: c for c in choices}
        select = self.query_one("#executor", Select)
        options = [
            (f"{c.name}  {'ready' if c.ready else 'not ready'}", c.name)
            for c in sorted(choices, key=lambda c: (not c.ready, c.name))
        ]
        select.set_options(options)
        wanted = self.prefill.get("executor")
        first_ready = next((c.name for c in choices if c.ready), None)
        value = wanted if wanted in self.choices else first_ready
        if value is not None:
            select.value = value
        select.prompt = "choose an agent"

    @on(Select.Changed, "#executor")
    def _executor_changed(self, event: Select.Changed) -> None:
        choice = getattr(self, "choices", {}).get(event.value)
        note = ""
        if choice is not None:
            note = choice.note if choice.ready else f"{choice.name} is not ready: {choice.note}"
        self.query_one("#agent-note", Static).update(note)

    @on(Button.Pressed, "#create")
    def action_create(self) -> None:
        title = self.query_one("#title", Input).value.strip()
        prompt = self.query_one("#prompt", TextArea).text.strip()
        executor = self.query_one("#executor", Select).value
        if not title:
            self.notify("Give the task a title.", severity="warning")
            self.query_one("#title", Input).focus()
            return
        if not isinstance(executor, str):
            self.notify("Choose an agent.", severity="warning")
            return
        options_text = self.query_one("#options", Input).value
        try:
            options = parse_options(options_text)
        except ValueError as exc:
            self.notify(str(exc), severity="warning")
            return
        repo = self.query_one("#repo", Input).value.strip()
        after_text = self.query_one("#after", Input).value
        self.dismiss(
            {
                "title": title,
                "prompt": prompt or title,
                "executor": executor,
                "model": self.query_one("#model", Input).value.strip() or None,
                "repos": [repo] if repo else [],
                "base_branch": self.query_one("#base", Input).value.strip() or None,
                "options": options,
                "review": self.query_one("#review", Checkbox).value,
                "start": self.query_one("#start", Checkbox).value,
                # the form as typed, to reopen it if the task cannot be created
                "repo": repo,
                "options_text": options_text,
                "after": parse_after(after_text),
                "after_text": after_text,
            }
        )

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
