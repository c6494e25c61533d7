"""Find the repository containing a path and read its state: branch, base, cleanliness, operations.

Everything here is read-only. Linked worktrees share refs and objects with their main repository
but have their own HEAD, index and in-progress operation state; the helpers below keep that apart.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pygit2
from pygit2.enums import FileStatus, RepositoryState

from aura_core.git.errors import GitError, NotAGitRepo

PathLike = str | os.PathLike[str]

#: Tried in order when neither origin/HEAD nor init.defaultBranch names an existing branch.
BASE_CANDIDATES: tuple[str, ...] = ("main", "master", "trunk", "develop")

_STATE_NAMES: dict[RepositoryState, str] = {
    RepositoryState.MERGE: "merge",
    RepositoryState.REVERT: "revert",
    RepositoryState.REVERT_SEQUENCE: "revert",
    RepositoryState.CHERRYPICK: "cherry_pick",
    RepositoryState.CHERRYPICK_SEQUENCE: "cherry_pick",
    RepositoryState.BISECT: "bisect",
    RepositoryState.REBASE: "rebase",
    RepositoryState.REBASE_INTERACTIVE: "rebase",
    RepositoryState.REBASE_MERGE: "rebase",
    RepositoryState.APPLY_MAILBOX: "am",
    RepositoryState.APPLY_MAILBOX_OR_REBASE: "rebase",
}


@dataclass(frozen=True, slots=True)
class RepoStatus:
    """A snapshot of one working tree, relative to a base branch when one is known."""

    root: Path
    branch: str | None  # None when HEAD is detached
    head: str | None  # None when the branch has no commits yet
    base: str | None
    ahead: int  # commits on HEAD not on base
    behind: int  # commits on base not on HEAD
    changed_files: tuple[str, ...]  # uncommitted: staged, unstaged and untracked (not ignored)
    operation: str | None  # "rebase", "merge", "cherry_pick", "revert", "bisect", "am" or None

    @property
    def clean(self) -> bool:
        return not self.changed_files

    @property
    def rebase_in_progress(self) -> bool:
        return self.operation in ("rebase", "am")

    @property
    def merge_in_progress(self) -> bool:
        return self.operation == "merge"


def open_repo(path: PathLike) -> pygit2.Repository:
    """Open the repository (or linked worktree) containing path, searching upwards."""
    p = Path(path).expanduser()
    if not p.exists():
        raise NotAGitRepo(f"{p} does not exist; run git init or pass --cwd")
    found = pygit2.discover_repository(str(p))
    if found is None:
        raise NotAGitRepo(f"{p} is not inside a git repository; run git init or pass --cwd")
    try:
        return pygit2.Repository(found)
    except pygit2.GitError as exc:
        raise NotAGitRepo(f"cannot open the git repository at {found}: {exc}") from exc


def repo_root(repo: pygit2.Repository) -> Path:
    """The working tree root, or the git dir itself for a bare repository."""
    return Path(repo.workdir or repo.path).resolve()


def find_repo(path: PathLike) -> Path:
    """The root of the working tree (main or linked worktree) that contains path."""
    return repo_root(open_repo(path))


def common_dir(repo: pygit2.Repository) -> Path:
    """The git dir shared by all worktrees (`git rev-parse --git-common-dir`)."""
    gitdir = Path(repo.path)
    marker = gitdir / "commondir"
    if marker.is_file():
        target = Path(marker.read_text().strip())
        return (target if target.is_absolute() else gitdir / target).resolve()
    return gitdir.resolve()


def is_linked_worktree(repo: pygit2.Repository) -> bool:
    """True for worktrees made by `git worktree add` (their git dir holds a commondir file)."""
    return (Path(repo.path) / "commondir").is_file()


def main_repo(repo: pygit2.Repository) -> pygit2.Repository:
    """The repository owning the shared git dir: where worktrees are registered."""
    if not is_linked_worktree(repo):
        return repo
    return pygit2.Repository(str(common_dir(repo)))


def current_branch(path: PathLike) -> str | None:
    """Short name of the checked-out branch (even before its first commit); None if detached."""
    return _symbolic_branch(open_repo(path))


def _symbolic_branch(repo: pygit2.Repository) -> str | None:
    target = repo.lookup_reference("HEAD").target
    if isinstance(target, str) and target.startswith("refs/heads/"):
        return target.removeprefix("refs/heads/")
    return None


def head(path: PathLike) -> str | None:
    """The commit id HEAD points at, or None before the first commit."""
    repo = open_repo(path)
    return None if repo.head_is_unborn else str(repo.head.target)


def head_oid(repo: pygit2.Repository) -> pygit2.Oid:
    """The commit HEAD resolves to (callers check head_is_unborn first)."""
    target = repo.head.resolve().target
    assert isinstance(target, pygit2.Oid)
    return target


def local_branch_exists(repo: pygit2.Repository, name: str) -> bool:
    return repo.lookup_branch(name) is not None


def branch_tip(repo: pygit2.Repository, name: str) -> pygit2.Commit:
    """The commit a local branch points at; a clear error when the branch is missing."""
    branch = repo.lookup_branch(name)
    if branch is None:
        raise GitError(f"branch {name!r} does not exist in {repo_root(repo)}; pass another base")
    commit = branch.peel(pygit2.Commit)
    assert isinstance(commit, pygit2.Commit)
    return commit


def default_base_branch(path: PathLike) -> str:
    """Guess the branch tasks start from and merge back into.

    Order: origin/HEAD (what the team calls default), init.defaultBranch, the usual names, then
    the branch checked out in the main worktree. Only existing local branches qualify, because
    squash-merge and rebase work on local branches.
    """
    repo = open_repo(path)
    origin_head = repo.references.get("refs/remotes/origin/HEAD")
    if origin_head is not None and isinstance(origin_head.target, str):
        name = origin_head.target.removeprefix("refs/remotes/origin/")
        if local_branch_exists(repo, name):
            return name
    try:
        configured = repo.config["init.defaultBranch"]
    except (KeyError, pygit2.GitError):
        configured = None
    if isinstance(configured, str) and configured and local_branch_exists(repo, configured):
        return configured
    for name in BASE_CANDIDATES:
        if local_branch_exists(repo, name):
            return name
    main_branch = _symbolic_branch(main_repo(repo))
    if main_branch is not None and local_branch_exists(repo, main_branch):
        return main_branch
    raise GitError(
        f"cannot tell the base branch of {repo_root(repo)} (no main/master and no commits yet?); "
        "make a first commit or pass the base branch"
    )


def changed_files(path: PathLike) -> list[str]:
    """Uncommitted paths: staged, unstaged and untracked; ignored files do not count."""
    return _changed_files(open_repo(path), untracked="all")


def _changed_files(repo: pygit2.Repository, untracked: str = "all") -> list[str]:
    if repo.is_bare:
        return []
    status = repo.status(untracked_files=untracked, ignored=False)
    return sorted(
        p for p, flags in status.items() if flags not in (FileStatus.CURRENT, FileStatus.IGNORED)
    )


def is_clean(path: PathLike) -> bool:
    """No staged, unstaged or untracked changes (ignored files don't count)."""
    # "normal" reports an untracked folder once instead of walking it: enough to say "dirty".
    return not _changed_files(open_repo(path), untracked="normal")


def tracked_changes(repo: pygit2.Repository) -> list[str]:
    """Staged or unstaged changes to tracked files only (untracked files are ignored here)."""
    if repo.is_bare:
        return []
    status = repo.status(untracked_files="no", ignored=False)
    return sorted(p for p, flags in status.items() if flags != FileStatus.CURRENT)


def operation_in_progress(path: PathLike) -> str | None:
    """Which operation a person (or agent) left half done, if any: rebase, merge, cherry_pick…"""
    return _operation(open_repo(path))


def _operation(repo: pygit2.Repository) -> str | None:
    return _STATE_NAMES.get(repo.state())


def ahead_behind(
    repo: pygit2.Repository, local: pygit2.Oid, upstream: pygit2.Oid
) -> tuple[int, int]:
    ahead, behind = repo.ahead_behind(local, upstream)
    return int(ahead), int(behind)


def status(path: PathLike, base: str | None = None) -> RepoStatus:
    """Branch, HEAD, ahead/behind the base, uncommitted files and any operation in progress."""
    repo = open_repo(path)
    if base is None:
        try:
            base = default_base_branch(path)
        except GitError:
            base = None
    head_id = None if repo.head_is_unborn else head_oid(repo)
    ahead = behind = 0
    if head_id is not None and base is not None:
        ahead, behind = ahead_behind(repo, head_id, branch_tip(repo, base).id)
    return RepoStatus(
        root=repo_root(repo),
        branch=_symbolic_branch(repo),
        head=None if head_id is None else str(head_id),
        base=base,
        ahead=ahead,
        behind=behind,
        changed_files=tuple(_changed_files(repo)),
        operation=_operation(repo),
    )


def signature(repo: pygit2.Repository) -> pygit2.Signature:
    """The configured user, or a neutral AURA identity so automatic commits never fail."""
    try:
        return repo.default_signature
    except (KeyError, pygit2.GitError):
        return pygit2.Signature("AURA", "aura@localhost")
