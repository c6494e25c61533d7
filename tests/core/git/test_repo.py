from __future__ import annotations

from pathlib import Path

import pytest

from aura_core.git import repo as gitrepo
from aura_core.git.errors import GitError, NotAGitRepo
from tests.core.git.conftest import GitRun, MakeRepo, commit_file, run_git, write


def test_find_repo_from_a_subfolder(repo: Path) -> None:
    assert gitrepo.find_repo(repo / "src") == repo


def test_not_a_repo_says_what_to_do(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(NotAGitRepo, match="run git init or pass --cwd"):
        gitrepo.find_repo(plain)
    with pytest.raises(NotAGitRepo, match="does not exist"):
        gitrepo.find_repo(tmp_path / "missing")


def test_current_branch_and_head(repo: Path, git: GitRun) -> None:
    assert gitrepo.current_branch(repo) == "main"
    assert gitrepo.head(repo) == git(repo, "rev-parse", "HEAD")
    git(repo, "checkout", "-q", "--detach")
    assert gitrepo.current_branch(repo) is None


def test_unborn_branch(tmp_path: Path, git: GitRun) -> None:
    root = tmp_path / "empty"
    root.mkdir()
    git(root, "init", "-q", "-b", "trunk")
    assert gitrepo.current_branch(root) == "trunk"
    assert gitrepo.head(root) is None
    with pytest.raises(GitError, match="base branch"):
        gitrepo.default_base_branch(root)


def test_default_base_prefers_main_over_current_branch(repo: Path, git: GitRun) -> None:
    git(repo, "checkout", "-q", "-b", "feature")
    assert gitrepo.default_base_branch(repo) == "main"


def test_default_base_master(make_repo: MakeRepo) -> None:
    assert gitrepo.default_base_branch(make_repo("m", branch="master")) == "master"


def test_default_base_follows_origin_head(repo: Path, git: GitRun) -> None:
    git(repo, "branch", "develop")
    git(repo, "update-ref", "refs/remotes/origin/develop", "HEAD")
    git(repo, "symbolic-ref", "refs/remotes/origin/HEAD", "refs/remotes/origin/develop")
    assert gitrepo.default_base_branch(repo) == "develop"


def test_default_base_from_init_default_branch(make_repo: MakeRepo, git: GitRun) -> None:
    root = make_repo("r", branch="stable")
    git(root, "branch", "main")
    git(root, "config", "init.defaultBranch", "stable")
    assert gitrepo.default_base_branch(root) == "stable"


def test_default_base_falls_back_to_main_worktree_branch(make_repo: MakeRepo) -> None:
    assert gitrepo.default_base_branch(make_repo("r", branch="production")) == "production"


def test_is_clean_counts_untracked_but_not_ignored(repo: Path, git: GitRun) -> None:
    assert gitrepo.is_clean(repo)
    write(repo / "debug.log", "ignored\n")
    write(repo / "build" / "out.bin", "ignored\n")
    assert gitrepo.is_clean(repo)
    assert git(repo, "status", "--porcelain") == ""
    write(repo / "notes" / "todo.txt", "untracked\n")
    assert not gitrepo.is_clean(repo)
    assert gitrepo.changed_files(repo) == ["notes/todo.txt"]
    (repo / "notes" / "todo.txt").unlink()
    write(repo / "README.md", "changed\n")
    assert not gitrepo.is_clean(repo)
    git(repo, "add", "README.md")
    assert not gitrepo.is_clean(repo)
    assert git(repo, "status", "--porcelain") == "M  README.md"


def test_status_ahead_behind(repo: Path, git: GitRun) -> None:
    git(repo, "checkout", "-q", "-b", "task")
    commit_file(repo, "a.txt", "a\n", "a")
    commit_file(repo, "b.txt", "b\n", "b")
    git(repo, "checkout", "-q", "main")
    commit_file(repo, "c.txt", "c\n", "c")
    git(repo, "checkout", "-q", "task")
    st = gitrepo.status(repo)
    assert (st.branch, st.base, st.ahead, st.behind) == ("task", "main", 2, 1)
    assert st.clean and st.operation is None
    assert st.head == git(repo, "rev-parse", "HEAD")
    assert git(repo, "rev-list", "--left-right", "--count", "task...main") == "2\t1"


def _conflicting_branches(repo: Path, git: GitRun) -> None:
    git(repo, "checkout", "-q", "-b", "other")
    commit_file(repo, "README.md", "other\n", "other")
    git(repo, "checkout", "-q", "main")
    commit_file(repo, "README.md", "main\n", "main")


def test_status_merge_in_progress(repo: Path, git: GitRun) -> None:
    _conflicting_branches(repo, git)
    run_git(repo, "merge", "other", check=False)
    st = gitrepo.status(repo)
    assert st.merge_in_progress and not st.rebase_in_progress
    assert gitrepo.operation_in_progress(repo) == "merge"
    assert not st.clean


def test_status_rebase_in_progress(repo: Path, git: GitRun) -> None:
    _conflicting_branches(repo, git)
    git(repo, "checkout", "-q", "other")
    run_git(repo, "rebase", "main", check=False)
    assert "rebase" in git(repo, "status")
    st = gitrepo.status(repo)
    assert st.rebase_in_progress and st.operation == "rebase"
    assert st.branch is None  # git detaches HEAD while rebasing
