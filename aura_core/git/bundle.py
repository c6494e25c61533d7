"""Carry a branch's commits between two clones as a git bundle, for tasks that ran on a worker.

The worker (`create_bundle`) packs the commits of a task branch that the receiver lacks: the
receiver names commits it has (`have_commits`: its base branch's tip and a few of its ancestors,
and what it fetched of the branch before), the bundle leaves out everything reachable from the
ones the worker knows. The receiver (`import_bundle`) fetches the bundle into a hidden ref,
`refs/aura/remote/<branch>`, checks it holds the commit the worker announced, then creates or
fast-forwards its own `refs/heads/<branch>` to it. A local branch with commits the worker's does
not have is never moved (UnsafeOperation: nothing was changed); a checkout showing the branch
follows it only when clean, as a merge's base does. Bundles are made and read with the git CLI
(libgit2 has no bundle support).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pygit2
from pygit2.enums import SortMode

from aura_core.git._cli import run_git
from aura_core.git.errors import GitCommandError, GitError, UnsafeOperation
from aura_core.git.merge import _live_checkout, _move_branch
from aura_core.git.repo import PathLike, main_repo, open_repo, repo_root

REMOTE_REFS = "refs/aura/remote/"
_HAVE_DEPTH = 1 << 15  # first-parent ancestors of the base offered as haves: 1, 2, 4 … this far


class UnknownBranch(GitError):
    """The branch does not exist in the repository."""


class BundleTooLarge(GitError):
    """The bundle would be over the size the transport allows."""

    def __init__(self, message: str, size: int, limit: int) -> None:
        super().__init__(message)
        self.size = size
        self.limit = limit


@dataclass(frozen=True, slots=True)
class Bundle:
    branch: str
    head: str  # the branch's commit
    data: bytes | None  # the bundle file; None when the receiver already has every commit
    prerequisites: tuple[str, ...]  # commits the bundle leaves out (the receiver must have them)


@dataclass(frozen=True, slots=True)
class BranchUpdate:
    branch: str
    before: str | None  # the local branch's commit before; None when it was created
    after: str


def valid_branch_name(name: str) -> bool:
    """A name `refs/heads/<name>` may have (and one no git command reads as an option)."""
    return (
        bool(name)
        and not name.startswith("-")
        and pygit2.reference_is_valid_name(f"refs/heads/{name}")
    )


def _check_name(branch: str) -> None:
    if not valid_branch_name(branch):
        raise GitError(f"{branch!r} is not a valid branch name")


def _commit_id(repo: pygit2.Repository, rev: str) -> pygit2.Oid | None:
    """The commit `rev` (a full commit id) names in repo, or None when repo does not have it."""
    try:
        obj = repo.get(rev)
        if obj is None:
            return None
        commit = obj.peel(pygit2.Commit)
    except (ValueError, pygit2.GitError, KeyError):
        return None
    assert isinstance(commit, pygit2.Commit)
    return commit.id


def _tip(repo: pygit2.Repository, refname: str) -> pygit2.Oid | None:
    ref = repo.references.get(refname)
    if ref is None:
        return None
    try:
        commit = ref.peel(pygit2.Commit)
    except (ValueError, pygit2.GitError):
        return None
    assert isinstance(commit, pygit2.Commit)
    return commit.id


def have_commits(repo_path: PathLike, branch: str, base: str | None) -> list[str]:
    """Commits this repository has that a bundle of `branch` may leave out: what was fetched of
    the branch before, and the base's tip with first-parent ancestors 1, 2, 4 … back."""
    repo = main_repo(open_repo(repo_path))
    out: list[str] = []
    for refname in (f"{REMOTE_REFS}{branch}", f"refs/heads/{branch}"):
        tip = _tip(repo, refname)
        if tip is not None and str(tip) not in out:
            out.append(str(tip))
    base_tip = _tip(repo, f"refs/heads/{base}") if base else None
    if base_tip is not None:
        walker = repo.walk(base_tip, SortMode.NONE)
        walker.simplify_first_parent()
        want = 0
        for depth, commit in enumerate(walker):
            if depth == want:
                out.append(str(commit.id))
                want = 1 if want == 0 else want * 2
                if want > _HAVE_DEPTH:
                    break
    return out


