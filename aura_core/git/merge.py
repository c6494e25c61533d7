"""Land a task: squash-merge its branch into the base, or rebase it onto the base. Never half-done.

Both operations are computed in memory first (libgit2 merges trees without touching any working
tree), so a conflict aborts with nothing changed and no rebase/merge state left behind. Only once
the result is known do we move a branch, under a ref lock, and bring the one checkout that shows
that branch up to date.

The base branch is usually checked out in the main repository. Moving `refs/heads/main` under it
without updating its files would make that checkout look as if someone had reverted the merge
(every merged change appearing as an uncommitted, staged undo). So when the base is checked out
and clean, its index and files are updated to the new commit too, like a fast-forward there; when
it has local changes to tracked files, or an operation in progress, the merge is refused. Untracked
files there are fine unless the merge would overwrite them (then the update refuses and, again,
nothing changes).

That update is `git read-tree -m -u <old> <new>`: a two-tree "fast-forward" of index and files
that checks everything before writing anything, and runs the repository's own smudge filters
(git-lfs and the like) so the person's checkout gets real content. Without a git executable,
libgit2's safe checkout does the same job (built-in filters only).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pygit2
from pygit2.enums import CheckoutStrategy, SortMode

from aura_core.git._cli import have_git, run_git
from aura_core.git.commit import commit_message
from aura_core.git.errors import GitCommandError, GitError, MergeConflict, UnsafeOperation
from aura_core.git.repo import (
    PathLike,
    _changed_files,
    _operation,
    _symbolic_branch,
    branch_tip,
    default_base_branch,
    head_oid,
    main_repo,
    open_repo,
    repo_root,
    signature,
    tracked_changes,
)
from aura_core.git.worktree import WorktreeInfo, checkouts_of, unmerged_commits


@dataclass(frozen=True, slots=True)
class MergeResult:
    branch: str
    base: str
    base_before: str
    commit: str | None  # the squash commit on base; None when everything was already merged
    updated_checkout: Path | None  # where base is checked out and its files were brought along


@dataclass(frozen=True, slots=True)
class RebaseResult:
    branch: str
    base: str
    before: str
    after: str
    replayed: int  # commits re-created on top of base
    dropped: int  # commits whose changes were already in base


def _subject(commit: pygit2.Commit) -> str:
    text = commit.message.strip()
    return text.splitlines()[0] if text else ""


def _conflict_paths(index: pygit2.Index) -> list[str]:
    paths: set[str] = set()
    if index.conflicts is not None:
        for ancestor, ours, theirs in index.conflicts:
            entry = ours or theirs or ancestor
            if entry is not None:
                paths.add(entry.path)
    return sorted(paths)


def _prepare(path: PathLike, base: str | None, verb: str) -> tuple[pygit2.Repository, str, str]:
    """Checks shared by merge and rebase: on a branch, nothing in progress, nothing uncommitted."""
    repo = open_repo(path)
    where = repo_root(repo)
    branch = _symbolic_branch(repo)
    if branch is None or repo.head_is_unborn:
        raise UnsafeOperation(
            f"{where} is not on a branch with commits; check out the task branch to {verb}"
        )
    base = base or default_base_branch(where)
    if base == branch:
        raise GitError(f"{where} has the base branch {base} itself checked out; nothing to {verb}")
    operation = _operation(repo)
    if operation is not None:
        raise UnsafeOperation(
            f"a {operation} is in progress in {where}; finish or abort it before you {verb}"
        )
    dirty = _changed_files(repo)
    if dirty:
        shown = ", ".join(dirty[:3]) + (", …" if len(dirty) > 3 else "")
        raise UnsafeOperation(
            f"{where} has uncommitted changes in {len(dirty)} file(s) ({shown}); "
            f"commit or discard them before you {verb}"
        )
    return repo, branch, base


def _live_checkout(repo: pygit2.Repository, base: str) -> WorktreeInfo | None:
    """The worktree showing base, after checking it can safely follow the branch move."""
    live: WorktreeInfo | None = None
    for wt in checkouts_of(repo, base):
        if not wt.exists:
            continue  # stale registration: only the ref matters
        if wt.operation is not None:
            raise UnsafeOperation(
                f"a {wt.operation} is in progress in {wt.path}, where {base} is checked out; "
                "finish or abort it first"
            )
        dirty = tracked_changes(pygit2.Repository(str(wt.path)))
        if dirty:
            shown = ", ".join(dirty[:3]) + (", …" if len(dirty) > 3 else "")
            raise UnsafeOperation(
                f"{base} is checked out at {wt.path} with uncommitted changes ({shown}); "
                "commit or stash them there first"
            )
        live = wt
    return live


def _move_branch(
    main: pygit2.Repository,
    branch: str,
    expected: pygit2.Oid,
    new: pygit2.Oid,
    checkout: Path | None,
    reason: str,
) -> None:
    """Point branch at new, updating the checkout showing it, all under the branch's ref lock.

    The lock keeps anyone else from moving the branch between our check and our update; the
    files are updated before the ref moves because both updaters compare them against HEAD.
    """
    refname = f"refs/heads/{branch}"
    with main.transaction() as txn:
        txn.lock_ref(refname)
        if main.lookup_reference(refname).target != expected:
            raise GitError(f"{branch} moved while we were working; nothing was changed, try again")
        if checkout is not None:
            try:
                _fast_forward_files(checkout, expected, new)
            except (pygit2.GitError, GitCommandError) as exc:
                raise UnsafeOperation(
                    f"cannot bring {checkout} along to the new {branch} ({exc}); move away the "
                    "files in the way and retry; nothing was changed"
                ) from exc
        txn.set_target(refname, new, message=reason)


def _fast_forward_files(checkout: Path, old: pygit2.Oid, new: pygit2.Oid) -> None:
    """Bring a clean checkout's index and files from commit old to commit new, or fail untouched."""
    if have_git():
        run_git(["read-tree", "-m", "-u", str(old), str(new)], checkout)
        return
    shown = pygit2.Repository(str(checkout))
    shown.checkout_tree(shown[new], strategy=CheckoutStrategy.SAFE)


