from __future__ import annotations

import shutil
from pathlib import Path

import pygit2
import pytest

from aura_core.git import worktree as wtmod
from aura_core.git.errors import GitCommandError, GitError, UnsafeOperation
from aura_core.git.merge import squash_merge
from aura_core.git.worktree import (
    branch_name,
    clean_orphans,
    create_worktree,
    list_worktrees,
    plan_orphan_cleanup,
    prune_worktrees,
    remove_worktree,
    slugify,
)
from tests.core.git.conftest import GitRun, MakeRepo, commit_file, porcelain_worktrees, write

TASK = "1b4e28ba-2fa1-11d2-883f-0016d3cca427"


# ------------------------------------------------------------------ naming


@pytest.mark.parametrize(
    ("title", "slug"),
    [
        ("Fix the login bug", "fix-the-login-bug"),
        ("  Émigré café: déjà vu!! ", "emigre-cafe-deja-vu"),
        ("日本語", "task"),
        ("", "task"),
        ("a" * 60, "a" * 40),
        (
            "Refactor the session store so that it never loses events",
            "refactor-the-session-store-so-that-it",
        ),
    ],
)
def test_slugify(title: str, slug: str) -> None:
    assert slugify(title) == slug
    assert len(slug) <= 40


def test_branch_name() -> None:
    assert branch_name(TASK, "Fix login") == "aura/1b4e28ba-fix-login"
    assert branch_name(TASK, "Fix login", prefix="team/bots") == "team/bots/1b4e28ba-fix-login"
    other = branch_name("task-42", "x")
    assert other.startswith("aura/") and len(other.split("/")[1].split("-")[0]) == 8
    assert branch_name("task-42", "x") == other  # stable
    with pytest.raises(GitError, match="not a valid branch name"):
        branch_name(TASK, "x", prefix="bad..prefix")


# ------------------------------------------------------------------ create


def test_create_checks_out_every_file_on_a_new_branch(
    repo: Path, wt_root: Path, git: GitRun
) -> None:
    wt = create_worktree(repo, TASK, "Fix the login bug", wt_root)
    assert wt.branch == "aura/1b4e28ba-fix-the-login-bug"
    assert wt.path.parent.parent == wt_root
    assert wt.path.parent.name.startswith("repo-") and wt.path.name == "1b4e28ba-fix-the-login-bug"
    assert wt.created and wt.created_branch and wt.base == "main"
    assert (wt.path / "src" / "app.py").read_text() == (repo / "src" / "app.py").read_text()
    assert git(wt.path, "status", "--porcelain") == ""
    assert git(wt.path, "rev-parse", "--abbrev-ref", "HEAD") == wt.branch
    assert git(wt.path, "rev-parse", "HEAD") == git(repo, "rev-parse", "main") == wt.base_commit
    entries = porcelain_worktrees(repo)
    assert {
        "worktree": str(wt.path),
        "HEAD": wt.base_commit,
        "branch": f"refs/heads/{wt.branch}",
    } in [{k: e.get(k) for k in ("worktree", "HEAD", "branch")} for e in entries]
    assert wt.branch in git(repo, "branch", "--format=%(refname:short)").splitlines()
    assert git(repo, "ls-files") == git(wt.path, "ls-files")
    assert git(repo, "worktree", "list").count("\n") == 1  # two worktrees, no prunable warning


def test_create_from_another_base_and_from_inside_a_worktree(
    repo: Path, wt_root: Path, git: GitRun
) -> None:
    git(repo, "branch", "release")
    git(repo, "checkout", "-q", "release")
    release_head = commit_file(repo, "rel.txt", "r\n", "release only")
    git(repo, "checkout", "-q", "main")
    first = create_worktree(repo, TASK, "one", wt_root, base="release")
    assert git(first.path, "rev-parse", "HEAD") == release_head
    assert (first.path / "rel.txt").exists()
    # Starting from a path inside a linked worktree still registers in the same repository.
    second = create_worktree(first.path / "src", "2" * 32, "two", wt_root)
    assert second.path.parent == first.path.parent
    assert second.repo == repo
    assert len(porcelain_worktrees(repo)) == 3


