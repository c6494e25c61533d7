"""Prompt templates per stage, their `{{ name }}` rendering, and per-project overrides.

Upstream shipped no prompt texts, so the defaults here are ours: they tell each agent where it is
(repo, worktree, branch), what to do, what not to touch, and what to answer, so the runtime and the
person get comparable reports from any agent CLI.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final, Literal

__all__ = [
    "BUILTIN_VARIABLES",
    "PROMPT_STAGES",
    "InvalidPromptTemplate",
    "LineComment",
    "MissingPromptVariable",
    "PromptError",
    "UnknownPromptStage",
    "default_templates",
    "format_feedback",
    "merge_templates",
    "parse_verdict",
    "placeholders",
    "render",
]

PROMPT_STAGES: Final[tuple[str, ...]] = (
    "setup",
    "coding_initial",
    "coding_follow_up",
    "review",
    "cleanup",
)
"""The stages that talk to an agent (prepare_workspace is git work AURA does itself)."""

BUILTIN_VARIABLES: Final[tuple[str, ...]] = (
    "task_title",
    "task_prompt",
    "repo",
    "branch",
    "base_branch",
    "diff_summary",
    "feedback",
)
"""Variables the runtime fills in; users add their own with --var name=value."""

_NAME = r"[A-Za-z_][A-Za-z0-9_-]*"
_PLACEHOLDER = re.compile(r"\{\{\s*(" + _NAME + r")\s*\}\}")


class PromptError(ValueError):
    """A prompt problem the person can fix; the message says which template and what to do."""


class MissingPromptVariable(PromptError):
    """The template uses variables nobody supplied; `names` lists them in order of appearance."""

    def __init__(self, names: Iterable[str], template_name: str | None = None) -> None:
        self.names = tuple(names)
        self.template_name = template_name
        where = f"prompt template {template_name!r}" if template_name else "prompt template"
        listed = ", ".join(self.names)
        example = self.names[0] if self.names else "name"
        super().__init__(
            f"{where} needs variable(s) {listed} that were not given; "
            f"pass them with --var {example}=... or remove them from the template"
        )


class InvalidPromptTemplate(PromptError):
    """A `{{` that does not open a valid placeholder: almost always a typo like `{{task title}}`."""


class UnknownPromptStage(PromptError):
    """An override names a stage that has no prompt; `stages` lists the offending names."""

    def __init__(self, stages: Iterable[str]) -> None:
        self.stages = tuple(stages)
        listed = ", ".join(repr(s) for s in self.stages)
        hint = (
            " (prepare_workspace has no prompt: AURA creates the worktree itself)"
            if "prepare_workspace" in self.stages
            else ""
        )
        super().__init__(
            f"unknown prompt stage {listed}{hint}; known stages: {', '.join(PROMPT_STAGES)}"
        )


def placeholders(template: str) -> tuple[str, ...]:
    """The distinct variable names a template uses, in order of first appearance."""
    seen: dict[str, None] = {}
    for match in _PLACEHOLDER.finditer(template):
        seen.setdefault(match.group(1), None)
    return tuple(seen)


def _check_syntax(template: str, template_name: str | None) -> None:
    leftover = _PLACEHOLDER.sub("", template)
    index = leftover.find("{{")
    if index < 0:
        return
    snippet = leftover[index : index + 30].splitlines()[0]
    where = f"prompt template {template_name!r}" if template_name else "prompt template"
    raise InvalidPromptTemplate(
        f"{where} has a malformed placeholder near {snippet!r}; "
        "write {{ name }} with a name made of letters, digits, _ or -"
    )


def render(
    template: str, variables: Mapping[str, object], *, template_name: str | None = None
) -> str:
    """Fill every `{{ name }}` in one pass, so braces inside values are never expanded again.

    A variable that is absent or None is missing (rendering "None" into a prompt is always a bug);
    all missing names are reported at once so the person fixes them in one go.
    """
    _check_syntax(template, template_name)
    missing = [name for name in placeholders(template) if variables.get(name) is None]
    if missing:
        raise MissingPromptVariable(missing, template_name)
    return _PLACEHOLDER.sub(lambda m: str(variables[m.group(1)]), template)


@dataclass(frozen=True)
class LineComment:
    """A person's comment on one line of the new version of a file, gathered in the review."""

    path: str
    line: int
    text: str


def format_feedback(message: str, comments: Iterable[LineComment] = ()) -> str:
    """One follow-up text from the person's general message and their line comments.

    Comments are grouped by file and ordered by line so the agent can walk the files once.
    """
    parts: list[str] = []
    if message.strip():
        parts.append(message.strip())
    ordered = sorted(comments, key=lambda c: (c.path, c.line))
    if ordered:
        lines = ["Line comments (path:line in the current files on this branch):"]
        for c in ordered:
            body = c.text.strip().splitlines() or [""]
            lines.append(f"- {c.path}:{c.line}: {body[0]}")
            lines.extend(f"  {rest}" for rest in body[1:])
        parts.append("\n".join(lines))
    if not parts:
        raise ValueError("a follow-up needs a message or at least one line comment")
    return "\n\n".join(parts)


Verdict = Literal["approve", "request_changes"]
_VERDICT = re.compile(r"^\s*\**\s*VERDICT\s*:\s*\**\s*(approve|request_changes)\b", re.I | re.M)


def parse_verdict(review_text: str) -> Verdict | None:
    """The last `VERDICT:` line of a review answer, or None when the reviewer gave none."""
    found = _VERDICT.findall(review_text)
    if not found:
        return None
    return "approve" if found[-1].lower() == "approve" else "request_changes"


