"""A dev server per task: a real git repo and worktree, a real HTTP server on the task's port."""

from __future__ import annotations

import socket
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from aura_core import procinfo
from aura_core.config import parse_config
from aura_core.contracts import CanonicalTaskState
from aura_core.engine.runtime import Runtime, RuntimeError_, port_in_use
from aura_core.store.sqlite import SqliteStore
from tests.support.gitrepo import make_repo

# the port arrives as $AURA_PORT; a marker line shows the output lands in the session log
SERVER = (
    'echo "serving on $AURA_PORT and $PORT"; '
    f"exec {sys.executable} -m http.server $AURA_PORT --bind 127.0.0.1"
)
EDIT = 'echo "port=$AURA_PORT" > notes.txt'


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo", {"README.md": "hello\n"})


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    return SqliteStore(tmp_path / "aura.db")


def free_base() -> int:
    """A base with a few free ports after it, so parallel test runs do not collide."""
    for _ in range(50):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            base = int(sock.getsockname()[1])
        if base < 60000 and not any(port_in_use(base + i) for i in range(6)):
            return base
    raise AssertionError("no free ports")


def runtime(
    store: SqliteStore, tmp_path: Path, script: str | None = SERVER, **rt: object
) -> Runtime:
    config: dict[str, object] = {
        "worktrees": {"root": str(tmp_path / "wt")},
        "runtime": {"dev_port_base": free_base(), "dev_port_count": 6, **rt},
    }
    if script:
        config["scripts"] = {"dev_server": script}
    return Runtime(store, parse_config(config))


def ran_task(rt: Runtime, repo: Path, title: str = "Write notes") -> str:
    options = {"base_command": "sh", "params": ["-c", EDIT]}
    task = rt.add_task(title, "note", "custom", options=options, repos=[str(repo)])
    rt.start(task.id)
    assert rt.wait(task.id, timeout=60)
    assert rt.store.get_task(task.id).state == CanonicalTaskState.review
    return task.id


def get(url: str, timeout: float = 20) -> int:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return int(response.status)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def log_text(store: SqliteStore, session_id: str) -> str:
    return "\n".join(line.text for line in store.read_log(session_id, 0, 1000))