def test_create_is_idempotent(repo: Path, wt_root: Path) -> None:
    first = create_worktree(repo, TASK, "Fix", wt_root)
    again = create_worktree(repo, TASK, "Fix", wt_root)
    assert again.path == first.path and not again.created and not again.created_branch


def test_create_again_after_a_crash_mid_add_unlocks(repo: Path, wt_root: Path, git: GitRun) -> None:
    wt = create_worktree(repo, TASK, "Fix", wt_root)
    lock = repo / ".git" / "worktrees" / wt.path.name / "locked"
    lock.write_text("initializing")  # what a killed `git worktree add` leaves
    assert "locked" in git(repo, "worktree", "list", "--porcelain")
    again = create_worktree(repo, TASK, "Fix", wt_root)
    assert not again.created and not lock.exists()
    git(repo, "worktree", "lock", "--reason", "person's lock", str(wt.path))
    create_worktree(repo, TASK, "Fix", wt_root)
    assert lock.read_text().strip() == "person's lock"  # other locks are not ours to drop


def test_create_reuses_a_task_branch_whose_folder_vanished(
    repo: Path, wt_root: Path, git: GitRun
) -> None:
    wt = create_worktree(repo, TASK, "Fix", wt_root)
    work = commit_file(wt.path, "work.txt", "precious\n", "work")
    shutil.rmtree(wt.path)
    again = create_worktree(repo, TASK, "Fix", wt_root)
    assert again.created and not again.created_branch
    assert git(again.path, "rev-parse", "HEAD") == work
    assert (again.path / "work.txt").read_text() == "precious\n"
    assert git(again.path, "status", "--porcelain") == ""
    assert "prunable" not in git(repo, "worktree", "list", "--porcelain")


def test_create_refuses_branch_checked_out_elsewhere(
    repo: Path, wt_root: Path, git: GitRun
) -> None:
    git(repo, "checkout", "-q", "-b", branch_name(TASK, "Fix"))
    commit_file(repo, "x.txt", "x\n", "x")
    with pytest.raises(UnsafeOperation, match="already holds worktree"):
        create_worktree(repo, TASK, "Fix", wt_root, base="main")
    assert len(porcelain_worktrees(repo)) == 1


def test_create_refuses_a_foreign_folder_in_the_way(repo: Path, wt_root: Path, git: GitRun) -> None:
    target = create_worktree(repo, TASK, "Fix", wt_root).path
    git(repo, "worktree", "remove", str(target))
    write(target / "mine.txt", "not a worktree\n")
    with pytest.raises(UnsafeOperation, match="not a worktree"):
        create_worktree(repo, TASK, "Fix", wt_root)
    assert (target / "mine.txt").read_text() == "not a worktree\n"


def test_create_in_a_repo_without_commits(tmp_path: Path, wt_root: Path, git: GitRun) -> None:
    root = tmp_path / "empty"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    with pytest.raises(GitError, match="no commits yet"):
        create_worktree(root, TASK, "x", wt_root)


def test_create_with_a_missing_base(repo: Path, wt_root: Path, git: GitRun) -> None:
    with pytest.raises(GitError, match="'nope' does not exist"):
        create_worktree(repo, TASK, "x", wt_root, base="nope")
    assert git(repo, "branch", "--list", "aura/*") == ""


