"""`aura worker serve`: a daemon that runs executions for a hub with the local executors.

Each execution is one SessionRunner on a thread, exactly as `aura run` does it (the worker keeps
its own store, so its sessions are also visible locally). Lines go to the hub from a buffer that
holds everything the hub has not acknowledged: after a dropped connection the daemon reconnects
with exponential backoff, says hello again with what it still runs and how far each was
acknowledged, and re-sends from there; the hub drops what it already had. Nothing is lost while
the daemon lives, nothing is doubled.

A start that names a task and its branch runs in the worker's own worktree of that branch
(`<data dir>/worktrees`, made with aura_core.workspace like the board's), so the worker's clone is
never edited; the final state then says what the run did to the worktree (heads, changes), and
a `commit_message` commits its changes, as the board's cleanup stage does locally.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import random
import signal
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from aura_core import __version__
from aura_core.executors.base import RunMode, RunOptions, RunRequest, SetupRequired
from aura_core.paths import data_dir, db_path
from aura_core.runner import Row, RunResult, SessionRunner
from aura_core.worker.protocol import (
    AUTH_HEADER,
    HEARTBEAT_INTERVAL_S,
    MAX_MESSAGE_BYTES,
    OFFLINE_AFTER_S,
    AckParams,
    BranchFetchParams,
    BranchFetchResult,
    ByeParams,
    Capabilities,
    ConnectionLost,
    DrainingParams,
    ErrorCode,
    ExecutionAck,
    ExecutionStartParams,
    ExecutorInfo,
    HeartbeatParams,
    HelloParams,
    HelloResult,
    InputParams,
    InputResult,
    InterruptParams,
    InterruptResult,
    LeaseExpiredParams,
    ReportedExecution,
    RpcError,
    StartResult,
    StateParams,
)
from aura_core.worker.rpc import RpcPeer
from aura_core.worker.security import auth_header, client_tls

log = logging.getLogger("aura.worker.daemon")

BATCH_LINES = 5000
BATCH_BYTES = 512 << 10
START_WAIT_S = 30.0
EXIT_TOKEN_REFUSED = 3
EXIT_PROTOCOL = 4
_MODES = {
    "run_coding_follow_up": RunMode.follow_up,
    "run_review": RunMode.review,
}
_STAGES = {
    "run_setup": "setup",
    "run_coding_initial": "coding_initial",
    "run_coding_follow_up": "coding_follow_up",
    "run_review": "review",
    "run_cleanup": "cleanup",
}


class WorkerError(Exception):
    """A setup problem the daemon cannot retry its way out of (bad token, bad config)."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class WorkerConfig:
    hub_url: str
    token: str
    name: str = field(default_factory=socket.gethostname)
    worker_id: str | None = None  # default: made once and kept in the data dir
    max_concurrency: int = 2
    repos: dict[str, Path] = field(default_factory=dict)
    executors: list[str] | None = None  # offer only these (default: every one found)
    tls_ca: str | None = None
    tls_insecure: bool = False
    data_dir: str | None = None
    drain_timeout: float = 30.0
    reconnect_min: float = 0.5
    reconnect_max: float = 30.0
    ping_interval: float = HEARTBEAT_INTERVAL_S  # websocket pings: how the worker sees a dead hub
    ping_timeout: float = OFFLINE_AFTER_S
    open_timeout: float = 10.0
    worktrees_root: Path | None = None  # task worktrees; default <data dir>/worktrees


@dataclass
class _Run:
    params: ExecutionStartParams
    session_id: str
    runner: SessionRunner | None = None
    rows: list[Row] = field(default_factory=list)  # unacknowledged lines, from seq `base` on
    base: int = 0
    acked: int = -1
    sent: int = -1
    next_seq: int = 0
    final: StateParams | None = None
    final_sent: bool = False
    running_sent: bool = False
    expired: bool = False
    started: asyncio.Future[str | None] | None = None
    thread: threading.Thread | None = None
    workdir: Path | None = None  # the task worktree it runs in (start with branch and task)
    head_before: str | None = None
    dirty_before: str = ""

    @property
    def execution_id(self) -> str:
        return self.params.execution_id

    @property
    def active(self) -> bool:
        return self.final is None


