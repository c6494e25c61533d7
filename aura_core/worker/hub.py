"""The hub: accepts `aura worker` daemons, schedules executions on them, receives their logs.

One asyncio loop owns all hub state; the runtime, which is thread-based, talks to it through
`HubThread`. Log lines are delivered to `on_log` exactly once and in seq order per execution:
the hub keeps, per execution, the highest contiguous seq it has received, drops anything at or
below it (a worker re-sends what was not acknowledged after a reconnect) and holds lines that
arrive ahead of a gap. With a store, the hub also writes the remote sessions and their lines,
and acknowledges a line to the worker only once it is committed, so a hub crash loses nothing
either. A worker silent for `offline_after` seconds is offline; its executions get
`on_worker_lost`, and if it comes back they are stopped (their lease expired) while their last
lines are still taken in.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import concurrent.futures
import contextlib
import logging
import operator
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request
from websockets.http11 import Response as HttpResponse

from aura_core import __version__, procinfo
from aura_core.store.base import LogRow
from aura_core.worker.protocol import (
    AUTH_HEADER,
    HEARTBEAT_INTERVAL_S,
    MAX_MESSAGE_BYTES,
    OFFLINE_AFTER_S,
    PROTOCOL_VERSION,
    AckParams,
    BranchFetchParams,
    BranchFetchResult,
    ByeParams,
    ConnectionLost,
    DrainingParams,
    ErrorCode,
    ExecutionAck,
    ExecutionStartParams,
    HeartbeatParams,
    HelloParams,
    HelloResult,
    InputParams,
    InputResult,
    InterruptParams,
    LeaseExpiredParams,
    LogParams,
    RpcError,
    StartResult,
    StateParams,
)
from aura_core.worker.rpc import RpcPeer
from aura_core.worker.security import check_auth_header
from aura_core.worker.statefile import (
    HubInfo,
    HubSnapshot,
    WorkerInfo,
    state_path,
    write_snapshot,
)

log = logging.getLogger("aura.worker.hub")

OnLog = Callable[[str, list[LogRow]], None]
OnState = Callable[[str, StateParams], None]
OnWorkerLost = Callable[[str, str], None]
OnWorker = Callable[[WorkerInfo], None]

HELLO_TIMEOUT_S = 10.0
START_TIMEOUT_S = 30.0
FETCH_TIMEOUT_S = 120.0  # branch.fetch: the worker bundles the branch's commits
STATE_WRITE_EVERY_S = 1.0
KEEP_FINISHED_S = 3600.0
MAX_HELD_LINES = 200_000  # lines held ahead of a gap, per execution
MAX_UNCOMMITTED = 100_000  # lines waiting for the store before the hub stops reading workers
CLOSE_LEASE_EXPIRED = 4001
CLOSE_REPLACED = 4002


class StartOutcome(BaseModel):
    """What `start_execution` did: accepted by a worker, or rejected with every reason."""

    accepted: bool
    worker_id: str | None = None
    worker_name: str | None = None
    reason: str | None = None


class ExecutionInfo(BaseModel):
    execution_id: str
    session_id: str
    worker_id: str
    worker_name: str
    state: str  # starting | running | finished | lost | abandoned (start never answered)
    lines: int  # contiguous lines received
    final: StateParams | None = None


@dataclass
class _Execution:
    execution_id: str
    session_id: str
    worker_id: str
    state: str = "starting"
    received: int = -1  # highest contiguous seq handed on (dedupe watermark)
    acked: int = -1  # highest seq safely kept (told to the worker)
    held: dict[int, LogRow] = field(default_factory=dict)
    final: StateParams | None = None
    lost: bool = False
    interrupt_requested: bool = False
    finished_at: float | None = None
    params: ExecutionStartParams | None = None

    @property
    def active(self) -> bool:
        return self.state in ("starting", "running")


@dataclass
class _Worker:
    worker_id: str
    name: str
    version: str = ""
    state: str = "online"
    hello: HelloParams | None = None
    peer: RpcPeer | None = None
    ws: ServerConnection | None = None
    address: str | None = None
    last_seen: float = 0.0  # monotonic
    last_wall: float | None = None
    connected_at: float | None = None
    lost_at: float | None = None
    load: float | None = None
    said_bye: bool = False
    running: set[str] = field(default_factory=set)

    @property
    def max_concurrency(self) -> int:
        return self.hello.capabilities.max_concurrency if self.hello else 1

    def info(self) -> WorkerInfo:
        caps = self.hello.capabilities if self.hello else None
        return WorkerInfo(
            worker_id=self.worker_id,
            name=self.name,
            version=self.version,
            state=self.state,
            address=self.address,
            host=self.hello.host if self.hello else None,
            pid=self.hello.pid if self.hello else None,
            executors=list(caps.executors) if caps else [],
            repos=list(caps.repos) if caps else [],
            max_concurrency=self.max_concurrency,
            running=sorted(self.running),
            load=self.load,
            last_heartbeat=self.last_wall,
            connected_at=self.connected_at,
            lost_at=self.lost_at,
        )


@dataclass
class _Conn:
    ws: ServerConnection
    address: str
    peer: RpcPeer | None = None
    worker_id: str | None = None


_SESSION_SEQ = operator.itemgetter(0, 1)


class _Persister:
    """Writes remote sessions' lines and rows on one thread, in order, in batched transactions;
    reports back to the loop which seqs are committed so the hub can acknowledge them."""

    def __init__(self, store: Any, loop: asyncio.AbstractEventLoop, done: Callable[..., None]):
        self.store = store
        self.loop = loop
        self.done = done
        self.pending = 0  # rows queued and not yet committed (touched on the loop only)
        self.drained = asyncio.Event()
        self.drained.set()
        self.queue: queue.SimpleQueue[tuple[str, Any] | None] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._run, name="aura-hub-store", daemon=True)
        self.thread.start()

    def rows(self, execution_id: str, rows: list[LogRow]) -> None:
        self.pending += len(rows)
        if self.pending >= MAX_UNCOMMITTED:
            self.drained.clear()
        self.queue.put(("rows", (execution_id, rows)))

    def committed(self, count: int) -> None:
        self.pending -= count
        if self.pending < MAX_UNCOMMITTED // 2:
            self.drained.set()

    def call(self, fn: Callable[[], Any]) -> None:
        self.queue.put(("call", fn))

    def close(self, timeout: float = 10.0) -> None:
        self.queue.put(None)
        self.thread.join(timeout)

    def _run(self) -> None:
        stop = False
        while not stop:
            items = [self.queue.get()]
            while True:
                try:
                    items.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            batch: list[LogRow] = []
            marks: dict[str, int] = {}
            for item in items:
                if item is None:
                    stop = True
                    continue
                kind, payload = item
                if kind == "rows":
                    exec_id, rows = payload
                    batch.extend(rows)
                    marks[exec_id] = rows[-1][1]
                    continue
                self._flush(batch, marks)
                batch, marks = [], {}
                try:
                    payload()
                except Exception:
                    log.exception("hub store update failed")
            self._flush(batch, marks)

    def _flush(self, batch: list[LogRow], marks: dict[str, int]) -> None:
        if not batch:
            return
        batch.sort(key=_SESSION_SEQ)  # b-tree order: a third faster with many sessions at once
        try:
            self.store.append_log(batch)
        except Exception:
            # most likely lines a previous hub already kept (a crash between commit and ack):
            # keep what is new one by one, so nothing is lost and nothing doubled
            for row in batch:
                with contextlib.suppress(Exception):
                    self.store.append_log([row])
        with contextlib.suppress(RuntimeError):  # the loop is gone: the hub stopped
            self.loop.call_soon_threadsafe(self.done, marks, len(batch))


class Hub:
    """The hub. Create, `await start()`, then schedule with `start_execution`.

    Callbacks run on the hub's loop (a thread of its own under `HubThread`): keep them short and
    hand work to your own threads. `on_log(execution_id, rows)` gets store-ready rows
    (session_id, seq, stream, ts, text, raw) exactly once, in order; `on_state(execution_id,
    StateParams)` gets running and final states (never after `on_worker_lost` for that
    execution); `on_worker_lost(execution_id, worker_name)` fires once per execution that was
    running on a worker when it went offline; `on_worker(WorkerInfo)` on each change of a
    worker's state (online, draining, disconnected, offline, stopped). `listen()` adds more
    callbacks later (the runtime attaching to a hub made elsewhere).
    """

    def __init__(
        self,
        *,
        token: str,
        host: str = "127.0.0.1",
        port: int = 0,
        store: Any = None,
        tls: Any = None,
        on_log: OnLog | None = None,
        on_state: OnState | None = None,
        on_worker_lost: OnWorkerLost | None = None,
        on_worker: OnWorker | None = None,
        heartbeat_interval: float = HEARTBEAT_INTERVAL_S,
        offline_after: float = OFFLINE_AFTER_S,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        start_timeout: float = START_TIMEOUT_S,
        adopt_unknown: bool = True,
        state_file: Path | None = None,
        write_state: bool = True,
    ) -> None:
        if not token:
            raise ValueError("the hub needs a token: see `aura worker token`")
        self.token = token
        self.host = host
        self.port = port
        self.store = store
        self.tls = tls
        self.on_log = on_log
        self.on_state = on_state
        self.on_worker_lost = on_worker_lost
        self.on_worker = on_worker
        self.heartbeat_interval = heartbeat_interval
        self.offline_after = offline_after
        self.max_message_bytes = max_message_bytes
        self.start_timeout = start_timeout
        self.adopt_unknown = adopt_unknown
        self.state_file = (state_file or state_path()) if write_state else None
        self._workers: dict[str, _Worker] = {}
        self._executions: dict[str, _Execution] = {}
        self._server: Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._persister: _Persister | None = None
        self._dirty = True
        self._last_write = 0.0
        self._started_at = time.time()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._listeners: tuple[dict[str, Callable[..., Any]], ...] = ()

    # ---- lifecycle ----------------------------------------------------------------------------
    @property
    def url(self) -> str:
        scheme = "wss" if self.tls else "ws"
        return f"{scheme}://{self.host}:{self.port}"

    async def start(self) -> None:
        """Listen; returns once the socket is bound (`self.port` is then the real port)."""
        self._loop = asyncio.get_running_loop()
        if self.store is not None:
            self._persister = _Persister(self.store, self._loop, self._on_persisted)
        self._server = await serve(
            self._handle,
            self.host,
            self.port,
            ssl=self.tls,
            process_request=self._authenticate,
            max_size=self.max_message_bytes * 2,
            ping_interval=None,  # liveness is the workers' heartbeats
            max_queue=4,  # frames buffered per worker: bounds memory under 100 streaming workers
            close_timeout=2,
            server_header=f"aura-hub/{__version__}",
        )
        sock = next(iter(self._server.sockets))
        self.port = sock.getsockname()[1]
        self._spawn(self._monitor())
        self._write_state()

    async def stop(self) -> None:
        """Close every connection (workers reconnect to the next hub) and flush the store."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        if self._persister is not None:
            await asyncio.to_thread(self._persister.close)
        self._write_state(stopped=True)

    async def serve_forever(self) -> None:
        assert self._server is not None
        await self._server.serve_forever()

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # ---- the API the runtime uses ---------------------------------------------------------------
    def workers(self) -> list[WorkerInfo]:
        return [w.info() for w in sorted(self._workers.values(), key=lambda w: w.name)]

    def executions(self) -> list[ExecutionInfo]:
        return [
            ExecutionInfo(
                execution_id=e.execution_id,
                session_id=e.session_id,
                worker_id=e.worker_id,
                worker_name=self._worker_name(e.worker_id),
                state="lost" if e.lost and e.state != "abandoned" else e.state,
                lines=e.received + 1,
                final=e.final,
            )
            for e in self._executions.values()
        ]

    async def start_execution(
        self, params: ExecutionStartParams | dict[str, Any], only: str | None = None
    ) -> StartOutcome:
        """Place an execution on a worker that has its executor, serves its repo and has a free
        slot (least loaded first); try the next one if a worker refuses. `only` (a worker's name
        or id) allows only that one: a task's later stages go where its worktree is."""
        if not isinstance(params, ExecutionStartParams):
            params = ExecutionStartParams.model_validate(params)
        known = self._executions.get(params.execution_id)
        if known is not None and known.state != "abandoned":
            where = self._worker_name(known.worker_id)
            return StartOutcome(
                accepted=False,
                reason=f"execution {params.execution_id} is already known ({known.state} "
                f"on {where}): use a new execution id",
            )
        candidates, reason = self._candidates(params, only)
        reasons = [reason] if reason else []
        for worker in candidates:
            peer = worker.peer
            if peer is None or worker.state != "online":
                continue
            ex = _Execution(
                execution_id=params.execution_id,
                session_id=params.session_id or params.execution_id,
                worker_id=worker.worker_id,
                params=params,
            )
            self._executions[ex.execution_id] = ex
            worker.running.add(ex.execution_id)
            answered = True
            try:
                raw = await peer.request("execution.start", params, timeout=self.start_timeout)
                result = StartResult.model_validate(raw)
            except RpcError as exc:
                result = StartResult(status="rejected", reason=f"error {exc.code}: {exc.message}")
            except (ConnectionLost, TimeoutError) as exc:
                answered = False
                result = StartResult(status="rejected", reason=f"no answer ({exc or 'timeout'})")
                if isinstance(exc, TimeoutError):
                    self._spawn(self._send_interrupt(worker, ex.execution_id))
            if result.status == "accepted":
                ex.state = "running"
                self._dirty = True
                self._record_session_start(ex, worker)
                return StartOutcome(
                    accepted=True, worker_id=worker.worker_id, worker_name=worker.name
                )
            worker.running.discard(ex.execution_id)
            if answered:
                self._executions.pop(ex.execution_id, None)
            else:
                # the worker may have started it and we never heard: if it reports it later,
                # it is told to stop (lease expired), and its lines are not passed on
                ex.state = "abandoned"
                ex.lost = True
            reasons.append(f"{worker.name}: {result.reason}")
        return StartOutcome(accepted=False, reason="; ".join(reasons) or "no worker is online")

    async def interrupt(self, execution_id: str) -> bool:
        """Ask the execution's worker to stop it; remembered and re-sent if the worker is away."""
        ex = self._executions.get(execution_id)
        if ex is None or not ex.active or ex.lost:
            return False
        ex.interrupt_requested = True
        worker = self._workers.get(ex.worker_id)
        if worker is not None and worker.peer is not None:
            await self._send_interrupt(worker, execution_id)
        return True

    async def send_input(
        self, execution_id: str, kind: str, text: str = "", approve: bool | None = None
    ) -> InputResult:
        """Forward a follow-up or an approval answer; RpcError when the worker cannot take it."""
        ex = self._executions.get(execution_id)
        if ex is None or not ex.active or ex.lost:
            raise RpcError(ErrorCode.UNKNOWN_EXECUTION, f"no running execution {execution_id}")
        worker = self._workers.get(ex.worker_id)
        if worker is None or worker.peer is None:
            raise RpcError(
                ErrorCode.UNSUPPORTED, f"worker {self._worker_name(ex.worker_id)} is away"
            )
        params = InputParams(execution_id=execution_id, kind=kind, text=text, approve=approve)
        return InputResult.model_validate(await worker.peer.request("execution.input", params))

    async def fetch_branch(
        self, worker: str, params: BranchFetchParams, timeout: float = FETCH_TIMEOUT_S
    ) -> BranchFetchResult:
        """A task branch's commits from the worker holding it (`branch.fetch`), by the worker's
        name or id. ConnectionLost when that worker is not connected; RpcError as it answers."""
        found = [w for w in self._workers.values() if worker in (w.name, w.worker_id)]
        if not found:
            raise ConnectionLost(f"worker {worker} is not connected to this hub")
        connected = [w for w in found if w.peer is not None and w.state in ("online", "draining")]
        if not connected:
            raise ConnectionLost(f"worker {found[0].name} is {found[0].state}")
        peer = connected[0].peer
        assert peer is not None
        return BranchFetchResult.model_validate(
            await peer.request("branch.fetch", params, timeout=timeout)
        )

    # ---- scheduling -------------------------------------------------------------------------
    def _candidates(
        self, params: ExecutionStartParams, only: str | None = None
    ) -> tuple[list[_Worker], str | None]:
        online = [w for w in self._workers.values() if w.state == "online" and w.hello]
        if only is not None:
            online = [w for w in online if only in (w.name, w.worker_id)]
            if not online:
                return [], f"worker {only} is not online"
        if not online:
            return [], "no worker is online"
        with_exec = [
            w for w in online if w.hello and w.hello.capabilities.has_executor(params.executor)
        ]
        if not with_exec:
            return [], f"no online worker has the {params.executor} executor"
        with_repo = [w for w in with_exec if w.hello and w.hello.capabilities.serves(params.repo)]
        if not with_repo:
            return [], f"no online worker with {params.executor} serves repo {params.repo}"
        free = [w for w in with_repo if len(w.running) < w.max_concurrency]
        if not free:
            return [], "every matching worker is busy (no free slot)"
        free.sort(key=lambda w: (len(w.running) / w.max_concurrency, len(w.running), w.name))
        return free, None

    async def _send_interrupt(self, worker: _Worker, execution_id: str) -> None:
        peer = worker.peer
        if peer is None:
            return
        try:
            await peer.request(
                "execution.interrupt", InterruptParams(execution_id=execution_id), 10
            )
        except (RpcError, ConnectionLost, TimeoutError) as exc:
            log.info("interrupt of %s on %s: %s", execution_id, worker.name, exc)

    def _worker_name(self, worker_id: str) -> str:
        worker = self._workers.get(worker_id)
        return worker.name if worker else worker_id

    # ---- connections ----------------------------------------------------------------------
    def _authenticate(self, conn: ServerConnection, request: Request) -> HttpResponse | None:
        if check_auth_header(request.headers.get(AUTH_HEADER), self.token):
            return None
        log.warning("refused a worker from %s: missing or wrong token", _address(conn))
        response = conn.respond(
            HTTPStatus.UNAUTHORIZED, "missing or wrong worker token (see `aura worker token`)\n"
        )
        response.headers["WWW-Authenticate"] = "Bearer"
        return response

    async def _handle(self, ws: ServerConnection) -> None:
        conn = _Conn(ws=ws, address=_address(ws))

        def guard(method: str) -> None:
            if conn.worker_id is None and method != "worker.hello":
                raise RpcError(ErrorCode.NOT_REGISTERED, "not registered: send worker.hello first")

        handlers: dict[str, Any] = {
            "worker.hello": lambda p: self._on_hello(conn, p),
            "worker.heartbeat": lambda p: self._on_heartbeat(conn, p),
            "worker.draining": lambda p: self._on_draining(conn, p),
            "worker.bye": lambda p: self._on_bye(conn, p),
            "execution.log": lambda p: self._on_log(conn, p),
            "execution.state": lambda p: self._on_state(conn, p),
        }
        peer = RpcPeer(
            ws,
            handlers,
            max_message_bytes=self.max_message_bytes,
            guard=guard,
            name=conn.address,
            fast=("execution.log",),
        )
        conn.peer = peer

        def no_hello() -> None:
            if conn.worker_id is None:
                self._spawn(ws.close(1008, "no worker.hello in time"))

        timer = asyncio.get_running_loop().call_later(HELLO_TIMEOUT_S, no_hello)
        try:
            await peer.run()
        finally:
            timer.cancel()
            self._disconnected(conn)

    def _disconnected(self, conn: _Conn) -> None:
        worker = self._workers.get(conn.worker_id or "")
        if worker is None or worker.peer is not conn.peer:
            return
        worker.peer = None
        worker.ws = None
        self._dirty = True
        if worker.state == "offline":
            return
        if worker.said_bye:
            for exec_id in list(worker.running):
                ex = self._executions.get(exec_id)
                if ex is not None and ex.active and not ex.lost:
                    self._lose(ex, worker)
            self._set_state(worker, "stopped")
            log.info("worker %s stopped", worker.name)
        else:
            self._set_state(worker, "disconnected")
            log.info(
                "worker %s disconnected; offline in %.0fs unless it returns",
                worker.name,
                max(0.0, self.offline_after - (time.monotonic() - worker.last_seen)),
            )

    def _set_state(self, worker: _Worker, state: str) -> None:
        changed = worker.state != state
        worker.state = state
        self._dirty = True
        if changed or state == "online":
            self._fire("on_worker", worker.info())

    def _worker_of(self, conn: _Conn) -> _Worker | None:
        """The worker behind a registered connection, if it is still that worker's current one."""
        worker = self._workers.get(conn.worker_id or "")
        if worker is None or worker.peer is not conn.peer:
            return None
        worker.last_seen = time.monotonic()
        worker.last_wall = time.time()
        return worker

    # ---- worker messages --------------------------------------------------------------------
    async def _on_hello(self, conn: _Conn, p: HelloParams) -> HelloResult:
        if p.protocol != PROTOCOL_VERSION:
            raise RpcError(
                ErrorCode.PROTOCOL_MISMATCH,
                f"this hub speaks protocol {PROTOCOL_VERSION}, the worker {p.protocol}: "
                "run the same aura version on both",
            )
        worker = self._workers.get(p.worker_id)
        if worker is None:
            worker = _Worker(worker_id=p.worker_id, name=p.name)
            self._workers[p.worker_id] = worker
        elif worker.ws is not None and worker.ws is not conn.ws:
            old = worker.ws
            self._spawn(old.close(CLOSE_REPLACED, "replaced by a newer connection of this worker"))
        was = worker.state
        worker.name = p.name
        worker.version = p.version
        worker.hello = p
        worker.peer = conn.peer
        worker.ws = conn.ws
        worker.address = conn.address
        self._set_state(worker, "draining" if p.draining else "online")
        worker.said_bye = False
        worker.connected_at = time.time()
        worker.last_seen = time.monotonic()
        worker.last_wall = time.time()
        worker.lost_at = None if was != "offline" else worker.lost_at
        conn.worker_id = p.worker_id
        self._dirty = True
        acks: list[ExecutionAck] = []
        expired: list[str] = []
        reported: set[str] = set()
        for rep in p.running:
            reported.add(rep.execution_id)
            ex = self._executions.get(rep.execution_id)
            if ex is None:
                concluded = await self._stored_conclusion(rep.session_id)
                if concluded:
                    log.info("not adopting %s: its session %s", rep.execution_id, concluded)
                if not self.adopt_unknown or concluded:
                    acks.append(
                        ExecutionAck(execution_id=rep.execution_id, seq=rep.acked, expired=True)
                    )
                    expired.append(rep.execution_id)
                    continue
                base = max(rep.acked, await self._stored_last_seq(rep.session_id))
                ex = _Execution(
                    execution_id=rep.execution_id,
                    session_id=rep.session_id,
                    worker_id=p.worker_id,
                    state="running",
                    received=base,
                    acked=base,
                )
                self._executions[ex.execution_id] = ex
                worker.running.add(ex.execution_id)
                log.info("adopted execution %s from worker %s", ex.execution_id, worker.name)
                self._record_session_adopted(ex, worker)
                self._fire(
                    "on_state",
                    ex.execution_id,
                    StateParams(
                        execution_id=ex.execution_id,
                        state="running",
                        session_id=ex.session_id,
                        lines=rep.next_seq,
                        ts=time.time(),
                    ),
                )
                acks.append(ExecutionAck(execution_id=ex.execution_id, seq=ex.acked))
            elif ex.worker_id != p.worker_id:
                acks.append(
                    ExecutionAck(execution_id=rep.execution_id, seq=rep.acked, expired=True)
                )
                expired.append(rep.execution_id)
            elif ex.state == "finished":
                acks.append(ExecutionAck(execution_id=ex.execution_id, seq=ex.acked, done=True))
            elif ex.lost:
                acks.append(ExecutionAck(execution_id=ex.execution_id, seq=ex.acked, expired=True))
                expired.append(ex.execution_id)
            else:
                if ex.state == "starting":
                    ex.state = "running"
                acks.append(ExecutionAck(execution_id=ex.execution_id, seq=ex.acked))
        for exec_id in list(worker.running):
            ex = self._executions.get(exec_id)
            if exec_id in reported or ex is None:
                continue
            if ex.state == "running" and not ex.lost:
                # the worker came back without it (it restarted): that run is gone
                self._lose(ex, worker)
        log.info("worker %s (%s) online from %s", worker.name, p.worker_id, conn.address)
        for exec_id in worker.running:
            ex = self._executions.get(exec_id)
            if ex is not None and ex.interrupt_requested and ex.active and not ex.lost:
                self._spawn(self._send_interrupt(worker, exec_id))
        if expired and conn.peer is not None:
            self._spawn(
                conn.peer.notify("worker.lease_expired", LeaseExpiredParams(execution_ids=expired))
            )
        return HelloResult(
            hub_version=__version__,
            heartbeat_interval=self.heartbeat_interval,
            offline_after=self.offline_after,
            max_message_bytes=self.max_message_bytes,
            executions=acks,
        )

    async def _on_heartbeat(self, conn: _Conn, p: HeartbeatParams) -> None:
        worker = self._worker_of(conn)
        if worker is None:
            return
        worker.load = p.load
        if p.draining and worker.state == "online":
            self._set_state(worker, "draining")
        self._dirty = True

    async def _on_draining(self, conn: _Conn, p: DrainingParams) -> None:
        worker = self._worker_of(conn)
        if worker is not None:
            self._set_state(worker, "draining")
            self._dirty = True
            log.info("worker %s is draining: %s", worker.name, p.reason)

    async def _on_bye(self, conn: _Conn, p: ByeParams) -> None:
        worker = self._worker_of(conn)
        if worker is not None:
            worker.said_bye = True
            log.info("worker %s says goodbye: %s", worker.name, p.reason)

    async def _on_log(self, conn: _Conn, p: LogParams) -> None:
        worker = self._worker_of(conn)
        if worker is None:
            return
        ex = self._executions.get(p.execution_id)
        if ex is None or ex.worker_id != worker.worker_id:
            assert conn.peer is not None
            await conn.peer.notify(
                "worker.lease_expired",
                LeaseExpiredParams(
                    execution_ids=[p.execution_id], reason="this hub does not know the execution"
                ),
            )
            return
        if ex.state == "abandoned":  # never reported as started: take, acknowledge, drop
            ex.received = ex.acked = max(ex.received, p.lines[-1][0] if p.lines else -1)
            await self._ack(worker, [ex])
            return
        nxt = ex.received + 1
        rows: list[LogRow] = []
        sid = ex.session_id
        held = ex.held
        lines = p.lines
        if lines and not held and lines[0][0] == nxt and lines[-1][0] == nxt + len(lines) - 1:
            # the usual case, a batch that continues exactly where the last one ended
            rows = [
                (sid, seq, stream, ts, text, _raw_bytes(raw))
                for seq, stream, ts, text, raw in lines
            ]
            if all(row[1] == nxt + i for i, row in enumerate(rows)):
                nxt += len(rows)
                lines = []
            else:
                rows = []
        for seq, stream, ts, text, raw in lines:
            if seq < nxt:
                continue  # already received: a re-send after a reconnect
            row: LogRow = (sid, seq, stream, ts, text, _raw_bytes(raw))
            if seq == nxt:
                rows.append(row)
                nxt += 1
                while held and nxt in held:
                    rows.append(held.pop(nxt))
                    nxt += 1
            elif len(held) < MAX_HELD_LINES:
                held[seq] = row
        if rows:
            ex.received = nxt - 1
            self._fire("on_log", ex.execution_id, rows)
            if self._persister is not None:
                self._persister.rows(ex.execution_id, rows)
                # the store is behind: stop reading this worker until it catches up (the
                # worker keeps the lines; TCP carries the pressure back to it)
                await self._persister.drained.wait()
            else:
                ex.acked = ex.received
        self._maybe_finish(ex, worker)
        if self._persister is None or not rows:
            await self._ack(worker, [ex])

    async def _on_state(self, conn: _Conn, p: StateParams) -> None:
        worker = self._worker_of(conn)
        if worker is None:
            return
        ex = self._executions.get(p.execution_id)
        if ex is None or ex.worker_id != worker.worker_id:
            return
        if p.state == "running":
            if ex.state == "starting":
                ex.state = "running"
            if not ex.lost:
                self._fire("on_state", ex.execution_id, p)
            return
        if ex.final is None:
            ex.final = p
        self._maybe_finish(ex, worker)
        if ex.state == "finished" and self._persister is None:
            await self._ack(worker, [ex])

    def _maybe_finish(self, ex: _Execution, worker: _Worker) -> None:
        """A final state counts once every line before it is in: then report and release."""
        final = ex.final
        if final is None or ex.state == "finished" or ex.received + 1 < final.lines:
            return
        ex.state = "finished"
        ex.finished_at = time.monotonic()
        worker.running.discard(ex.execution_id)
        self._dirty = True
        if not ex.lost:
            self._fire("on_state", ex.execution_id, final)
        if self._persister is not None:
            fields: dict[str, Any] = {
                "finished_at": final.ts or time.time(),
                "exit_code": final.exit_code,
            }
            if not ex.lost:
                fields.update(status=final.state, error=final.error)
            if final.agent_session_id:
                fields["agent_session_id"] = final.agent_session_id
            self._persister.call(lambda: self._update_session(ex.session_id, fields))
            self._persister.call(lambda: self._loop_call(self._ack_done, ex.execution_id))

    def _loop_call(self, fn: Callable[..., Any], *args: Any) -> None:
        assert self._loop is not None
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(fn, *args)

    def _ack_done(self, execution_id: str) -> None:
        ex = self._executions.get(execution_id)
        worker = self._workers.get(ex.worker_id) if ex else None
        if ex is not None and worker is not None:
            self._spawn(self._ack(worker, [ex]))

    def _on_persisted(self, marks: dict[str, int], count: int) -> None:
        if self._persister is not None:
            self._persister.committed(count)
        by_worker: dict[str, list[_Execution]] = {}
        for exec_id, seq in marks.items():
            ex = self._executions.get(exec_id)
            if ex is None:
                continue
            ex.acked = max(ex.acked, seq)
            by_worker.setdefault(ex.worker_id, []).append(ex)
        for worker_id, exs in by_worker.items():
            worker = self._workers.get(worker_id)
            if worker is not None:
                self._spawn(self._ack(worker, exs))

    async def _ack(self, worker: _Worker, exs: list[_Execution]) -> None:
        peer = worker.peer
        if peer is None:
            return  # sent in the hello result when the worker returns
        acks = [
            ExecutionAck(
                execution_id=ex.execution_id,
                seq=ex.acked,
                done=ex.state == "finished" and ex.acked >= ex.received,
                expired=ex.lost and ex.state != "finished",
            )
            for ex in exs
        ]
        with contextlib.suppress(Exception):
            await peer.notify("execution.ack", AckParams(acks=acks))

    # ---- liveness -------------------------------------------------------------------------
    async def _monitor(self) -> None:
        tick = max(0.05, min(1.0, self.offline_after / 10))
        while True:
            await asyncio.sleep(tick)
            now = time.monotonic()
            for worker in list(self._workers.values()):
                live = worker.state in ("online", "draining", "disconnected")
                if live and now - worker.last_seen > self.offline_after:
                    self._mark_offline(worker)
            for exec_id, ex in list(self._executions.items()):
                if ex.finished_at is not None and now - ex.finished_at > KEEP_FINISHED_S:
                    del self._executions[exec_id]
            if self._dirty and time.time() - self._last_write >= STATE_WRITE_EVERY_S:
                await asyncio.to_thread(self._write_state)

    def _mark_offline(self, worker: _Worker) -> None:
        silent = time.monotonic() - worker.last_seen
        self._set_state(worker, "offline")
        worker.lost_at = time.time()
        self._dirty = True
        log.warning("worker %s is offline: silent for %.1fs", worker.name, silent)
        lost = []
        for exec_id in sorted(worker.running):
            ex = self._executions.get(exec_id)
            # one still starting is settled by its start request, which now fails
            if ex is not None and ex.state == "running" and not ex.lost:
                self._lose(ex, worker)
                lost.append(exec_id)
        ws, peer = worker.ws, worker.peer
        worker.ws = worker.peer = None
        if ws is not None:
            self._spawn(self._expire_connection(ws, peer, lost))

    async def _expire_connection(
        self, ws: ServerConnection, peer: RpcPeer | None, lost: list[str]
    ) -> None:
        """Tell a silent (perhaps stopped) worker its lease expired, then drop it."""
        if peer is not None and lost:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(
                    peer.notify("worker.lease_expired", LeaseExpiredParams(execution_ids=lost)), 1
                )
        with contextlib.suppress(Exception):
            await ws.close(CLOSE_LEASE_EXPIRED, "lease expired: no heartbeat")

    def _lose(self, ex: _Execution, worker: _Worker) -> None:
        ex.lost = True
        self._dirty = True
        log.warning("execution %s lost with worker %s", ex.execution_id, worker.name)
        if self._persister is not None:
            fields = {
                "status": "failed",
                "error": f"worker {worker.name} lost",
                "finished_at": time.time(),
            }
            self._persister.call(lambda: self._update_session(ex.session_id, fields))
        self._fire("on_worker_lost", ex.execution_id, worker.name)

    # ---- the store -------------------------------------------------------------------------
    async def _stored_conclusion(self, session_id: str) -> str | None:
        """How the store says a session ended (e.g. a previous hub lost its worker), if it did:
        such a run is not adopted but stopped. 'interrupted' (the hub died) may be adopted."""
        if self.store is None:
            return None

        def read() -> str | None:
            row = self.store.get_session(session_id)
            if row.status.value in ("completed", "failed", "killed"):
                return f"{row.status.value}: {row.error or 'finished'}"
            return None

        try:
            return await asyncio.to_thread(read)
        except Exception:
            return None

    async def _stored_last_seq(self, session_id: str) -> int:
        if self.store is None:
            return -1
        try:
            return int(await asyncio.to_thread(self.store.last_seq, session_id))
        except Exception:
            return -1

    def _update_session(self, session_id: str, fields: dict[str, Any]) -> None:
        from aura_core.store.errors import NotFound

        with contextlib.suppress(NotFound):
            self.store.update_session(session_id, **fields)

    def _record_session_start(self, ex: _Execution, worker: _Worker) -> None:
        if self._persister is None or ex.params is None:
            return
        params = ex.params
        self._persister.call(
            lambda: self._create_session(ex, worker.name, worker.worker_id, params)
        )

    def _record_session_adopted(self, ex: _Execution, worker: _Worker) -> None:
        if self._persister is None:
            return
        name, wid = worker.name, worker.worker_id

        def run() -> None:
            from aura_core.store.errors import NotFound

            try:
                self.store.get_session(ex.session_id)
            except NotFound:
                self._create_session(ex, name, wid, None)
            else:
                self._update_session(
                    ex.session_id, {"status": "running", "error": None, "finished_at": None}
                )

        self._persister.call(run)

    def _create_session(
        self, ex: _Execution, worker_name: str, worker_id: str, params: ExecutionStartParams | None
    ) -> None:
        from aura_core.contracts import Session, SessionStatus
        from aura_core.store.errors import NotFound

        try:
            self.store.get_session(ex.session_id)
            return
        except NotFound:
            pass
        now = time.time()
        where = (params.cwd or params.repo or "") if params else ""
        session = Session(
            id=ex.session_id,
            executor=params.executor if params else "unknown",
            model=params.model if params else None,
            prompt=params.prompt if params else "",
            cwd=f"{worker_name}:{where}",
            status=SessionStatus.running,
            task_id=params.task.id if params and params.task else None,
            execution_id=ex.execution_id,
            created_at=now,
            started_at=now,
            owner_pid=os.getpid(),
            owner_start=procinfo.start_time(os.getpid()),
            options={
                "remote": True,
                "worker": worker_name,
                "worker_id": worker_id,
                "action": params.action if params else None,
                "repo": params.repo if params else None,
                "branch": params.branch if params else None,
                "resume_id": params.resume_id if params else None,
            },
        )
        self.store.create_session(session)

    # ---- misc --------------------------------------------------------------------------------
    def listen(
        self,
        *,
        on_log: OnLog | None = None,
        on_state: OnState | None = None,
        on_worker_lost: OnWorkerLost | None = None,
        on_worker: OnWorker | None = None,
    ) -> Callable[[], None]:
        """More callbacks, called after the constructor's (same rules); returns the remover.
        Thread-safe: the listeners are a tuple replaced whole, never changed in place."""
        given = {
            "on_log": on_log,
            "on_state": on_state,
            "on_worker_lost": on_worker_lost,
            "on_worker": on_worker,
        }
        entry: dict[str, Callable[..., Any]] = {k: v for k, v in given.items() if v is not None}
        self._listeners = (*self._listeners, entry)

        def remove() -> None:
            self._listeners = tuple(e for e in self._listeners if e is not entry)

        return remove

    def _fire(self, name: str, *args: Any) -> None:
        self._call(getattr(self, name), *args)
        for entry in self._listeners:
            self._call(entry.get(name), *args)

    async def flush(self) -> None:
        """Returns once everything handed to the store so far (lines, session updates) is in."""
        if self._persister is None:
            return
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()

        def mark() -> None:
            if not done.done():
                done.set_result(None)

        self._persister.call(lambda: loop.call_soon_threadsafe(mark))
        await done

    def _call(self, fn: Callable[..., Any] | None, *args: Any) -> None:
        if fn is None:
            return
        try:
            fn(*args)
        except Exception:
            log.exception("hub callback %s failed", getattr(fn, "__name__", fn))

    def _write_state(self, stopped: bool = False) -> None:
        if self.state_file is None:
            return
        self._dirty = False
        self._last_write = time.time()
        snapshot = HubSnapshot(
            hub=HubInfo(
                pid=os.getpid(),
                start=procinfo.start_time(os.getpid()),
                url=self.url,
                started_at=self._started_at,
                updated_at=self._last_write,
                stopped=stopped,
            ),
            workers=self.workers(),
        )
        try:
            write_snapshot(self.state_file, snapshot)
        except OSError as exc:
            log.warning("could not write %s: %s", self.state_file, exc)