def gone(pgid: int | None, timeout: float = 10) -> bool:
    assert pgid
    deadline = time.monotonic() + timeout
    while procinfo.group_alive(pgid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_start_serves_on_the_task_port_then_stop_ends_the_group(
    store: SqliteStore, repo: Path, tmp_path: Path
) -> None:
    rt = runtime(store, tmp_path)
    try:
        task_id = ran_task(rt, repo)
        port = rt.dev_port(task_id)
        # the agent got the same port
        wt = Path(rt.workspace(task_id)[0])
        assert (wt / "notes.txt").read_text().strip() == f"port={port}"
        before = store.get_task(task_id)
        dev = rt.start_dev_server(task_id)
        assert dev.port == port and dev.url == f"http://127.0.0.1:{port}" and dev.here
        assert get(dev.url) == 200
        assert rt.dev_server(task_id) == dev
        assert rt.dev_servers() == {task_id: port}
        # a session of stage dev_server, with the server's output in its log
        session = store.get_session(dev.session_id)
        assert session.stage == "dev_server" and session.task_id == task_id
        assert session.cwd == str(wt)
        deadline = time.monotonic() + 10
        while f"serving on {port} and {port}" not in log_text(store, dev.session_id):
            assert time.monotonic() < deadline, log_text(store, dev.session_id)
            time.sleep(0.05)
        assert dev.session_id in [s.id for s in rt.sessions(task_id)]
        # the task's state is untouched
        after = store.get_task(task_id)
        assert (after.state, after.column_id) == (before.state, before.column_id)
        with pytest.raises(RuntimeError_, match=r"already running at http://127\.0\.0\.1"):
            rt.start_dev_server(task_id)
        assert rt.stop_dev_server(task_id)
        assert gone(session.pgid)
        assert not port_in_use(port)
        assert rt.dev_server(task_id) is None and rt.dev_servers() == {}
        assert store.get_session(dev.session_id).status.value == "killed"
        assert not rt.stop_dev_server(task_id)
        # the same task gets the same port next time
        again = rt.start_dev_server(task_id)
        assert again.port == port and again.session_id != dev.session_id
        assert get(again.url) == 200
    finally:
        rt.shutdown()


def test_two_tasks_get_different_ports_and_shutdown_stops_both(
    store: SqliteStore, repo: Path, tmp_path: Path
) -> None:
    rt = runtime(store, tmp_path)
    try:
        first = ran_task(rt, repo, "First")
        second = ran_task(rt, repo, "Second")
        assert rt.dev_port(first) != rt.dev_port(second)
        assert rt.dev_port(first) == rt.dev_port(first)
        a = rt.start_dev_server(first)
        b = rt.start_dev_server(second)
        assert get(a.url) == 200 and get(b.url) == 200
        groups = [store.get_session(d.session_id).pgid for d in (a, b)]
    finally:
        rt.shutdown()
    assert all(gone(g) for g in groups)
    for dev in (a, b):
        assert store.get_session(dev.session_id).status.value == "killed"


def test_a_bound_port_is_skipped_when_allocating(
    store: SqliteStore, repo: Path, tmp_path: Path
) -> None:
    rt = runtime(store, tmp_path)
    base = rt.config.runtime.dev_port_base
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", base))
        sock.listen()
        task = rt.add_task("T", "p", "custom", repos=[str(repo)])
        assert rt.dev_port(task.id) == base + 1
    assert store.get_task(task.id).options["dev_port"] == base + 1
    rt.shutdown()


def test_approve_and_cancel_stop_it(store: SqliteStore, repo: Path, tmp_path: Path) -> None:
    rt = runtime(store, tmp_path)
    try:
        task_id = ran_task(rt, repo)
        dev = rt.start_dev_server(task_id)
        assert get(dev.url) == 200
        pgid = store.get_session(dev.session_id).pgid
        # it does not hold up a follow-up (it keeps serving while the agent changes the code);
        # approving stops it
        decision = rt.check_move(task_id, "in_progress")
        assert decision.ok and decision.needs_prompt
        assert rt.check_move(task_id, "done").ok
        rt.approve(task_id)
        assert gone(pgid) and rt.dev_server(task_id) is None
        assert store.get_task(task_id).state == CanonicalTaskState.done

        other = ran_task(rt, repo, "Other")
        dev = rt.start_dev_server(other)
        assert get(dev.url) == 200
        pgid = store.get_session(dev.session_id).pgid
        rt.cancel(other)
        assert gone(pgid) and rt.dev_server(other) is None
        assert store.get_task(other).state == CanonicalTaskState.cancelled
    finally:
        rt.shutdown()


def test_remove_stops_it(store: SqliteStore, repo: Path, tmp_path: Path) -> None:
    rt = runtime(store, tmp_path)
    try:
        task_id = ran_task(rt, repo)
        dev = rt.start_dev_server(task_id)
        pgid = store.get_session(dev.session_id).pgid
        rt.remove(task_id, force=True)
        assert gone(pgid)
    finally:
        rt.shutdown()


def test_refusals(store: SqliteStore, repo: Path, tmp_path: Path) -> None:
    rt = runtime(store, tmp_path, script=None)
    try:
        task_id = ran_task(rt, repo)
        with pytest.raises(RuntimeError_, match=r"set \[scripts\] dev_server"):
            rt.start_dev_server(task_id)
    finally:
        rt.shutdown()
    rt = runtime(store, tmp_path)
    try:
        fresh = rt.add_task("Fresh", "p", "custom", repos=[str(repo)])
        with pytest.raises(RuntimeError_, match="has no worktree yet: start it first"):
            rt.start_dev_server(fresh.id)
        assert rt.dev_server(fresh.id) is None
    finally:
        rt.shutdown()


def test_a_server_that_exits_is_reported_and_forgotten(
    store: SqliteStore, repo: Path, tmp_path: Path
) -> None:
    rt = runtime(store, tmp_path, script="echo broken; exit 3")
    notices: list[str] = []
    rt.subscribe(lambda e: notices.append(e.message) if e.kind == "notify" else None)
    try:
        task_id = ran_task(rt, repo)
        dev = rt.start_dev_server(task_id)
        deadline = time.monotonic() + 10
        while rt.dev_server(task_id) is not None:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        session = store.get_session(dev.session_id)
        assert session.status.value == "failed" and session.exit_code == 3
        assert "broken" in log_text(store, dev.session_id)
        assert any("dev server exited" in n for n in notices)
    finally:
        rt.shutdown()