@pytest.mark.parametrize("with_cli", [True, False])
def test_failed_add_leaves_nothing_behind(
    repo: Path, wt_root: Path, git: GitRun, monkeypatch: pytest.MonkeyPatch, with_cli: bool
) -> None:
    def boom_cli(args: list[str], cwd: Path) -> str:
        leaf = Path(args[-2]).name
        (cwd / ".git" / "worktrees" / leaf).mkdir(parents=True)  # half-made metadata
        Path(args[-2]).mkdir(parents=True)
        raise GitCommandError(args, 128, "fatal: disk full")

    def boom_lib(self: pygit2.Repository, name: str, path: str, ref: object) -> None:
        (Path(self.path) / "worktrees" / name).mkdir(parents=True)  # like libgit2 does
        raise pygit2.GitError("disk full")

    monkeypatch.setattr(wtmod, "have_git", lambda: with_cli)
    monkeypatch.setattr(wtmod, "run_git", boom_cli)
    monkeypatch.setattr(pygit2.Repository, "add_worktree", boom_lib)
    with pytest.raises(GitError, match="disk full"):
        create_worktree(repo, TASK, "x", wt_root)
    assert git(repo, "branch", "--list", "aura/*") == ""
    assert not (repo / ".git" / "worktrees" / branch_name(TASK, "x").split("/")[1]).exists()
    assert len(porcelain_worktrees(repo)) == 1


