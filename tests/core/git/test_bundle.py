"""A branch's commits carried between clones as a bundle, then diffed and merged there."""

from __future__ import annotations

from pathlib import Path

import pytest

from aura_core.git.bundle import (
    UnknownBranch,
    create_bundle,
    drop_remote_ref,
    have_commits,
    import_bundle,
)
from aura_core.git.diff import diff_branch
from aura_core.git.errors import GitError, UnsafeOperation
from aura_core.git.merge import squash_merge_branch
from tests.core.git.conftest import GitRun, MakeRepo, commit_file, write

BRANCH = "aura/abcd1234-feature"


@pytest.fixture
def pair(make_repo: MakeRepo, git: GitRun, tmp_path: Path) -> tuple[Path, Path]:
    """(local repo, a clone of it standing for a worker's) with two commits on BRANCH there."""
    local = make_repo("local")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(local), str(clone))
    git(clone, "config", "user.name", "Worker")
    git(clone, "config", "user.email", "worker@example.com")
    git(clone, "checkout", "-qb", BRANCH)
    commit_file(clone, "feature.txt", "feature\n", "Add feature")
    commit_file(clone, "src/app.py", "def main():\n    return 42\n", "Return 42")
    git(clone, "checkout", "-q", "main")
    return local, clone


def _fetch(local: Path, clone: Path) -> str:
    bundle = create_bundle(clone, BRANCH, base="main", have=have_commits(local, BRANCH, "main"))
    return import_bundle(local, BRANCH, bundle.head, bundle.data).after


def test_fetch_then_diff_and_squash_merge_the_branch(pair: tuple[Path, Path], git: GitRun) -> None:
    local, clone = pair
    tip = _fetch(local, clone)
    assert tip == git(clone, "rev-parse", BRANCH) == git(local, "rev-parse", BRANCH)
    diff = diff_branch(local, BRANCH, "main")
    assert [(f.path, f.status) for f in diff.files] == [
        ("feature.txt", "added"),
        ("src/app.py", "modified"),
    ]
    assert diff.new == tip and diff.old == git(local, "rev-parse", "main")
    result = squash_merge_branch(local, BRANCH, base="main", message="Feature")
    assert result.commit == git(local, "rev-parse", "main")
    assert git(local, "log", "-1", "--format=%s", "main") == "Feature"
    assert (local / "feature.txt").read_text() == "feature\n"  # main's checkout came along
    assert git(local, "status", "--porcelain") == ""
    assert git(local, "rev-parse", BRANCH) == tip  # the branch itself is left as it was
    assert drop_remote_ref(local, BRANCH)
    assert git(local, "for-each-ref", "refs/aura") == ""


def test_later_commits_fast_forward_the_local_branch_and_its_clean_checkout(
    pair: tuple[Path, Path], git: GitRun, tmp_path: Path
) -> None:
    local, clone = pair
    _fetch(local, clone)
    shown = tmp_path / "shown"
    git(local, "worktree", "add", "-q", str(shown), BRANCH)
    git(clone, "checkout", "-q", BRANCH)
    new = commit_file(clone, "more.txt", "more\n", "More")
    bundle = create_bundle(clone, BRANCH, base="main", have=have_commits(local, BRANCH, "main"))
    assert bundle.data is not None and len(bundle.prerequisites) >= 1
    update = import_bundle(local, BRANCH, bundle.head, bundle.data)
    assert update.after == new and update.before == git(local, "rev-parse", f"{BRANCH}~1")
    assert (shown / "more.txt").read_text() == "more\n"
    assert git(shown, "status", "--porcelain") == ""
    # nothing new: no bundle at all, nothing moves
    again = create_bundle(clone, BRANCH, base="main", have=have_commits(local, BRANCH, "main"))
    assert again.data is None and again.head == new
    assert import_bundle(local, BRANCH, again.head, None).before == new


def test_a_local_branch_with_its_own_commits_or_a_dirty_checkout_is_not_moved(
    pair: tuple[Path, Path], git: GitRun, tmp_path: Path
) -> None:
    local, clone = pair
    git(local, "branch", BRANCH, "main")
    git(local, "checkout", "-q", BRANCH)
    mine = commit_file(local, "mine.txt", "mine\n", "Mine")
    git(local, "checkout", "-q", "main")
    bundle = create_bundle(clone, BRANCH, base="main", have=have_commits(local, BRANCH, "main"))
    with pytest.raises(UnsafeOperation, match="has 1 commit\\(s\\) the worker's does not"):
        import_bundle(local, BRANCH, bundle.head, bundle.data)
    assert git(local, "rev-parse", BRANCH) == mine
    # an older copy checked out with local edits: the fast-forward is refused, nothing changes
    git(local, "branch", "-f", BRANCH, "main")
    shown = tmp_path / "shown"
    git(local, "worktree", "add", "-q", str(shown), BRANCH)
    write(shown / "src" / "app.py", "edited\n")
    with pytest.raises(UnsafeOperation, match="uncommitted changes"):
        import_bundle(local, BRANCH, bundle.head, bundle.data)
    assert git(local, "rev-parse", BRANCH) == git(local, "rev-parse", "main")
    assert (shown / "src" / "app.py").read_text() == "edited\n"


def test_unknown_branches_and_bad_names(pair: tuple[Path, Path]) -> None:
    local, clone = pair
    with pytest.raises(UnknownBranch):
        create_bundle(clone, "aura/nope")
    for bad in ("-x", "a..b", ""):
        with pytest.raises(GitError, match="not a valid branch name"):
            create_bundle(clone, bad)
    with pytest.raises(GitError, match="is not in"):
        import_bundle(local, BRANCH, "f" * 40, None)
