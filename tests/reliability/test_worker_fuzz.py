"""Worker-protocol fuzz against a real hub on 127.0.0.1: malformed and random frames, huge frames,
replayed and shuffled log seqs, and idle (slowloris) connections. The hub must answer each bad
frame as docs/worker-protocol.md says, keep serving, and deliver every log line exactly once.

Seeded loops, not hypothesis, so that each run sends the same frames and stays well under a
minute; AURA_FUZZ_SEED picks another seed.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import socket
import string
import time
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import ValidationError
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from aura_core.worker.hub import HELLO_TIMEOUT_S, HubThread
from aura_core.worker.protocol import PARAMS, ErrorCode, StateParams
from tests.worker.conftest import TOKEN, Collector

SEED = int(os.environ.get("AURA_FUZZ_SEED", "20261125"))
MAX_MSG = 64 << 10
HUB_METHODS = (
    "worker.hello",
    "worker.heartbeat",
    "worker.draining",
    "worker.bye",
    "execution.log",
    "execution.state",
)
NO_REPLY = "no reply"


@pytest.fixture
def collector() -> Collector:
    return Collector()


@pytest.fixture
def hub(collector: Collector) -> Iterator[HubThread]:
    h = HubThread(
        token=TOKEN,
        port=0,
        heartbeat_interval=0.25,
        offline_after=30.0,
        max_message_bytes=MAX_MSG,
        write_state=False,
        **collector.callbacks(),
    ).start()
    try:
        yield h
    finally:
        h.stop()
    assert not h.alive


async def _open(url: str) -> ClientConnection:
    return await connect(url, additional_headers={"Authorization": f"Bearer {TOKEN}"})


def _hello(worker_id: str, running: list[dict[str, Any]] | None = None) -> str:
    params = {
        "worker_id": worker_id,
        "name": worker_id,
        "version": "fuzz",
        "capabilities": {"executors": [{"name": "custom"}], "repos": ["*"], "max_concurrency": 2},
        "running": running or [],
    }
    return json.dumps({"jsonrpc": "2.0", "id": "hello", "method": "worker.hello", "params": params})


async def _recv(ws: ClientConnection, timeout: float = 5) -> Any:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def _reply_to(ws: ClientConnection, id_: Any, timeout: float = 5) -> dict[str, Any]:
    """The response with this id, skipping hub notifications and other replies."""
    while True:
        msg = await _recv(ws, timeout)
        if isinstance(msg, dict) and "method" not in msg and msg.get("id") == id_:
            return msg


async def _register(url: str, worker_id: str) -> ClientConnection:
    ws = await _open(url)
    await ws.send(_hello(worker_id))
    r = await _reply_to(ws, "hello")
    assert r["result"]["max_message_bytes"] == MAX_MSG
    return ws


async def _check_serves(hub: HubThread, worker_id: str, within: float = 5.0) -> None:
    """A fresh worker can say hello and beat, and the hub lists it online, within `within` s."""
    t0 = time.monotonic()
    ws = await asyncio.wait_for(_register(hub.url, worker_id), within)
    try:
        await ws.send(
            json.dumps({"jsonrpc": "2.0", "method": "worker.heartbeat", "params": {"load": 0.5}})
        )
        await ws.send(
            json.dumps(
                {
                    "jsonrpc": "2.0",
                    "id": "hb",
                    "method": "worker.heartbeat",
                    "params": {"load": 0.5},
                }
            )
        )
        assert "result" in await _reply_to(ws, "hb")
        while True:
            found = [
                w
                for w in await asyncio.to_thread(hub.workers)
                if w.worker_id == worker_id and w.state == "online" and w.load == 0.5
            ]
            if found:
                break
            assert time.monotonic() - t0 < within, f"{worker_id} not listed online"
            await asyncio.sleep(0.05)
    finally:
        await ws.close()


# ---- 1. random and malformed frames ----------------------------------------------------------
def _rand_scalar(rng: random.Random) -> Any:
    return rng.choice(
        [
            None,
            True,
            False,
            rng.randint(-(2**70), 2**70),
            rng.random() * 1e6,
            "".join(rng.choices(string.printable + "é\u2028\U0001f600", k=rng.randint(0, 12))),
        ]
    )


def _rand_json(rng: random.Random, depth: int = 0) -> Any:
    r = rng.random()
    if depth > 4 or r < 0.4:
        return _rand_scalar(rng)
    if r < 0.7:
        return [_rand_json(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {str(_rand_scalar(rng)): _rand_json(rng, depth + 1) for _ in range(rng.randint(0, 4))}


def _rand_params(rng: random.Random, method: str, exec_id: str) -> Any:
    """Params for a hub method: often almost right, so the validators get exercised."""
    r = rng.random()
    if method == "execution.log" and r < 0.5:
        lines = [
            [
                rng.choice([rng.randint(0, 50), -1, "3", 2.5, None]),
                rng.choice(["stdout", "stderr", "system", 7]),
                rng.choice([1.0, "x", None]),
                rng.choice(["text", None, 5]),
                rng.choice([None, None, "Y2Fm/w==", 3]),
            ][: rng.randint(3, 6)]
            for _ in range(rng.randint(0, 3))
        ]
        return {"execution_id": rng.choice([exec_id, "ghost", 5]), "lines": lines}
    if method == "worker.heartbeat" and r < 0.5:
        return {
            rng.choice(["running", "load", "max_concurrency", "draining", "bogus"]): _rand_scalar(
                rng
            )
        }
    if r < 0.8:
        return {str(_rand_scalar(rng)): _rand_json(rng) for _ in range(rng.randint(0, 3))}
    return _rand_json(rng)


class Frames:
    """Makes fuzz frames, each with the reply the protocol doc prescribes."""

    def __init__(self, rng: random.Random, exec_id: str) -> None:
        self.rng = rng
        self.exec_id = exec_id
        self.n = 0

    def _id(self) -> Any:
        self.n += 1
        return self.rng.choice([self.n, f"f-{self.n}"])

    def request_obj(self) -> dict[str, Any]:
        rng = self.rng
        obj: dict[str, Any] = {"jsonrpc": "2.0"}
        r = rng.random()
        if r < 0.5:
            obj["method"] = rng.choice([m for m in HUB_METHODS if m != "worker.hello"])
        elif r < 0.55:
            obj["method"] = "worker.hello"
        elif r < 0.7:
            obj["method"] = rng.choice(["execution.start", "execution.ack", "rpc.discover", ""])
        elif r < 0.85:
            obj["method"] = "".join(rng.choices(string.ascii_letters + "._", k=rng.randint(1, 20)))
        else:
            obj["method"] = _rand_json(rng)  # often not a string
        if rng.random() < 0.85:
            method = obj["method"] if isinstance(obj["method"], str) else "x"
            obj["params"] = _rand_params(rng, method, self.exec_id)
        if rng.random() < 0.7:
            obj["id"] = self._id()
        elif rng.random() < 0.3:
            obj["id"] = rng.choice([None, 1.5, [1], {"a": 1}, True])
        if rng.random() < 0.1:
            obj["jsonrpc"] = rng.choice(["1.0", 2.0, None, "2.0 "])
        if rng.random() < 0.05:
            obj.pop("jsonrpc")
        return obj

    def frame(self) -> tuple[str | bytes, bool]:
        """A frame and whether to send it as text."""
        rng = self.rng
        kind = rng.randrange(9)
        if kind == 0:  # random bytes, binary
            return rng.randbytes(rng.randint(0, 300)), False
        if kind == 1:  # invalid UTF-8 in a binary frame
            return b'{"jsonrpc":"2.0","id":1,"method":"\xff\xfe\xc3("}', False
        if kind == 2:  # truncated JSON
            text = json.dumps(self.request_obj())
            return text[: rng.randint(1, max(1, len(text) - 1))], True
        if kind == 3:  # wrong shapes
            return json.dumps(
                rng.choice(
                    [
                        _rand_scalar(rng),
                        [],
                        [_rand_scalar(rng) for _ in range(rng.randint(1, 4))],
                        "[" * 50 + "]" * 50,
                        {"a": _rand_json(rng)},
                    ]
                )
            ), True
        if kind == 4:  # a batch
            items = [
                self.request_obj() if rng.random() < 0.7 else _rand_json(rng)
                for _ in range(rng.randint(1, 5))
            ]
            return json.dumps(items), rng.random() < 0.8
        text = json.dumps(self.request_obj(), separators=(",", ":"))
        return (text, True) if rng.random() < 0.8 else (text.encode(), False)


def _expect_one(obj: Any) -> Any:
    """The reply the doc prescribes for one object: a (code, id) pair, a ("result", id) pair, or
    NO_REPLY. Params are judged by the normative models of protocol.py."""
    if not isinstance(obj, dict):
        return (ErrorCode.INVALID_REQUEST, None)
    has_id = "id" in obj
    id_ = obj.get("id")
    if has_id and id_ is not None and (isinstance(id_, bool) or not isinstance(id_, int | str)):
        return (ErrorCode.INVALID_REQUEST, None)
    if obj.get("jsonrpc") != "2.0":
        return (ErrorCode.INVALID_REQUEST, id_)
    method = obj.get("method")
    if method is None and has_id and ("result" in obj or "error" in obj):
        return NO_REPLY
    if not isinstance(method, str):
        return (ErrorCode.INVALID_REQUEST, id_)
    params = obj.get("params", {})
    params = {} if params is None else params
    if not has_id:
        return NO_REPLY
    if not isinstance(params, dict):
        return (ErrorCode.INVALID_PARAMS, id_)
    if method not in HUB_METHODS:
        return (ErrorCode.METHOD_NOT_FOUND, id_)
    try:
        PARAMS[method].model_validate(params)
    except ValidationError:
        return (ErrorCode.INVALID_PARAMS, id_)
    return ("result", id_)


def _expect(raw: str | bytes) -> Any:
    data = raw.encode() if isinstance(raw, str) else raw
    if len(data) > MAX_MSG:
        return (ErrorCode.MESSAGE_TOO_LARGE, None)
    try:
        obj = json.loads(data)
    except ValueError:  # UnicodeDecodeError included
        return (ErrorCode.PARSE_ERROR, None)
    if isinstance(obj, list):
        if not obj:
            return (ErrorCode.INVALID_REQUEST, None)
        replies = [e for e in (_expect_one(o) for o in obj) if e != NO_REPLY]
        return replies or NO_REPLY
    return _expect_one(obj)


def _shape(msg: dict[str, Any]) -> tuple[Any, Any]:
    if "error" in msg:
        assert set(msg) == {"jsonrpc", "id", "error"} and msg["jsonrpc"] == "2.0", msg
        assert isinstance(msg["error"]["message"], str)
        return (msg["error"]["code"], msg["id"])
    assert set(msg) == {"jsonrpc", "id", "result"}, msg
    return ("result", msg["id"])


def _send_as(ws: ClientConnection, raw: str | bytes, text: bool) -> Any:
    if isinstance(raw, str) and not text:
        raw = raw.encode()
    return ws.send(raw, text=text) if isinstance(raw, bytes) else ws.send(raw)


def test_random_and_malformed_frames_get_the_documented_replies(hub: HubThread) -> None:
    rng = random.Random(SEED)
    exec_id = "fz-exec"
    frames = Frames(rng, exec_id)
    sent = 0

    async def main() -> None:
        nonlocal sent
        ws = await _open(hub.url)
        running = [{"execution_id": exec_id, "session_id": exec_id}]
        await ws.send(_hello("fuzzer", running))
        await _reply_to(ws, "hello")
        late: dict[Any, Any] = {}  # requests run as tasks: their replies may come later
        got_late: dict[Any, Any] = {}
        for i in range(300):
            raw, text = frames.frame()
            want = _expect(raw)
            if isinstance(want, tuple) and want[0] == "result" and "hello" in str(raw):
                continue  # a valid hello would re-register this connection: not a fuzz case
            await _send_as(ws, raw, text)
            sent += 1
            sentinel = f"sentinel-{i}"
            await ws.send(json.dumps({"jsonrpc": "2.0", "id": sentinel, "method": "x.none"}))
            seen: list[Any] = []
            while True:
                msg = await _recv(ws)
                if isinstance(msg, dict) and "method" in msg:
                    assert msg["method"] in ("execution.ack", "worker.lease_expired"), msg
                    continue
                if isinstance(msg, dict) and msg.get("id") == sentinel:
                    assert msg["error"]["code"] == ErrorCode.METHOD_NOT_FOUND
                    break
                if isinstance(msg, list):
                    seen.append([_shape(m) for m in msg])
                elif msg.get("id") is not None and msg["id"] in late:
                    got_late[msg["id"]] = _shape(msg)
                else:
                    seen.append(_shape(msg))
            ctx = f"frame {i}: {raw[:200]!r}"
            if want == NO_REPLY:
                assert seen == [], ctx
            elif isinstance(want, list):
                assert seen == [want], ctx
            elif want[1] is not None:
                # a request with a good id: answered by a task, perhaps after the sentinel
                if seen:
                    assert seen == [want], ctx
                else:
                    late[want[1]] = (want, ctx)
            else:
                assert seen == [want], ctx
            for id_ in [k for k in late if k in got_late]:
                (w, c), g = late.pop(id_), got_late.pop(id_)
                assert g == w, c
        while late:
            msg = await _recv(ws)
            if isinstance(msg, dict) and msg.get("id") in late:
                w, c = late.pop(msg["id"])
                assert _shape(msg) == w, c
        await ws.close()
        await _check_serves(hub, "after-fuzz")

    asyncio.run(main())
    assert sent >= 200
    assert hub.alive


def test_a_text_frame_of_invalid_utf8_is_a_parse_error_and_the_connection_stays(
    hub: HubThread,
) -> None:
    async def main() -> None:
        ws = await _register(hub.url, "utf8")
        try:
            # the hub reads frames undecoded (recv(decode=False)), so the WebSocket layer does not
            # close with 1007: the JSON parser refuses the bytes, as for a binary frame
            for raw in (b'{"jsonrpc":"2.0","id":1,"method":"\xff"}', b"\xc3(", b"\xed\xa0\x80"):
                await ws.send(raw, text=True)
                r = await _reply_to(ws, None)
                assert r["error"]["code"] == ErrorCode.PARSE_ERROR, raw
            await ws.send(json.dumps({"jsonrpc": "2.0", "id": 3, "method": "worker.heartbeat"}))
            assert "result" in await _reply_to(ws, 3)
        finally:
            await ws.close()
        await _check_serves(hub, "after-utf8")

    asyncio.run(main())


def test_deeply_nested_json_is_a_parse_error_and_the_connection_stays(hub: HubThread) -> None:
    async def main() -> None:
        ws = await _register(hub.url, "deep")
        try:
            for raw in ("[" * 10_000 + "]" * 10_000, '{"a":' * 10_000 + "1" + "}" * 10_000):
                await ws.send(raw)
                r = await _reply_to(ws, None)
                assert r["error"]["code"] in (ErrorCode.PARSE_ERROR, ErrorCode.INVALID_REQUEST)
            await ws.send(json.dumps({"jsonrpc": "2.0", "id": 9, "method": "worker.heartbeat"}))
            assert "result" in await _reply_to(ws, 9)
        finally:
            await ws.close()

    try:
        asyncio.run(main())
    finally:
        # whatever that connection did, the hub itself must still serve
        asyncio.run(_check_serves(hub, "after-deep"))


# ---- 2. huge frames ----------------------------------------------------------------------------
def test_huge_frames_are_refused_as_documented(hub: HubThread) -> None:
    async def main() -> None:
        ws = await _register(hub.url, "huge")
        for size in (MAX_MSG + 1, MAX_MSG + 1000, 2 * MAX_MSG - 100):
            pad = "a" * size
            await ws.send(pad)  # not even JSON: the size is checked first
            r = await _reply_to(ws, None)
            assert r["error"]["code"] == ErrorCode.MESSAGE_TOO_LARGE
            await ws.send(pad.encode())
            r = await _reply_to(ws, None)
            assert r["error"]["code"] == ErrorCode.MESSAGE_TOO_LARGE
        await ws.send(json.dumps({"jsonrpc": "2.0", "id": 2, "method": "worker.heartbeat"}))
        assert "result" in await _reply_to(ws, 2)  # the connection stayed open
        await ws.send(b"\x00" * (2 * MAX_MSG + 1))  # over twice the limit: the transport
        with pytest.raises(ConnectionClosed) as info:
            for _ in range(5):
                await _recv(ws)
        assert info.value.rcvd is not None and info.value.rcvd.code == 1009
        await _check_serves(hub, "after-huge")

    asyncio.run(main())
    assert hub.alive


# ---- 3. replayed and shuffled log seqs -------------------------------------------------------
def _log_frame(exec_id: str, seqs: list[int]) -> str:
    lines = [[s, "stdout", 1.0, f"line {s}", None] for s in seqs]
    params = {"execution_id": exec_id, "lines": lines}
    return json.dumps({"jsonrpc": "2.0", "method": "execution.log", "params": params})


def _scrambled_batches(rng: random.Random, n: int) -> list[list[int]]:
    """Batches covering 0..n-1 with replays, gaps filled late, reversed and shuffled batches."""
    batches: list[list[int]] = []
    pos = 0
    while pos < n:
        size = rng.randint(1, 25)
        chunk = list(range(pos, min(n, pos + size)))
        pos += size
        r = rng.random()
        if r < 0.2:
            rng.shuffle(chunk)
        elif r < 0.3:
            chunk.reverse()
        batches.append(chunk)
        if rng.random() < 0.3:  # a replay of something already sent
            lo = rng.randrange(0, pos)
            batches.append(list(range(lo, min(pos, lo + rng.randint(1, 30)))))
    rng.shuffle(batches)  # wholly out of order: later lines held until the gap fills
    if rng.random() < 0.5:
        batches.extend(rng.sample(batches, min(5, len(batches))))  # replays after the end
    return batches


def test_replayed_and_out_of_order_seqs_are_delivered_exactly_once(
    hub: HubThread, collector: Collector
) -> None:
    rng = random.Random(SEED + 3)
    plans = {f"seq-{k}": rng.randint(50, 400) for k in range(6)}

    async def main() -> None:
        ws = await _open(hub.url)
        running = [{"execution_id": e, "session_id": e} for e in plans]
        await ws.send(_hello("seqfuzz", running))
        r = await _reply_to(ws, "hello")
        assert {a["execution_id"]: a["seq"] for a in r["result"]["executions"]} == dict.fromkeys(
            plans, -1
        )
        for exec_id, n in plans.items():
            for batch in _scrambled_batches(rng, n):
                await ws.send(_log_frame(exec_id, batch))
            state = StateParams(execution_id=exec_id, state="completed", exit_code=0, lines=n)
            await ws.send(
                json.dumps(
                    {
                        "jsonrpc": "2.0",
                        "method": "execution.state",
                        "params": state.model_dump(mode="json"),
                    }
                )
            )
        await asyncio.to_thread(
            collector.wait,
            lambda: all(collector.final(e) is not None for e in plans),
            10,
            "final states",
        )
        # replays after the end change nothing
        for exec_id, n in plans.items():
            await ws.send(_log_frame(exec_id, list(range(n))))
        await ws.send(json.dumps({"jsonrpc": "2.0", "id": "end", "method": "worker.heartbeat"}))
        await _reply_to(ws, "end")
        await ws.close()

    asyncio.run(main())
    for exec_id, n in plans.items():
        assert collector.seqs(exec_id) == list(range(n)), exec_id
        assert collector.texts(exec_id) == [f"line {i}" for i in range(n)]
        assert [s.state for s in collector.states[exec_id]] == ["running", "completed"]
    done = {e.execution_id: (e.state, e.lines) for e in hub.executions()}
    assert done == {e: ("finished", n) for e, n in plans.items()}


# ---- 4. slowloris ----------------------------------------------------------------------------
def test_idle_and_half_open_connections_do_not_starve_the_hub(hub: HubThread) -> None:
    idle: list[socket.socket] = []
    host, port = "127.0.0.1", hub.port
    try:
        for i in range(50):
            s = socket.create_connection((host, port), timeout=5)
            idle.append(s)
            if i % 2 == 0:  # a partial upgrade request, never finished
                s.sendall(
                    b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                    b"Connection: Upgrade\r\n"
                )
        opened = time.monotonic()

        async def main() -> None:
            silent = await _open(hub.url)  # upgraded and authenticated, but never says hello
            try:
                await _check_serves(hub, "real-worker", within=3.0)
                assert time.monotonic() - opened < 5.0
                # the hub closes an upgraded connection without a hello (1008, 10 s)
                with pytest.raises(ConnectionClosed) as info:
                    await asyncio.wait_for(silent.recv(), HELLO_TIMEOUT_S + 5)
                assert info.value.rcvd is not None and info.value.rcvd.code == 1008
            finally:
                await silent.close()

        asyncio.run(main())
        # the handshake timeout (websockets' open_timeout, 10 s by default; the hub does not set
        # it) closes the ones that never finished their upgrade request
        for s in idle:
            s.settimeout(max(0.5, opened + 15.0 - time.monotonic()))
            try:
                data = s.recv(4096)
            except ConnectionResetError:
                data = b""
            except TimeoutError:
                raise AssertionError("an idle connection stayed open past 15 s") from None
            # an unfinished request may get an error response before the close
            while data:
                data = s.recv(4096)
        assert time.monotonic() - opened < 16.0
        assert hub.alive
        asyncio.run(_check_serves(hub, "after-slowloris"))
    finally:
        for s in idle:
            s.close()