def test_without_git_executable_pygit2_does_the_work(
    repo: Path, wt_root: Path, git: GitRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(wtmod, "have_git", lambda: False)
    wt = create_worktree(repo, TASK, "No CLI", wt_root)
    assert git(wt.path, "status", "--porcelain") == ""
    assert git(wt.path, "rev-parse", "--abbrev-ref", "HEAD") == wt.branch
    assert git(repo, "ls-files") == git(wt.path, "ls-files")
    write(wt.path / "draft.txt", "x\n")
    with pytest.raises(UnsafeOperation, match="uncommitted"):
        remove_worktree(wt.path)
    (wt.path / "draft.txt").unlink()
    remove_worktree(wt.path, delete_branch=True)
    assert not wt.path.exists()
    assert [e["worktree"] for e in porcelain_worktrees(repo)] == [str(repo)]
    assert git(repo, "branch", "--list", wt.branch) == ""


# ------------------------------------------------------------------ list / remove / prune


def test_list_worktrees_matches_git(repo: Path, wt_root: Path, git: GitRun) -> None:
    a = create_worktree(repo, TASK, "a", wt_root)
    b = create_worktree(repo, "f" * 32, "b", wt_root)
    git(b.path, "checkout", "-q", "--detach")
    ours = list_worktrees(repo)
    theirs = porcelain_worktrees(repo)
    assert [str(w.path) for w in ours] == [e["worktree"] for e in theirs]
    assert [w.head for w in ours] == [e["HEAD"] for e in theirs]
    assert [w.branch for w in ours] == ["main", a.branch, None]
    assert [w.is_main for w in ours] == [True, False, False]


def test_remove_clean_worktree_keeps_branch(repo: Path, wt_root: Path, git: GitRun) -> None:
    wt = create_worktree(repo, TASK, "Fix", wt_root)
    removed = remove_worktree(wt.path)
    assert not wt.path.exists() and removed.branch == wt.branch and not removed.branch_deleted
    assert [e["worktree"] for e in porcelain_worktrees(repo)] == [str(repo)]
    assert wt.branch in git(repo, "branch", "--format=%(refname:short)")


def test_remove_refuses_uncommitted_changes(repo: Path, wt_root: Path, git: GitRun) -> None:
    wt = create_worktree(repo, TASK, "Fix", wt_root)
    write(wt.path / "src" / "app.py", "changed\n")
    with pytest.raises(UnsafeOperation, match=r"uncommitted changes in 1 file\(s\) \(src/app.py\)"):
        remove_worktree(wt.path)
    assert (wt.path / "src" / "app.py").read_text() == "changed\n"
    assert len(porcelain_worktrees(repo)) == 2
    assert git(wt.path, "status", "--porcelain") == " M src/app.py"


def test_remove_refuses_untracked_but_not_ignored(repo: Path, wt_root: Path, git: GitRun) -> None:
    wt = create_worktree(repo, TASK, "Fix", wt_root)
    write(wt.path / "new.txt", "draft\n")
    with pytest.raises(UnsafeOperation, match="commit or discard them first, or pass force=True"):
        remove_worktree(wt.path)
    (wt.path / "new.txt").unlink()
    write(wt.path / "trace.log", "ignored\n")
    remove_worktree(wt.path)
    assert not wt.path.exists()


def test_remove_refuses_unmerged_commits_until_forced(
    repo: Path, wt_root: Path, git: GitRun
) -> None:
    wt = create_worktree(repo, TASK, "Fix", wt_root)
    commit_file(wt.path, "feature.txt", "f\n", "feature")
    with pytest.raises(UnsafeOperation, match=r"1 commit\(s\) not merged into main"):
        remove_worktree(wt.path, delete_branch=True)
    assert wt.path.exists()
    removed = remove_worktree(wt.path, force=True, delete_branch=True)
    assert removed.branch_deleted and not wt.path.exists()
    assert git(repo, "branch", "--list", wt.branch) == ""
    assert len(porcelain_worktrees(repo)) == 1


def test_remove_after_squash_merge_is_allowed(repo: Path, wt_root: Path, git: GitRun) -> None:
    wt = create_worktree(repo, TASK, "Fix", wt_root)
    commit_file(wt.path, "feature.txt", "f\n", "feature")
    commit_file(wt.path, "feature.txt", "f2\n", "feature 2")
    squash_merge(wt.path)
    removed = remove_worktree(wt.path, delete_branch=True)
    assert removed.branch_deleted
    assert git(repo, "branch", "--list", wt.branch) == ""


def test_remove_force_discards_dirty_tree(repo: Path, wt_root: Path) -> None:
    wt = create_worktree(repo, TASK, "Fix", wt_root)
    write(wt.path / "new.txt", "draft\n")
    remove_worktree(wt.path, force=True)
    assert not wt.path.exists()
    assert len(porcelain_worktrees(repo)) == 1


def test_remove_refuses_main_checkout_and_in_progress_operations(
    repo: Path, wt_root: Path, git: GitRun
) -> None:
    with pytest.raises(UnsafeOperation, match="not a linked worktree"):
        remove_worktree(repo, force=True)
    wt = create_worktree(repo, TASK, "Fix", wt_root)
    commit_file(wt.path, "README.md", "task\n", "task")
    commit_file(repo, "README.md", "main\n", "main")
    assert "CONFLICT" in git(wt.path, "merge", "main", check=False)
    with pytest.raises(UnsafeOperation, match="a merge is in progress"):
        remove_worktree(wt.path)
    assert wt.path.exists()


def test_remove_locked_worktree(repo: Path, wt_root: Path, git: GitRun) -> None:
    wt = create_worktree(repo, TASK, "Fix", wt_root)
    git(repo, "worktree", "lock", "--reason", "busy", str(wt.path))
    with pytest.raises(UnsafeOperation, match="is locked"):
        remove_worktree(wt.path)
    remove_worktree(wt.path, force=True)
    assert len(porcelain_worktrees(repo)) == 1


def test_remove_when_folder_already_vanished(repo: Path, wt_root: Path, git: GitRun) -> None:
    wt = create_worktree(repo, TASK, "Fix", wt_root)
    shutil.rmtree(wt.path)
    with pytest.raises(GitError, match="pass repo="):
        remove_worktree(wt.path)
    removed = remove_worktree(wt.path, repo=repo)
    assert removed.branch == wt.branch
    assert len(porcelain_worktrees(repo)) == 1


def test_prune(repo: Path, wt_root: Path, git: GitRun) -> None:
    gone = create_worktree(repo, TASK, "gone", wt_root)
    kept = create_worktree(repo, "e" * 32, "kept", wt_root)
    locked = create_worktree(repo, "d" * 32, "locked", wt_root)
    git(repo, "worktree", "lock", str(locked.path))
    shutil.rmtree(gone.path)
    shutil.rmtree(locked.path)
    assert "prunable" in git(repo, "worktree", "list", "--porcelain")
    assert prune_worktrees(repo) == [gone.path.name]
    paths = [e["worktree"] for e in porcelain_worktrees(repo)]
    assert str(gone.path) not in paths and str(kept.path) in paths and str(locked.path) in paths


# ------------------------------------------------------------------ orphans


def test_orphan_cleanup_preview_then_clean(repo: Path, wt_root: Path, git: GitRun) -> None:
    active = create_worktree(repo, "a" * 32, "active", wt_root)
    idle = create_worktree(repo, "b" * 32, "idle", wt_root)
    dirty = create_worktree(repo, "c" * 32, "dirty", wt_root)
    write(dirty.path / "draft.txt", "unsaved\n")
    unmerged = create_worktree(repo, "d" * 32, "unmerged", wt_root)
    commit_file(unmerged.path, "u.txt", "u\n", "unmerged work")
    vanished = create_worktree(repo, "e" * 32, "vanished", wt_root)
    shutil.rmtree(vanished.path)
    repo_dir = active.path.parent
    stray = write(repo_dir / "stray" / "keep.txt", "someone's file\n").parent
    (repo_dir / "empty").mkdir()

    plan = {o.path.name: o for o in plan_orphan_cleanup(wt_root, [active.path], [repo])}
    assert set(plan) == {
        idle.path.name,
        dirty.path.name,
        unmerged.path.name,
        vanished.path.name,
        "stray",
        "empty",
    }
    assert plan[idle.path.name].action == "remove" and plan[idle.path.name].kind == "no_task"
    assert plan[dirty.path.name].action == "skip" and "uncommitted" in plan[dirty.path.name].reason
    assert (
        plan[unmerged.path.name].action == "skip"
        and "not merged" in plan[unmerged.path.name].reason
    )
    assert plan[vanished.path.name].action == "prune"
    assert plan[vanished.path.name].kind == "missing_folder"
    assert plan["stray"].action == "skip" and plan["stray"].kind == "not_a_worktree"
    assert plan["empty"].action == "remove"
    # The preview changed nothing.
    assert (
        len(porcelain_worktrees(repo)) == 6 and idle.path.exists() and (repo_dir / "empty").exists()
    )

    done = {o.path.name for o in clean_orphans(wt_root, [active.path], [repo])}
    assert done == {idle.path.name, vanished.path.name, "empty"}
    listed = [e["worktree"] for e in porcelain_worktrees(repo)]
    assert listed == [str(repo), str(active.path), str(dirty.path), str(unmerged.path)]
    assert (dirty.path / "draft.txt").exists() and (stray / "keep.txt").exists()
    assert idle.branch in git(repo, "branch", "--format=%(refname:short)")  # branches are kept

    forced = {o.path.name for o in clean_orphans(wt_root, [active.path], force=True)}
    assert forced == {dirty.path.name, unmerged.path.name, "stray"}
    assert [e["worktree"] for e in porcelain_worktrees(repo)] == [str(repo), str(active.path)]
    assert sorted(p.name for p in repo_dir.iterdir()) == [active.path.name]


def test_orphans_found_without_naming_repos(repo: Path, wt_root: Path) -> None:
    idle = create_worktree(repo, "b" * 32, "idle", wt_root)
    orphans = plan_orphan_cleanup(wt_root, [])
    assert [(o.path, o.repo, o.branch) for o in orphans] == [(idle.path, repo, idle.branch)]
    assert plan_orphan_cleanup(wt_root / "missing", []) == []


def test_orphan_whose_repository_is_gone(tmp_path: Path, make_repo: MakeRepo, git: GitRun) -> None:
    # The worktrees root sits inside another repository: discovery must not climb into it.
    outer = make_repo("outer")
    root = outer / "worktrees"
    doomed = make_repo("doomed")
    wt = create_worktree(doomed, TASK, "x", root)
    shutil.rmtree(doomed)
    [orphan] = plan_orphan_cleanup(root, [])
    assert (orphan.path, orphan.kind, orphan.action) == (wt.path, "not_a_worktree", "skip")
    assert "repository is gone" in orphan.reason
    assert clean_orphans(root, []) == [] and wt.path.exists()
    assert [o.path for o in clean_orphans(root, [], force=True)] == [wt.path]
    assert not wt.path.exists() and git(outer, "status", "--porcelain") == ""


def test_module_exports_documented_names() -> None:
    for name in ("create_worktree", "remove_worktree", "prune_worktrees", "list_worktrees"):
        assert callable(getattr(wtmod, name))
