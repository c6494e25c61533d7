from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from aura_core import workspace as wsmod
from aura_core.git.errors import GitError, UnsafeOperation
from aura_core.git.worktree import TaskWorktree, create_worktree
from aura_core.workspace import create_workspace, remove_workspace
from tests.core.git.conftest import GitRun, MakeRepo, commit_file, porcelain_worktrees, write

TASK = "0123abcd-0000-4000-8000-000000000000"


@pytest.fixture
def repos(make_repo: MakeRepo) -> list[Path]:
    return [make_repo("backend"), make_repo("frontend", branch="master"), make_repo("docs")]


def test_create_one_worktree_per_repo(repos: list[Path], wt_root: Path, git: GitRun) -> None:
    ws = create_workspace(repos, TASK, "Ship the API", wt_root)
    assert ws.branch == "aura/0123abcd-ship-the-api"
    assert [wt.repo for wt in ws.worktrees] == repos
    assert [wt.base for wt in ws.worktrees] == ["main", "master", "main"]
    for repo, path in zip(repos, ws.paths, strict=True):
        assert path.is_relative_to(wt_root)
        assert str(path) in [e["worktree"] for e in porcelain_worktrees(repo)]
        assert git(path, "rev-parse", "--abbrev-ref", "HEAD") == ws.branch
        assert git(path, "status", "--porcelain") == ""
    assert len({p.parent for p in ws.paths}) == 3  # one folder per repo


def test_per_repo_base(repos: list[Path], wt_root: Path, git: GitRun) -> None:
    git(repos[0], "branch", "release")
    ws = create_workspace(repos[:2], TASK, "x", wt_root, base={str(repos[0]): "release"})
    assert [wt.base for wt in ws.worktrees] == ["release", "master"]


def test_failure_rolls_back_created_worktrees(
    repos: list[Path], wt_root: Path, git: GitRun
) -> None:
    # frontend has no "main" branch: its worktree fails after backend's was created.
    with pytest.raises(GitError, match="'main' does not exist"):
        create_workspace(repos, TASK, "Ship", wt_root, base="main")
    for repo in repos:
        assert len(porcelain_worktrees(repo)) == 1
        assert git(repo, "branch", "--list", "aura/*") == ""
    assert list(wt_root.iterdir()) == []  # not even an empty per-repo folder is left


def test_failure_midway_keeps_what_existed_before(
    repos: list[Path], wt_root: Path, git: GitRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    existing = create_worktree(repos[0], TASK, "Ship", wt_root)  # an earlier, partial attempt
    real = wsmod.create_worktree
    calls: list[Path] = []

    def flaky(repo_path: Path, *args: Any, **kwargs: Any) -> TaskWorktree:
        calls.append(Path(repo_path))
        if len(calls) == 3:
            raise GitError("disk full")
        return real(repo_path, *args, **kwargs)

    monkeypatch.setattr(wsmod, "create_worktree", flaky)
    with pytest.raises(GitError, match="disk full"):
        create_workspace(repos, TASK, "Ship", wt_root)
    assert existing.path.exists()  # it was not ours to undo
    assert str(existing.path) in [e["worktree"] for e in porcelain_worktrees(repos[0])]
    assert len(porcelain_worktrees(repos[1])) == 1
    assert git(repos[1], "branch", "--list", "aura/*") == ""


def test_same_repo_twice_is_refused(repos: list[Path], wt_root: Path) -> None:
    with pytest.raises(GitError, match="listed twice"):
        create_workspace([repos[0], repos[0] / "src"], TASK, "x", wt_root)


def test_remove_workspace_all_or_nothing(repos: list[Path], wt_root: Path, git: GitRun) -> None:
    ws = create_workspace(repos, TASK, "Ship", wt_root)
    commit_file(ws.paths[1], "new.txt", "n\n", "unmerged work")
    write(ws.paths[2] / "draft.md", "unsaved\n")
    with pytest.raises(UnsafeOperation) as info:
        remove_workspace(ws.paths)
    assert "not merged into master" in str(info.value) and "uncommitted" in str(info.value)
    assert all(p.exists() for p in ws.paths)  # none removed, not even the clean one
    assert all(len(porcelain_worktrees(r)) == 2 for r in repos)

    removed = remove_workspace(ws.paths, force=True, delete_branches=True)
    assert [r.branch_deleted for r in removed] == [True, True, True]
    for repo in repos:
        assert len(porcelain_worktrees(repo)) == 1
        assert git(repo, "branch", "--list", "aura/*") == ""


def test_remove_clean_workspace(repos: list[Path], wt_root: Path, git: GitRun) -> None:
    ws = create_workspace(repos, TASK, "Ship", wt_root)
    removed = remove_workspace(ws.paths)
    assert [r.path for r in removed] == ws.paths
    assert not any(p.exists() for p in ws.paths)
    assert all(ws.branch in git(r, "branch", "--format=%(refname:short)") for r in repos)
