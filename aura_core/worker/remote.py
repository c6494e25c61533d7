"""Stages on remote capacity: the runtime's session runner, with the agent on an `aura worker`.

`RemoteSessionRunner` has the surface the runtime uses from `SessionRunner` (`run()`, `stop()`,
`session_id`). It starts one stage through a `HubThread` on the worker chosen for the task,
records the session as a local one would be (task, execution, stage), hands the worker's lines
to the runtime's sink (and to the store when the hub keeps none) and feeds them to the
executor's normaliser, so the board streams a remote stage exactly like a local one. A lost
worker ends the run with status `lost`, which the runtime turns into the engine's `worker_lost`.

Placement (`choose_worker`): a task's `options["worker"]` is a worker name, `"any"` (a free
worker with the executors and the repo, else local) or absent/`"local"`. Workers serve repos by
name (`aura worker serve --repo NAME=PATH`); a task's repo is matched by its folder's name, so
`/home/me/src/app` runs on workers started with `--repo app=...`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import queue
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aura_core import procinfo
from aura_core.executors.base import RunOptions, RunRequest, SetupRequired
from aura_core.runner import NullSink, Row, RunResult, RunSink
from aura_core.worker.protocol import (
    ExecutionStartParams,
    RunOptionsModel,
    StateParams,
    TaskRef,
)

if TYPE_CHECKING:
    from aura_core.config import AuraConfig
    from aura_core.contracts import Task
    from aura_core.worker.hub import HubThread
    from aura_core.worker.statefile import WorkerInfo

LOST = "lost"  # RunResult.status of a run whose worker went offline
START_TIMEOUT_S = 90.0  # the hub gives a worker 30 s to start; this only guards a stuck hub
POLL_S = 0.5


@dataclass(slots=True)
class RemoteRunResult(RunResult):
    """A RunResult plus what the worker says the run did to the task's worktree."""

    worker: str | None = None
    workdir: str | None = None
    head_before: str | None = None
    head_after: str | None = None
    changes_made: bool | None = None


@dataclass(frozen=True, slots=True)
class RemoteTarget:
    """Where a task's remote stages run: one worker, one repo by name, the task's branch."""

    worker: str
    repo: str
    branch: str
    task_id: str
    task_title: str
    base_branch: str | None = None


def repo_name(path: str) -> str:
    """The name a worker must serve a task's repo under: its folder's name."""
    return Path(path).name


def choose_worker(
    workers: Iterable[WorkerInfo], want: str, executors: set[str], repo: str
) -> tuple[str | None, str | None]:
    """(worker name, None) to run remotely; (None, None) to run locally ("any" and nothing
    free); (None, reason) when the named worker cannot take the task."""
    fits = []
    for w in workers:
        if want != "any" and want not in (w.name, w.worker_id):
            continue
        names = {e.name for e in w.executors}
        problem = None
        if w.state != "online":
            problem = f"worker {w.name} is {w.state}"
        elif not executors <= names:
            problem = f"worker {w.name} lacks {', '.join(sorted(executors - names))}"
        elif repo not in w.repos and "*" not in w.repos:
            problem = f"worker {w.name} does not serve repo {repo} (--repo {repo}=PATH)"
        elif len(w.running) >= w.max_concurrency:
            problem = f"worker {w.name} is busy"
        if problem is None:
            fits.append(w)
        elif want != "any":
            return None, problem
    if not fits:
        return None, None if want == "any" else f"worker {want} is not connected to this hub"
    fits.sort(key=lambda w: (len(w.running) / w.max_concurrency, len(w.running), w.name))
    return fits[0].name, None


class PlacementError(Exception):
    """The task names a worker that cannot take it; one line saying why."""


def place_task(hub: HubThread | None, task: Task, config: AuraConfig) -> str | None:
    """The worker a task's execution runs on, or None for local: `options["worker"]` is a
    worker name, "any" (a free fitting worker, else local) or absent/"local"."""
    want = str(task.options.get("worker") or "local").strip() or "local"
    if want == "local":
        return None
    if hub is None:
        if want == "any":
            return None
        raise PlacementError(
            f"the task asks for worker {want}, but this aura runs no hub: "
            "set [hub] enabled = true (or attach one)"
        )
    if len(task.repos) != 1:
        if want == "any":
            return None
        raise PlacementError("a task runs on a worker only with exactly one repo")
    needed = {task.executor}
    if task.review:
        needed.add(task.options.get("reviewer") or config.runtime.reviewer or task.executor)
    scripts = config.scripts
    if scripts.setup or scripts.cleanup or config.worktrees.auto_commit:
        needed.add("custom")  # scripts and the auto-commit run as command sessions
    try:
        workers = hub.workers()
    except Exception as exc:
        if want == "any":
            return None
        raise PlacementError(f"the hub did not answer: {exc}") from None
    name, problem = choose_worker(workers, want, needed, repo_name(task.repos[0]))
    if problem is not None:
        raise PlacementError(problem)
    return name


