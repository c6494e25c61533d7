"""The runtime with an attached hub and two real worker processes: a task's stages run remotely.

The board's repo is `<tmp>/src/demo`; each worker serves its own clone of it as `demo` (a task's
repo is matched by folder name) and makes the task's worktree in its own data dir.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from aura_core.config import parse_config
from aura_core.contracts import CanonicalTaskState, ExecutionStatus, Session
from aura_core.engine.runtime import Runtime, RuntimeError_, RuntimeEvent
from aura_core.store.sqlite import SqliteStore
from aura_core.worker.hub import HubThread
from aura_core.worker.security import load_or_create_token
from tests.support.gitrepo import git, make_repo
from tests.worker.conftest import FAST, HubFactory, Procs, online, wait_until

EDIT = 'echo "$AURA_PROMPT" > notes.txt; echo "edited notes.txt"'


class Cluster:
    """A runtime in this process, its hub, and worker processes serving clones of the repo."""

    def __init__(self, tmp: Path, store: SqliteStore, hub: HubThread, procs: Procs) -> None:
        self.tmp = tmp
        self.store = store
        self.hub = hub
        self.procs = procs
        self.repo = make_repo(tmp / "src" / "demo", {"README.md": "hello\n"})
        cfg = parse_config({"worktrees": {"root": str(tmp / "wt")}})
        self.rt = Runtime(store, cfg, hub=hub)
        self.events: list[RuntimeEvent] = []
        self.rt.subscribe(self.events.append)
        self.workers: dict[str, subprocess.Popen[bytes]] = {}

    def worker(self, name: str) -> subprocess.Popen[bytes]:
        clone = self.tmp / "clones" / name / "demo"
        clone.parent.mkdir(parents=True, exist_ok=True)
        git(self.tmp, "clone", "-q", str(self.repo), str(clone))
        proc = self.procs.worker(self.hub.url, name, repo=clone, concurrency=1)
        self.workers[name] = proc
        return proc

    def add(self, script: str = EDIT, worker: str = "any") -> str:
        options = {"base_command": "sh", "params": ["-c", script], "worker": worker}
        task = self.rt.add_task(
            "Write notes", "note this", "custom", options=options, repos=[str(self.repo)]
        )
        return task.id

    def coding(self, task_id: str) -> Session:
        return next(
            s for s in self.store.list_sessions(task_id=task_id) if s.stage == "coding_initial"
        )

    def lines(self, session_id: str) -> list[str]:
        return [row[3] for row in self.store.iter_log_rows(session_id)]


@pytest.fixture(params=["hub-store"])
def cluster(request: Any, tmp_path: Path, make_hub: HubFactory, procs: Procs) -> Any:
    store = SqliteStore(tmp_path / "aura.db")
    # with the store, the hub writes the remote lines; without, the remote runner does
    hub_store = store if request.param == "hub-store" else None
    hub = make_hub(store=hub_store, state_file=tmp_path / "hub-state.json")
    c = Cluster(tmp_path, store, hub, procs)
    yield c
    c.rt.shutdown(timeout=10)


@pytest.mark.parametrize("cluster", ["hub-store", "no-hub-store"], indirect=True)
def test_any_runs_the_coding_stage_on_a_worker_in_its_own_worktree(cluster: Cluster) -> None:
    cluster.worker("w1")
    cluster.worker("w2")
    wait_until(online(cluster.hub, 2), 20, "two workers online")
    task_id = cluster.add()
    cluster.rt.start(task_id)
    assert cluster.rt.wait(task_id, timeout=60)
    task = cluster.store.get_task(task_id)
    assert task.state == CanonicalTaskState.review, task.blocked_reason
    assert task.worker_id in ("w1", "w2")
    execution = cluster.rt.latest_execution(task_id)
    assert execution is not None and execution.status == ExecutionStatus.completed
    assert execution.workspace == [] and execution.branch
    kinds = [e.kind.value for e in cluster.store.list_events(execution.id)]
    assert kinds == [
        "start_requested",
        "workspace_prepared",
        "setup_completed",
        "coding_completed",
        "cleanup_completed",
        "review_completed",
    ]
    coding = cluster.coding(task_id)
    assert coding.status == "completed" and coding.execution_id == execution.id
    assert coding.options["remote"] and coding.options["worker"] == task.worker_id
    assert cluster.lines(coding.id) == ["edited notes.txt"]  # the store has the remote lines
    streamed = [r[4] for e in cluster.events if e.kind == "log" for r in e.rows]
    assert "edited notes.txt" in streamed  # and the board saw them as they came
    # the change is in the worker's worktree of the task branch, committed by the cleanup
    worker, _, folder = coding.cwd.partition(":")
    assert worker == task.worker_id
    wt = Path(folder)
    assert wt.is_relative_to(cluster.tmp / f"data-{worker}")
    notes = (wt / "notes.txt").read_text()
    assert "note this" in notes and "created from `main`" in notes  # the rendered prompt
    assert git(wt, "rev-parse", "--abbrev-ref", "HEAD").strip() == execution.branch
    assert git(wt, "log", "--format=%s", f"main..{execution.branch}").splitlines() == [
        "Write notes"
    ]
    assert git(wt, "status", "--porcelain") == ""
    clone = cluster.tmp / "clones" / worker / "demo"
    assert not (clone / "notes.txt").exists()  # the worker's own checkout is never edited
    assert not (cluster.repo / "notes.txt").exists()
    turn = cluster.coding(task_id).options
    assert turn["head_before"] != turn["head_after"]  # the commit is recorded on the turn


def test_killing_the_worker_mid_stage_blocks_the_task_as_worker_lost(cluster: Cluster) -> None:
    cluster.worker("w1")
    wait_until(online(cluster.hub, 1), 20, "worker online")
    task_id = cluster.add('echo "working"; sleep 120')
    cluster.rt.start(task_id)
    wait_until(
        lambda: (
            any(s.stage == "coding_initial" for s in cluster.store.list_sessions(task_id=task_id))
            and cluster.lines(cluster.coding(task_id).id) == ["working"]
        ),
        30,
        "the remote stage's first line",
    )
    os.kill(cluster.workers["w1"].pid, signal.SIGKILL)
    killed = time.monotonic()
    assert cluster.rt.wait(task_id, timeout=FAST["offline_after"] + 10)
    took = time.monotonic() - killed
    task = cluster.store.get_task(task_id)
    assert task.state == CanonicalTaskState.blocked
    assert task.blocked_reason == "worker w1 lost"
    assert took < FAST["offline_after"] + 5
    execution = cluster.rt.latest_execution(task_id)
    assert execution is not None and execution.status == ExecutionStatus.failed
    assert [e.kind.value for e in cluster.store.list_events(execution.id)][-1] == "worker_lost"
    coding = cluster.coding(task_id)
    assert coding.status == "failed" and coding.error == "worker w1 lost"
    notices = [e.message for e in cluster.events if e.kind == "notify"]
    assert any("worker w1 lost" in m for m in notices)


def test_cancel_interrupts_the_stage_on_the_worker(cluster: Cluster) -> None:
    cluster.worker("w1")
    wait_until(online(cluster.hub, 1), 20, "worker online")
    task_id = cluster.add('i=0; while true; do echo "tick $i"; i=$((i+1)); sleep 0.05; done')
    cluster.rt.start(task_id)
    wait_until(
        lambda: (
            any(s.stage == "coding_initial" for s in cluster.store.list_sessions(task_id=task_id))
            and len(cluster.lines(cluster.coding(task_id).id)) >= 5
        ),
        30,
        "some ticks",
    )
    cluster.rt.cancel(task_id)
    assert cluster.rt.wait(task_id, timeout=30)
    assert cluster.store.get_task(task_id).state == CanonicalTaskState.cancelled
    coding = cluster.coding(task_id)
    assert coding.status == "killed"  # the worker stopped the agent and said so
    remote = {e.execution_id: e for e in cluster.hub.executions()}[coding.id]
    assert remote.state == "finished" and remote.final is not None
    assert remote.final.state == "killed"
    lines = cluster.lines(coding.id)
    assert lines[:3] == ["tick 0", "tick 1", "tick 2"]
    time.sleep(0.5)  # nothing more arrives: the loop on the worker is gone
    assert len(cluster.lines(coding.id)) == len(lines)
    assert cluster.hub.workers()[0].running == []


def test_placement_follows_the_worker_option(cluster: Cluster) -> None:
    # no worker yet: "any" runs locally, a named worker cannot run
    local = cluster.add()
    cluster.rt.start(local)
    assert cluster.rt.wait(local, timeout=60)
    task = cluster.store.get_task(local)
    assert task.state == CanonicalTaskState.review and task.worker_id is None
    execution = cluster.rt.latest_execution(local)
    assert execution is not None and execution.workspace  # a local worktree
    named = cluster.add(worker="w2")
    cluster.rt.start(named)
    assert cluster.rt.wait(named, timeout=30)
    task = cluster.store.get_task(named)
    assert task.state == CanonicalTaskState.blocked
    assert task.blocked_reason == "worker w2 is not connected to this hub"
    cluster.worker("w1")
    cluster.worker("w2")
    wait_until(online(cluster.hub, 2), 20, "two workers online")
    cluster.rt.start(named)  # a retry now finds it
    assert cluster.rt.wait(named, timeout=60)
    task = cluster.store.get_task(named)
    assert task.state == CanonicalTaskState.review, task.blocked_reason
    assert task.worker_id == "w2" and cluster.coding(named).options["worker"] == "w2"


def test_the_board_embeds_the_hub_from_config(
    tmp_path: Path, procs: Procs, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = SqliteStore(tmp_path / "aura.db")
    repo = make_repo(tmp_path / "src" / "demo", {"README.md": "hello\n"})
    rt = Runtime(store, parse_config({"worktrees": {"root": str(tmp_path / "wt")}}))
    assert rt.start_hub() is None  # [hub] enabled is off by default
    conf = rt.config.hub.model_dump()
    monkeypatch.setattr(rt.config, "hub", SimpleNamespace(**{**conf, "enabled": True, "port": 0}))
    hub = rt.start_hub(state_file=tmp_path / "hub-state.json", **FAST)
    assert hub is not None and hub.alive and rt.hub is hub
    try:
        clone = tmp_path / "clone" / "demo"
        git(tmp_path, "clone", "-q", str(repo), str(clone))
        token = conf["token"] or load_or_create_token()
        procs.worker(hub.url, "w1", token=token, repo=clone)
        wait_until(online(hub, 1), 20, "worker online")
        options = {"base_command": "sh", "params": ["-c", EDIT], "worker": "w1"}
        task = rt.add_task("Write notes", "note this", "custom", options=options, repos=[str(repo)])
        rt.start(task.id)
        assert rt.wait(task.id, timeout=60)
        done = store.get_task(task.id)
        assert done.state == CanonicalTaskState.review and done.worker_id == "w1"
    finally:
        rt.shutdown(timeout=10)
    assert not hub.alive  # the runtime stops the hub it started


def _run_remote_task(cluster: Cluster) -> tuple[str, str, str]:
    """A task run on worker w1 to review: (task id, its branch, the branch's commit there)."""
    cluster.worker("w1")
    wait_until(online(cluster.hub, 1), 20, "worker online")
    task_id = cluster.add(worker="w1")
    cluster.rt.start(task_id)
    assert cluster.rt.wait(task_id, timeout=60)
    task = cluster.store.get_task(task_id)
    assert task.state == CanonicalTaskState.review, task.blocked_reason
    execution = cluster.rt.latest_execution(task_id)
    assert execution is not None and execution.branch and execution.workspace == []
    worktree = Path(cluster.coding(task_id).cwd.partition(":")[2])
    tip = git(worktree, "rev-parse", "HEAD").strip()
    return task_id, execution.branch, tip


def _clone_state(cluster: Cluster) -> tuple[str, str]:
    clone = cluster.tmp / "clones" / "w1" / "demo"
    return git(clone, "for-each-ref"), git(clone, "status", "--porcelain")


def test_a_remote_task_is_diffed_and_merged_here(cluster: Cluster) -> None:
    task_id, branch, tip = _run_remote_task(cluster)
    repo = cluster.repo
    clone_before = _clone_state(cluster)
    # the runtime fetched the worker's commits after the stages: the branch is here too
    assert git(repo, "rev-parse", f"refs/heads/{branch}").strip() == tip
    assert git(repo, "log", "--format=%s", f"main..{branch}").splitlines() == ["Write notes"]
    assert git(repo, "status", "--porcelain") == ""  # the person's checkout is not touched

    diff = cluster.rt.diff(task_id)
    assert [(f.path, f.status) for f in diff.files] == [("notes.txt", "added")]
    assert "+note this" in diff.patch and diff.new == tip
    turn = cluster.rt.diff(task_id, turn=1)
    assert [f.path for f in turn.files] == ["notes.txt"] and turn.new == tip

    # on demand: with the fetched branch gone, diff brings it again from the worker
    git(repo, "branch", "-D", branch)
    git(repo, "update-ref", "-d", f"refs/aura/remote/{branch}")
    assert [f.path for f in cluster.rt.diff(task_id).files] == ["notes.txt"]
    assert git(repo, "rev-parse", branch).strip() == tip

    task = cluster.rt.approve(task_id, merge=True)
    assert task.state == CanonicalTaskState.done
    assert git(repo, "log", "-1", "--format=%s", "main").strip() == "Write notes"
    assert "note this" in git(repo, "show", "main:notes.txt")
    assert git(repo, "rev-list", "--count", "main").strip() == "2"  # one squashed commit
    assert "note this" in (repo / "notes.txt").read_text()  # main's checkout came along
    assert git(repo, "status", "--porcelain") == ""
    assert _clone_state(cluster) == clone_before  # the worker's clone is untouched
    cluster.rt.remove(task_id)  # merged: the local copy of the branch goes with the task
    assert git(repo, "for-each-ref", f"refs/heads/{branch}", "refs/aura") == ""
    assert _clone_state(cluster) == clone_before


def test_a_remote_task_is_merged_with_its_worker_gone(cluster: Cluster) -> None:
    task_id, branch, tip = _run_remote_task(cluster)
    repo = cluster.repo
    proc = cluster.workers["w1"]
    proc.kill()
    proc.wait(10)
    wait_until(lambda: all(w.state != "online" for w in cluster.hub.workers()), 20, "worker gone")
    diff = cluster.rt.diff(task_id)  # from the branch fetched after the last stage
    assert [f.path for f in diff.files] == ["notes.txt"] and diff.new == tip
    assert [f.path for f in cluster.rt.diff(task_id, turn=1).files] == ["notes.txt"]
    # `aura task diff` runs its own runtime, with no hub: the fetched branch is all it needs
    headless = Runtime(cluster.store, cluster.rt.config, recover=False)
    assert [f.path for f in headless.diff(task_id).files] == ["notes.txt"]

    results = cluster.rt.merge(task_id)
    assert results[0].commit is not None and results[0].branch == branch
    assert git(repo, "log", "-1", "--format=%s", "main").strip() == "Write notes"
    assert "note this" in git(repo, "show", "main:notes.txt")
    notices = [e.message or "" for e in cluster.events if e.kind == "notify"]
    assert any("worker w1 is" in m and f"using {branch} as fetched" in m for m in notices)

    # never fetched here and the worker away: one line saying so
    git(repo, "branch", "-D", branch)
    git(repo, "update-ref", "-d", f"refs/aura/remote/{branch}")
    with pytest.raises(RuntimeError_) as info:
        cluster.rt.diff(task_id)
    message = str(info.value)
    assert "\n" not in message and "worker w1" in message and "never fetched here" in message


def test_a_local_branch_with_other_commits_is_never_overwritten(cluster: Cluster) -> None:
    task_id, branch, _ = _run_remote_task(cluster)
    repo = cluster.repo
    other = git(repo, "commit-tree", "main^{tree}", "-p", "main", "-m", "mine").strip()
    git(repo, "update-ref", f"refs/heads/{branch}", other)
    main_before = git(repo, "rev-parse", "main").strip()
    with pytest.raises(RuntimeError_) as info:
        cluster.rt.merge(task_id)
    message = str(info.value)
    assert "\n" not in message and "has 1 commit(s) the worker's does not" in message
    assert git(repo, "rev-parse", branch).strip() == other  # nothing was changed
    assert git(repo, "rev-parse", "main").strip() == main_before
    with pytest.raises(RuntimeError_, match="can only be squash-merged here"):
        cluster.rt.merge(task_id, rebase=True)


def test_a_remote_task_with_uncommitted_work_is_not_merged(cluster: Cluster) -> None:
    cluster.rt.config.worktrees.auto_commit = False  # the agent's change stays uncommitted
    task_id, branch, tip = _run_remote_task(cluster)
    repo = cluster.repo
    main_before = git(repo, "rev-parse", "main").strip()
    assert git(repo, "rev-parse", branch).strip() == tip == main_before  # nothing committed
    assert cluster.rt.diff(task_id).empty
    with pytest.raises(RuntimeError_) as info:
        cluster.rt.approve(task_id, merge=True)
    message = str(info.value)
    assert "\n" not in message
    assert "uncommitted changes in its worktree on worker w1 (notes.txt)" in message
    assert git(repo, "rev-parse", "main").strip() == main_before
    assert cluster.store.get_task(task_id).state == CanonicalTaskState.review
