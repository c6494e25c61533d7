"""Multi-repo workspaces: one worktree per repo for a task, all or nothing.

A task touching a backend and a frontend repo needs both worktrees or neither: an agent started in a
half-made workspace would edit the wrong tree. So creation rolls back what it made if any repo
fails, and removal checks every worktree before removing any.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from aura_core.git.errors import GitError, UnsafeOperation
from aura_core.git.repo import PathLike, main_repo, open_repo, repo_root
from aura_core.git.worktree import (
    DEFAULT_PREFIX,
    RemovedWorktree,
    TaskWorktree,
    branch_name,
    create_worktree,
    removal_blocker,
    remove_worktree,
)


@dataclass(frozen=True, slots=True)
class Workspace:
    task_id: str
    branch: str
    worktrees: tuple[TaskWorktree, ...]  # in the order the repos were given

    @property
    def paths(self) -> list[Path]:
        return [wt.path for wt in self.worktrees]


def _main_root(path: PathLike) -> Path:
    """Root of the main repository behind a path (itself, or the repo a worktree belongs to)."""
    return repo_root(main_repo(open_repo(path)))


def _base_for(repo: Path, base: str | Mapping[str, str] | None) -> str | None:
    if base is None or isinstance(base, str):
        return base
    for key, value in base.items():
        if _main_root(key) == repo:
            return value
    return None


def create_workspace(
    repos: Sequence[PathLike],
    task_id: str,
    title: str,
    worktrees_root: PathLike,
    *,
    base: str | Mapping[str, str] | None = None,
    prefix: str = DEFAULT_PREFIX,
) -> Workspace:
    """Create the task's worktree in every repo, or none (undoing the ones made) if one fails.

    `base` is one branch for all repos, a mapping repo path → branch, or None to detect per repo.
    Worktrees that already existed (an idempotent re-run) are left alone on rollback.
    """
    roots = [_main_root(r) for r in repos]
    if len(set(roots)) != len(roots):
        raise GitError("the same repository is listed twice in the workspace")
    made: list[TaskWorktree] = []
    try:
        for root in roots:
            made.append(
                create_worktree(
                    root, task_id, title, worktrees_root, base=_base_for(root, base), prefix=prefix
                )
            )
    except BaseException as exc:
        failures = _rollback(made, Path(worktrees_root).expanduser().resolve())
        if failures:
            raise GitError(f"{exc}; rollback also failed: {'; '.join(failures)}") from exc
        raise
    return Workspace(
        task_id=task_id, branch=branch_name(task_id, title, prefix), worktrees=tuple(made)
    )


def _rollback(made: list[TaskWorktree], root: Path) -> list[str]:
    """Undo created worktrees (and branches we created), newest first; return what failed."""
    failures: list[str] = []
    for wt in reversed(made):
        if not wt.created:
            continue
        try:
            remove_worktree(wt.path, force=True, delete_branch=wt.created_branch)
            folder = wt.path.parent  # <root>/<repo>-<hash>, ours to tidy when left empty
            if folder.parent == root and folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        except (GitError, OSError) as exc:
            failures.append(str(exc))
    return failures


def remove_workspace(
    paths: Sequence[PathLike],
    *,
    base: str | Mapping[str, str] | None = None,
    force: bool = False,
    delete_branches: bool = False,
) -> list[RemovedWorktree]:
    """Remove every worktree of a workspace; without force, refuse all if any holds unsaved work."""
    targets = [Path(p).expanduser() for p in paths]
    if not force:
        reasons = []
        for target in targets:
            if target.exists():
                reason = removal_blocker(target, _base_for(_main_root(target), base))
                if reason is not None:
                    reasons.append(reason)
        if reasons:
            raise UnsafeOperation("; ".join(reasons))
    removed: list[RemovedWorktree] = []
    errors: list[str] = []
    for target in targets:
        if not target.exists():
            continue  # already gone; prune_worktrees / orphan cleanup forgets its registration
        try:
            repo_base = _base_for(_main_root(target), base)
            removed.append(
                remove_worktree(target, base=repo_base, force=force, delete_branch=delete_branches)
            )
        except GitError as exc:
            errors.append(str(exc))
    if errors:
        raise GitError(f"removed {len(removed)} of {len(targets)} worktrees; " + "; ".join(errors))
    return removed
