from __future__ import annotations

from pathlib import Path

import pytest

from aura_core.git.commit import commit_all, head
from aura_core.git.diff import diff_commits, diff_uncommitted, diff_worktree
from aura_core.git.errors import GitError
from aura_core.git.worktree import create_worktree
from tests.core.git.conftest import GitRun, commit_file, write


def _numstat(git: GitRun, cwd: Path, *args: str) -> dict[str, tuple[int, int]]:
    out: dict[str, tuple[int, int]] = {}
    for line in git(cwd, "diff", "--numstat", "--no-renames", *args).splitlines():
        ins, dels, path = line.split("\t")
        out[path] = (int(ins), int(dels))
    return out


def test_worktree_diff_covers_committed_uncommitted_and_untracked(
    repo: Path, wt_root: Path, git: GitRun
) -> None:
    wt = create_worktree(repo, "a" * 32, "diff", wt_root).path
    commit_file(wt, "src/app.py", "def main():\n    return 2\n", "turn 1")  # committed
    write(wt / "src" / "util.py", "X = 1\nY = 2\nZ = 3\n")  # unstaged
    write(wt / "staged.txt", "s\n")
    git(wt, "add", "staged.txt")  # staged
    write(wt / "notes" / "new.md", "one\ntwo\n")  # untracked
    (wt / "README.md").unlink()  # deleted
    write(wt / "trace.log", "ignored\n")  # ignored: not part of the diff
    # The base moves on after the task started: that must not show up reversed.
    commit_file(repo, "later.txt", "base moved\n", "base work")

    d = diff_worktree(wt)
    by_path = {f.path: f for f in d.files}
    assert set(by_path) == {"src/app.py", "src/util.py", "staged.txt", "notes/new.md", "README.md"}
    assert by_path["src/app.py"].status == "modified"
    assert (by_path["src/app.py"].insertions, by_path["src/app.py"].deletions) == (1, 1)
    assert (by_path["src/util.py"].insertions, by_path["src/util.py"].deletions) == (2, 0)
    assert by_path["notes/new.md"].status == "added" and by_path["notes/new.md"].insertions == 2
    assert by_path["README.md"].status == "deleted" and by_path["README.md"].deletions == 1
    assert d.files_changed == 5 and d.insertions == 6 and d.deletions == 2
    assert d.old == git(wt, "merge-base", "HEAD", "main") and d.new is None
    assert "+    return 2" in d.patch and "+two" in d.patch and "later.txt" not in d.patch
    assert d.patch.startswith("diff --git ")

    # Same figures as the CLI once the untracked file is marked intent-to-add.
    git(wt, "add", "-N", "notes/new.md")
    assert {f.path: (f.insertions, f.deletions) for f in d.files} == _numstat(git, wt, d.old or "")


def test_turn_diff_between_two_commits(repo: Path, git: GitRun) -> None:
    before = head(repo)
    write(repo / "src" / "app.py", "def main():\n    return 3\n\n\ndef extra():\n    pass\n")
    write(repo / "added.txt", "a\nb\nc\n")
    after = commit_all(repo, "turn")
    assert before is not None and after is not None
    d = diff_commits(repo, before, after)
    assert (d.old, d.new) == (before, after)
    assert {f.path: (f.insertions, f.deletions) for f in d.files} == _numstat(
        git, repo, before, after
    )
    assert d.patch == git(repo, "diff", "--no-renames", before, after) + "\n"
    assert diff_commits(repo, after, after).empty


def test_renames_binary_and_first_commit(repo: Path, git: GitRun) -> None:
    before = head(repo)
    assert before is not None
    git(repo, "mv", "src/util.py", "src/helpers.py")
    (repo / "logo.png").write_bytes(b"\x89PNG\x00\x01\x02\x00" * 10)
    after = commit_all(repo, "rename + binary")
    assert after is not None
    d = diff_commits(repo, before, after)
    by_path = {f.path: f for f in d.files}
    assert by_path["src/helpers.py"].status == "renamed"
    assert by_path["src/helpers.py"].old_path == "src/util.py"
    assert by_path["logo.png"].binary and by_path["logo.png"].insertions == 0
    assert "Binary files" in by_path["logo.png"].patch
    first = diff_commits(repo, None, git(repo, "rev-list", "--max-parents=0", "HEAD"))
    assert first.old is None and {f.status for f in first.files} == {"added"}
    assert first.files_changed == 4


def test_uncommitted_diff(repo: Path) -> None:
    assert diff_uncommitted(repo).empty
    write(repo / "README.md", "# demo\nmore\n")
    write(repo / "fresh.txt", "x\n")
    d = diff_uncommitted(repo)
    assert [(f.path, f.status, f.insertions) for f in d.files] == [
        ("README.md", "modified", 1),
        ("fresh.txt", "added", 1),
    ]


def test_file_removed_from_index_but_still_on_disk(repo: Path, git: GitRun) -> None:
    git(repo, "rm", "-q", "--cached", "src/util.py")
    assert diff_uncommitted(repo).empty  # same content on disk: nothing changed
    write(repo / "src" / "util.py", "X = 1\nY = 2\n")
    d = diff_uncommitted(repo)
    assert [(f.path, f.status, f.insertions, f.deletions) for f in d.files] == [
        ("src/util.py", "modified", 1, 0)
    ]
    assert "+Y = 2" in d.patch


def test_unknown_commit(repo: Path) -> None:
    with pytest.raises(GitError, match="is not a commit"):
        diff_commits(repo, "0" * 40, "HEAD")
