"""The one place the git CLI is run: for what pygit2 cannot do (e.g. `git worktree remove`)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from aura_core.git.errors import GitCommandError, GitError


def git_executable() -> str:
    """Locate git once per call; a clear error beats a FileNotFoundError traceback."""
    exe = shutil.which("git")
    if exe is None:
        raise GitError("the git command was not found on PATH; install git")
    return exe


def have_git() -> bool:
    """Whether a git executable is on PATH (callers fall back to pygit2 when it is not)."""
    return shutil.which("git") is not None


def run_git(args: list[str], cwd: Path) -> str:
    """Run `git <args>` in cwd, never prompting; return stdout or raise GitCommandError."""
    env = dict(os.environ)
    env["GIT_TERMINAL_PROMPT"] = "0"
    for leaked in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_COMMON_DIR"):
        env.pop(leaked, None)  # set inside hooks; would point git at another repository
    proc = subprocess.run(
        [git_executable(), *args],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise GitCommandError(args, proc.returncode, proc.stderr)
    return proc.stdout
