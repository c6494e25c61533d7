"""The review loop: a task's diff (cumulative or per turn), line comments, files marked reviewed,
then approve or send every comment back as one follow-up."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Header, OptionList, Static
from textual.widgets.option_list import Option

from aura_core.contracts import CanonicalTaskState
from aura_tui.services import DiffData, DiffFile
from aura_tui.widgets.diff_view import DiffView
from aura_tui.widgets.footer import AuraFooter

if TYPE_CHECKING:
    from aura_tui.app import AuraApp

CS = CanonicalTaskState


@dataclass(slots=True)
class Comment:
    path: str
    index: int  # line index in the file's patch
    line_no: int | None  # line number in the new (or old) file
    code: str
    text: str


def format_comments(comments: list[Comment]) -> str:
    """All comments as one follow-up prompt, grouped by file, in file order."""
    if not comments:
        return ""
    parts = ["Please address these review comments:", ""]
    for c in sorted(comments, key=lambda c: (c.path, c.index)):
        where = f"{c.path}:{c.line_no}" if c.line_no is not None else c.path
        parts.append(f"- {where}")
        if c.code.strip():
            parts.append(f"  > {c.code.rstrip()}")
        parts.append(f"  {c.text}")
    return "\n".join(parts) + "\n"


class ReviewScreen(Screen[None]):
    BINDINGS = [
        Binding("escape", "back", "Back", id="review.back"),
        Binding("c", "comment", "Comment", id="review.comment"),
        Binding("m", "mark_reviewed", "Reviewed", id="review.mark"),
        Binding("n", "next_file(1)", "Next file", id="review.next_file", show=False),
        Binding("p", "next_file(-1)", "Prev file", id="review.prev_file", show=False),
        Binding("t", "next_turn", "Turn/all", id="review.turn"),
        Binding("f", "follow_up", "Follow-up", id="review.follow_up"),
        Binding("a", "approve", "Approve", id="review.approve"),
        Binding("tab", "switch_focus", "Files/diff", id="review.focus", show=False),
    ]

    def __init__(self, task_id: str) -> None:
        super().__init__()
        self.task_id = task_id
        self.diff = DiffData()
        self.turn: int | None = None  # None: cumulative; else 1..turns
        self.turns = 0
        self.comments: dict[tuple[str, int], Comment] = {}
        self.reviewed: set[str] = set()
        self.file_index = 0

    @property
    def aura(self) -> AuraApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="review-head")
        with Horizontal(id="review-body"):
            with Vertical(id="review-files-box"):
                yield OptionList(id="review-files")
            yield DiffView(id="diff")
        yield AuraFooter()

    def on_mount(self) -> None:
        task = self.aura.service.task(self.task_id)
        self.task_title = task.title
        self.sub_title = f"review · {task.title}"
        self.turns = self.aura.service.turns(self.task_id)
        self.query_one(DiffView).focus()
        self.load_diff()

    @work(thread=True, exclusive=True, group="diff")
    def load_diff(self) -> None:
        try:
            data = self.aura.service.diff(self.task_id, turn=self.turn)
        except Exception as exc:
            self.app.call_from_thread(self.notify, f"No diff: {exc}", severity="error")
            data = DiffData()
        self.app.call_from_thread(self._diff_loaded, data)

    def _diff_loaded(self, data: DiffData) -> None:
        self.diff = data
        self.file_index = min(self.file_index, max(0, len(data.files) - 1))
        self._render_files()
        self._show_file()

    # --- rendering ------------------------------------------------------------------------------
    def _render_head(self) -> None:
        which = "all turns" if self.turn is None else f"turn {self.turn} of {self.turns}"
        n = len(self.comments)
        done = sum(1 for f in self.diff.files if f.path in self.reviewed)
        self.query_one("#review-head", Static).update(
            f"{which} · {len(self.diff.files)} files +{self.diff.additions} -{self.diff.deletions}"
            f" · reviewed {done}/{len(self.diff.files)} · {n} comment{'s' if n != 1 else ''}"
        )

    def _file_label(self, f: DiffFile) -> str:
        mark = "✓" if f.path in self.reviewed else " "
        count = sum(1 for (p, _) in self.comments if p == f.path)
        notes = f" ●{count}" if count else ""
        return f"{mark} {f.path}  +{f.additions} -{f.deletions}{notes}"

    def _render_files(self) -> None:
        files = self.query_one("#review-files", OptionList)
        files.clear_options()
        files.add_options([Option(self._file_label(f), id=f.path) for f in self.diff.files])
        if self.diff.files:
            files.highlighted = self.file_index
        self._render_head()

    @property
    def current_file(self) -> DiffFile | None:
        files = self.diff.files
        return files[self.file_index] if 0 <= self.file_index < len(files) else None

    def _show_file(self) -> None:
        f = self.current_file
        view = self.query_one(DiffView)
        if f is None:
            view.show("", "no changes\n" if self.turn is None else "no changes in this turn\n")
            return
        view.show(f.path, f.patch, self._commented(f.path))

    def _commented(self, path: str) -> set[int]:
        return {i for (p, i) in self.comments if p == path}

    @on(OptionList.OptionHighlighted, "#review-files")
    def _file_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option_index != self.file_index:
            self.file_index = event.option_index
            self._show_file()

    @on(OptionList.OptionSelected, "#review-files")
    def _file_selected(self, event: OptionList.OptionSelected) -> None:
        self.file_index = event.option_index
        self._show_file()
        self.query_one(DiffView).focus()

    # --- actions --------------------------------------------------------------------------------
    def action_back(self) -> None:
        self.dismiss()

    def action_switch_focus(self) -> None:
        files = self.query_one("#review-files", OptionList)
        if files.has_focus:
            self.query_one(DiffView).focus()
        else:
            files.focus()

    def action_next_file(self, delta: int) -> None:
        if not self.diff.files:
            return
        self.file_index = (self.file_index + delta) % len(self.diff.files)
        self.query_one("#review-files", OptionList).highlighted = self.file_index
        self._show_file()

    def action_next_turn(self) -> None:
        if self.turns <= 1 and self.turn is None:
            self.notify("This task has one turn: the cumulative diff is that turn.")
            return
        if self.turn is None:
            self.turn = 1
        elif self.turn < self.turns:
            self.turn += 1
        else:
            self.turn = None
        self.file_index = 0
        self.load_diff()

    def action_mark_reviewed(self) -> None:
        f = self.current_file
        if f is None:
            return
        if f.path in self.reviewed:
            self.reviewed.discard(f.path)
        else:
            self.reviewed.add(f.path)
            if len(self.reviewed) < len(self.diff.files):
                self.action_next_file(1)
        self._render_files()

    def action_comment(self) -> None:
        f = self.current_file
        view = self.query_one(DiffView)
        line = view.current
        if f is None or line is None:
            return
        index = view.cursor
        key = (f.path, index)
        existing = self.comments.get(key)
        no = line.new_no if line.new_no is not None else line.old_no
        where = f"{f.path}:{no}" if no is not None else f.path
        from aura_tui.screens.dialogs import CommentScreen

        def done(text: str | None) -> None:
            if text is None:
                return
            if text:
                self.comments[key] = Comment(f.path, index, no, line.text, text)
            else:
                self.comments.pop(key, None)
            view.set_commented(self._commented(f.path))
            self._render_files()

        self.app.push_screen(CommentScreen(where, existing.text if existing else ""), done)

    def action_follow_up(self) -> None:
        from aura_tui.screens.board import BoardScreen

        board = self.aura.get_screen_of(BoardScreen)
        if board is None:
            return
        prefill = format_comments(list(self.comments.values()))
        board.ask_follow_up(self.task_id, prefill=prefill)

    def action_approve(self) -> None:
        from aura_tui.screens.dialogs import approve_task

        approve_task(self.aura, self.aura.service.task(self.task_id))

    def tasks_changed(self, task_ids: set[str]) -> None:
        if self.task_id not in task_ids:
            return
        try:
            state = self.aura.service.task(self.task_id).state
        except Exception:
            return
        if state is not CS.review and self.is_current:
            self.dismiss()