def options_model(options: RunOptions) -> RunOptionsModel:
    """The RunOptions that travel (a live approver, say, cannot)."""
    known = RunOptionsModel.model_fields
    data = {
        f.name: getattr(options, f.name)
        for f in dataclasses.fields(options)
        if f.name in known and getattr(options, f.name) is not None
    }
    return RunOptionsModel.model_validate(data)


class RemoteRouter:
    """Hands the hub's callbacks (on the hub's thread) to the runner waiting for that id."""

    def __init__(self, hub: HubThread) -> None:
        self.hub = hub
        self._queues: dict[str, queue.SimpleQueue[tuple[str, Any]]] = {}
        self._lock = threading.Lock()
        self._remove = hub.listen(
            on_log=lambda eid, rows: self._put(eid, ("rows", rows)),
            on_state=lambda eid, st: self._put(eid, ("state", st)),
            on_worker_lost=lambda eid, name: self._put(eid, (LOST, name)),
        )

    def register(self, remote_id: str) -> queue.SimpleQueue[tuple[str, Any]]:
        q: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        with self._lock:
            self._queues[remote_id] = q
        return q

    def unregister(self, remote_id: str) -> None:
        with self._lock:
            self._queues.pop(remote_id, None)

    def close(self) -> None:
        self._remove()

    def _put(self, remote_id: str, item: tuple[str, Any]) -> None:
        with self._lock:
            q = self._queues.get(remote_id)
        if q is not None:
            q.put(item)


