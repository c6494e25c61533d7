"""Repairs after a crash mid-checkout: recreate tracked files that never got written."""

from __future__ import annotations

import pygit2

from aura_core.git.repo import PathLike, open_repo


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
