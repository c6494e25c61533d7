"""Commit everything an agent turn changed: each turn becomes a snapshot to diff or rewind to.

Uses libgit2, which runs no hooks: an automatic snapshot must not be blocked or altered by a
project's pre-commit hooks (the person's own commits still run them).
"""

from __future__ import annotations

import re

import pygit2

from aura_core.git.errors import GitError, UnsafeOperation
from aura_core.git.repo import PathLike, _operation, open_repo, repo_root, signature
from aura_core.git.repo import head as head

SUBJECT_MAX = 72
DEFAULT_SUBJECT = "AURA: agent turn"


def commit_message(text: str, *, fallback: str = DEFAULT_SUBJECT, limit: int = SUBJECT_MAX) -> str:
    """A git message from free text: first non-empty line as subject (≤ limit chars), rest as body.

    A subject that had to be shortened is kept whole at the top of the body, so nothing is lost.
    """
    lines = text.strip().splitlines()
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None:
        return fallback[:limit] + "\n"
    original = lines[first].strip()
    subject = re.sub(r"\s+", " ", original.lstrip("#>*- \t")).strip() or fallback
    body = "\n".join(line.rstrip() for line in lines[first + 1 :]).strip()
    if len(subject) > limit:
        cut = subject[: limit - 1]
        if " " in cut[limit // 2 :]:
            cut = cut.rsplit(" ", 1)[0]
        subject = cut.rstrip(" ,;:.") + "…"
        body = f"{original}\n\n{body}".strip()
    return f"{subject}\n\n{body}\n" if body else f"{subject}\n"


def commit_all(
    path: PathLike,
    message: str,
    *,
    author: pygit2.Signature | None = None,
) -> str | None:
    """Stage everything (new files too, .gitignore respected) and commit; None if nothing changed.

    `message` is free text (e.g. the agent's summary); it is shaped by commit_message().
    """
    repo = open_repo(path)
    if repo.is_bare:
        raise GitError(f"{repo_root(repo)} is a bare repository; it has no files to commit")
    operation = _operation(repo)
    if operation is not None:
        raise UnsafeOperation(
            f"a {operation} is in progress in {repo_root(repo)}; "
            "finish or abort it before committing"
        )
    index = repo.index
    index.read()
    if index.conflicts is not None:
        raise UnsafeOperation(f"{repo_root(repo)} has unresolved conflicts; resolve them first")
    index.add_all()  # adds new and modified files, drops deleted ones; skips ignored files
    tree_id = index.write_tree()
    parents: list[pygit2.Oid] = []
    if not repo.head_is_unborn:
        head_commit = repo.head.peel(pygit2.Commit)
        assert isinstance(head_commit, pygit2.Commit)
        if head_commit.tree_id == tree_id:
            index.write()  # keep refreshed stat data so later status calls stay fast
            return None
        parents = [head_commit.id]
    elif len(index) == 0:
        return None
    index.write()
    committer = signature(repo)
    oid = repo.create_commit(
        "HEAD", author or committer, committer, commit_message(message), tree_id, parents
    )
    return str(oid)
