"""Repairs after a crash: tracked files a killed checkout never wrote, and git's lock files a
killed commit left behind (`index.lock` would refuse every later commit in that worktree)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pygit2

from aura_core.git.repo import PathLike, common_dir, open_repo


def restore_missing(path: PathLike) -> list[str]:
    """Recreate tracked files missing from a worktree; never touches modified or new files.

    A checkout killed halfway leaves some files unwritten; they show as deleted. Files the
    agent really deleted later would look the same, so callers use this only when the event log
    shows that the workspace was never reported prepared.
    """
    repo = open_repo(path)
    missing = [
        name
        for name, flags in repo.status(untracked_files="no").items()
        if flags & pygit2.enums.FileStatus.WT_DELETED
    ]
    if missing:
        strategy = (
            pygit2.enums.CheckoutStrategy.SAFE | pygit2.enums.CheckoutStrategy.RECREATE_MISSING
        )
        repo.checkout_head(strategy=strategy, paths=missing)
    return sorted(missing)


def clear_stale_locks(path: PathLike, branch: str | None = None) -> list[str]:
    """Remove the lock files of one worktree: its index and HEAD, and its branch's ref.

    Only for a worktree whose owner is known to be dead (crash recovery): git takes these locks
    for a moment while committing, and a process killed in that moment leaves them forever.
    """
    try:
        repo = open_repo(path)
    except Exception:
        return []
    gitdir = Path(repo.path)
    common = common_dir(repo)
    candidates = [gitdir / "index.lock", gitdir / "HEAD.lock"]
    if branch:
        candidates.append(common / "refs" / "heads" / f"{branch}.lock")
    removed = []
    for lock in candidates:
        with contextlib.suppress(FileNotFoundError):
            lock.unlink()
            removed.append(str(lock))
    return removed
