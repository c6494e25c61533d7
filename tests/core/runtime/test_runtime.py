"""The runtime end to end in-process: a real git repo, real worktrees, the command executor."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from aura_core.config import AuraConfig, parse_config
from aura_core.contracts import CanonicalTaskState, ExecutionStatus
from aura_core.engine.runtime import Runtime, RuntimeError_, RuntimeEvent
from aura_core.store.sqlite import SqliteStore
from tests.support.gitrepo import git, make_repo, worktrees

EDIT = 'echo "$AURA_PROMPT" > notes.txt; echo "edited notes.txt"'


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo", {"README.md": "hello\n", "app.py": "print(1)\n"})


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    return SqliteStore(tmp_path / "aura.db")


def runtime(store: SqliteStore, tmp_path: Path, **config: object) -> Runtime:
    cfg = parse_config({"worktrees": {"root": str(tmp_path / "wt")}, **config})
    return Runtime(store, cfg)


def add(rt: Runtime, repo: Path, script: str = EDIT, **kw: object) -> str:
    options = {"base_command": "sh", "params": ["-c", script]}
    task = rt.add_task(
        "Write notes", "note this", "custom", options=options, repos=[str(repo)], **kw
    )  # type: ignore[arg-type]
    return task.id


def test_full_loop_start_follow_up_approve_merge_remove(
    store: SqliteStore, repo: Path, tmp_path: Path
) -> None:
    rt = runtime(store, tmp_path)
    events: list[RuntimeEvent] = []
    rt.subscribe(events.append)
    task_id = add(rt, repo)
    assert rt.move(task_id, "ready").ok
    decision = rt.move(task_id, "in_progress")
    assert decision.ok and decision.intent.value == "start"
    assert rt.wait(task_id, timeout=60)
    task = store.get_task(task_id)
    assert task.state == CanonicalTaskState.review and task.column_id == "review"
    execution = rt.latest_execution(task_id)
    assert execution is not None and execution.status == ExecutionStatus.completed
    kinds = [e.kind.value for e in store.list_events(execution.id)]
    assert kinds == [
        "start_requested",
        "workspace_prepared",
        "setup_completed",
        "coding_completed",
        "cleanup_completed",
        "review_completed",
    ]
    # the worktree and branch exist, checked with git itself
    wt = Path(execution.workspace[0])
    listed = {w["worktree"]: w.get("branch", "") for w in worktrees(repo)}
    assert str(wt) in listed and listed[str(wt)] == f"refs/heads/{execution.branch}"
    assert execution.branch and execution.branch.startswith(f"aura/{task_id[:8]}-write-notes")
    log = git(wt, "log", "--format=%s", f"main..{execution.branch}").splitlines()
    assert log == ["Write notes"]  # the agent's turn, auto-committed
    assert git(wt, "status", "--porcelain") == ""
    diff = rt.diff(task_id)
    assert [f.path for f in diff.files] == ["notes.txt"] and "note this" in diff.patch
    assert any(e.kind == "log" for e in events) and any(e.kind == "notify" for e in events)

    # follow-up: the feedback reaches the agent, which runs again in the same worktree
    rt.follow_up(task_id, "also say thanks")
    assert rt.wait(task_id, timeout=60)
    assert store.get_task(task_id).state == CanonicalTaskState.review
    assert "also say thanks" in (wt / "notes.txt").read_text()
    turns = rt.turns(task_id)
    assert len(turns) == 2 and turns[1].parent_id == turns[0].id
    turn2 = rt.diff(task_id, turn=2)
    assert "also say thanks" in turn2.patch
    assert len(git(wt, "log", "--format=%s", f"main..{execution.branch}").splitlines()) == 2

    # approve with merge: the base branch has the change, squashed into one commit
    rt.approve(task_id, merge=True)
    assert store.get_task(task_id).state == CanonicalTaskState.done
    assert "also say thanks" in git(repo, "show", "main:notes.txt")
    assert git(repo, "log", "--format=%s", "-1", "main").startswith("Write notes")
    assert git(repo, "status", "--porcelain") == ""

    # remove: worktree and branch gone (the work is merged, so no force needed)
    rt.remove(task_id)
    assert str(wt) not in {w["worktree"] for w in worktrees(repo)}
    assert not wt.exists()
    assert execution.branch not in git(repo, "branch", "--list")


def test_failure_blocks_with_reason_and_retry_works(
    store: SqliteStore, repo: Path, tmp_path: Path
) -> None:
    rt = runtime(store, tmp_path)
    marker = tmp_path / "second-try"
    script = f"if [ -f {marker} ]; then echo ok > done.txt; else touch {marker}; exit 4; fi"
    task_id = add(rt, repo, script)
    rt.start(task_id)
    assert rt.wait(task_id, timeout=60)
    task = store.get_task(task_id)
    assert task.state == CanonicalTaskState.blocked and task.column_id == "blocked"
    assert task.blocked_reason and "exited with code 4" in task.blocked_reason
    rt.start(task_id)  # retry reuses the same worktree
    assert rt.wait(task_id, timeout=60)
    assert store.get_task(task_id).state == CanonicalTaskState.review
    first, second = rt.executions(task_id)
    assert first.workspace == second.workspace


def test_setup_and_cleanup_scripts_and_no_changes_skip_cleanup(
    store: SqliteStore, repo: Path, tmp_path: Path
) -> None:
    rt = runtime(
        store,
        tmp_path,
        scripts={"setup": "echo setting-up > setup.log", "cleanup": "echo cleaned > clean.log"},
    )
    task_id = add(rt, repo, "echo nothing to change")
    rt.start(task_id)
    assert rt.wait(task_id, timeout=60)
    execution = rt.latest_execution(task_id)
    assert execution is not None
    kinds = [e.kind.value for e in store.list_events(execution.id)]
    assert "cleanup_completed" not in kinds  # no changes: straight to review
    stages = [s.stage for s in rt.sessions(task_id)]
    assert stages == ["setup", "coding_initial"]
    wt = Path(execution.workspace[0])
    assert (wt / "setup.log").read_text() == "setting-up\n"


def test_setup_failure_blocks(store: SqliteStore, repo: Path, tmp_path: Path) -> None:
    rt = runtime(store, tmp_path, scripts={"setup": "echo broken >&2; exit 2"})
    task_id = add(rt, repo)
    rt.start(task_id)
    assert rt.wait(task_id, timeout=60)
    task = store.get_task(task_id)
    assert task.state == CanonicalTaskState.blocked
    assert "setup script failed" in (task.blocked_reason or "")


def test_review_stage_stores_findings(store: SqliteStore, repo: Path, tmp_path: Path) -> None:
    rt = runtime(store, tmp_path)
    script = (
        'case "$AURA_RUN_MODE" in review) echo "notes.txt:1 fine"; echo "VERDICT: approve";; '
        "*) echo hi > notes.txt;; esac"
    )
    task_id = add(rt, repo, script, review=True)
    rt.start(task_id)
    assert rt.wait(task_id, timeout=60)
    review = [s for s in rt.sessions(task_id) if s.stage == "review"]
    assert len(review) == 1
    assert review[0].options["verdict"] == "approve"
    assert "notes.txt:1 fine" in review[0].options["findings"]
    assert "notes.txt" in review[0].prompt  # the diff summary reached the reviewer


def test_cancel_stops_the_process_tree(store: SqliteStore, repo: Path, tmp_path: Path) -> None:
    rt = runtime(store, tmp_path)
    task_id = add(rt, repo, "echo started; sleep 300")
    started = threading.Event()
    rt.subscribe(lambda e: started.set() if e.kind == "log" else None)
    rt.start(task_id)
    assert started.wait(30)
    rt.cancel(task_id)
    assert rt.wait(task_id, timeout=30)
    task = store.get_task(task_id)
    assert task.state == CanonicalTaskState.cancelled
    session = rt.sessions(task_id)[-1]
    assert session.status == "killed"
    from aura_core.procinfo import group_alive

    assert session.pgid and not group_alive(session.pgid)


def test_concurrency_limit_queues(store: SqliteStore, repo: Path, tmp_path: Path) -> None:
    rt = runtime(store, tmp_path, runtime={"max_concurrent": 2})
    gate = tmp_path / "gate"
    script = f"while [ ! -f {gate} ]; do sleep 0.05; done; echo x > out.txt"
    ids = [add(rt, repo, script) for _ in range(3)]
    for task_id in ids:
        rt.start(task_id)
    assert len(rt.running_task_ids()) == 2

    def states() -> list[ExecutionStatus]:
        return [rt.latest_execution(t).status for t in ids]  # type: ignore[union-attr]

    deadline = time.monotonic() + 30
    while states().count(ExecutionStatus.running) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.3)  # the third must stay queued while both slots are busy
    assert sorted(states()) == sorted([ExecutionStatus.running] * 2 + [ExecutionStatus.queued])
    gate.touch()
    for task_id in ids:
        assert rt.wait(task_id, timeout=60)
    assert all(store.get_task(t).state == CanonicalTaskState.review for t in ids)
    paths = {rt.workspace(t)[0] for t in ids}
    assert len(paths) == 3  # each in its own worktree


def test_refused_moves_and_guards(store: SqliteStore, repo: Path, tmp_path: Path) -> None:
    rt = runtime(store, tmp_path)
    task_id = add(rt, repo)
    refused = rt.move(task_id, "done")
    assert not refused.ok and refused.reason
    assert store.get_task(task_id).column_id == "backlog"
    with pytest.raises(RuntimeError_, match="not in review"):
        rt.approve(task_id)
    with pytest.raises(RuntimeError_, match="not waiting in review"):
        rt.follow_up(task_id, "x")
    rt.start(task_id)
    rt.wait(task_id, timeout=60)
    wt = Path(rt.workspace(task_id)[0])
    (wt / "dirty.txt").write_text("uncommitted")
    with pytest.raises(RuntimeError_, match="uncommitted"):
        rt.approve(task_id)
    refused = rt.move(task_id, "done")
    assert not refused.ok
    assert "clean" in refused.reason.lower() or "commit" in refused.reason.lower()
    no_feedback = rt.move(task_id, "in_progress")
    assert not no_feedback.ok and "feedback" in no_feedback.reason


def test_wip_limit_enforced(store: SqliteStore, repo: Path, tmp_path: Path) -> None:
    board = {
        "columns": [
            {"id": "backlog", "name": "Backlog", "state": "backlog"},
            {"id": "ready", "name": "Ready", "state": "ready", "wip_limit": 1},
            {"id": "doing", "name": "Doing", "state": "running"},
            {"id": "review", "name": "Review", "state": "review"},
            {"id": "done", "name": "Done", "state": "done"},
            {"id": "blocked", "name": "Blocked", "state": "blocked"},
            {"id": "cancelled", "name": "Cancelled", "state": "cancelled"},
        ]
    }
    rt = runtime(store, tmp_path, board=board)
    first, second = add(rt, repo), add(rt, repo)
    assert rt.move(first, "ready").ok
    refused = rt.move(second, "ready")
    assert not refused.ok and "1/1" in refused.reason
    assert store.get_task(second).column_id == "backlog"


def test_missing_prompt_variable_blocks_with_its_name(
    store: SqliteStore, repo: Path, tmp_path: Path
) -> None:
    rt = runtime(
        store, tmp_path, prompts={"coding_initial": "Do {{ task_title }} for {{ client }}"}
    )
    task_id = add(rt, repo)
    rt.start(task_id)
    rt.wait(task_id, timeout=60)
    task = store.get_task(task_id)
    assert task.state == CanonicalTaskState.blocked and "client" in (task.blocked_reason or "")


def test_not_a_repo_is_refused(store: SqliteStore, tmp_path: Path) -> None:
    rt = runtime(store, tmp_path)
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(Exception, match="git"):
        rt.add_task("x", "y", "custom", repos=[str(plain)])


def test_default_config_is_valid() -> None:
    assert AuraConfig().runtime.max_concurrent >= 1
