"""A hub and three real worker processes: scheduling, streaming, interrupting, draining."""

from __future__ import annotations

import signal

from tests.worker.conftest import (
    Collector,
    HubFactory,
    Procs,
    assert_exact,
    online,
    start_params,
    wait_until,
)


def test_three_workers_run_executions_and_stream_every_line_once(
    make_hub: HubFactory, procs: Procs, collector: Collector
) -> None:
    hub = make_hub()
    for name in ("w1", "w2", "w3"):
        procs.worker(hub.url, name, concurrency=1)
    wait_until(online(hub, 3), 20, "three workers online")
    placed = {}
    for i in range(3):
        out = hub.start_execution(start_params(f"e{i}", 400, delay=0.002))
        assert out.accepted, out.reason
        placed[f"e{i}"] = out.worker_name
    # one slot each: the three executions went to three different workers, a fourth has no room
    assert sorted(placed.values()) == ["w1", "w2", "w3"]
    busy = hub.start_execution(start_params("e-extra", 10))
    assert not busy.accepted and "busy" in (busy.reason or "")
    for i in range(3):
        collector.wait(lambda i=i: collector.final(f"e{i}") is not None, 30, f"e{i} done")
        final = collector.final(f"e{i}")
        assert final is not None and final.state == "completed" and final.exit_code == 0
        assert final.lines == 400
        assert_exact(collector, f"e{i}", 400)
    assert not collector.lost
    wait_until(lambda: all(not w.running for w in hub.workers()), 5, "slots freed")
    again = hub.start_execution(start_params("e-after", 5, delay=0))
    assert again.accepted, again.reason


def test_scheduling_follows_capabilities(make_hub: HubFactory, procs: Procs) -> None:
    hub = make_hub()
    nothing = hub.start_execution(start_params("e0", 1))
    assert not nothing.accepted and nothing.reason == "no worker is online"
    procs.worker(hub.url, "w1")
    wait_until(online(hub, 1), 20, "worker online")
    info = hub.workers()[0]
    assert [e.name for e in info.executors] == ["custom"] and info.repos == ["demo"]
    no_exec = hub.start_execution({**start_params("e1", 1), "executor": "codex"})
    assert not no_exec.accepted and "codex" in (no_exec.reason or "")
    no_repo = hub.start_execution(start_params("e2", 1, repo="elsewhere"))
    assert not no_repo.accepted and "elsewhere" in (no_repo.reason or "")
    # the worker itself refuses what it cannot start, and the hub says why
    bad = hub.start_execution({**start_params("e3", 1), "options": {"base_command": "nope-x"}})
    assert not bad.accepted and "nope-x" in (bad.reason or "")
    outside = hub.start_execution({**start_params("e4", 1), "cwd": "../.."})
    assert not outside.accepted and "outside" in (outside.reason or "")
    ok = hub.start_execution(start_params("e5", 3, delay=0))
    assert ok.accepted and ok.worker_name == "w1"
    dup = hub.start_execution(start_params("e5", 3, delay=0))
    assert not dup.accepted and "already known" in (dup.reason or "")


def test_interrupt_stops_the_run_and_reports_killed(
    make_hub: HubFactory, procs: Procs, collector: Collector
) -> None:
    hub = make_hub()
    procs.worker(hub.url, "w1")
    wait_until(online(hub, 1), 20, "worker online")
    assert hub.start_execution(start_params("e1", 100000, delay=0.01)).accepted
    collector.wait(lambda: len(collector.seqs("e1")) >= 20, 15, "some lines")
    assert hub.interrupt("e1")
    collector.wait(lambda: collector.final("e1") is not None, 15, "final state")
    final = collector.final("e1")
    assert final is not None and final.state == "killed"
    n = final.lines
    assert 20 <= n < 100000
    assert_exact(collector, "e1", n)
    assert not hub.interrupt("e1")  # finished: nothing to interrupt


def test_input_is_refused_by_executors_without_a_live_channel(
    make_hub: HubFactory, procs: Procs, collector: Collector
) -> None:
    from aura_core.worker.protocol import ErrorCode, RpcError

    hub = make_hub()
    procs.worker(hub.url, "w1")
    wait_until(online(hub, 1), 20, "worker online")
    assert hub.start_execution(start_params("e1", 100000, delay=0.01)).accepted
    collector.wait(lambda: len(collector.seqs("e1")) >= 1, 15, "a line")
    try:
        hub.send_input("e1", "follow_up", "more please")
    except RpcError as exc:
        assert exc.code == ErrorCode.UNSUPPORTED and "resume_id" in exc.message
    else:
        raise AssertionError("the command executor cannot take input")
    try:
        hub.send_input("nope", "approval", approve=True)
    except RpcError as exc:
        assert exc.code == ErrorCode.UNKNOWN_EXECUTION
    else:
        raise AssertionError("unknown execution")
    hub.interrupt("e1")


def test_sigterm_drains_interrupts_and_tells_the_hub(
    make_hub: HubFactory, procs: Procs, collector: Collector
) -> None:
    hub = make_hub()
    proc = procs.worker(hub.url, "w1", "--drain-timeout", "0.5")
    wait_until(online(hub, 1), 20, "worker online")
    assert hub.start_execution(start_params("long", 100000, delay=0.01)).accepted
    collector.wait(lambda: len(collector.seqs("long")) >= 10, 15, "some lines")
    proc.send_signal(signal.SIGTERM)
    wait_until(lambda: hub.workers()[0].state in ("draining", "stopped"), 5, "draining")
    refused = hub.start_execution(start_params("late", 1))
    assert not refused.accepted
    assert proc.wait(30) == 0
    collector.wait(lambda: collector.final("long") is not None, 5, "final state")
    final = collector.final("long")
    assert final is not None and final.state == "killed"
    assert_exact(collector, "long", final.lines)
    wait_until(lambda: hub.workers()[0].state == "stopped", 5, "stopped")
    assert not collector.lost  # a clean stop is not a lost worker


def test_sigterm_lets_a_short_run_finish(
    make_hub: HubFactory, procs: Procs, collector: Collector
) -> None:
    hub = make_hub()
    proc = procs.worker(hub.url, "w1", "--drain-timeout", "20")
    wait_until(online(hub, 1), 20, "worker online")
    assert hub.start_execution(start_params("short", 100, delay=0.01)).accepted
    collector.wait(lambda: len(collector.seqs("short")) >= 5, 15, "some lines")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    final = collector.final("short")
    assert final is not None and final.state == "completed"
    assert_exact(collector, "short", 100)
