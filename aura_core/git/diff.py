"""Unified diffs with stats: a task's whole change against its base, or one agent turn's change.

The worktree diff covers committed, staged, unstaged and untracked (not ignored) work, i.e. what
would be merged if everything were committed now. It starts from the merge base with the base
branch, so commits landing on the base later don't show up reversed in the task's diff.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pygit2
from pygit2.enums import DeltaStatus, DiffFind, DiffOption

from aura_core.git.errors import GitError
from aura_core.git.repo import (
    PathLike,
    branch_tip,
    default_base_branch,
    head_oid,
    open_repo,
    repo_root,
)

_STATUS: dict[DeltaStatus, str] = {
    DeltaStatus.ADDED: "added",
    DeltaStatus.UNTRACKED: "added",
    DeltaStatus.DELETED: "deleted",
    DeltaStatus.MODIFIED: "modified",
    DeltaStatus.RENAMED: "renamed",
    DeltaStatus.COPIED: "copied",
    DeltaStatus.TYPECHANGE: "typechange",
    DeltaStatus.CONFLICTED: "conflicted",
}
_WORKDIR_FLAGS = (
    DiffOption.INCLUDE_UNTRACKED
    | DiffOption.RECURSE_UNTRACKED_DIRS
    | DiffOption.SHOW_UNTRACKED_CONTENT
    | DiffOption.INCLUDE_TYPECHANGE
)
_FIND = DiffFind.FIND_RENAMES | DiffFind.FIND_FOR_UNTRACKED


@dataclass(frozen=True, slots=True)
class FileDiff:
    path: str
    old_path: str | None  # set for renames and copies
    status: str  # added, deleted, modified, renamed, copied, typechange, conflicted
    insertions: int
    deletions: int
    binary: bool
    patch: str


@dataclass(frozen=True, slots=True)
class DiffResult:
    """A unified diff (`patch`) with per-file and total stats."""

    old: str | None  # commit the diff starts from; None = the empty tree
    new: str | None  # commit it ends at; None = the working tree
    files: tuple[FileDiff, ...]
    patch: str

    @property
    def files_changed(self) -> int:
        return len(self.files)

    @property
    def insertions(self) -> int:
        return sum(f.insertions for f in self.files)

    @property
    def deletions(self) -> int:
        return sum(f.deletions for f in self.files)

    @property
    def empty(self) -> bool:
        return not self.files


def _file_diff(patch: pygit2.Patch | None) -> FileDiff | None:
    """Copy what we need out of a libgit2 patch while its diff and buffers are still alive."""
    if patch is None:
        return None
    delta = patch.delta
    status = _STATUS.get(delta.status)
    if status is None:
        return None  # unmodified / ignored / unreadable entries carry no change
    _, insertions, deletions = patch.line_stats
    renamed = delta.status in (DeltaStatus.RENAMED, DeltaStatus.COPIED)
    return FileDiff(
        path=delta.new_file.path,
        old_path=delta.old_file.path if renamed else None,
        status=status,
        insertions=insertions,
        deletions=deletions,
        binary=bool(delta.is_binary),
        patch=patch.data.decode("utf-8", "replace"),
    )


def _files(diff: pygit2.Diff) -> list[FileDiff]:
    diff.find_similar(flags=_FIND)
    return [f for f in map(_file_diff, diff) if f is not None]


def _result(files: list[FileDiff], old: str | None, new: str | None) -> DiffResult:
    files = sorted(files, key=lambda f: f.path)
    return DiffResult(old=old, new=new, files=tuple(files), patch="".join(f.patch for f in files))


def _commit(repo: pygit2.Repository, rev: str) -> pygit2.Commit:
    try:
        commit = repo.revparse_single(rev).peel(pygit2.Commit)
    except (KeyError, ValueError, pygit2.GitError) as exc:
        raise GitError(f"{rev!r} is not a commit in {repo_root(repo)}") from exc
    assert isinstance(commit, pygit2.Commit)
    return commit


def _to_workdir(
    repo: pygit2.Repository, tree: pygit2.Tree | None, context_lines: int
) -> list[FileDiff]:
    """tree → index → working tree: what `git diff <tree>` shows, plus untracked files.

    Going through the index reuses its stat cache (diffing a tree straight against the working
    tree hashes every file: ~30x slower on 10,000 files). libgit2's diff merge drops untracked
    entries, so those are added from the index → working tree diff afterwards.
    """
    index = repo.index
    index.read()
    if tree is None:  # a branch with no commits yet: start from the empty tree
        empty = repo[repo.TreeBuilder().write()]
        assert isinstance(empty, pygit2.Tree)
        tree = empty
    combined = tree.diff_to_index(index, context_lines=context_lines)
    unstaged = index.diff_to_workdir(flags=_WORKDIR_FLAGS, context_lines=context_lines)
    combined.merge(unstaged)
    files = _files(combined)
    deleted = {f.path for f in files if f.status == "deleted"}
    for patch in unstaged:
        if patch is None or patch.delta.status != DeltaStatus.UNTRACKED:
            continue
        path = patch.delta.new_file.path
        if path in deleted:
            # Removed from the index (git rm --cached) yet still on disk: compare tree and file.
            files = [f for f in files if f.path != path]
            blob = repo[tree[path].id]
            assert isinstance(blob, pygit2.Blob)
            on_disk = (Path(repo.workdir) / path).read_bytes()
            patch = blob.diff_to_buffer(on_disk, old_as_path=path, buffer_as_path=path)
        found = _file_diff(patch)  # now, while on_disk is still referenced
        if found is not None:
            files.append(found)
    return files


def _start(repo: pygit2.Repository, base: str, tip: pygit2.Oid | None) -> pygit2.Commit:
    """Where a task's diff starts: the merge base of its tip with `base` (base's tip if none)."""
    base_commit = branch_tip(repo, base)
    if tip is not None:
        merge_base = repo.merge_base(tip, base_commit.id)
        if merge_base is not None:
            return _commit(repo, str(merge_base))
    return base_commit


def diff_worktree(path: PathLike, base: str | None = None, *, context_lines: int = 3) -> DiffResult:
    """Everything the task changed: from the merge base with `base` to the working tree."""
    repo = open_repo(path)
    base = base or default_base_branch(path)
    tip = None if repo.head_is_unborn else head_oid(repo)
    start = _start(repo, base, tip)
    return _result(_to_workdir(repo, start.tree, context_lines), str(start.id), None)


def diff_branch(
    path: PathLike, branch: str, base: str | None = None, *, context_lines: int = 3
) -> DiffResult:
    """A branch's committed change, from its merge base with `base` to its tip, for a branch no
    worktree here shows (a task that ran on a worker, its commits fetched into this repo)."""
    repo = open_repo(path)
    base = base or default_base_branch(path)
    tip = branch_tip(repo, branch)
    start = _start(repo, base, tip.id)
    diff = start.tree.diff_to_tree(tip.tree, context_lines=context_lines)
    return _result(_files(diff), str(start.id), str(tip.id))


def diff_uncommitted(path: PathLike, *, context_lines: int = 3) -> DiffResult:
    """What is not committed yet: HEAD to the working tree, untracked files included."""
    repo = open_repo(path)
    if repo.head_is_unborn:
        return _result(_to_workdir(repo, None, context_lines), None, None)
    head_commit = _commit(repo, "HEAD")
    return _result(_to_workdir(repo, head_commit.tree, context_lines), str(head_commit.id), None)


def diff_commits(
    path: PathLike, old: str | None, new: str, *, context_lines: int = 3
) -> DiffResult:
    """Between two commits, e.g. HEAD before and after an agent turn; old=None: from nothing."""
    repo = open_repo(path)
    new_commit = _commit(repo, new)
    if old is None:
        diff = new_commit.tree.diff_to_tree(context_lines=context_lines, swap=True)
        return _result(_files(diff), None, str(new_commit.id))
    old_commit = _commit(repo, old)
    diff = old_commit.tree.diff_to_tree(new_commit.tree, context_lines=context_lines)
    return _result(_files(diff), str(old_commit.id), str(new_commit.id))