def create_bundle(
    repo_path: PathLike,
    branch: str,
    *,
    base: str | None = None,
    have: Iterable[str] = (),
    max_bytes: int | None = None,
) -> Bundle:
    """The commits of `branch` the receiver lacks, as a bundle: everything reachable from the
    branch but not from the `have` commits this repository knows (or, knowing none of them,
    not from `base`). UnknownBranch when there is no such branch; BundleTooLarge over max_bytes."""
    _check_name(branch)
    repo = main_repo(open_repo(repo_path))
    tip = _tip(repo, f"refs/heads/{branch}")
    if tip is None:
        raise UnknownBranch(f"there is no branch {branch} in {repo_root(repo)}")
    known: list[pygit2.Oid] = []
    for rev in have:
        oid = _commit_id(repo, rev)
        if oid is not None and oid not in known:
            known.append(oid)
    if not known and base and valid_branch_name(base):
        base_tip = _tip(repo, f"refs/heads/{base}")
        if base_tip is not None:
            known.append(base_tip)
    if any(k == tip or repo.descendant_of(k, tip) for k in known):
        return Bundle(branch=branch, head=str(tip), data=None, prerequisites=())
    with tempfile.TemporaryDirectory(prefix="aura-bundle-") as tmp:
        out = Path(tmp) / "branch.bundle"
        args = ["bundle", "create", "-q", str(out), f"refs/heads/{branch}"]
        run_git(args + [f"^{k}" for k in known], _git_dir(repo))
        size = out.stat().st_size
        if max_bytes is not None and size > max_bytes:
            raise BundleTooLarge(
                f"the commits of {branch} make a bundle of {size} bytes, over the limit of "
                f"{max_bytes}",
                size,
                max_bytes,
            )
        data = out.read_bytes()
    return Bundle(
        branch=branch, head=str(tip), data=data, prerequisites=tuple(str(k) for k in known)
    )


def _git_dir(repo: pygit2.Repository) -> Path:
    return Path(repo.workdir).resolve() if repo.workdir else Path(repo.path).resolve()


def import_bundle(repo_path: PathLike, branch: str, head: str, data: bytes | None) -> BranchUpdate:
    """Take in the worker's `branch` at commit `head` (from `data`, a bundle, or already here when
    None), then create or fast-forward the local branch to it. Never half-done: the bundle goes
    to the hidden ref `refs/aura/remote/<branch>` first; the local branch moves only once the
    commit is here, and never when it has commits of its own (UnsafeOperation)."""
    _check_name(branch)
    repo = main_repo(open_repo(repo_path))
    hidden = f"{REMOTE_REFS}{branch}"
    if data is not None:
        fd, name = tempfile.mkstemp(prefix="aura-", suffix=".bundle")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            try:
                run_git(
                    ["fetch", "-q", "--no-tags", name, f"+refs/heads/{branch}:{hidden}"],
                    _git_dir(repo),
                )
            except GitCommandError as exc:
                raise GitError(f"could not take in the commits of {branch}: {exc}") from None
        finally:
            os.unlink(name)
        repo = main_repo(open_repo(repo_path))  # see the refs and objects git just wrote
    oid = _commit_id(repo, head)
    if oid is None or str(oid) != head:
        raise GitError(f"commit {head[:12]} of {branch} is not in {repo_root(repo)}")
    if data is None:
        repo.references.create(hidden, oid, force=True)
    elif _tip(repo, hidden) != oid:
        raise GitError(f"the bundle of {branch} does not end at {head[:12]}; nothing was changed")
    return _update_branch(repo, branch, oid)


def _update_branch(repo: pygit2.Repository, branch: str, oid: pygit2.Oid) -> BranchUpdate:
    local = repo.lookup_branch(branch)
    if local is None:
        commit = repo[oid]
        assert isinstance(commit, pygit2.Commit)
        repo.branches.local.create(branch, commit)
        return BranchUpdate(branch=branch, before=None, after=str(oid))
    current = local.peel(pygit2.Commit).id
    if current == oid:
        return BranchUpdate(branch=branch, before=str(current), after=str(oid))
    if not repo.descendant_of(oid, current):
        ahead, _ = repo.ahead_behind(current, oid)
        raise UnsafeOperation(
            f"the local branch {branch} has {ahead} commit(s) the worker's does not "
            f"({str(current)[:8]}); nothing was changed: merge or rename it to keep them"
        )
    live = _live_checkout(repo, branch)
    checkout = live.path if live is not None else None
    _move_branch(repo, branch, current, oid, checkout, f"aura: fetch {branch} from its worker")
    return BranchUpdate(branch=branch, before=str(current), after=str(oid))


def drop_remote_ref(repo_path: PathLike, branch: str) -> bool:
    """Forget the hidden ref of a fetched branch (the task is gone); True if there was one."""
    if not valid_branch_name(branch):
        return False
    repo = main_repo(open_repo(repo_path))
    ref = repo.references.get(f"{REMOTE_REFS}{branch}")
    if ref is None:
        return False
    ref.delete()
    return True
