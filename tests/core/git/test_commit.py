from __future__ import annotations

from pathlib import Path

import pytest

from aura_core.git.commit import commit_all, commit_message, head
from aura_core.git.errors import UnsafeOperation
from aura_core.git.worktree import create_worktree
from tests.core.git.conftest import GitRun, commit_file, write


def test_commit_message_shapes_free_text() -> None:
    assert commit_message("Add login form") == "Add login form\n"
    assert (
        commit_message("\n\n## Summary\nDid things\n- a\n- b\n")
        == "Summary\n\nDid things\n- a\n- b\n"
    )
    assert commit_message("   \n") == "AURA: agent turn\n"
    long = "Implemented " + "the very long description of the change " * 4
    msg = commit_message(long)
    subject, _, body = msg.partition("\n\n")
    assert len(subject) <= 72 and subject.endswith("…")
    assert body.startswith(long.strip())  # nothing lost


def test_commit_all_adds_new_modified_deleted_but_not_ignored(
    repo: Path, wt_root: Path, git: GitRun
) -> None:
    wt = create_worktree(repo, "a" * 32, "turn", wt_root).path
    before = head(wt)
    write(wt / "src" / "app.py", "def main():\n    return 2\n")
    write(wt / "src" / "new_module.py", "Y = 2\n")
    write(wt / "docs" / "deep" / "guide.md", "hi\n")
    (wt / "src" / "util.py").unlink()
    write(wt / "run.log", "ignored\n")
    write(wt / "build" / "artifact.bin", "ignored\n")

    sha = commit_all(wt, "Agent turn 1: change app\n\nDetails here")
    assert sha is not None and sha == git(wt, "rev-parse", "HEAD") == head(wt)
    assert git(wt, "rev-parse", "HEAD~1") == before
    assert git(wt, "show", "--name-status", "--format=", "HEAD").splitlines() == [
        "A\tdocs/deep/guide.md",
        "M\tsrc/app.py",
        "A\tsrc/new_module.py",
        "D\tsrc/util.py",
    ]
    assert git(wt, "log", "-1", "--format=%s") == "Agent turn 1: change app"
    assert git(wt, "log", "-1", "--format=%b") == "Details here"
    assert git(wt, "log", "-1", "--format=%an <%ae>") == "Test User <test@example.com>"
    assert git(wt, "status", "--porcelain") == ""
    assert git(wt, "status", "--porcelain", "--ignored").splitlines() == ["!! build/", "!! run.log"]
    # The main checkout is untouched: only the task branch moved.
    assert git(repo, "status", "--porcelain") == ""
    assert git(repo, "rev-parse", "main") == before


def test_commit_all_returns_none_when_nothing_changed(repo: Path, git: GitRun) -> None:
    before = git(repo, "rev-parse", "HEAD")
    assert commit_all(repo, "nothing") is None
    write(repo / "x.log", "ignored only\n")
    assert commit_all(repo, "nothing") is None
    assert git(repo, "rev-parse", "HEAD") == before


def test_commit_all_long_subject_is_cut(repo: Path, git: GitRun) -> None:
    write(repo / "f.txt", "x\n")
    commit_all(repo, "word " * 40)
    subject = git(repo, "log", "-1", "--format=%s")
    assert len(subject) <= 72


def test_commit_all_first_commit(tmp_path: Path, git: GitRun) -> None:
    root = tmp_path / "fresh"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.name", "Test User")
    git(root, "config", "user.email", "test@example.com")
    assert commit_all(root, "empty") is None
    write(root / "a.txt", "a\n")
    sha = commit_all(root, "first")
    assert sha == git(root, "rev-parse", "HEAD")
    assert git(root, "rev-list", "--count", "HEAD") == "1"


def test_commit_all_refuses_during_merge(repo: Path, git: GitRun) -> None:
    git(repo, "checkout", "-q", "-b", "other")
    commit_file(repo, "README.md", "other\n", "other")
    git(repo, "checkout", "-q", "main")
    commit_file(repo, "README.md", "main\n", "main")
    before = git(repo, "rev-parse", "HEAD")
    git(repo, "merge", "other", check=False)
    with pytest.raises(UnsafeOperation, match="merge is in progress"):
        commit_all(repo, "agent turn")
    assert git(repo, "rev-parse", "HEAD") == before
