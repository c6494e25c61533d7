"""Git for AURA: one worktree per task, safe removal, diffs, per-turn commits, squash-merge/rebase.

Modules: repo (find a repo, read its state), worktree (create/list/remove/prune/orphans), diff,
commit, merge. Built on pygit2; the git CLI only where it does the job better (see worktree.py).
Only the errors are re-exported here, so importing them stays cheap.
"""

from aura_core.git.errors import (
    GitCommandError,
    GitError,
    MergeConflict,
    NotAGitRepo,
    UnsafeOperation,
)

__all__ = ["GitCommandError", "GitError", "MergeConflict", "NotAGitRepo", "UnsafeOperation"]
