"""One contract, two stores: MemoryStore and SqliteStore must behave the same."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from aura_core.contracts import (
    CanonicalTaskState,
    EventKind,
    Execution,
    ExecutionEvent,
    ExecutionStatus,
    Session,
    SessionStatus,
    Task,
)
from aura_core.store.errors import Ambiguous, NotFound
from aura_core.store.memory import MemoryStore
from aura_core.store.sqlite import SqliteStore


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MemoryStore | SqliteStore]:
    s: MemoryStore | SqliteStore = (
        MemoryStore() if request.param == "memory" else SqliteStore(tmp_path / "aura.db")
    )
    yield s
    s.close()


def _session(sid: str, created: float, **kw: object) -> Session:
    return Session(id=sid, executor="custom", cwd="/tmp", created_at=created, **kw)  # type: ignore[arg-type]


def test_sessions_roundtrip_and_order(store: MemoryStore | SqliteStore) -> None:
    store.create_session(_session("aaa111", 1.0, prompt="first", options={"x": 1}))
    store.create_session(_session("aab222", 2.0, prompt="second"))
    store.create_session(_session("bbb333", 3.0, prompt="third", status=SessionStatus.running))
    assert [s.id for s in store.list_sessions()] == ["bbb333", "aab222", "aaa111"]
    assert [s.id for s in store.list_sessions(limit=2)] == ["bbb333", "aab222"]
    latest = store.latest_session()
    assert latest is not None and latest.id == "bbb333"
    assert store.get_session("aaa111").options == {"x": 1}
    assert [s.id for s in store.running_sessions()] == ["bbb333"]
    updated = store.update_session("bbb333", status=SessionStatus.completed, exit_code=0)
    assert updated.status == SessionStatus.completed and updated.exit_code == 0
    assert store.running_sessions() == []


def test_find_by_prefix(store: MemoryStore | SqliteStore) -> None:
    store.create_session(_session("aaa111", 1.0))
    store.create_session(_session("aab222", 2.0))
    assert store.find_session("aab").id == "aab222"
    assert store.find_session("AAA1").id == "aaa111"
    with pytest.raises(Ambiguous, match="several"):
        store.find_session("aa")
    with pytest.raises(NotFound, match="aura session list"):
        store.find_session("zz")
    with pytest.raises(NotFound):
        store.get_session("nope")
    with pytest.raises(NotFound):
        store.update_session("nope", status=SessionStatus.failed)


def test_logs_in_order_with_raw_bytes(store: MemoryStore | SqliteStore) -> None:
    store.create_session(_session("s1", 1.0))
    now = time.time()
    store.append_log([("s1", i, "stdout", now, f"line {i}", None) for i in range(3)])
    store.append_log([("s1", 3, "stderr", now, "bad \ufffd", b"bad \xff")])
    lines = store.read_log("s1")
    assert [ln.text for ln in lines] == ["line 0", "line 1", "line 2", "bad \ufffd"]
    assert lines[3].stream == "stderr" and lines[3].raw == b"bad \xff"
    assert [ln.seq for ln in store.read_log("s1", start_seq=2, limit=1)] == [2]
    assert [ln.seq for ln in store.iter_log("s1", start_seq=1)] == [1, 2, 3]
    assert store.count_log("s1") == 4
    assert store.last_seq("s1") == 3
    assert store.last_seq("other") == -1


def test_append_log_is_all_or_nothing(store: MemoryStore | SqliteStore) -> None:
    store.create_session(_session("s1", 1.0))
    store.append_log([("s1", 0, "stdout", 1.0, "a", None)])
    with pytest.raises(Exception):  # noqa: B017 - the duplicate seq is rejected by either store
        store.append_log([("s1", 1, "stdout", 1.0, "b", None), ("s1", 0, "stdout", 1.0, "x", None)])
    assert [ln.text for ln in store.read_log("s1")] == ["a"]


def test_tasks_executions_events(store: MemoryStore | SqliteStore) -> None:
    task = Task(id="t1abc", title="Fix it", created_at=1.0, updated_at=1.0, repos=["/r"])
    store.create_task(task)
    store.create_task(Task(id="t2abc", title="Other", created_at=2.0, updated_at=2.0))
    assert store.find_task("t1").title == "Fix it"
    moved = store.update_task("t1abc", column_id="ready", state=CanonicalTaskState.ready)
    assert moved.column_id == "ready" and moved.repos == ["/r"]
    assert [t.id for t in store.list_tasks()] == ["t1abc", "t2abc"]
    assert store.task_counts() == {"ready": 1, "backlog": 1}
    execution = Execution(id="e1", task_id="t1abc", created_at=1.0, updated_at=1.0)
    store.create_execution(execution)
    store.update_execution("e1", status=ExecutionStatus.running, workspace=["/wt"])
    assert store.get_execution("e1").workspace == ["/wt"]
    first = store.append_event("e1", ExecutionEvent(kind=EventKind.start_requested), 1.0)
    second = store.append_event(
        "e1", ExecutionEvent(kind=EventKind.stage_failed, message="boom"), 2.0
    )
    assert (first.seq, second.seq) == (0, 1)
    events = store.list_events("e1")
    assert [e.kind for e in events] == [EventKind.start_requested, EventKind.stage_failed]
    assert events[1].payload == {"message": "boom"}
    assert [e.id for e in store.list_executions("t1abc")] == ["e1"]
    store.delete_task("t1abc")
    assert [t.id for t in store.list_tasks()] == ["t2abc"]
    assert store.list_executions("t1abc") == []
    with pytest.raises(NotFound):
        store.delete_task("t1abc")


def test_transaction_rolls_back(store: MemoryStore | SqliteStore) -> None:
    with pytest.raises(RuntimeError), store.transaction():
        store.create_task(Task(id="t1", title="x", created_at=1.0, updated_at=1.0))
        raise RuntimeError("boom")
    assert store.list_tasks() == []


def test_settings(store: MemoryStore | SqliteStore) -> None:
    assert store.get_setting("theme", "default") == "default"
    store.set_setting("theme", "nord")
    store.set_setting("theme", "dracula")
    assert store.get_setting("theme") == "dracula"


def test_unknown_update_field_rejected(store: MemoryStore | SqliteStore) -> None:
    store.create_session(_session("s1", 1.0))
    with pytest.raises(ValueError, match="unknown"):
        store.update_session("s1", colour="red")
