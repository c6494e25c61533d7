"""The PR flow against a fake `gh` on PATH and a real bare git remote for the push."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from aura_core.config import parse_config
from aura_core.contracts import CanonicalTaskState, Task
from aura_core.engine.runtime import Runtime, RuntimeError_
from aura_core.pr import (
    GH_HINT,
    VIEW_FIELDS,
    DraftContext,
    GhUnavailable,
    GitHubPRs,
    PrError,
    draft_description,
    move_merged_to_done,
    parse_pr_view,
    summarize_checks,
)
from aura_core.store.sqlite import SqliteStore
from tests.support.fakegh import FakeGh
from tests.support.gitrepo import git, make_repo

EDIT = 'echo "the plan" > notes.txt; echo "edited notes.txt"'

CHECK_OK = {
    "__typename": "CheckRun",
    "name": "test",
    "status": "COMPLETED",
    "conclusion": "SUCCESS",
    "workflowName": "CI",
    "detailsUrl": "https://github.com/acme/widgets/actions/runs/1/job/1",
    "startedAt": "2025-01-01T10:00:00Z",
    "completedAt": "2025-01-01T10:03:00Z",
}
CHECK_RUNNING = {**CHECK_OK, "name": "lint", "status": "IN_PROGRESS", "conclusion": ""}
CHECK_FAILED = {**CHECK_OK, "name": "build", "conclusion": "FAILURE"}
CHECK_SKIPPED = {**CHECK_OK, "name": "docs", "conclusion": "SKIPPED"}
STATUS_PENDING = {
    "__typename": "StatusContext",
    "context": "ci/jenkins",
    "state": "PENDING",
    "targetUrl": "https://ci.example/1",
    "startedAt": "2025-01-01T10:00:00Z",
}
STATUS_OK = {**STATUS_PENDING, "state": "SUCCESS"}


@pytest.fixture
def gh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeGh:
    fake = FakeGh(tmp_path)
    for key, value in fake.env().items():
        if os.environ.get(key) != value:
            monkeypatch.setenv(key, value)
    return fake


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = make_repo(tmp_path / "repo", {"README.md": "hello\n", "app.py": "print(1)\n"})
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    git(repo, "remote", "add", "origin", str(remote))
    git(repo, "push", "-q", "-u", "origin", "main")
    return repo


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    return SqliteStore(tmp_path / "aura.db")


@pytest.fixture
def rt(store: SqliteStore, tmp_path: Path) -> Runtime:
    return Runtime(store, parse_config({"worktrees": {"root": str(tmp_path / "wt")}}))


def reviewed_task(rt: Runtime, repo: Path, title: str = "Write notes") -> Task:
    options = {"base_command": "sh", "params": ["-c", EDIT]}
    task = rt.add_task(title, "Note the plan.", "custom", options=options, repos=[str(repo)])
    rt.start(task.id)
    assert rt.wait(task.id, timeout=60)
    task = rt.store.get_task(task.id)
    assert task.state == CanonicalTaskState.review, task.blocked_reason
    return task


def branch_of(rt: Runtime, task_id: str) -> str:
    execution = rt.latest_execution(task_id)
    assert execution is not None and execution.branch
    return execution.branch


def test_open_pushes_the_branch_and_opens_a_pr(
    gh: FakeGh, repo: Path, rt: Runtime, tmp_path: Path
) -> None:
    task = reviewed_task(rt, repo)
    branch = branch_of(rt, task.id)
    result = GitHubPRs(rt.store).open(task.id)

    assert result.created and result.branch == branch and result.warnings == ()
    assert result.status.number == 1 and result.status.state == "open"
    assert result.status.url == "https://github.com/acme/widgets/pull/1"
    # the push really reached the bare remote, with upstream tracking set in the worktree
    worktree = Path(rt.workspace(task.id)[0])
    remote_tip = git(tmp_path / "remote.git", "rev-parse", f"refs/heads/{branch}").strip()
    assert remote_tip == git(worktree, "rev-parse", "HEAD").strip()
    assert git(worktree, "rev-parse", "--abbrev-ref", "@{upstream}").strip() == f"origin/{branch}"
    # gh was asked exactly what AURA documents
    calls = gh.calls()
    assert calls[0] == ["auth", "status"]
    assert ["pr", "view", branch, "--json", VIEW_FIELDS] in calls
    create = next(c for c in calls if c[:2] == ["pr", "create"])
    assert create[2:8] == ["--base", "main", "--head", branch, "--title", "Write notes"]
    assert create[8] == "--body-file" and not Path(create[9]).exists()  # temp file removed
    body = gh.pr(branch)["body"]
    assert "Note the plan." in body
    assert "- `notes.txt` (added, +1 -0)" in body and "1 file(s) changed, +1 -0" in body
    assert task.id[:8] in body
    # remembered on the task
    stored = rt.store.get_task(task.id).options["pr"]
    assert stored["number"] == 1 and stored["url"] == result.status.url
    assert stored["branch"] == branch and stored["base"] == "main" and stored["state"] == "open"
    assert rt.store.get_task(task.id).options["base_command"] == "sh"  # other options kept


def test_open_twice_finds_the_open_pr_and_pushes_new_commits(
    gh: FakeGh, repo: Path, rt: Runtime, tmp_path: Path
) -> None:
    task = reviewed_task(rt, repo)
    branch = branch_of(rt, task.id)
    prs = GitHubPRs(rt.store)
    prs.open(task.id)
    worktree = Path(rt.workspace(task.id)[0])
    (worktree / "more.txt").write_text("more\n")
    git(worktree, "add", "-A")
    git(worktree, "commit", "-qm", "more")
    (worktree / "scratch.txt").write_text("not committed\n")

    again = prs.open(task.id)
    assert not again.created and again.status.number == 1
    assert any("uncommitted" in w for w in again.warnings)
    assert len([c for c in gh.calls() if c[:2] == ["pr", "create"]]) == 1
    remote_tip = git(tmp_path / "remote.git", "rev-parse", f"refs/heads/{branch}").strip()
    assert remote_tip == git(worktree, "rev-parse", "HEAD").strip()


def test_status_summarises_state_ci_and_review(gh: FakeGh, repo: Path, rt: Runtime) -> None:
    task = reviewed_task(rt, repo)
    branch = branch_of(rt, task.id)
    prs = GitHubPRs(rt.store)
    prs.open(task.id, draft=True)
    assert gh.pr(branch)["isDraft"] is True
    status = prs.status(task.id)
    assert status is not None
    assert status.summary() == "PR #1 open · CI no checks · review none"

    gh.update(branch, statusCheckRollup=[CHECK_OK, STATUS_PENDING], reviewDecision="APPROVED")
    status = prs.status(task.id)
    assert status is not None and status.ci == "pending" and status.review == "approved"
    assert status.summary() == "PR #1 open · CI pending (1 of 2 not finished) · review approved"

    gh.update(
        branch,
        statusCheckRollup=[CHECK_OK, CHECK_FAILED, STATUS_OK],
        reviewDecision="CHANGES_REQUESTED",
    )
    status = prs.status(task.id)
    assert status is not None
    assert status.summary() == "PR #1 open · CI failing (1 of 3: build) · review changes requested"
    stored = rt.store.get_task(task.id).options["pr"]
    assert stored["ci"] == "failing" and stored["review"] == "changes requested"
    assert stored["checks"]["failing"] == ["build"]


def test_sync_reports_merged_and_the_card_moves_to_done(
    gh: FakeGh, repo: Path, rt: Runtime
) -> None:
    task = reviewed_task(rt, repo)
    branch = branch_of(rt, task.id)
    prs = GitHubPRs(rt.store)
    prs.open(task.id)
    assert prs.sync(task.id).outcome == "open"

    gh.update(branch, state="MERGED", mergedAt="2025-01-02T09:00:00Z", reviewDecision="APPROVED")
    synced = prs.sync(task.id)
    assert synced.outcome == "merged" and synced.status is not None
    assert synced.status.merged and synced.status.merged_at == "2025-01-02T09:00:00Z"
    assert "moved to Done" in move_merged_to_done(rt, task.id)
    done = rt.store.get_task(task.id)
    assert done.state == CanonicalTaskState.done and done.column_id == "done"
    assert done.options["pr"]["state"] == "merged"
    assert "already done" in move_merged_to_done(rt, task.id)


def test_sync_of_a_closed_pr_and_of_a_branch_without_pr(
    gh: FakeGh, repo: Path, rt: Runtime
) -> None:
    task = reviewed_task(rt, repo)
    prs = GitHubPRs(rt.store)
    assert prs.status(task.id) is None
    assert prs.sync(task.id).outcome == "none"
    prs.open(task.id)
    gh.update(branch_of(rt, task.id), state="CLOSED")
    assert prs.sync(task.id).outcome == "closed"
    assert rt.store.get_task(task.id).state == CanonicalTaskState.review


def test_merged_pr_with_uncommitted_work_is_not_moved(gh: FakeGh, repo: Path, rt: Runtime) -> None:
    task = reviewed_task(rt, repo)
    GitHubPRs(rt.store).open(task.id)
    (Path(rt.workspace(task.id)[0]) / "late.txt").write_text("not in the PR\n")
    with pytest.raises(RuntimeError_, match="uncommitted"):
        move_merged_to_done(rt, task.id)
    assert rt.store.get_task(task.id).state == CanonicalTaskState.review


def test_gh_not_installed(repo: Path, rt: Runtime, tmp_path: Path) -> None:
    task = reviewed_task(rt, repo)
    only_git = tmp_path / "only-git"
    only_git.mkdir()
    git_path = shutil.which("git")
    assert git_path is not None
    (only_git / "git").symlink_to(git_path)
    prs = GitHubPRs(rt.store, env={**os.environ, "PATH": str(only_git)})
    for call in (prs.open, prs.status, prs.sync):
        with pytest.raises(GhUnavailable) as err:
            call(task.id)
        message = str(err.value)
        assert GH_HINT in message and "not found" in message and "\n" not in message
    assert "pr" not in rt.store.get_task(task.id).options
    # nothing was pushed either
    assert git(repo, "ls-remote", "origin").count("refs/heads/") == 1


def test_gh_not_logged_in(gh: FakeGh, repo: Path, rt: Runtime) -> None:
    task = reviewed_task(rt, repo)
    gh.set_auth(False)
    with pytest.raises(GhUnavailable) as err:
        GitHubPRs(rt.store).open(task.id)
    assert "not logged in" in str(err.value) and "gh auth login" in str(err.value)
    assert gh.calls() == [["auth", "status"]]


def test_push_without_origin_and_task_without_branch(
    gh: FakeGh, tmp_path: Path, rt: Runtime
) -> None:
    lonely = make_repo(tmp_path / "lonely")
    task = reviewed_task(rt, lonely)
    with pytest.raises(PrError, match="no remote 'origin'"):
        GitHubPRs(rt.store).open(task.id)
    fresh = rt.add_task("Not started", "", "custom", repos=[str(lonely)])
    with pytest.raises(PrError, match="no branch yet"):
        GitHubPRs(rt.store).open(fresh.id)


def test_push_rejected_by_the_remote_is_one_line(
    gh: FakeGh, repo: Path, rt: Runtime, tmp_path: Path
) -> None:
    task = reviewed_task(rt, repo)
    hook = tmp_path / "remote.git" / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'protected: pushes are closed' >&2\nexit 1\n")
    hook.chmod(0o755)
    with pytest.raises(PrError) as err:
        GitHubPRs(rt.store).open(task.id)
    assert "git push" in str(err.value) and "\n" not in str(err.value)


def test_status_after_the_worktree_is_gone_uses_the_stored_branch(
    gh: FakeGh, repo: Path, rt: Runtime
) -> None:
    task = reviewed_task(rt, repo)
    branch = branch_of(rt, task.id)
    prs = GitHubPRs(rt.store)
    prs.open(task.id)
    shutil.rmtree(rt.workspace(task.id)[0])
    status = prs.status(task.id)
    assert status is not None and status.number == 1
    assert gh.calls()[-1] == ["pr", "view", branch, "--json", VIEW_FIELDS]


# ---- pure functions ---------------------------------------------------------------------------


def test_parse_pr_view_shapes() -> None:
    merged = parse_pr_view(
        {
            "number": 7,
            "url": "https://github.com/acme/widgets/pull/7",
            "state": "MERGED",
            "mergedAt": "2025-03-01T12:00:00Z",
            "reviewDecision": "APPROVED",
            "statusCheckRollup": [CHECK_OK, CHECK_SKIPPED, STATUS_OK],
        }
    )
    assert merged.merged and merged.number == 7 and merged.ci == "passing"
    assert merged.summary() == "PR #7 merged · CI passing (3/3) · review approved"
    open_ = parse_pr_view(
        {
            "number": 8,
            "url": "u",
            "state": "OPEN",
            "mergedAt": "0001-01-01T00:00:00Z",
            "reviewDecision": "",
            "statusCheckRollup": None,
        }
    )
    assert not open_.merged and open_.merged_at is None and open_.review == "none"
    assert open_.to_dict()["ci"] == "none"
    required = parse_pr_view({"state": "OPEN", "reviewDecision": "REVIEW_REQUIRED"})
    assert required.review == "review required" and required.number is None


def test_summarize_checks_counts_each_kind() -> None:
    checks = summarize_checks(
        [
            CHECK_OK,
            CHECK_RUNNING,
            CHECK_FAILED,
            CHECK_SKIPPED,
            {**CHECK_OK, "name": "neutral", "conclusion": "NEUTRAL"},
            {**CHECK_OK, "name": "slow", "conclusion": "TIMED_OUT"},
            {**CHECK_OK, "name": "queued", "status": "QUEUED", "conclusion": None},
            STATUS_PENDING,
            {**STATUS_OK, "context": "bad", "state": "ERROR"},
        ]
    )
    assert (checks.passed, checks.failed, checks.pending, checks.skipped) == (1, 3, 3, 2)
    assert checks.failing_names == ("build", "slow", "bad") and checks.state == "failing"
    assert summarize_checks([]).state == "none"


def _context(**kw: object) -> DraftContext:
    task = Task(id="abcdef0123456789", title="Fix login", prompt="Fix the login.",
                created_at=0.0, updated_at=0.0)  # fmt: skip
    base: dict[str, object] = {
        "task": task,
        "branch": "aura/abcdef01-fix-login",
        "base": "main",
        "files": (("src/login.py", "modified", 4, 2), ("tests/test_login.py", "added", 10, 0)),
    }
    base.update(kw)
    return DraftContext(**base)  # type: ignore[arg-type]


def test_draft_description_from_the_diff_and_the_review() -> None:
    body = draft_description(
        _context(verdict="request_changes", findings="- [minor] src/login.py:3: typo")
    )
    assert body.startswith("## Summary\n\nFix the login.\n")
    assert "2 file(s) changed, +14 -2" in body
    assert "- `src/login.py` (modified, +4 -2)" in body
    assert "Verdict: request changes" in body and "src/login.py:3: typo" in body
    assert "`abcdef01`" in body and "`aura/abcdef01-fix-login`" in body


def test_draft_description_with_a_drafter() -> None:
    seen: list[DraftContext] = []

    def agent(ctx: DraftContext) -> str:
        seen.append(ctx)
        return "Login now checks the password hash."

    body = draft_description(_context(), agent)
    assert seen and seen[0].files[0][0] == "src/login.py"
    assert body.startswith("## Summary\n\nLogin now checks the password hash.\n\n## Task")
    assert "Fix the login." in body

    def broken(ctx: DraftContext) -> str:
        raise RuntimeError("agent crashed")

    for drafter in (broken, lambda ctx: "   ", lambda ctx: None):
        assert draft_description(_context(), drafter).startswith("## Summary\n\nFix the login.")


def test_draft_description_stays_within_github_limits() -> None:
    files = tuple((f"f{i}.py", "added", 1, 0) for i in range(250))
    body = draft_description(_context(files=files, findings="x" * 70_000))
    assert "… and 150 more" in body and len(body) <= 60_000
    empty = draft_description(_context(files=()))
    assert "No file changes against the base branch." in empty


def test_gh_timeout_is_reported(tmp_path: Path, repo: Path, rt: Runtime) -> None:
    slow = tmp_path / "slow-bin"
    slow.mkdir()
    (slow / "gh").write_text("#!/bin/sh\nsleep 5\n")
    (slow / "gh").chmod(0o755)
    prs = GitHubPRs(
        rt.store, env={**os.environ, "PATH": f"{slow}:{os.environ['PATH']}"}, gh_timeout=0.3
    )
    started = time.monotonic()
    with pytest.raises(PrError, match="took longer"):
        prs.gh()
    assert time.monotonic() - started < 4