def squash_merge(
    worktree_path: PathLike, *, base: str | None = None, message: str | None = None
) -> MergeResult:
    """Squash the task branch checked out at worktree_path into one commit on base.

    Refuses (UnsafeOperation) a dirty task worktree, an operation in progress, or a base checked
    out elsewhere with local changes. Raises MergeConflict (nothing changed) on conflicts.
    """
    repo, branch, base = _prepare(worktree_path, base, "merge")
    return _squash(main_repo(repo), branch, head_oid(repo), base, message)


def squash_merge_branch(
    repo_path: PathLike, branch: str, *, base: str | None = None, message: str | None = None
) -> MergeResult:
    """Squash a local branch that no task worktree here shows (a task that ran on a worker,
    its commits fetched into this repository) into one commit on base, as squash_merge does."""
    main = main_repo(open_repo(repo_path))
    base = base or default_base_branch(repo_path)
    if base == branch:
        raise GitError(f"{branch} is the base branch itself; nothing to merge")
    return _squash(main, branch, branch_tip(main, branch).id, base, message)


def _squash(
    main: pygit2.Repository,
    branch: str,
    tip_id: pygit2.Oid,
    base: str,
    message: str | None,
) -> MergeResult:
    live = _live_checkout(main, base)
    base_commit = branch_tip(main, base)
    tip = main[tip_id]
    assert isinstance(tip, pygit2.Commit)
    result = MergeResult(
        branch=branch,
        base=base,
        base_before=str(base_commit.id),
        commit=None,
        updated_checkout=None,
    )
    pending = unmerged_commits(main, tip.id, base)
    if not pending:
        return result
    index = main.merge_commits(base_commit, tip)
    conflicts = _conflict_paths(index)
    if conflicts:
        raise MergeConflict(
            f"merging {branch} into {base} conflicts in {len(conflicts)} file(s) "
            f"({', '.join(conflicts[:5])}); nothing was changed; rebase {branch} onto {base} first",
            conflicts,
        )
    tree_id = index.write_tree(main)
    squashed = "\n".join(
        f"* {c.message.strip().splitlines()[0]}"
        for c in (main[oid] for oid in reversed([pygit2.Oid(hex=h) for h in pending]))
        if isinstance(c, pygit2.Commit) and c.message.strip()
    )
    text = message or f"Squash merge {branch} into {base}"
    full = commit_message(text).rstrip("\n") + (
        f"\n\nSquashed commits:\n{squashed}\n" if squashed else "\n"
    )
    sig = signature(main)
    new = main.create_commit(None, sig, sig, full, tree_id, [base_commit.id])
    checkout = live.path if live is not None else None
    _move_branch(main, base, base_commit.id, new, checkout, f"aura: squash merge {branch}")
    return MergeResult(
        branch=branch,
        base=base,
        base_before=str(base_commit.id),
        commit=str(new),
        updated_checkout=checkout,
    )


def rebase_onto_base(worktree_path: PathLike, *, base: str | None = None) -> RebaseResult:
    """Replay the task branch's own commits on top of base's current commit.

    Done in memory, commit by commit (merge commits are flattened like `git rebase` does; commits
    whose changes base already has are dropped). On a conflict, MergeConflict names the files and
    the commit, and nothing was changed. Refuses a dirty worktree or an operation in progress.
    """
    repo, branch, base = _prepare(worktree_path, base, "rebase")
    main = main_repo(repo)
    base_commit = branch_tip(main, base)
    tip = head_oid(repo)
    before = str(tip)
    if tip == base_commit.id or main.descendant_of(tip, base_commit.id):
        return RebaseResult(
            branch=branch, base=base, before=before, after=before, replayed=0, dropped=0
        )
    walker = main.walk(tip, SortMode.TOPOLOGICAL | SortMode.REVERSE)
    walker.hide(base_commit.id)
    commits = [c for c in walker if len(c.parents) == 1]
    committer = signature(main)
    current = base_commit
    replayed = dropped = 0
    for commit in commits:
        parent = commit.parents[0]
        index = main.merge_trees(parent.tree, current.tree, commit.tree)
        conflicts = _conflict_paths(index)
        if conflicts:
            raise MergeConflict(
                f"rebasing {branch} onto {base} conflicts at commit {str(commit.id)[:8]} "
                f"({_subject(commit)}) in {len(conflicts)} file(s) "
                f"({', '.join(conflicts[:5])}); nothing was changed",
                conflicts,
            )
        tree_id = index.write_tree(main)
        if tree_id == current.tree_id and commit.tree_id != parent.tree_id:
            dropped += 1  # its change is already in base
            continue
        oid = main.create_commit(
            None, commit.author, committer, commit.message, tree_id, [current.id]
        )
        new_commit = main[oid]
        assert isinstance(new_commit, pygit2.Commit)
        current = new_commit
        replayed += 1
    _move_branch(
        main, branch, tip, current.id, repo_root(repo), f"aura: rebase {branch} onto {base}"
    )
    return RebaseResult(
        branch=branch,
        base=base,
        before=before,
        after=str(current.id),
        replayed=replayed,
        dropped=dropped,
    )