def _address(conn: ServerConnection) -> str:
    try:
        host, port = conn.remote_address[:2]
    except (TypeError, ValueError, OSError):
        return "?"
    return f"{host}:{port}"


class HubThread:
    """A Hub on its own asyncio loop in a daemon thread, for the thread-based runtime.

    Every method is blocking and thread-safe; the callbacks given to the Hub run on the hub's
    thread.
    """

    def __init__(self, **hub_kwargs: Any) -> None:
        self.hub = Hub(**hub_kwargs)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._stop: asyncio.Event | None = None

    @property
    def port(self) -> int:
        return self.hub.port

    @property
    def url(self) -> str:
        return self.hub.url

    def start(self, timeout: float = 10.0) -> HubThread:
        self._thread = threading.Thread(target=self._run, name="aura-hub", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("the hub did not start in time")
        if self._error is not None:
            raise self._error
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._main())
        except BaseException as exc:
            if not self._ready.is_set():
                self._error = exc
                self._ready.set()
        finally:
            loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        try:
            await self.hub.start()
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        await self._stop.wait()
        await self.hub.stop()

    def stop(self, timeout: float = 15.0) -> None:
        if self._loop is not None and self._stop is not None and self._loop.is_running():
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout)

    def _run_coro(self, coro: Any, timeout: float | None) -> Any:
        assert self._loop is not None
        fut = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return fut.result(timeout)
        except concurrent.futures.TimeoutError:
            fut.cancel()
            raise TimeoutError("the hub did not answer in time") from None

    @property
    def alive(self) -> bool:
        """The hub's loop still runs (False once stopped or crashed)."""
        return self._thread is not None and self._thread.is_alive() and self._error is None

    def listen(self, **callbacks: Any) -> Callable[[], None]:
        """See Hub.listen: the callbacks run on the hub's thread."""
        return self.hub.listen(**callbacks)

    def flush(self, timeout: float | None = 30.0) -> None:
        """Wait until the hub's store has every line and update it was handed so far."""
        self._run_coro(self.hub.flush(), timeout)

    def start_execution(
        self,
        params: ExecutionStartParams | dict[str, Any],
        timeout: float | None = None,
        worker: str | None = None,
    ) -> StartOutcome:
        return self._run_coro(self.hub.start_execution(params, worker), timeout)

    def interrupt(self, execution_id: str, timeout: float | None = 15.0) -> bool:
        return bool(self._run_coro(self.hub.interrupt(execution_id), timeout))

    def send_input(
        self, execution_id: str, kind: str, text: str = "", approve: bool | None = None
    ) -> InputResult:
        return self._run_coro(self.hub.send_input(execution_id, kind, text, approve), 30.0)

    def fetch_branch(
        self, worker: str, params: BranchFetchParams, timeout: float = FETCH_TIMEOUT_S
    ) -> BranchFetchResult:
        return self._run_coro(self.hub.fetch_branch(worker, params, timeout), timeout + 5)

    def workers(self) -> list[WorkerInfo]:
        return self._run_coro(_value(self.hub.workers), 10.0)

    def executions(self) -> list[ExecutionInfo]:
        return self._run_coro(_value(self.hub.executions), 10.0)


async def _value(fn: Callable[[], Any]) -> Any:
    return fn()


def _raw_bytes(raw: str | None) -> bytes | None:
    """A line's exact bytes, sent base64; a malformed value keeps the line (its text) not the
    batch hostage: the decoded text is what the worker stored anyway."""
    if not raw:
        return None
    try:
        return base64.b64decode(raw, validate=True)
    except (ValueError, binascii.Error):
        return None