class _Sink:
    """The runner's sink on a worker: every call hops onto the daemon's loop, in order."""

    def __init__(self, daemon: WorkerDaemon, run: _Run) -> None:
        self.daemon = daemon
        self.run = run

    def _post(self, fn: Any, *args: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed: the daemon is exiting
            self.daemon.loop.call_soon_threadsafe(fn, self.run, *args)

    def started(self, session: dict[str, Any]) -> None:
        self._post(self.daemon._run_started)

    def lines(self, rows: list[Row]) -> None:
        self._post(self.daemon._run_lines, rows)

    def patches(self, patches: list[Any]) -> None:
        pass  # the hub re-derives entries from raw lines

    def finished(self, result: RunResult) -> None:
        facts: dict[str, Any] = {}
        if self.run.workdir is not None:  # on the runner's thread: git work stays off the loop
            facts = _worktree_facts(self.run, result)
        self._post(self.daemon._run_finished, result, facts)


def _worktree_facts(run: _Run, result: RunResult) -> dict[str, Any]:
    """What the run did to its worktree; commits first when asked (and the run completed)."""
    from aura_core.git.commit import commit_all
    from aura_core.git.diff import diff_uncommitted
    from aura_core.git.repo import head

    assert run.workdir is not None
    facts: dict[str, Any] = {"workdir": str(run.workdir), "head_before": run.head_before}
    try:
        after = head(run.workdir)
        dirty = diff_uncommitted(run.workdir).patch
        facts["changes_made"] = after != run.head_before or dirty != run.dirty_before
        if run.params.commit_message and result.status == "completed":
            commit_all(run.workdir, run.params.commit_message)
            after = head(run.workdir)
        facts["head_after"] = after
    except Exception as exc:  # GitError, or a broken worktree: the run must still report
        if result.status == "completed" and run.params.commit_message:
            result.status, result.error = "failed", f"could not commit the changes: {exc}"
    return facts


def worker_id_path(data_override: str | None) -> Path:
    return data_dir(data_override) / "worker-id"


def load_worker_id(data_override: str | None) -> str:
    path = worker_id_path(data_override)
    try:
        value = path.read_text().strip()
        if value:
            return value
    except OSError:
        pass
    value = uuid.uuid4().hex
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(value + "\n")
    return value


def discover_executors(only: list[str] | None = None) -> list[ExecutorInfo]:
    """The executors this machine can run, with versions (may run `--version` probes)."""
    from aura_core.executors.registry import EXECUTOR_NAMES, get_executor, is_available

    found = []
    for name in EXECUTOR_NAMES:
        if not is_available(name) or (only and name not in only):
            continue
        try:
            av = get_executor(name).availability()
        except Exception as exc:
            log.info("executor %s unavailable: %s", name, exc)
            continue
        if av.found:
            found.append(ExecutorInfo(name=name, version=av.version, path=av.path))
    return found


def _load() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


class WorkerDaemon:
    def __init__(self, config: WorkerConfig, store: Any = None) -> None:
        self.config = config
        self._git_lock = threading.Lock()  # one worktree creation at a time per repo set
        self.store = store
        self.worker_id = config.worker_id or load_worker_id(config.data_dir)
        self.runs: dict[str, _Run] = {}
        self.capabilities = Capabilities(max_concurrency=max(1, config.max_concurrency))
        self.draining = False
        self._hurry = False
        self._exit = asyncio.Event()
        self._wake = asyncio.Event()
        self._peer: RpcPeer | None = None
        self._ws: ClientConnection | None = None
        self._heartbeat = HEARTBEAT_INTERVAL_S
        self._max_message = MAX_MESSAGE_BYTES
        self.connected = asyncio.Event()
        self._drain_task: asyncio.Future[None] | None = None
        self.loop: asyncio.AbstractEventLoop  # set by run()

    # ---- entry ------------------------------------------------------------------------------
    async def run(self) -> int:
        """Serve until SIGTERM/SIGINT (then drain) or a fatal error; the exit code."""
        self.loop = asyncio.get_running_loop()
        if self.store is None:
            from aura_core.recovery import recover_sessions
            from aura_core.store.sqlite import SqliteStore

            self.store = SqliteStore(db_path(self.config.data_dir))
            recover_sessions(self.store)
        executors = await asyncio.to_thread(discover_executors, self.config.executors)
        self.capabilities = Capabilities(
            executors=executors,
            repos=sorted(self.config.repos),
            max_concurrency=max(1, self.config.max_concurrency),
        )
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                self.loop.add_signal_handler(sig, self.request_stop)
        log.info(
            "worker %s (%s) serving %s with %s",
            self.config.name,
            self.worker_id,
            ", ".join(self.capabilities.repos) or "no repo",
            ", ".join(e.name for e in executors) or "no executor",
        )
        try:
            await self._connect_loop()
        finally:
            for run in self.runs.values():
                if run.runner is not None and run.active:
                    run.runner.stop()
        return 0

    def request_stop(self) -> None:
        """First call: drain (take no work, finish or interrupt, tell the hub); second: hurry."""
        if self.draining:
            self._hurry = True
            return
        self.draining = True
        log.info("stopping: taking no new work")
        self._drain_task = asyncio.ensure_future(self._drain())

    # ---- the connection -------------------------------------------------------------------
    async def _connect_loop(self) -> None:
        cfg = self.config
        ssl_ctx = None
        if cfg.hub_url.startswith("wss://"):
            ssl_ctx = client_tls(cfg.tls_ca, cfg.tls_insecure)
        elif not cfg.hub_url.startswith("ws://"):
            raise WorkerError(f"--hub {cfg.hub_url}: give a ws:// or wss:// URL")
        attempt = 0
        while not self._exit.is_set():
            try:
                async with connect(
                    cfg.hub_url,
                    additional_headers={AUTH_HEADER: auth_header(cfg.token)},
                    ssl=ssl_ctx,
                    open_timeout=cfg.open_timeout,
                    ping_interval=cfg.ping_interval,
                    ping_timeout=cfg.ping_timeout,
                    close_timeout=2,
                    max_size=MAX_MESSAGE_BYTES,
                    user_agent_header=f"aura-worker/{__version__}",
                ) as ws:
                    if await self._session(ws):
                        attempt = 0
            except InvalidStatus as exc:
                status = exc.response.status_code
                if status in (401, 403):
                    raise WorkerError(
                        f"the hub refused the token (HTTP {status}): copy it from "
                        "`aura worker token` on the hub's machine",
                        EXIT_TOKEN_REFUSED,
                    ) from None
                log.warning("hub answered HTTP %s; retrying", status)
            except RpcError as exc:
                if exc.code == ErrorCode.PROTOCOL_MISMATCH:
                    raise WorkerError(exc.message, EXIT_PROTOCOL) from None
                log.warning("hub refused the hello: %s", exc)
            except (
                OSError,
                ConnectionClosed,
                InvalidHandshake,
                TimeoutError,
                ConnectionLost,
            ) as exc:
                log.info("hub connection: %s", exc or type(exc).__name__)
            finally:
                self._peer = None
                self._ws = None
                self.connected.clear()
            if self._exit.is_set():
                break
            delay = min(cfg.reconnect_max, cfg.reconnect_min * 2**attempt)
            delay *= random.uniform(0.5, 1.0)
            attempt = min(attempt + 1, 30)
            log.info("reconnecting in %.1fs", delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._exit.wait(), delay)

    async def _session(self, ws: ClientConnection) -> bool:
        """One connection: hello, then stream until it drops. True once the hello succeeded."""
        handlers: dict[str, Any] = {
            "execution.start": self._on_start,
            "execution.interrupt": self._on_interrupt,
            "execution.input": self._on_input,
            "execution.ack": self._on_ack,
            "worker.lease_expired": self._on_lease_expired,
            "branch.fetch": self._on_branch_fetch,
        }
        peer = RpcPeer(ws, handlers, max_message_bytes=MAX_MESSAGE_BYTES, name="hub")
        reader = asyncio.ensure_future(peer.run())
        tasks: list[asyncio.Future[Any]] = [reader]
        try:
            for run in self.runs.values():  # resend whatever the hub has not acknowledged
                run.sent = run.acked
                run.final_sent = False
            hello = HelloParams(
                worker_id=self.worker_id,
                name=self.config.name,
                version=__version__,
                capabilities=self.capabilities,
                running=[
                    ReportedExecution(
                        execution_id=run.execution_id,
                        session_id=run.session_id,
                        acked=run.acked,
                        next_seq=run.next_seq,
                        state=run.final.state if run.final else "running",
                    )
                    for run in self.runs.values()
                ],
                host=socket.gethostname(),
                pid=os.getpid(),
                draining=self.draining,
            )
            result = HelloResult.model_validate(
                await peer.request("worker.hello", hello, timeout=self.config.open_timeout + 5)
            )
            self._heartbeat = result.heartbeat_interval
            self._max_message = result.max_message_bytes
            for ack in result.executions:
                held = self.runs.get(ack.execution_id)
                if held is not None:
                    self._apply_ack(held, ack)
                    held.sent = max(held.sent, held.acked)
            self._peer = peer
            self._ws = ws
            self.connected.set()
            log.info("connected to %s as %s", self.config.hub_url, self.config.name)
            if self.draining:
                await peer.notify("worker.draining", DrainingParams(running=self._active_ids()))
            self._wake.set()
            tasks += [
                asyncio.ensure_future(self._heartbeats(peer)),
                asyncio.ensure_future(self._sender(peer)),
                asyncio.ensure_future(self._exit.wait()),
            ]
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in tasks:
                if task.done() and not task.cancelled() and task is not reader:
                    exc = task.exception()
                    if exc is not None and not isinstance(exc, (ConnectionClosed, ConnectionLost)):
                        log.error("worker task failed: %r", exc)
            return True
        finally:
            for task in tasks:
                task.cancel()
            with contextlib.suppress(Exception):
                await ws.close()

    async def _heartbeats(self, peer: RpcPeer) -> None:
        while True:
            await peer.notify(
                "worker.heartbeat",
                HeartbeatParams(
                    running=self._active_ids(),
                    max_concurrency=self.capabilities.max_concurrency,
                    load=_load(),
                    draining=self.draining,
                ),
            )
            await asyncio.sleep(self._heartbeat)

    async def _sender(self, peer: RpcPeer) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            for run in list(self.runs.values()):
                await self._flush_run(peer, run)

    async def _flush_run(self, peer: RpcPeer, run: _Run) -> None:
        if not run.running_sent and run.runner is not None and run.started and run.started.done():
            run.running_sent = True
            await peer.notify(
                "execution.state",
                StateParams(
                    execution_id=run.execution_id,
                    state="running",
                    session_id=run.session_id,
                    lines=run.next_seq,
                    ts=time.time(),
                ),
            )
        while run.sent < run.next_seq - 1:
            start = run.sent + 1 - run.base
            items: list[list[Any]] = []
            size = 0
            budget = min(BATCH_BYTES, self._max_message // 4)
            for row in run.rows[start : start + BATCH_LINES]:
                _, seq, stream, ts, text, raw = row
                cost = len(text) + 48 + (len(raw) * 2 if raw else 0)
                if items and size + cost > budget:
                    break
                if cost > self._max_message // 8:
                    text, raw = self._fit(text, raw)
                items.append(
                    [seq, stream, ts, text, base64.b64encode(raw).decode() if raw else None]
                )
                size += cost
            if not items:
                break
            await peer.notify("execution.log", {"execution_id": run.execution_id, "lines": items})
            run.sent = items[-1][0]
        if run.final is not None and not run.final_sent and run.sent >= run.final.lines - 1:
            run.final_sent = True
            await peer.notify("execution.state", run.final)

    def _fit(self, text: str, raw: bytes | None) -> tuple[str, bytes | None]:
        """A line too big for one message is cut (and says so): one seq stays one line."""
        limit = self._max_message - 4096
        encoded = len(json.dumps(text)) + (len(raw) * 2 if raw else 0)
        if encoded <= limit:
            return text, raw
        keep = max(0, int(len(text) * limit / encoded) - 200)
        return f"{text[:keep]}… [aura: line cut from {len(text)} characters to fit]", None

    # ---- hub requests ---------------------------------------------------------------------
    def _active_ids(self) -> list[str]:
        return sorted(r.execution_id for r in self.runs.values() if r.active)

    def _resolve_cwd(self, p: ExecutionStartParams) -> Path:
        if p.repo is not None:
            root = self.config.repos.get(p.repo)
            if root is None:
                raise ValueError(f"this worker does not serve repo {p.repo}")
            roots = [root]
        else:
            roots = list(self.config.repos.values())
            if not roots:
                raise ValueError("this worker serves no repo: start it with --repo NAME=PATH")
            if p.cwd is None:
                raise ValueError("say which repo (or a cwd inside one of the worker's repos)")
        base = roots[0].resolve()
        target = base if p.cwd is None else (base / p.cwd).resolve()
        for root in roots:
            root = root.resolve()
            if target == root or root in target.parents:
                if not target.is_dir():
                    raise ValueError(f"{target} is not a folder on this worker")
                return target
        raise ValueError(f"cwd {p.cwd} is outside the worker's repos")

    async def _on_start(self, p: ExecutionStartParams) -> StartResult:
        existing = self.runs.get(p.execution_id)
        if existing is not None:
            if existing.active:
                return StartResult(status="accepted")
            return StartResult(status="rejected", reason="this execution already ran here")
        if self.draining:
            return StartResult(status="rejected", reason="the worker is stopping")
        active = len(self._active_ids())
        if active >= self.capabilities.max_concurrency:
            return StartResult(
                status="rejected",
                reason=f"no free slot ({active}/{self.capabilities.max_concurrency})",
            )
        if not self.capabilities.has_executor(p.executor):
            return StartResult(status="rejected", reason=f"no {p.executor} executor here")
        try:
            cwd = self._resolve_cwd(p)
        except ValueError as exc:
            return StartResult(status="rejected", reason=str(exc))
        workdir: tuple[Path, str | None, str] | None = None
        if p.branch and p.task is not None:
            if p.repo is None:
                return StartResult(status="rejected", reason="a task branch needs its repo name")
            try:
                workdir = await asyncio.to_thread(self._task_worktree, p)
            except ValueError as exc:
                return StartResult(status="rejected", reason=str(exc))
            cwd = self._in_worktree(p, cwd, workdir[0])
        from aura_core.executors.registry import get_executor

        try:
            executor = get_executor(p.executor)
        except SetupRequired as exc:
            return StartResult(status="rejected", reason=str(exc))
        session_id = p.session_id or p.execution_id
        env = dict(p.env)
        env["AURA_EXECUTION_ID"] = p.execution_id
        if p.branch:
            env["AURA_BRANCH"] = p.branch
        request = RunRequest(
            session_id=session_id,
            prompt=p.prompt,
            cwd=cwd,
            model=p.model,
            mode=_MODES.get(p.action, RunMode.initial),
            resume_id=p.resume_id,
            options=RunOptions(**p.options.model_dump()),
            env=env,
        )
        run = _Run(params=p, session_id=session_id)
        if workdir is not None:
            run.workdir, run.head_before, run.dirty_before = workdir
        run.started = self.loop.create_future()
        run.runner = SessionRunner(
            self.store,
            executor,
            request,
            executor_name=p.executor,
            sink=_Sink(self, run),
            task_id=p.task.id if p.task else None,
            execution_id=p.execution_id,
            stage=_STAGES.get(p.action),
        )
        self.runs[p.execution_id] = run
        run.thread = threading.Thread(
            target=self._thread, args=(run,), name=f"aura-exec-{p.execution_id[:8]}", daemon=True
        )
        run.thread.start()
        try:
            problem = await asyncio.wait_for(asyncio.shield(run.started), START_WAIT_S)
        except TimeoutError:
            problem = "the agent did not start in time"
            run.runner.stop()
        if problem is not None:
            if run.final is None:
                self.runs.pop(p.execution_id, None)
            return StartResult(status="rejected", reason=problem)
        log.info("started %s (%s) in %s", p.execution_id, p.executor, cwd)
        return StartResult(status="accepted")

    def _repo_root(self, p: ExecutionStartParams) -> Path:
        assert p.repo is not None  # _on_start checked it, _resolve_cwd that it is served
        return self.config.repos[p.repo].resolve()

    def _task_worktree(self, p: ExecutionStartParams) -> tuple[Path, str | None, str]:
        """The task branch's worktree on this worker (made on first use): its path, head and
        uncommitted diff before the run. ValueError says why it cannot be had."""
        from aura_core.git.diff import diff_uncommitted
        from aura_core.git.errors import GitError
        from aura_core.git.repo import head
        from aura_core.git.worktree import branch_name
        from aura_core.workspace import create_workspace

        assert p.task is not None and p.branch is not None
        prefix = p.branch.rsplit("/", 1)[0] if "/" in p.branch else ""
        title = p.task.title or ""
        try:
            if branch_name(p.task.id, title, prefix) != p.branch:
                raise ValueError(
                    f"branch {p.branch} is not task {p.task.id[:8]}'s branch: "
                    "send the task's id and title with it"
                )
            root = self.config.worktrees_root or data_dir(self.config.data_dir) / "worktrees"
            with self._git_lock:
                workspace = create_workspace(
                    [self._repo_root(p)], p.task.id, title, root, base=p.base_branch, prefix=prefix
                )
            path = workspace.paths[0]
            return path, head(path), diff_uncommitted(path).patch
        except GitError as exc:
            raise ValueError(f"could not prepare the worktree of {p.branch}: {exc}") from None

    def _in_worktree(self, p: ExecutionStartParams, cwd: Path, worktree: Path) -> Path:
        """The clone-relative cwd, moved into the worktree (which must have it too)."""
        rel = cwd.relative_to(self._repo_root(p))
        target = (worktree / rel).resolve()
        return target if target.is_dir() else worktree

    def _thread(self, run: _Run) -> None:
        assert run.runner is not None
        try:
            run.runner.run()
        except SetupRequired as exc:
            self._post(self._run_not_started, run, str(exc))
        except BaseException as exc:
            log.error("execution %s failed: %r", run.execution_id, exc)
            self._post(self._run_not_started, run, f"aura error: {exc}")

    def _post(self, fn: Any, *args: Any) -> None:
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(fn, *args)

    async def _on_interrupt(self, p: InterruptParams) -> InterruptResult:
        run = self.runs.get(p.execution_id)
        if run is None:
            raise RpcError(ErrorCode.UNKNOWN_EXECUTION, f"no execution {p.execution_id} here")
        if not run.active:
            return InterruptResult(status="finished")
        if run.runner is not None:
            run.runner.stop()
        return InterruptResult(status="interrupting")

    async def _on_input(self, p: InputParams) -> InputResult:
        run = self.runs.get(p.execution_id)
        if run is None or not run.active or run.runner is None:
            raise RpcError(ErrorCode.UNKNOWN_EXECUTION, f"no running execution {p.execution_id}")
        send = getattr(getattr(run.runner, "_agent", None), "send_input", None)
        if send is None:
            raise RpcError(
                ErrorCode.UNSUPPORTED,
                f"the {run.params.executor} executor takes no input while it runs: start a "
                "follow-up execution with resume_id instead",
            )
        await asyncio.to_thread(send, p.kind, p.text, p.approve)
        return InputResult(status="delivered")

    async def _on_branch_fetch(self, p: BranchFetchParams) -> BranchFetchResult:
        """A task branch's commits the hub lacks, as a bundle (git work off the loop)."""
        from aura_core.git.bundle import valid_branch_name

        root = self.config.repos.get(p.repo)
        if root is None:
            raise RpcError(
                ErrorCode.UNSUPPORTED,
                f"this worker does not serve repo {p.repo}",
                {"reason": "unknown_repo", "repo": p.repo},
            )
        for what, name in (("branch", p.branch), ("base", p.base)):
            if name is not None and not valid_branch_name(name):
                raise RpcError(
                    ErrorCode.INVALID_PARAMS,
                    f"invalid params for branch.fetch: {name!r} is not a valid branch name",
                    [{"loc": what, "msg": "not a valid branch name"}],
                )
        limit = max(0, (self._max_message - (64 << 10)) * 3 // 4)  # base64 grows it by 4/3
        return await asyncio.to_thread(self._bundle, root, p, limit)

    def _bundle(self, root: Path, p: BranchFetchParams, limit: int) -> BranchFetchResult:
        from aura_core.git.bundle import BundleTooLarge, UnknownBranch, create_bundle
        from aura_core.git.errors import GitError
        from aura_core.git.repo import changed_files, open_repo
        from aura_core.git.worktree import checkouts_of

        try:
            with self._git_lock:
                bundle = create_bundle(root, p.branch, base=p.base, have=p.have, max_bytes=limit)
                uncommitted: list[str] = []
                for wt in checkouts_of(open_repo(root), p.branch):
                    if wt.exists:
                        uncommitted += changed_files(wt.path)
        except UnknownBranch as exc:
            raise RpcError(
                ErrorCode.UNSUPPORTED,
                f"repo {p.repo} has no branch {p.branch} on this worker",
                {"reason": "unknown_branch", "repo": p.repo, "branch": p.branch},
            ) from exc
        except BundleTooLarge as exc:
            raise RpcError(
                ErrorCode.UNSUPPORTED,
                str(exc),
                {"reason": "too_large", "size": exc.size, "limit": exc.limit},
            ) from exc
        except GitError as exc:
            raise RpcError(
                ErrorCode.UNSUPPORTED, f"could not bundle {p.branch}: {exc}", {"reason": "git"}
            ) from exc
        data = bundle.data
        return BranchFetchResult(
            branch=p.branch,
            head=bundle.head,
            bundle=base64.b64encode(data).decode() if data is not None else None,
            size=len(data) if data is not None else 0,
            prerequisites=list(bundle.prerequisites),
            uncommitted=sorted(set(uncommitted))[:100],
        )

    async def _on_ack(self, p: AckParams) -> None:
        for ack in p.acks:
            run = self.runs.get(ack.execution_id)
            if run is not None:
                self._apply_ack(run, ack)

    async def _on_lease_expired(self, p: LeaseExpiredParams) -> None:
        for exec_id in p.execution_ids:
            run = self.runs.get(exec_id)
            if run is not None:
                self._expire(run, p.reason)

    def _expire(self, run: _Run, reason: str) -> None:
        if run.expired:
            return
        run.expired = True
        if run.active and run.runner is not None:
            log.warning("stopping %s: %s", run.execution_id, reason)
            run.runner.stop()

    def _apply_ack(self, run: _Run, ack: ExecutionAck) -> None:
        if ack.seq > run.acked:
            cut = min(len(run.rows), ack.seq + 1 - run.base)
            if cut > 0:
                del run.rows[:cut]
                run.base += cut
            run.acked = ack.seq
        if ack.expired:
            self._expire(run, "the hub declared this worker lost")
        if ack.done and run.final is not None:
            self.runs.pop(run.execution_id, None)

    # ---- runner events (on the loop) --------------------------------------------------------
    def _run_started(self, run: _Run) -> None:
        if run.started is not None and not run.started.done():
            run.started.set_result(None)
        self._wake.set()

    def _run_lines(self, run: _Run, rows: list[Row]) -> None:
        if not run.rows:
            run.base = rows[0][1]
        run.rows.extend(rows)
        run.next_seq = rows[-1][1] + 1
        self._wake.set()

    def _run_finished(
        self, run: _Run, result: RunResult, facts: dict[str, Any] | None = None
    ) -> None:
        state = result.status if result.status in ("completed", "failed", "killed") else "failed"
        run.final = StateParams(
            **(facts or {}),
            execution_id=run.execution_id,
            state=state,
            session_id=run.session_id,
            exit_code=result.exit_code,
            error=result.error,
            agent_session_id=result.agent_session_id,
            lines=max(result.lines, run.next_seq),
            ts=time.time(),
        )
        log.info("execution %s %s (exit %s)", run.execution_id, state, result.exit_code)
        self._wake.set()

    def _run_not_started(self, run: _Run, reason: str) -> None:
        if run.started is not None and not run.started.done():
            run.started.set_result(reason)

    # ---- stopping -------------------------------------------------------------------------
    async def _drain(self) -> None:
        peer = self._peer
        if peer is not None:
            with contextlib.suppress(Exception):
                await peer.notify("worker.draining", DrainingParams(running=self._active_ids()))
        deadline = time.monotonic() + self.config.drain_timeout
        while self._active_ids() and time.monotonic() < deadline and not self._hurry:
            await asyncio.sleep(0.1)
        for run in self.runs.values():
            if run.active and run.runner is not None:
                log.info("interrupting %s", run.execution_id)
                run.runner.stop()
        deadline = time.monotonic() + 15
        while self._active_ids() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        # wait (a little) for the hub to confirm every final state and line
        deadline = time.monotonic() + (2 if self._hurry else 10)
        while self.runs and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        peer = self._peer
        if peer is not None:
            with contextlib.suppress(Exception):
                await peer.notify("worker.bye", ByeParams(reason="stopped by signal"))
        self._exit.set()