class RemoteSessionRunner:
    """One stage's session on a worker; the remote execution id is the session id."""

    def __init__(
        self,
        store: Any,
        router: RemoteRouter,
        target: RemoteTarget,
        request: RunRequest,
        *,
        executor: Any,
        executor_name: str,
        action: str,
        sink: RunSink | None = None,
        parent_id: str | None = None,
        task_id: str | None = None,
        execution_id: str | None = None,
        stage: str | None = None,
        commit_message: str | None = None,
    ) -> None:
        self.store = store
        self.router = router
        self.hub = router.hub
        self.target = target
        self.request = request
        self.executor = executor
        self.executor_name = executor_name
        self.action = action
        self.sink: RunSink = sink or NullSink()
        self.parent_id = parent_id
        self.task_id = task_id
        self.execution_id = execution_id
        self.stage = stage
        self.commit_message = commit_message
        self.session_id = request.session_id
        self.worker: str | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._accepted = False

    # ---- control ------------------------------------------------------------------------
    def stop(self) -> None:
        """Interrupt the stage on its worker (asynchronously: never blocks the caller)."""
        self._stop.set()
        with self._lock:
            accepted = self._accepted
        if accepted:
            threading.Thread(target=self._interrupt, name="aura-remote-stop", daemon=True).start()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def _interrupt(self) -> None:
        with contextlib.suppress(Exception):  # finished or lost meanwhile: nothing to stop
            self.hub.interrupt(self.session_id)

    # ---- the run ------------------------------------------------------------------------
    def _params(self) -> ExecutionStartParams:
        req, t = self.request, self.target
        return ExecutionStartParams(
            execution_id=self.session_id,
            action=self.action,  # one of RunAction: the runtime's stage names
            executor=self.executor_name,
            prompt=req.prompt,
            model=req.model,
            options=options_model(req.options),
            repo=t.repo,
            branch=t.branch,
            base_branch=t.base_branch,
            commit_message=self.commit_message,
            env=dict(req.env),
            task=TaskRef(id=t.task_id, title=t.task_title),
            session_id=self.session_id,
            resume_id=req.resume_id,
        )

    def run(self) -> RemoteRunResult:
        """Start the stage on the target worker and follow it to its end. SetupRequired when
        the worker does not take it (nothing ran, no session is recorded)."""
        inbox = self.router.register(self.session_id)
        try:
            try:
                outcome = self.hub.start_execution(
                    self._params(), timeout=START_TIMEOUT_S, worker=self.target.worker
                )
            except TimeoutError:
                raise SetupRequired("the hub did not answer the start in time") from None
            if not outcome.accepted:
                raise SetupRequired(f"worker {self.target.worker}: {outcome.reason}")
            self.worker = outcome.worker_name or self.target.worker
            started = time.time()
            session = self._record_session(started)
            with self._lock:
                self._accepted = True
            if self._stop.is_set():
                self._interrupt()
            self.sink.started(session)
            return self._follow(inbox, started)
        finally:
            self.router.unregister(self.session_id)

    def _hub_keeps_log(self) -> bool:
        """The hub writes the lines (and acks them once committed) when it has this store."""
        theirs = getattr(self.hub.hub, "store", None)
        if theirs is None:
            return False
        path = getattr(theirs, "path", None)
        return theirs is self.store or (path is not None and path == getattr(self.store, "path", 0))

    def _record_session(self, started: float) -> dict[str, Any]:
        from aura_core.contracts import Session, SessionStatus

        req, t = self.request, self.target
        session = Session(
            id=self.session_id,
            executor=self.executor_name,
            model=req.model,
            prompt=req.full_prompt,
            cwd=f"{self.worker}:{t.repo}@{t.branch}",
            status=SessionStatus.running,
            parent_id=self.parent_id,
            task_id=self.task_id,
            execution_id=self.execution_id,
            stage=self.stage,
            created_at=started,
            started_at=started,
            owner_pid=os.getpid(),
            owner_start=procinfo.start_time(os.getpid()),
            options={
                "mode": req.mode.value,
                "resume_id": req.resume_id,
                "structured": self._normalizer_probe(),
                "remote": True,
                "worker": self.worker,
                "repo": t.repo,
                "branch": t.branch,
            },
        )
        if self._hub_keeps_log():
            self.hub.flush()  # the hub recorded the session too: ours must win, so go after it
        try:
            self.store.create_session(session)
        except Exception:
            fields = session.model_dump(exclude={"id", "status", "created_at", "started_at"})
            self.store.update_session(self.session_id, **fields)
        return session.model_dump()

    def _normalizer_probe(self) -> bool:
        return self.executor is not None and self.executor.normalizer() is not None

    def _follow(self, inbox: queue.SimpleQueue[tuple[str, Any]], started: float) -> RemoteRunResult:
        from aura_core.store.logwriter import LogWriter

        writer = None if self._hub_keeps_log() else LogWriter(self.store)
        normalizer = self.executor.normalizer() if self.executor is not None else None
        agent_sid: str | None = None
        final: StateParams | None = None
        lost: str | None = None
        problem: str | None = None
        lines = 0
        try:
            while True:
                try:
                    kind, payload = inbox.get(timeout=POLL_S)
                except queue.Empty:
                    if not self.hub.alive:
                        problem = "the hub stopped while the stage ran"
                        break
                    continue
                if kind == LOST:
                    lost = str(payload)
                    break
                if kind == "state":
                    if payload.state != "running":
                        final = payload
                        break
                    continue
                rows: list[Row] = payload
                lines = rows[-1][1] + 1
                if writer is not None:
                    writer.add(rows)
                    writer.flush()
                self.sink.lines(rows)
                if normalizer is not None:
                    patches: list[Any] = []
                    for row in rows:
                        patches.extend(normalizer.feed(row[2], row[4]))
                    if normalizer.agent_session_id and normalizer.agent_session_id != agent_sid:
                        agent_sid = normalizer.agent_session_id
                        self.store.update_session(self.session_id, agent_session_id=agent_sid)
                    if patches:
                        self.sink.patches(patches)
        except BaseException as exc:  # our side broke (the store, say): stop the agent too
            self._interrupt()
            with contextlib.suppress(Exception):
                fields = {
                    "status": "failed",
                    "error": f"aura error: {exc}",
                    "finished_at": time.time(),
                }
                self.store.update_session(self.session_id, **fields)
            raise
        finally:
            if writer is not None:
                writer.close()
        if self._hub_keeps_log():
            with contextlib.suppress(Exception):
                self.hub.flush()
        if normalizer is not None:
            tail = normalizer.finish()
            if tail:
                self.sink.patches(tail)
            agent_sid = normalizer.agent_session_id or agent_sid
        return self._finish(started, final, lost, problem, agent_sid, lines)

    def _finish(
        self,
        started: float,
        final: StateParams | None,
        lost: str | None,
        problem: str | None,
        agent_sid: str | None,
        lines: int,
    ) -> RemoteRunResult:
        exit_code = final.exit_code if final else None
        status: str
        if final is not None:
            status, error = final.state, final.error
            agent_sid = final.agent_session_id or agent_sid
        elif lost is not None:
            status, error = LOST, f"worker {lost} lost"
        else:
            status, error = "failed", problem
        finished = time.time()
        fields: dict[str, Any] = {
            "status": "failed" if status == LOST else status,
            "exit_code": exit_code,
            "finished_at": finished,
            "error": error,
        }
        if agent_sid:
            fields["agent_session_id"] = agent_sid
        if final is not None and final.workdir:
            fields["cwd"] = f"{self.worker}:{final.workdir}"
        self.store.update_session(self.session_id, **fields)
        result = RemoteRunResult(
            session_id=self.session_id,
            status=status,
            exit_code=exit_code,
            duration=finished - started,
            error=error,
            agent_session_id=agent_sid,
            lines=max(lines, final.lines if final else 0),
            worker=self.worker,
            workdir=final.workdir if final else None,
            head_before=final.head_before if final else None,
            head_after=final.head_after if final else None,
            changes_made=final.changes_made if final else None,
        )
        self.sink.finished(result)
        return result


