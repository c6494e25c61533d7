"""Real repositories in tmp_path, checked with the real git CLI; the real home is never touched.

libgit2 reads its global/XDG/system config search paths once at import, so besides HOME and
GIT_CONFIG_GLOBAL we point pygit2's search paths at the temporary home as well.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pygit2
import pytest
from pygit2.enums import ConfigLevel

GitRun = Callable[..., str]
MakeRepo = Callable[..., Path]


def run_git(cwd: Path, *args: str, check: bool = True) -> str:
    """Run the git CLI and return stdout (stripped of the trailing newline)."""
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {proc.stderr}")
    return proc.stdout.rstrip("\n")


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture(autouse=True)
def git_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("githome")
    (home / ".config").mkdir()
    empty = tmp_path_factory.mktemp("gitsystem")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / ".gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for var in (
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_INDEX_FILE",
        "GIT_COMMON_DIR",
        "GIT_CEILING_DIRECTORIES",
    ):
        monkeypatch.delenv(var, raising=False)
    saved = {level: pygit2.settings.search_path[level] for level in _LEVELS}
    pygit2.settings.search_path[ConfigLevel.GLOBAL] = str(home)
    pygit2.settings.search_path[ConfigLevel.XDG] = str(home / ".config" / "git")
    pygit2.settings.search_path[ConfigLevel.SYSTEM] = str(empty)
    try:
        yield home
    finally:
        for level, value in saved.items():
            pygit2.settings.search_path[level] = value


_LEVELS = (ConfigLevel.GLOBAL, ConfigLevel.XDG, ConfigLevel.SYSTEM)


@pytest.fixture
def git() -> GitRun:
    return run_git


@pytest.fixture
def make_repo(tmp_path: Path) -> MakeRepo:
    """A repo on `main` with a few files, a .gitignore and one commit; user.name/email set."""

    def make(name: str = "repo", branch: str = "main", files: dict[str, str] | None = None) -> Path:
        root = tmp_path / name
        root.mkdir(parents=True)
        run_git(root, "init", "-q", "-b", branch)
        run_git(root, "config", "user.name", "Test User")
        run_git(root, "config", "user.email", "test@example.com")
        contents = (
            files
            if files is not None
            else {
                "README.md": "# demo\n",
                "src/app.py": "def main():\n    return 1\n",
                "src/util.py": "X = 1\n",
                ".gitignore": "*.log\nbuild/\n",
            }
        )
        for rel, text in contents.items():
            write(root / rel, text)
        run_git(root, "add", "-A")
        run_git(root, "commit", "-q", "-m", "initial")
        return root.resolve()

    return make


@pytest.fixture
def repo(make_repo: MakeRepo) -> Path:
    return make_repo()


@pytest.fixture
def wt_root(tmp_path: Path) -> Path:
    return (tmp_path / "worktrees").resolve()


def commit_file(git_cwd: Path, rel: str, text: str, message: str) -> str:
    """Write, add and commit one file with the CLI; return the new HEAD."""
    write(git_cwd / rel, text)
    run_git(git_cwd, "add", "--", rel)
    run_git(git_cwd, "commit", "-q", "-m", message)
    return run_git(git_cwd, "rev-parse", "HEAD")


def porcelain_worktrees(repo: Path) -> list[dict[str, str]]:
    """`git worktree list --porcelain` parsed into one dict per worktree."""
    entries: list[dict[str, str]] = []
    for block in run_git(repo, "worktree", "list", "--porcelain").split("\n\n"):
        entry: dict[str, str] = {}
        for line in block.splitlines():
            key, _, value = line.partition(" ")
            entry[key] = value
        if entry:
            entries.append(entry)
    return entries
