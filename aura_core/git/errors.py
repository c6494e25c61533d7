"""Errors raised by the git layer, each carrying a one-line reason a person can act on."""

from __future__ import annotations


class GitError(Exception):
    """Base class: any git operation that could not be done."""


class NotAGitRepo(GitError):
    """The path is not inside a git repository."""


class UnsafeOperation(GitError):
    """Refused because it could lose work or leave a repository half-changed."""


class MergeConflict(GitError):
    """A merge or rebase met conflicts; it was aborted and nothing was changed."""

    def __init__(self, message: str, files: list[str]) -> None:
        super().__init__(message)
        self.files = files


class GitCommandError(GitError):
    """The git CLI (used only where pygit2 has no equivalent) exited non-zero."""

    def __init__(self, args: list[str], returncode: int, stderr: str) -> None:
        detail = stderr.strip().splitlines()[-1] if stderr.strip() else f"exit {returncode}"
        super().__init__(f"git {' '.join(args)}: {detail}")
        self.args_ = args
        self.returncode = returncode
        self.stderr = stderr
