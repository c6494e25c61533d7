"""A task's pull request through the GitHub CLI: push the branch, open the PR, read its status.

AURA talks to GitHub only through `gh` (its login, hosts and enterprise setup are the person's),
so nothing here holds a token. Every failure is one line saying what is missing or what git/gh
said. The PR's number, URL and last seen state are kept in the task's options under "pr", so the
board and `aura task show` can show them without asking GitHub again.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from aura_core.contracts import CanonicalTaskState, Task

__all__ = [
    "GH_HINT",
    "Checks",
    "DraftContext",
    "Drafter",
    "GhUnavailable",
    "GitHubPRs",
    "OpenResult",
    "PrError",
    "PrStatus",
    "SyncResult",
    "draft_description",
    "move_merged_to_done",
    "parse_pr_view",
    "summarize_checks",
]

GH_HINT = "install GitHub CLI (gh) and run gh auth login"
VIEW_FIELDS = "number,url,state,mergedAt,reviewDecision,statusCheckRollup"
BODY_LIMIT = 60_000  # GitHub refuses bodies over 65,536 characters
MAX_FILES = 100

_FAILED = {
    "FAILURE",
    "ERROR",
    "TIMED_OUT",
    "CANCELLED",
    "ACTION_REQUIRED",
    "STARTUP_FAILURE",
    "STALE",
}
_SKIPPED = {"NEUTRAL", "SKIPPED"}
_REVIEW = {
    "APPROVED": "approved",
    "CHANGES_REQUESTED": "changes requested",
    "REVIEW_REQUIRED": "review required",
}
_NO_PR = re.compile(r"no (open )?pull requests? found", re.I)
_PR_URL = re.compile(r"https?://\S+/pull/(\d+)")


class PrError(Exception):
    """A PR step that could not be done; the message is one line saying why or what to do."""


class GhUnavailable(PrError):
    """`gh` is not installed or not logged in."""


# ---- status -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Checks:
    """CI checks of a PR, counted by outcome."""

    passed: int = 0
    failed: int = 0
    pending: int = 0
    skipped: int = 0
    failing_names: tuple[str, ...] = ()

    @property
    def total(self) -> int:
        return self.passed + self.failed + self.pending + self.skipped

    @property
    def state(self) -> Literal["none", "failing", "pending", "passing"]:
        if self.total == 0:
            return "none"
        if self.failed:
            return "failing"
        if self.pending:
            return "pending"
        return "passing"

    def text(self) -> str:
        if self.state == "none":
            return "no checks"
        if self.state == "failing":
            names = ", ".join(self.failing_names[:3])
            return f"failing ({self.failed} of {self.total}{': ' + names if names else ''})"
        if self.state == "pending":
            return f"pending ({self.pending} of {self.total} not finished)"
        return f"passing ({self.passed + self.skipped}/{self.total})"


def summarize_checks(rollup: Sequence[Mapping[str, Any]] | None) -> Checks:
    """Count `statusCheckRollup` items: CheckRun (status/conclusion) and StatusContext (state)."""
    passed = failed = pending = skipped = 0
    failing: list[str] = []
    for item in rollup or ():
        if item.get("__typename") == "StatusContext" or "context" in item:
            state = str(item.get("state") or "").upper()
            name = str(item.get("context") or "status")
            outcome = {"SUCCESS": "passed", "FAILURE": "failed", "ERROR": "failed"}.get(
                state, "pending"
            )
        else:
            name = str(item.get("name") or item.get("workflowName") or "check")
            conclusion = str(item.get("conclusion") or "").upper()
            if str(item.get("status") or "").upper() != "COMPLETED" or not conclusion:
                outcome = "pending"
            elif conclusion in _FAILED:
                outcome = "failed"
            elif conclusion in _SKIPPED:
                outcome = "skipped"
            else:
                outcome = "passed"
        if outcome == "passed":
            passed += 1
        elif outcome == "failed":
            failed += 1
            failing.append(name)
        elif outcome == "skipped":
            skipped += 1
        else:
            pending += 1
    return Checks(passed, failed, pending, skipped, tuple(failing))


@dataclass(frozen=True, slots=True)
class PrStatus:
    """A PR as `gh pr view --json` describes it, in the words the board shows."""

    number: int | None
    url: str
    state: str  # open | closed | merged
    merged_at: str | None = None
    review: str = "none"  # approved | changes requested | review required | none
    checks: Checks = field(default_factory=Checks)

    @property
    def merged(self) -> bool:
        return self.state == "merged"

    @property
    def ci(self) -> str:
        return self.checks.state

    def summary(self) -> str:
        """One line: `PR #12 open · CI passing (3/3) · review approved`."""
        name = f"PR #{self.number}" if self.number is not None else "PR"
        return f"{name} {self.state} · CI {self.checks.text()} · review {self.review}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "url": self.url,
            "state": self.state,
            "merged_at": self.merged_at,
            "review": self.review,
            "ci": self.ci,
            "checks": {
                "passed": self.checks.passed,
                "failed": self.checks.failed,
                "pending": self.checks.pending,
                "skipped": self.checks.skipped,
                "failing": list(self.checks.failing_names),
            },
            "summary": self.summary(),
        }


def parse_pr_view(data: Mapping[str, Any]) -> PrStatus:
    """A PrStatus from the JSON of `gh pr view --json number,url,state,mergedAt,...`."""
    merged_at = data.get("mergedAt") or None
    if isinstance(merged_at, str) and merged_at.startswith("0001-"):  # Go's zero time
        merged_at = None
    state = str(data.get("state") or "").lower() or "unknown"
    number = data.get("number")
    return PrStatus(
        number=number if isinstance(number, int) else None,
        url=str(data.get("url") or ""),
        state=state,
        merged_at=merged_at,
        review=_REVIEW.get(str(data.get("reviewDecision") or "").upper(), "none"),
        checks=summarize_checks(data.get("statusCheckRollup")),
    )


# ---- the description --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DraftContext:
    """What a PR description is drafted from; handed to an optional drafter (e.g. the agent)."""

    task: Task
    branch: str
    base: str
    files: tuple[tuple[str, str, int, int], ...]  # (path, status, insertions, deletions)
    verdict: str | None = None
    findings: str | None = None
    patch: str = ""


Drafter = Callable[[DraftContext], str | None]


def _files_section(files: Sequence[tuple[str, str, int, int]]) -> list[str]:
    if not files:
        return ["## Changes", "", "No file changes against the base branch."]
    plus = sum(f[2] for f in files)
    minus = sum(f[3] for f in files)
    lines = ["## Changes", "", f"{len(files)} file(s) changed, +{plus} -{minus}", ""]
    for path, status, ins, dels in files[:MAX_FILES]:
        lines.append(f"- `{path}` ({status}, +{ins} -{dels})")
    if len(files) > MAX_FILES:
        lines.append(f"- … and {len(files) - MAX_FILES} more")
    return lines


def draft_description(context: DraftContext, drafter: Drafter | None = None) -> str:
    """The PR body: a summary (the drafter's text, else the task prompt), the files changed with
    their +/- counts, and the review findings. A drafter that fails or says nothing is ignored:
    opening the PR must not depend on an agent answering."""
    task = context.task
    drafted = None
    if drafter is not None:
        try:
            drafted = (drafter(context) or "").strip() or None
        except Exception:
            drafted = None
    prompt = task.prompt.strip() or task.title
    parts: list[str] = []
    if drafted:
        parts += ["## Summary", "", drafted, "", "## Task", "", prompt]
    else:
        parts += ["## Summary", "", prompt]
    parts += ["", *_files_section(context.files)]
    if context.findings or context.verdict:
        parts += ["", "## Review", ""]
        if context.verdict:
            parts += [f"Verdict: {context.verdict.replace('_', ' ')}", ""]
        if context.findings:
            parts.append(context.findings.strip())
    parts += ["", "---", f"Opened by AURA from task `{task.id[:8]}` (branch `{context.branch}`)."]
    body = "\n".join(parts) + "\n"
    if len(body) > BODY_LIMIT:
        body = body[: BODY_LIMIT - 40].rstrip() + "\n\n… (description shortened)\n"
    return body


# ---- running gh and git ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OpenResult:
    status: PrStatus
    created: bool  # False: an open PR for the branch already existed (it was pushed to again)
    branch: str
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SyncResult:
    outcome: Literal["merged", "open", "closed", "none"]
    status: PrStatus | None


@dataclass(frozen=True, slots=True)
class _Target:
    cwd: Path  # the worktree when it still exists, else the task's repo
    branch: str
    base: str
    worktree: Path | None


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


class GitHubPRs:
    """Push, open, check and sync the PR of a task, through `git` and `gh`.

    `env` is the environment for git and gh (default: this process's); `gh` is looked up on its
    PATH, so tests put a fake `gh` first on PATH.
    """

    def __init__(
        self,
        store: Any,
        *,
        env: Mapping[str, str] | None = None,
        remote: str = "origin",
        gh_timeout: float = 60.0,
        push_timeout: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.env = dict(os.environ if env is None else env)
        self.remote = remote
        self.gh_timeout = gh_timeout
        self.push_timeout = push_timeout
        self.clock = clock
        self._gh: str | None = None

    # -- gh availability --
    def gh(self) -> str:
        """The `gh` binary, installed and logged in; GhUnavailable says which of the two is not."""
        if self._gh:
            return self._gh
        found = shutil.which("gh", path=self.env.get("PATH", os.defpath))
        if found is None:
            raise GhUnavailable(f"GitHub CLI (gh) not found on PATH: {GH_HINT}")
        result = self._run([found, "auth", "status"], None, self.gh_timeout)
        if result.returncode != 0:
            raise GhUnavailable("GitHub CLI (gh) is installed but not logged in: run gh auth login")
        self._gh = found
        return found

    def _gh_env(self) -> dict[str, str]:
        env = dict(self.env)
        env.update(GH_PROMPT_DISABLED="1", GH_NO_UPDATE_NOTIFIER="1", NO_COLOR="1")
        env.update(GH_SPINNER_DISABLED="1", GIT_TERMINAL_PROMPT="0")
        return env

    def _run(
        self, argv: list[str], cwd: Path | None, timeout: float
    ) -> subprocess.CompletedProcess[str]:
        """Run git or gh with output captured; past `timeout` its whole process group is killed
        (a plain kill would leave a child holding the pipes open)."""
        try:
            proc = subprocess.Popen(
                argv,
                cwd=cwd,
                env=self._gh_env(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                start_new_session=True,  # no terminal to prompt on; killable as a group
            )
        except OSError as exc:
            raise PrError(f"cannot run {argv[0]}: {exc.strerror or exc}") from None
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                pass
            proc.communicate()
            raise PrError(
                f"`{Path(argv[0]).name} {' '.join(argv[1:3])}` took longer than {timeout:g}s"
            ) from None
        return subprocess.CompletedProcess(argv, proc.returncode, out, err)

    # -- where the task's branch is --
    def _target(self, task: Task, base: str | None = None) -> _Target:
        from aura_core.git.errors import GitError
        from aura_core.git.repo import current_branch, default_base_branch

        stored = task.options.get("pr") or {}
        worktree: Path | None = None
        branch: str | None = None
        for execution in reversed(self.store.list_executions(task.id)):
            if execution.workspace:
                worktree = Path(execution.workspace[0])
                branch = execution.branch
                break
        if worktree is not None and worktree.is_dir():
            try:
                branch = current_branch(worktree) or branch
            except GitError:
                pass
        else:
            worktree = None
        branch = branch or stored.get("branch")
        if not branch:
            raise PrError(f"task '{task.title}' has no branch yet: start it first")
        repo = worktree or (Path(task.repos[0]) if task.repos else None)
        if repo is None or not repo.is_dir():
            raise PrError(f"task '{task.title}' has no repository on this machine")
        chosen = base or stored.get("base") or task.base_branch
        if not chosen:
            try:
                chosen = default_base_branch(repo)
            except GitError as exc:
                raise PrError(f"cannot tell the base branch: {exc}; pass --base") from None
        return _Target(cwd=repo, branch=branch, base=chosen, worktree=worktree)

    # -- steps --
    def push(self, task_id: str) -> str:
        """`git push -u <remote> <branch>` from the task's worktree; returns the branch."""
        task = self.store.get_task(task_id)
        target = self._target(task)
        return self._push(target)

    def _push(self, target: _Target) -> str:
        git = shutil.which("git", path=self.env.get("PATH", os.defpath)) or "git"
        remote = self._run([git, "remote", "get-url", self.remote], target.cwd, 30)
        if remote.returncode != 0:
            raise PrError(
                f"the repository has no remote '{self.remote}': add it with "
                f"`git remote add {self.remote} URL`"
            )
        pushed = self._run(
            [git, "push", "-u", self.remote, target.branch], target.cwd, self.push_timeout
        )
        if pushed.returncode != 0:
            why = _last_line(pushed.stderr) or _last_line(pushed.stdout) or "no message"
            raise PrError(f"git push of {target.branch} to {self.remote} failed: {why}")
        return target.branch

    def view(self, branch: str, cwd: Path) -> PrStatus | None:
        """`gh pr view BRANCH --json ...`, or None when the branch has no PR."""
        import json

        result = self._run(
            [self.gh(), "pr", "view", branch, "--json", VIEW_FIELDS], cwd, self.gh_timeout
        )
        if result.returncode != 0:
            if _NO_PR.search(result.stderr) or _NO_PR.search(result.stdout):
                return None
            raise PrError(f"gh pr view failed: {_last_line(result.stderr) or 'no message'}")
        try:
            data = json.loads(result.stdout)
        except ValueError:
            raise PrError("gh pr view printed something that is not JSON") from None
        if not isinstance(data, dict):
            raise PrError("gh pr view printed unexpected JSON")
        return parse_pr_view(data)

    def _context(self, task: Task, target: _Target) -> DraftContext:
        from aura_core.git.diff import diff_worktree
        from aura_core.git.errors import GitError

        files: tuple[tuple[str, str, int, int], ...] = ()
        patch = ""
        if target.worktree is not None:
            try:
                diff = diff_worktree(target.worktree, target.base)
                files = tuple((f.path, f.status, f.insertions, f.deletions) for f in diff.files)
                patch = diff.patch
            except GitError:
                pass
        verdict = findings = None
        for session in self.store.list_sessions(task_id=task.id):  # newest first
            if session.stage == "review":
                verdict = session.options.get("verdict")
                findings = session.options.get("findings")
                break
        return DraftContext(task, target.branch, target.base, files, verdict, findings, patch)

    def _remember(self, task_id: str, branch: str, base: str, status: PrStatus) -> None:
        task = self.store.get_task(task_id)
        info = {**status.to_dict(), "branch": branch, "base": base, "checked_at": self.clock()}
        self.store.update_task(task_id, options={**task.options, "pr": info})

    def open(
        self,
        task_id: str,
        *,
        title: str | None = None,
        base: str | None = None,
        draft: bool = False,
        drafter: Drafter | None = None,
    ) -> OpenResult:
        """Push the branch, then open a PR (or find the open one) and remember it on the task."""
        self.gh()
        task = self.store.get_task(task_id)
        target = self._target(task, base)
        warnings: list[str] = []
        if target.worktree is not None:
            from aura_core.git.repo import is_clean

            try:
                if not is_clean(target.worktree):
                    warnings.append(
                        "the worktree has uncommitted changes; they are not part of the PR"
                    )
            except Exception:
                pass
        self._push(target)
        existing = self.view(target.branch, target.cwd)
        if existing is not None and existing.state == "open":
            self._remember(task_id, target.branch, target.base, existing)
            return OpenResult(existing, False, target.branch, tuple(warnings))
        body = draft_description(self._context(task, target), drafter)
        with tempfile.NamedTemporaryFile(
            "w", prefix="aura-pr-", suffix=".md", delete=False, encoding="utf-8"
        ) as fh:
            fh.write(body)
            body_file = fh.name
        try:
            argv = [self.gh(), "pr", "create", "--base", target.base, "--head", target.branch]
            argv += ["--title", title or task.title, "--body-file", body_file]
            if draft:
                argv.append("--draft")
            created = self._run(argv, target.cwd, self.gh_timeout)
        finally:
            Path(body_file).unlink(missing_ok=True)
        if created.returncode != 0:
            raise PrError(f"gh pr create failed: {_last_line(created.stderr) or 'no message'}")
        status = self.view(target.branch, target.cwd)
        if status is None:
            match = _PR_URL.search(created.stdout)
            url = match.group(0) if match else _last_line(created.stdout)
            status = PrStatus(int(match.group(1)) if match else None, url, "open")
        self._remember(task_id, target.branch, target.base, status)
        return OpenResult(status, True, target.branch, tuple(warnings))

    def status(self, task_id: str) -> PrStatus | None:
        """The PR's state, CI and review from GitHub (None: the branch has no PR)."""
        self.gh()
        task = self.store.get_task(task_id)
        target = self._target(task)
        status = self.view(target.branch, target.cwd)
        if status is not None:
            self._remember(task_id, target.branch, target.base, status)
        return status

    def sync(self, task_id: str) -> SyncResult:
        """Read the PR and say what it means for the card: "merged" means move it to Done."""
        status = self.status(task_id)
        if status is None:
            return SyncResult("none", None)
        if status.state in ("merged", "open", "closed"):
            return SyncResult(status.state, status)  # type: ignore[arg-type]
        return SyncResult("open", status)


def move_merged_to_done(runtime: Any, task_id: str) -> str:
    """After a sync that said "merged": approve the card into Done through the runtime.

    A card still in Review is approved (the runtime refuses if its worktree has uncommitted
    work, which would be lost from the merge); a card elsewhere is left for the person to move.
    """
    task = runtime.store.get_task(task_id)
    if task.state == CanonicalTaskState.done:
        return f"{task.title}: PR merged; already done"
    if task.state == CanonicalTaskState.review:
        runtime.approve(task_id)
        return f"{task.title}: PR merged; moved to Done"
    return (
        f"{task.title}: PR merged, but the task is in {task.column_id}, not review; "
        "move it yourself"
    )
