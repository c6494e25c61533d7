"""The wire, spoken by hand: JSON-RPC errors, size limits, auth, and the hub's seq dedupe."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from aura_core.worker.protocol import ErrorCode, HelloParams, LogParams, StateParams
from tests.worker.conftest import TOKEN, Collector, HubFactory, wait_until


def _hello(worker_id: str = "fake-1", **extra: Any) -> dict[str, Any]:
    params = {
        "worker_id": worker_id,
        "name": worker_id,
        "version": "test",
        "capabilities": {"executors": [{"name": "custom"}], "repos": ["*"], "max_concurrency": 4},
        **extra,
    }
    HelloParams.model_validate(params)
    return {"jsonrpc": "2.0", "id": 1, "method": "worker.hello", "params": params}


async def _open(url: str, token: str | None = TOKEN, **kw: Any) -> ClientConnection:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return await connect(url, additional_headers=headers, **kw)


async def _reply(ws: ClientConnection, timeout: float = 5) -> Any:
    """The next message that is not a hub notification (acks, lease notices)."""
    while True:
        msg = json.loads(await asyncio.wait_for(ws.recv(), timeout))
        if isinstance(msg, dict) and msg.get("method"):
            continue
        return msg


async def _acks(ws: ClientConnection, execution_id: str, seq: int, timeout: float = 5) -> None:
    while True:
        msg = json.loads(await asyncio.wait_for(ws.recv(), timeout))
        if isinstance(msg, dict) and msg.get("method") == "execution.ack":
            for ack in msg["params"]["acks"]:
                if ack["execution_id"] == execution_id and ack["seq"] >= seq:
                    return


def _log(execution_id: str, seqs: list[int]) -> str:
    lines = [[s, "stdout", 1.0, f"line {s}", None] for s in seqs]
    LogParams.model_validate({"execution_id": execution_id, "lines": lines})
    return json.dumps(
        {
            "jsonrpc": "2.0",
            "method": "execution.log",
            "params": {"execution_id": execution_id, "lines": lines},
        }
    )


def test_jsonrpc_errors_and_the_connection_survives(make_hub: HubFactory) -> None:
    hub = make_hub(max_message_bytes=64 << 10)

    async def main() -> None:
        ws = await _open(hub.url)
        # a method before worker.hello
        await ws.send(json.dumps({"jsonrpc": "2.0", "id": 7, "method": "worker.heartbeat"}))
        r = await _reply(ws)
        assert r["id"] == 7 and r["error"]["code"] == ErrorCode.NOT_REGISTERED
        await ws.send(json.dumps(_hello()))
        r = await _reply(ws)
        assert r["id"] == 1 and r["result"]["heartbeat_interval"] == 0.25
        # malformed JSON: parse error, id null
        await ws.send("{not json")
        r = await _reply(ws)
        assert r == {
            "jsonrpc": "2.0",
            "id": None,
            "error": {"code": -32700, "message": r["error"]["message"]},
        }
        # not a request object / wrong version / bad id
        for bad, want_id in (
            ("42", None),
            (json.dumps({"id": 3, "method": "worker.heartbeat"}), 3),
            (json.dumps({"jsonrpc": "2.0", "id": [1], "method": "x"}), None),
            (json.dumps({"jsonrpc": "2.0", "id": 4, "method": 12}), 4),
            ("[]", None),
        ):
            await ws.send(bad)
            r = await _reply(ws)
            assert r["error"]["code"] == ErrorCode.INVALID_REQUEST, bad
            assert r["id"] == want_id
        # unknown method
        await ws.send(json.dumps({"jsonrpc": "2.0", "id": 5, "method": "worker.dance"}))
        r = await _reply(ws)
        assert r["id"] == 5 and r["error"]["code"] == ErrorCode.METHOD_NOT_FOUND
        # bad params, with what was wrong
        await ws.send(
            json.dumps(
                {"jsonrpc": "2.0", "id": 6, "method": "worker.heartbeat", "params": {"load": "x"}}
            )
        )
        r = await _reply(ws)
        assert r["id"] == 6 and r["error"]["code"] == ErrorCode.INVALID_PARAMS
        assert r["error"]["data"][0]["loc"] == "load"
        await ws.send(
            json.dumps({"jsonrpc": "2.0", "id": 8, "method": "worker.heartbeat", "params": [1]})
        )
        r = await _reply(ws)
        assert r["id"] == 8 and r["error"]["code"] == ErrorCode.INVALID_PARAMS
        # a notification with an unknown method or bad params gets no reply at all
        await ws.send(json.dumps({"jsonrpc": "2.0", "method": "worker.dance"}))
        await ws.send(
            json.dumps({"jsonrpc": "2.0", "method": "worker.heartbeat", "params": {"load": "x"}})
        )
        # a batch: replies for the requests only, in one array
        await ws.send(
            json.dumps(
                [
                    {"jsonrpc": "2.0", "method": "worker.heartbeat", "params": {}},
                    {"jsonrpc": "2.0", "id": 10, "method": "nope"},
                    {"jsonrpc": "2.0", "id": 11, "method": "worker.heartbeat", "params": {}},
                ]
            )
        )
        r = await _reply(ws)
        assert [x["id"] for x in r] == [10, 11]
        assert r[0]["error"]["code"] == ErrorCode.METHOD_NOT_FOUND and r[1]["result"] is None
        # over the message limit: an error, and the connection stays
        await ws.send(json.dumps({"jsonrpc": "2.0", "method": "x", "pad": "a" * (100 << 10)}))
        r = await _reply(ws)
        assert r["id"] is None and r["error"]["code"] == ErrorCode.MESSAGE_TOO_LARGE
        await ws.send(json.dumps({"jsonrpc": "2.0", "id": 12, "method": "worker.heartbeat"}))
        r = await _reply(ws)
        assert r["id"] == 12 and "result" in r
        # binary frames carry JSON just as well
        await ws.send(json.dumps({"jsonrpc": "2.0", "id": 13, "method": "nope"}).encode())
        r = await _reply(ws)
        assert r["id"] == 13
        # far over the limit: the transport closes with 1009 (message too big)
        await ws.send("x" * (200 << 10))
        with pytest.raises(ConnectionClosed) as info:
            for _ in range(10):
                await asyncio.wait_for(ws.recv(), 5)
        assert info.value.rcvd is not None and info.value.rcvd.code == 1009

    asyncio.run(main())


def test_auth_is_checked_before_the_websocket_opens(make_hub: HubFactory) -> None:
    hub = make_hub()

    async def main() -> None:
        for token in ("wrong", None, TOKEN + "x", TOKEN[:-1]):
            with pytest.raises(InvalidStatus) as info:
                await _open(hub.url, token)
            assert info.value.response.status_code == 401
        with pytest.raises(InvalidStatus):
            await connect(hub.url, additional_headers={"Authorization": f"Basic {TOKEN}"})
        ws = await _open(hub.url)
        await ws.close()

    asyncio.run(main())
    assert hub.workers() == []


def test_hub_dedupes_by_seq_and_holds_lines_past_a_gap(
    make_hub: HubFactory, collector: Collector
) -> None:
    hub = make_hub(offline_after=30.0)
    reported = {"execution_id": "x1", "session_id": "s1", "acked": -1, "next_seq": 0}

    async def main() -> None:
        ws = await _open(hub.url)
        await ws.send(json.dumps(_hello(running=[reported])))
        r = await _reply(ws)
        assert r["result"]["executions"] == [
            {"execution_id": "x1", "seq": -1, "done": False, "expired": False}
        ]
        await ws.send(_log("x1", list(range(10))))
        await _acks(ws, "x1", 9)
        await ws.send(_log("x1", [5, 6, 7, 8, 9, 10, 11]))  # a re-send overlapping the past
        await ws.send(_log("x1", [15, 16]))  # ahead of a gap: held
        await ws.send(_log("x1", [12, 13, 14]))  # the gap fills
        await _acks(ws, "x1", 16)
        await ws.close()
        # reconnect as the same worker: the hub tells where to resume, and still dedupes
        ws = await _open(hub.url)
        await ws.send(json.dumps(_hello(running=[{**reported, "acked": 16, "next_seq": 20}])))
        r = await _reply(ws)
        assert r["result"]["executions"][0]["seq"] == 16
        await ws.send(_log("x1", list(range(14, 20))))
        state = StateParams(execution_id="x1", state="completed", exit_code=0, lines=20)
        await ws.send(
            json.dumps(
                {
                    "jsonrpc": "2.0",
                    "method": "execution.state",
                    "params": state.model_dump(mode="json"),
                }
            )
        )
        while True:  # the final ack says done: the worker may forget the execution
            msg = json.loads(await asyncio.wait_for(ws.recv(), 5))
            if msg.get("method") == "execution.ack" and msg["params"]["acks"][0]["done"]:
                assert msg["params"]["acks"][0]["seq"] == 19
                break
        await ws.close()

    asyncio.run(main())
    assert collector.seqs("x1") == list(range(20))
    assert collector.texts("x1") == [f"line {i}" for i in range(20)]
    final = collector.final("x1")
    assert final is not None and final.state == "completed"
    # adopted on hello: the runtime heard it running first
    assert [s.state for s in collector.states["x1"]] == ["running", "completed"]


def test_final_state_waits_for_missing_lines(make_hub: HubFactory, collector: Collector) -> None:
    hub = make_hub(offline_after=30.0)

    async def main() -> None:
        ws = await _open(hub.url)
        rep = {"execution_id": "x2", "session_id": "x2"}
        await ws.send(json.dumps(_hello("fake-2", running=[rep])))
        await _reply(ws)
        await ws.send(_log("x2", [0, 1]))
        state = StateParams(execution_id="x2", state="failed", exit_code=1, lines=4)
        msg = {"jsonrpc": "2.0", "method": "execution.state", "params": state.model_dump()}
        await ws.send(json.dumps(msg))
        await _acks(ws, "x2", 1)
        assert collector.final("x2") is None  # lines 2 and 3 are still owed
        await ws.send(_log("x2", [2, 3]))
        await _acks(ws, "x2", 3)
        await ws.close()

    asyncio.run(main())
    wait_until(lambda: collector.final("x2") is not None, 5, "final")
    assert collector.seqs("x2") == [0, 1, 2, 3]


def test_unknown_execution_logs_are_refused_when_not_adopting(
    make_hub: HubFactory, collector: Collector
) -> None:
    hub = make_hub(adopt_unknown=False)

    async def main() -> None:
        ws = await _open(hub.url)
        rep = {"execution_id": "ghost", "session_id": "ghost", "acked": 3, "next_seq": 9}
        await ws.send(json.dumps(_hello("fake-3", running=[rep])))
        notices: list[Any] = []
        results: list[Any] = []
        while not (notices and results):  # the notice and the hello result, in either order
            msg = json.loads(await asyncio.wait_for(ws.recv(), 5))
            if msg.get("method") == "worker.lease_expired":
                notices.append(msg["params"]["execution_ids"])
            else:
                results.append(msg["result"]["executions"])
        assert notices == [["ghost"]]
        assert results[0][0]["expired"] is True
        await ws.send(_log("ghost", [4, 5]))
        msg = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert msg["method"] == "worker.lease_expired"
        await ws.close()

    asyncio.run(main())
    assert collector.seqs("ghost") == []


def test_protocol_version_mismatch_is_refused(make_hub: HubFactory) -> None:
    hub = make_hub()

    async def main() -> None:
        ws = await _open(hub.url)
        await ws.send(json.dumps(_hello(protocol=99)))
        r = await _reply(ws)
        assert r["error"]["code"] == ErrorCode.PROTOCOL_MISMATCH
        await ws.close()

    asyncio.run(main())


def test_a_run_a_previous_hub_lost_is_not_adopted(
    make_hub: HubFactory, collector: Collector, tmp_path: Path
) -> None:
    from aura_core.contracts import Session, SessionStatus
    from aura_core.store.sqlite import SqliteStore

    store = SqliteStore(tmp_path / "hub.db")
    now = time.time()
    for sid, status in (("gone", SessionStatus.failed), ("alive", SessionStatus.interrupted)):
        store.create_session(
            Session(id=sid, executor="custom", cwd="w:", status=status, created_at=now)
        )
    hub = make_hub(store=store)

    async def main() -> None:
        ws = await _open(hub.url)
        reps = [
            {"execution_id": sid, "session_id": sid, "acked": -1, "next_seq": 5}
            for sid in ("gone", "alive")
        ]
        await ws.send(json.dumps(_hello("fake-4", running=reps)))
        r = await _reply(ws)
        got = {a["execution_id"]: a["expired"] for a in r["result"]["executions"]}
        assert got == {"gone": True, "alive": False}
        await ws.close()

    try:
        asyncio.run(main())
        wait_until(lambda: store.get_session("alive").status == "running", 5, "adopted row")
        assert store.get_session("gone").status == "failed"
    finally:
        hub.stop()
        store.close()


def test_an_unanswered_start_is_abandoned_and_its_run_stopped(
    make_hub: HubFactory, collector: Collector
) -> None:
    hub = make_hub(start_timeout=0.5)

    async def main() -> None:
        ws = await _open(hub.url)
        await ws.send(json.dumps(_hello("silent")))
        await _reply(ws)
        params = {"execution_id": "q1", "action": "run_setup", "executor": "custom"}
        outcome = asyncio.ensure_future(asyncio.to_thread(hub.start_execution, params))
        msg = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert msg["method"] == "execution.start" and msg["params"]["execution_id"] == "q1"
        result = await outcome  # we never answer
        assert not result.accepted and "no answer" in (result.reason or "")
        await ws.send(_log("q1", [0, 1, 2]))  # it had started after all
        while True:
            msg = json.loads(await asyncio.wait_for(ws.recv(), 5))
            if msg.get("method") == "execution.ack":
                (ack,) = msg["params"]["acks"]
                assert ack["expired"] is True and ack["seq"] == 2
                break
        await ws.close()

    asyncio.run(main())
    assert collector.seqs("q1") == [] and "q1" not in collector.lost
    assert [e.state for e in hub.executions()] == ["abandoned"]
    # the id may be used again for a fresh attempt
    again = hub.start_execution({"execution_id": "q1", "action": "run_setup", "executor": "custom"})
    assert not again.accepted and again.reason == "no worker is online"
