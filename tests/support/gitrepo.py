"""Real git repositories for tests, made and checked with the git CLI."""

from __future__ import annotations

import subprocess
from pathlib import Path


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout


def make_repo(path: Path, files: dict[str, str] | None = None, branch: str = "main") -> Path:
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", branch)
    for name, text in (files or {"README.md": "hello\n"}).items():
        target = path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    git(path, "add", "-A")
    git(path, "commit", "-qm", "initial")
    return path


def worktrees(repo: Path) -> list[dict[str, str]]:
    """`git worktree list --porcelain`, parsed."""
    out, current = [], {}
    for line in git(repo, "worktree", "list", "--porcelain").splitlines():
        if not line:
            if current:
                out.append(current)
            current = {}
            continue
        key, _, value = line.partition(" ")
        current[key] = value
    if current:
        out.append(current)
    return out
