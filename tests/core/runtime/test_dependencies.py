"""Task dependencies ("run B after A"): a real Runtime, a real SQLite file, a real git repo."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from aura_core.board import MoveIntent
from aura_core.config import parse_config
from aura_core.contracts import CanonicalTaskState
from aura_core.engine.runtime import AFTER, START_WHEN_READY, Runtime, RuntimeError_, RuntimeEvent
from aura_core.store.sqlite import SqliteStore
from tests.support.gitrepo import git, make_repo

CS = CanonicalTaskState


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo", {"README.md": "hello\n"})


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Runtime]:
    cfg = parse_config({"worktrees": {"root": str(tmp_path / "wt")}})
    runtime = Runtime(SqliteStore(tmp_path / "aura.db"), cfg)
    yield runtime
    runtime.shutdown()


def add(rt: Runtime, repo: Path, title: str, script: str = "true", **kw: object) -> str:
    options = {"base_command": "sh", "params": ["-c", script]}
    task = rt.add_task(title, title, "custom", options=options, repos=[str(repo)], **kw)  # type: ignore[arg-type]
    return task.id


def notices(rt: Runtime) -> list[RuntimeEvent]:
    seen: list[RuntimeEvent] = []
    rt.subscribe(lambda e: seen.append(e) if e.kind == "notify" else None)
    return seen


def test_b_waits_for_a_then_starts_on_the_merged_base(rt: Runtime, repo: Path) -> None:
    said = notices(rt)
    a = add(rt, repo, "Fix login", "echo fixed > login.txt", column_id="ready")
    b = add(
        rt, repo, "Add audit", "cat login.txt > audit.txt", column_id="ready", after=["fix login"]
    )
    assert rt.store.get_task(b).options[AFTER] == [a]

    rt.start(a)
    assert rt.wait(a, timeout=60)
    assert rt.store.get_task(a).state is CS.review

    decision = rt.move(b, "in_progress")
    assert decision.ok and decision.intent is MoveIntent.wait
    assert decision.reason == "'Add audit' starts when 'Fix login' is done"
    task_b = rt.store.get_task(b)
    assert task_b.state is CS.ready and task_b.column_id == "ready"
    assert task_b.options[START_WHEN_READY] is True
    assert rt.executions(b) == [] and rt.workspace(b) == [] and not rt.is_running(b)
    assert any(n.message == decision.reason for n in said)

    rt.approve(a, merge=True)
    assert rt.store.get_task(a).state is CS.done
    assert rt.wait(b, timeout=60)
    task_b = rt.store.get_task(b)
    assert task_b.state is CS.review and START_WHEN_READY not in task_b.options
    wt = Path(rt.workspace(b)[0])
    log = git(wt, "log", "--format=%s").splitlines()
    assert log[0] == "Add audit" and "Fix login" in log  # branched from main with A merged
    assert (wt / "audit.txt").read_text() == "fixed\n"
    assert any("'Add audit' started" in n.message for n in said)


def test_unknown_ids_and_cycles_are_refused(rt: Runtime, repo: Path) -> None:
    a = add(rt, repo, "A")
    b = add(rt, repo, "B", after=[a[:8]])
    c = add(rt, repo, "C", after=["B"])
    with pytest.raises(RuntimeError_, match="no task has the id or title 'nope'"):
        add(rt, repo, "D", after=["nope"])
    with pytest.raises(RuntimeError_, match="no task has the id or title 'nope'"):
        rt.set_after(a, ["nope"])
    with pytest.raises(RuntimeError_, match="cannot run after itself"):
        rt.set_after(a, [a])
    with pytest.raises(RuntimeError_, match="'B' already runs after 'A': that would be a cycle"):
        rt.set_after(a, [b])
    with pytest.raises(RuntimeError_, match=r"'C' already runs after 'A' \(through 'B'\)"):
        rt.set_after(a, ["c"])
    assert AFTER not in rt.store.get_task(a).options
    assert rt.set_after(c, [a, b]).options[AFTER] == [a, b]
    assert AFTER not in rt.set_after(c, []).options
    assert len(rt.tasks()) == 3


def test_a_start_with_unfinished_dependencies_is_refused(rt: Runtime, repo: Path) -> None:
    a = add(rt, repo, "A", column_id="ready")
    b = add(rt, repo, "B", column_id="ready", after=[a])
    with pytest.raises(RuntimeError_, match="'B' starts when 'A' is done"):
        rt.start(b)
    assert rt.executions(b) == []


def test_cancelled_or_removed_dependency_leaves_the_waiting_task_in_ready(
    rt: Runtime, repo: Path
) -> None:
    said = notices(rt)
    a = add(rt, repo, "A", column_id="ready")
    c = add(rt, repo, "C", column_id="ready")
    b = add(rt, repo, "B", column_id="ready", after=[a, c])
    assert rt.move(b, "in_progress").reason == "'B' starts when 'A' and 'C' are done"
    assert rt.move(a, "cancelled").ok
    task_b = rt.store.get_task(b)
    assert task_b.state is CS.ready and START_WHEN_READY not in task_b.options
    assert task_b.options[AFTER] == [a, c] and rt.executions(b) == []
    gone = [n.message for n in said if n.task_id == b and n.level == "warning"]
    assert gone == ["'B' stays in Ready, not started: 'A', which it runs after, was cancelled"]

    assert rt.move(b, "in_progress").intent is MoveIntent.wait  # waits again (for A and C)
    rt.remove(c)
    task_b = rt.store.get_task(b)
    assert task_b.options[AFTER] == [a] and START_WHEN_READY not in task_b.options
    assert "'C', which it runs after, was removed" in said[-1].message
    assert rt.executions(b) == [] and task_b.state is CS.ready
