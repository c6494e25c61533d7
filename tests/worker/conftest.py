"""A hub in the test process (HubThread) and real `aura worker serve` processes around it.

Workers are started with `python -m aura_core.worker worker serve` and the isolated environment;
each gets its own data dir. Every process a test starts is ended by pid when the test ends.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from aura_core.worker.hub import HubThread
from aura_core.worker.protocol import StateParams

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "test-token-0123456789"
FAST = {"heartbeat_interval": 0.25, "offline_after": 3.0}  # loaded CI machines miss beats


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def loop_cmd(count: int, delay: float = 0.01, prefix: str = "line") -> dict[str, Any]:
    """Command-executor options: print `prefix N` for N in 0..count-1, `delay` apart."""
    script = (
        f'i=0; while [ "$i" -lt {count} ]; do echo "{prefix} $i"; i=$((i+1)); '
        + (f"sleep {delay}; " if delay else "")
        + "done"
    )
    return {"base_command": "sh", "params": ["-c", script]}


def start_params(
    execution_id: str, count: int, delay: float = 0.01, repo: str = "demo", **extra: Any
) -> dict[str, Any]:
    return {
        "execution_id": execution_id,
        "action": "run_coding_initial",
        "executor": "custom",
        "prompt": "count",
        "repo": repo,
        "options": loop_cmd(count, delay),
        **extra,
    }


@dataclass
class Collector:
    """What the hub's callbacks reported, thread-safe, with a wait helper."""

    logs: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    states: dict[str, list[StateParams]] = field(default_factory=dict)
    lost: dict[str, tuple[str, float]] = field(default_factory=dict)
    cond: threading.Condition = field(default_factory=threading.Condition)

    def on_log(self, execution_id: str, rows: list[Any]) -> None:
        with self.cond:
            self.logs.setdefault(execution_id, []).extend((r[1], r[4]) for r in rows)
            self.cond.notify_all()

    def on_state(self, execution_id: str, state: StateParams) -> None:
        with self.cond:
            self.states.setdefault(execution_id, []).append(state)
            self.cond.notify_all()

    def on_worker_lost(self, execution_id: str, worker: str) -> None:
        with self.cond:
            self.lost[execution_id] = (worker, time.monotonic())
            self.cond.notify_all()

    def callbacks(self) -> dict[str, Any]:
        return {
            "on_log": self.on_log,
            "on_state": self.on_state,
            "on_worker_lost": self.on_worker_lost,
        }

    def wait(self, predicate: Callable[[], bool], timeout: float, what: str = "") -> None:
        deadline = time.monotonic() + timeout
        with self.cond:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
                self.cond.wait(min(left, 0.1))

    def final(self, execution_id: str) -> StateParams | None:
        with self.cond:
            for st in self.states.get(execution_id, []):
                if st.state != "running":
                    return st
        return None

    def seqs(self, execution_id: str) -> list[int]:
        with self.cond:
            return [s for s, _ in self.logs.get(execution_id, [])]

    def texts(self, execution_id: str) -> list[str]:
        with self.cond:
            return [t for _, t in self.logs.get(execution_id, [])]


def assert_exact(col: Collector, execution_id: str, count: int, prefix: str = "line") -> None:
    """Every line 0..count-1 delivered exactly once, in order, with the right text."""
    seqs = col.seqs(execution_id)
    assert seqs == list(range(count)), f"seqs: {len(seqs)} lines, {seqs[:5]}..{seqs[-5:]}"
    assert col.texts(execution_id) == [f"{prefix} {i}" for i in range(count)]


def wait_until(predicate: Callable[[], bool], timeout: float, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


class Procs:
    """Processes started by a test, ended by pid at teardown."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.procs: list[subprocess.Popen[bytes]] = []

    def worker(
        self,
        hub_url: str,
        name: str,
        *extra: str,
        token: str | None = TOKEN,
        repo: Path | None = None,
        concurrency: int = 2,
    ) -> subprocess.Popen[bytes]:
        repo = repo or self.tmp / "repo"
        repo.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env.pop("AURA_WORKER_TOKEN", None)
        if token is not None:
            env["AURA_WORKER_TOKEN"] = token
        log = open(self.tmp / f"{name}.log", "ab")  # noqa: SIM115 (closed by the process's end)
        argv = [
            sys.executable,
            "-m",
            "aura_core.worker",
            "worker",
            "serve",
            "--hub",
            hub_url,
            "--name",
            name,
            "--data-dir",
            str(self.tmp / f"data-{name}"),
            "--repo",
            f"demo={repo}",
            "--max-concurrency",
            str(concurrency),
            "--reconnect-max",
            "1",
            "--ping",
            "1",
            *extra,
        ]
        proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=log, stderr=log)
        log.close()
        self.procs.append(proc)
        return proc

    def hub_process(self, *extra: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "aura_core.worker", "hub", "--port", "0", *extra],
            env=dict(os.environ),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=open(self.tmp / "hub.log", "ab"),  # noqa: SIM115
            text=True,
        )
        self.procs.append(proc)  # type: ignore[arg-type]
        return proc

    def log(self, name: str) -> str:
        try:
            return (self.tmp / f"{name}.log").read_text(errors="replace")
        except OSError:
            return ""

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                try:
                    os.kill(proc.pid, signal.SIGCONT)
                    os.kill(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                pass


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Procs]:
    p = Procs(tmp_path)
    try:
        yield p
    finally:
        p.close()


@pytest.fixture
def collector() -> Collector:
    return Collector()


HubFactory = Callable[..., HubThread]


@pytest.fixture
def make_hub(collector: Collector) -> Iterator[HubFactory]:
    hubs: list[HubThread] = []

    def make(**kwargs: Any) -> HubThread:
        opts: dict[str, Any] = {"token": TOKEN, "port": 0, **FAST, **collector.callbacks()}
        opts.update(kwargs)
        hub = HubThread(**opts).start()
        hubs.append(hub)
        return hub

    yield make
    for hub in hubs:
        hub.stop()


def online(hub: HubThread, count: int) -> Callable[[], bool]:
    return lambda: sum(w.state == "online" for w in hub.workers()) >= count