_SETUP = """\
You are preparing a fresh git worktree of {{ repo }} on branch `{{ branch }}` (created from \
`{{ base_branch }}`) so that a coding agent can start on this task next: {{ task_title }}

Get the project ready to build and test, and change nothing else:
- Install dependencies the way the project documents it (README, CONTRIBUTING, Makefile, package \
manifests); use the lockfile when there is one.
- Run the project's quickest check (its build, or its test command) once, to confirm the worktree \
works.
- Do not edit tracked files, do not commit, do not switch branches, do not push.

Answer with a short report: the commands you ran and whether they succeeded, and anything the \
coding agent should know (missing tools, tests that already fail on `{{ base_branch }}`).
"""

_CODING_INITIAL = """\
You are working in a git worktree of {{ repo }}, on branch `{{ branch }}`, created from \
`{{ base_branch }}`. Your changes stay on this branch; a person reviews the diff against \
`{{ base_branch }}` before anything is merged.

# Task: {{ task_title }}

{{ task_prompt }}

# How to work
- Read the relevant code first and follow the project's conventions (style, structure, naming, \
where tests live).
- Make the smallest change that does the whole task; do not refactor or reformat unrelated code.
- Add or update tests that show the change works; run the tests and linters for what you touched.
- Stay in this worktree: do not switch branches, rebase, merge, push or rewrite history. \
Committing on `{{ branch }}` is fine.
- If the task is ambiguous, make a reasonable choice and say which. If it cannot be done, stop and \
say why rather than guess.

# When you finish
Answer with a short summary: what you changed and why (by file), how you checked it (commands and \
their results), and anything the reviewer should look at closely or that is left open.
"""

_CODING_FOLLOW_UP = """\
You are continuing your work on branch `{{ branch }}` of {{ repo }} (based on \
`{{ base_branch }}`). A person reviewed the changes so far and asks for more.

# Task, for context: {{ task_title }}

{{ task_prompt }}

# Feedback to address
{{ feedback }}

# How to work
- Address every point above. Line comments refer to path:line in the current files on this \
branch; read those lines again before changing them.
- Change what the feedback asks for, and what it requires; keep the rest of the earlier work.
- If you disagree with a point or cannot do it, do not skip it silently: say so and why.
- Run the tests and linters again for what you touched. Stay on `{{ branch }}`; do not push.

# When you finish
Go through the feedback point by point: what you did for each (or why not), then how you checked \
it.
"""

_REVIEW = """\
You are reviewing a change before it is merged. Read and report only: do not modify files, do not \
commit, do not fix anything yourself.

Repository: {{ repo }}
Branch under review: `{{ branch }}`, compared with `{{ base_branch }}` \
(`git diff {{ base_branch }}...{{ branch }}`).

# What the change was meant to do: {{ task_title }}

{{ task_prompt }}

# Summary of the diff
{{ diff_summary }}

# What to do
1. Read the summary above, then the full diff of each changed file and enough surrounding code to \
judge it.
2. Check that it does the whole task, and does it correctly: edge cases, error handling, tests \
that are present and meaningful, security (injection, secrets, unsafe shell or file use), \
consistency with the project's conventions, leftover debug code, unrelated changes.
3. You may run the tests or linters to confirm a suspicion.

# How to answer
One finding per line, most severe first, in this form:
- [severity] path/to/file:LINE: what is wrong, why it matters, the concrete fix.
Severity is one of: blocker (wrong or unsafe, must be fixed), major (should be fixed before \
merging), minor (worth fixing), nit (style or taste). LINE is a line of the new version of the \
file; for something missing, point where it belongs. No praise, no retelling of the diff. If you \
have nothing to report, write "No findings."

The last line of your answer is the verdict, exactly one of:
VERDICT: approve
VERDICT: request_changes
Use request_changes when there is any blocker or major finding.
"""

_CLEANUP = """\
The coding work on branch `{{ branch }}` of {{ repo }} is done; tidy it before review without \
changing behaviour. Task: {{ task_title }}

- Run the project's formatter and linter on the files changed since `{{ base_branch }}` \
(`git diff --name-only {{ base_branch }}...HEAD`, plus uncommitted changes) and fix what they \
report.
- Remove leftovers: debugging prints or logs, commented-out code, temporary files, scratch scripts.
- Make sure no generated artefacts, secrets or large binaries are part of the change; respect \
.gitignore.
- Do not touch files the change did not touch, and never edit a test's expectations just to make \
it pass.
- Run the tests once more. Stay on `{{ branch }}`; do not push.

Answer with what you cleaned up (by file) and the result of the final test run.
"""


def default_templates() -> dict[str, str]:
    """A fresh copy of the built-in templates, one per stage in PROMPT_STAGES."""
    return {
        "setup": _SETUP,
        "coding_initial": _CODING_INITIAL,
        "coding_follow_up": _CODING_FOLLOW_UP,
        "review": _REVIEW,
        "cleanup": _CLEANUP,
    }


def merge_templates(defaults: Mapping[str, str], overrides: Mapping[str, object]) -> dict[str, str]:
    """Project config overrides on top of the defaults, checked before any run uses them.

    Unknown stage names are refused (a typo would otherwise be ignored silently), as are values
    that are not text, blank templates and malformed placeholders.
    """
    unknown = [str(stage) for stage in overrides if stage not in PROMPT_STAGES]
    if unknown:
        raise UnknownPromptStage(unknown)
    merged = dict(defaults)
    for stage, template in overrides.items():
        if not isinstance(template, str):
            raise PromptError(
                f"prompt template {stage!r} must be text, got {type(template).__name__}"
            )
        if not template.strip():
            raise PromptError(
                f"prompt template {stage!r} is empty; remove the key to use the default"
            )
        _check_syntax(template, stage)
        merged[stage] = template
    return merged
