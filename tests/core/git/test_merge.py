from __future__ import annotations

from pathlib import Path

import pytest

from aura_core.git import merge as merge_mod
from aura_core.git.errors import GitError, MergeConflict, UnsafeOperation
from aura_core.git.merge import rebase_onto_base, squash_merge
from aura_core.git.worktree import TaskWorktree, create_worktree
from tests.core.git.conftest import GitRun, commit_file, write


@pytest.fixture
def task(repo: Path, wt_root: Path) -> TaskWorktree:
    wt = create_worktree(repo, "a" * 32, "Add feature", wt_root)
    commit_file(wt.path, "feature.txt", "feature\n", "Add feature file")
    commit_file(wt.path, "src/app.py", "def main():\n    return 42\n", "Return 42")
    return wt


@pytest.fixture(params=["git read-tree", "libgit2 checkout"])
def updater(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test with both ways of updating a checkout's files (CLI, or pygit2 without git)."""
    if request.param == "libgit2 checkout":
        monkeypatch.setattr(merge_mod, "have_git", lambda: False)
    return str(request.param)


def _snapshot(git: GitRun, repo: Path, wt: TaskWorktree) -> tuple[str, ...]:
    """Everything that must be unchanged after a refused or aborted operation."""
    return (
        git(repo, "rev-parse", "main"),
        git(repo, "rev-parse", wt.branch),
        git(repo, "status", "--porcelain"),
        git(wt.path, "status", "--porcelain"),
        (repo / "src" / "app.py").read_text(),
        (wt.path / "src" / "app.py").read_text(),
    )


# ------------------------------------------------------------------ squash merge


def test_squash_merge_updates_the_checked_out_base(
    repo: Path, task: TaskWorktree, git: GitRun, updater: str
) -> None:
    base_before = git(repo, "rev-parse", "main")
    result = squash_merge(task.path, message="Add feature (task aaaaaaaa)")
    assert result.commit == git(repo, "rev-parse", "main")
    assert result.base_before == base_before and result.updated_checkout == repo
    # One commit, one parent: a squash, not a merge.
    assert git(repo, "rev-list", "--parents", "-n", "1", "main").split() == [
        result.commit,
        base_before,
    ]
    assert git(repo, "log", "-1", "--format=%s", "main") == "Add feature (task aaaaaaaa)"
    body = git(repo, "log", "-1", "--format=%b", "main")
    assert "* Add feature file" in body and "* Return 42" in body
    assert git(repo, "diff", "--name-only", base_before, "main").splitlines() == [
        "feature.txt",
        "src/app.py",
    ]
    # The main checkout follows the branch: files updated, nothing looks dirty or staged.
    assert git(repo, "status", "--porcelain") == ""
    assert (repo / "feature.txt").read_text() == "feature\n"
    assert (repo / "src" / "app.py").read_text() == "def main():\n    return 42\n"
    # The task branch is untouched.
    assert git(task.path, "status", "--porcelain") == ""
    assert git(task.path, "rev-list", "--count", f"main..{task.branch}") == "2"
    # Nothing left to merge the second time.
    again = squash_merge(task.path)
    assert again.commit is None and git(repo, "rev-parse", "main") == result.commit


def test_squash_merge_with_base_not_checked_out(
    repo: Path, task: TaskWorktree, git: GitRun
) -> None:
    git(repo, "checkout", "-q", "-b", "elsewhere")
    result = squash_merge(task.path)
    assert result.updated_checkout is None
    assert git(repo, "rev-parse", "main") == result.commit
    assert git(repo, "status", "--porcelain") == "" and not (repo / "feature.txt").exists()


def test_squash_merge_after_base_moved_and_keeps_untracked_files(
    repo: Path, task: TaskWorktree, git: GitRun, updater: str
) -> None:
    commit_file(repo, "other.txt", "other\n", "Unrelated base work")
    write(repo / "scratch.txt", "the person's notes\n")
    result = squash_merge(task.path)
    assert result.commit is not None
    assert git(repo, "status", "--porcelain") == "?? scratch.txt"
    assert (repo / "scratch.txt").read_text() == "the person's notes\n"
    assert (repo / "other.txt").exists() and (repo / "feature.txt").exists()


def test_squash_merge_refuses_base_with_local_changes(
    repo: Path, task: TaskWorktree, git: GitRun
) -> None:
    write(repo / "README.md", "edited by the person\n")
    before = _snapshot(git, repo, task)
    with pytest.raises(
        UnsafeOperation, match=r"main is checked out at .* with uncommitted changes"
    ):
        squash_merge(task.path)
    assert _snapshot(git, repo, task) == before


def test_squash_merge_refuses_to_overwrite_untracked_file(
    repo: Path, task: TaskWorktree, git: GitRun, updater: str
) -> None:
    write(repo / "feature.txt", "the person's own file\n")
    before = _snapshot(git, repo, task)
    with pytest.raises(UnsafeOperation, match="nothing was changed"):
        squash_merge(task.path)
    assert _snapshot(git, repo, task) == before
    assert (repo / "feature.txt").read_text() == "the person's own file\n"


def test_last_guard_when_base_checkout_changes_after_the_checks(
    repo: Path, task: TaskWorktree, git: GitRun, updater: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Someone edits a file the merge touches between our checks and the update.
    monkeypatch.setattr(merge_mod, "tracked_changes", lambda repo: [])
    write(repo / "src" / "app.py", "edited at the last moment\n")
    before = _snapshot(git, repo, task)
    with pytest.raises(UnsafeOperation, match="nothing was changed"):
        squash_merge(task.path)
    assert _snapshot(git, repo, task) == before
    assert (repo / "src" / "app.py").read_text() == "edited at the last moment\n"
    assert not (repo / "feature.txt").exists()


def test_squash_merge_refuses_dirty_task_worktree(
    repo: Path, task: TaskWorktree, git: GitRun
) -> None:
    write(task.path / "wip.txt", "not committed\n")
    before = _snapshot(git, repo, task)
    with pytest.raises(UnsafeOperation, match=r"uncommitted changes .* before you merge"):
        squash_merge(task.path)
    assert _snapshot(git, repo, task) == before


def test_squash_merge_refuses_operation_in_progress(
    repo: Path, task: TaskWorktree, git: GitRun
) -> None:
    commit_file(repo, "src/app.py", "def main():\n    return 0\n", "base edit")
    git(task.path, "merge", "main", check=False)
    with pytest.raises(UnsafeOperation, match="a merge is in progress"):
        squash_merge(task.path)
    git(task.path, "merge", "--abort")


def test_squash_merge_refuses_rebase_in_progress_where_base_is_checked_out(
    repo: Path, task: TaskWorktree, git: GitRun
) -> None:
    git(repo, "checkout", "-q", "-b", "side", "main~0")
    commit_file(repo, "README.md", "side\n", "side")
    git(repo, "checkout", "-q", "main")
    commit_file(repo, "README.md", "main\n", "main")
    git(repo, "rebase", "side", check=False)  # main rebased onto side: conflict, stops
    assert "rebase" in git(repo, "status")
    with pytest.raises(
        UnsafeOperation, match=r"a rebase is in progress .* where main is checked out"
    ):
        squash_merge(task.path)


def test_squash_merge_conflict_aborts_cleanly(repo: Path, task: TaskWorktree, git: GitRun) -> None:
    commit_file(repo, "src/app.py", "def main():\n    return -1\n", "conflicting base edit")
    commit_file(repo, "feature.txt", "base version\n", "conflicting add")
    before = _snapshot(git, repo, task)
    with pytest.raises(MergeConflict) as info:
        squash_merge(task.path)
    assert info.value.files == ["feature.txt", "src/app.py"]
    assert "nothing was changed" in str(info.value)
    assert _snapshot(git, repo, task) == before
    assert not (repo / ".git" / "MERGE_HEAD").exists()


def test_squash_merge_on_the_base_itself(repo: Path) -> None:
    with pytest.raises(GitError, match="base branch main itself"):
        squash_merge(repo)


# ------------------------------------------------------------------ rebase


def test_rebase_onto_moved_base(repo: Path, task: TaskWorktree, git: GitRun, updater: str) -> None:
    base_head = commit_file(repo, "other.txt", "other\n", "Unrelated base work")
    before = git(task.path, "rev-parse", "HEAD")
    result = rebase_onto_base(task.path)
    assert (result.before, result.replayed, result.dropped) == (before, 2, 0)
    assert (
        result.after == git(task.path, "rev-parse", "HEAD") == git(repo, "rev-parse", task.branch)
    )
    assert git(task.path, "merge-base", "HEAD", "main") == base_head
    assert git(task.path, "log", "--format=%s", "main..HEAD").splitlines() == [
        "Return 42",
        "Add feature file",
    ]
    # Authors are kept; we are the committer (libgit2 reads user.name from the repo config).
    original_author = git(task.path, "log", "-1", "--format=%an <%ae> %at", before)
    assert git(task.path, "log", "-1", "--format=%an <%ae> %at", "HEAD") == original_author
    assert git(task.path, "log", "-1", "--format=%cn", "HEAD") == "Test User"
    assert git(task.path, "status", "--porcelain") == ""
    assert (task.path / "other.txt").read_text() == "other\n"
    assert git(repo, "status", "--porcelain") == ""
    assert not list((repo / ".git" / "worktrees").glob("*/rebase-merge"))


def test_rebase_drops_commits_already_in_base(repo: Path, task: TaskWorktree, git: GitRun) -> None:
    commit_file(repo, "feature.txt", "feature\n", "Same change landed on main")
    result = rebase_onto_base(task.path)
    assert (result.replayed, result.dropped) == (1, 1)
    assert git(task.path, "log", "--format=%s", "main..HEAD").splitlines() == ["Return 42"]


def test_rebase_up_to_date_is_a_no_op(task: TaskWorktree, git: GitRun) -> None:
    before = git(task.path, "rev-parse", "HEAD")
    result = rebase_onto_base(task.path)
    assert result.before == result.after == before and result.replayed == 0


def test_rebase_conflict_leaves_everything_as_it_was(
    repo: Path, task: TaskWorktree, git: GitRun
) -> None:
    commit_file(repo, "src/app.py", "def main():\n    return -1\n", "conflicting base edit")
    before = _snapshot(git, repo, task)
    with pytest.raises(MergeConflict) as info:
        rebase_onto_base(task.path)
    assert info.value.files == ["src/app.py"]
    assert "Return 42" in str(info.value)
    assert _snapshot(git, repo, task) == before
    assert "rebase" not in git(task.path, "status")
    assert not list((repo / ".git" / "worktrees").glob("*/rebase-*"))


def test_rebase_refuses_dirty_worktree(repo: Path, task: TaskWorktree, git: GitRun) -> None:
    commit_file(repo, "other.txt", "other\n", "base work")
    write(task.path / "src" / "app.py", "uncommitted\n")
    before = _snapshot(git, repo, task)
    with pytest.raises(UnsafeOperation, match="before you rebase"):
        rebase_onto_base(task.path)
    assert _snapshot(git, repo, task) == before


def test_rebase_refuses_detached_head(task: TaskWorktree, git: GitRun) -> None:
    git(task.path, "checkout", "-q", "--detach")
    with pytest.raises(UnsafeOperation, match="not on a branch"):
        rebase_onto_base(task.path)