class BranchUnavailable(Exception):
    """The worker holding a task's branch cannot be asked now (offline, refused); one line."""


@dataclass(frozen=True, slots=True)
class FetchedBranch:
    """A task branch brought from its worker into the local repo."""

    branch: str
    head: str  # the branch's commit, now also the local branch's
    before: str | None  # the local branch's commit before (None: it was created)
    size: int  # bundle bytes received (0: nothing new)
    uncommitted: tuple[str, ...]  # files the worker's worktree has not committed


def fetch_task_branch(
    hub: HubThread,
    worker: str,
    repo_path: str,
    branch: str,
    base: str | None,
    timeout: float = 120.0,
) -> FetchedBranch:
    """Bring `branch` from `worker` (serving the repo under its folder's name) into the local
    repo at repo_path: `branch.fetch`, then the bundle into `refs/aura/remote/<branch>` and a
    fast-forward of the local branch. BranchUnavailable when the worker cannot be asked or
    refuses; GitError when the commits cannot be taken in (nothing was changed then)."""
    import base64
    import binascii

    from aura_core.git.bundle import have_commits, import_bundle
    from aura_core.worker.protocol import (
        BranchFetchParams,
        ConnectionLost,
        RpcError,
    )

    params = BranchFetchParams(
        repo=repo_name(repo_path),
        branch=branch,
        base=base,
        have=have_commits(repo_path, branch, base),
    )
    try:
        result = hub.fetch_branch(worker, params, timeout)
    except RpcError as exc:
        raise BranchUnavailable(f"worker {worker}: {exc.message}") from None
    except ConnectionLost as exc:
        raise BranchUnavailable(str(exc)) from None
    except TimeoutError:
        raise BranchUnavailable(f"worker {worker} did not send {branch} in time") from None
    try:
        data = base64.b64decode(result.bundle, validate=True) if result.bundle else None
    except (ValueError, binascii.Error):
        raise BranchUnavailable(f"worker {worker} sent a malformed bundle of {branch}") from None
    update = import_bundle(repo_path, branch, result.head, data)
    return FetchedBranch(
        branch=branch,
        head=update.after,
        before=update.before,
        size=len(data) if data is not None else 0,
        uncommitted=tuple(result.uncommitted),
    )


def hub_from_config(
    config: AuraConfig, store: Any = None, data_dir: str | None = None, **overrides: Any
) -> HubThread:
    """A started HubThread with [hub] of config.toml (the board's embedded hub)."""
    from aura_core.worker.hub import HubThread
    from aura_core.worker.security import load_or_create_token, server_tls
    from aura_core.worker.statefile import state_path

    conf = config.hub
    tls = None
    if conf.tls_cert or conf.tls_key:
        if not (conf.tls_cert and conf.tls_key):
            raise ValueError("[hub] needs both tls_cert and tls_key (or neither)")
        tls = server_tls(os.path.expanduser(conf.tls_cert), os.path.expanduser(conf.tls_key))
    kwargs: dict[str, Any] = {
        "token": conf.token or load_or_create_token(data_dir),
        "host": conf.host,
        "port": conf.port,
        "store": store,
        "tls": tls,
        "state_file": state_path(data_dir),
        **overrides,
    }
    return HubThread(**kwargs).start()
