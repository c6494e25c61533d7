"""The worker protocol: JSON-RPC 2.0 messages between the hub and `aura worker` daemons.

Every message on the wire is one of the envelopes below, with the params of its method validated
by the pydantic model in `PARAMS`. docs/worker-protocol.md is the prose version of this file: keep
the two in step. Log lines travel as compact arrays, not objects, because the hub must pass
100,000 of them a second.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from aura_core.worker.defaults import (
    DEFAULT_PORT,
    HEARTBEAT_INTERVAL_S,
    MAX_MESSAGE_BYTES,
    OFFLINE_AFTER_S,
)

__all__ = ["DEFAULT_PORT", "HEARTBEAT_INTERVAL_S", "MAX_MESSAGE_BYTES", "OFFLINE_AFTER_S"]

PROTOCOL_VERSION = 1
JSONRPC = "2.0"
AUTH_HEADER = "Authorization"
AUTH_SCHEME = "Bearer"


class ErrorCode(IntEnum):
    """JSON-RPC's standard codes, then ours from the implementation-defined range."""

    PARSE_ERROR = -32700
    INVALID_REQUEST = -32600
    METHOD_NOT_FOUND = -32601
    INVALID_PARAMS = -32602
    INTERNAL_ERROR = -32603
    NOT_REGISTERED = -32001  # a method other than worker.hello before worker.hello succeeded
    MESSAGE_TOO_LARGE = -32002  # over the per-message limit; the connection stays open
    UNKNOWN_EXECUTION = -32003  # no such execution on this side
    UNSUPPORTED = -32004  # understood, but this executor or peer cannot do it
    PROTOCOL_MISMATCH = -32005  # worker.hello with a protocol version the hub does not speak


class RpcError(Exception):
    """A JSON-RPC error object, raised by handlers and by `request()` on an error response."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"{message} ({code})")
        self.code = int(code)
        self.message = message
        self.data = data

    def to_obj(self) -> dict[str, Any]:
        obj: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            obj["data"] = self.data
        return obj


class ConnectionLost(Exception):
    """The connection closed while a request waited for its response."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---- envelopes ------------------------------------------------------------------------------
class ErrorObject(_Model):
    code: int
    message: str
    data: Any = None


class Request(_Model):
    jsonrpc: Literal["2.0"] = "2.0"
    id: int | str
    method: str
    params: dict[str, Any] | None = None


class Notification(_Model):
    jsonrpc: Literal["2.0"] = "2.0"
    method: str
    params: dict[str, Any] | None = None


class Response(_Model):
    jsonrpc: Literal["2.0"] = "2.0"
    id: int | str | None
    result: Any


class ErrorResponse(_Model):
    jsonrpc: Literal["2.0"] = "2.0"
    id: int | str | None
    error: ErrorObject


# ---- worker -> hub --------------------------------------------------------------------------
class ExecutorInfo(_Model):
    name: str
    version: str | None = None
    path: str | None = None


class Capabilities(_Model):
    executors: list[ExecutorInfo] = Field(default_factory=list)
    repos: list[str] = Field(default_factory=list)  # names the worker maps to local clones
    max_concurrency: int = Field(default=1, ge=1)

    def has_executor(self, name: str) -> bool:
        return any(e.name == name for e in self.executors)

    def serves(self, repo: str | None) -> bool:
        return repo is None or "*" in self.repos or repo in self.repos


ExecState = Literal["running", "completed", "failed", "killed"]
TERMINAL_STATES: frozenset[str] = frozenset({"completed", "failed", "killed"})


class ReportedExecution(_Model):
    """One execution the worker still holds (running, or finished but not yet confirmed)."""

    execution_id: str
    session_id: str
    acked: int = -1  # the highest seq the hub acknowledged to this worker
    next_seq: int = 0  # the seq the next line will get
    state: ExecState = "running"


class HelloParams(_Model):
    protocol: int = PROTOCOL_VERSION
    worker_id: str = Field(min_length=1, max_length=200)
    name: str = Field(min_length=1, max_length=200)
    version: str
    capabilities: Capabilities
    running: list[ReportedExecution] = Field(default_factory=list)
    host: str | None = None
    pid: int | None = None
    draining: bool = False


class ExecutionAck(_Model):
    """The hub's watermark for one execution: every seq up to `seq` is safely received."""

    execution_id: str
    seq: int
    done: bool = False  # the final state is recorded: the worker may forget the execution
    expired: bool = False  # the hub gave up on it (worker_lost): stop it


class HelloResult(_Model):
    hub_version: str
    heartbeat_interval: float
    offline_after: float
    max_message_bytes: int
    executions: list[ExecutionAck] = Field(default_factory=list)


class HeartbeatParams(_Model):
    running: list[str] = Field(default_factory=list)
    max_concurrency: int = Field(default=1, ge=1)
    load: float | None = None  # the machine's 1-minute load average
    draining: bool = False


# One log line: [seq, stream, ts, text, raw] where raw is base64 of the exact bytes, or null when
# the text is the line (valid UTF-8).
LogItem = tuple[int, str, float, str, str | None]


class LogParams(_Model):
    execution_id: str
    lines: list[LogItem]


class StateParams(_Model):
    execution_id: str
    state: ExecState
    session_id: str | None = None
    exit_code: int | None = None
    error: str | None = None
    agent_session_id: str | None = None
    lines: int = 0  # the seq the next line would get: on a final state, the count of lines
    ts: float = 0.0
    # a run in a task worktree (start with branch and task): what it did to it, for the engine
    workdir: str | None = None  # the worktree's path on the worker
    head_before: str | None = None
    head_after: str | None = None
    changes_made: bool | None = None  # a new commit or different uncommitted changes


class DrainingParams(_Model):
    reason: str = "stopping"
    running: list[str] = Field(default_factory=list)


class ByeParams(_Model):
    reason: str = "stopping"


# ---- hub -> worker --------------------------------------------------------------------------
RunAction = Literal[
    "run_setup", "run_coding_initial", "run_coding_follow_up", "run_review", "run_cleanup"
]


class RunOptionsModel(_Model):
    """The executor options a remote run may carry: mirrors executors.base.RunOptions."""

    yolo: bool = False
    force: bool = False
    trust: bool = False
    auto_approve: bool | None = None
    allow_all_tools: bool = False
    review: bool = False
    append_prompt: str | None = None
    vars: dict[str, str] = Field(default_factory=dict)
    params: list[str] = Field(default_factory=list)
    base_command: str | None = None
    openai_endpoint: str | None = None
    refresh_model_cache: bool = False
    extra: dict[str, Any] = Field(default_factory=dict)


class TaskRef(_Model):
    id: str
    title: str | None = None


class ExecutionStartParams(_Model):
    execution_id: str = Field(min_length=1, max_length=200)
    action: RunAction
    executor: str
    prompt: str = ""
    model: str | None = None
    options: RunOptionsModel = Field(default_factory=RunOptionsModel)
    repo: str | None = None  # a name from the worker's capabilities.repos
    # with `task` too: run in the worker's own worktree of this task branch (made on first use
    # from `base_branch`, default the repo's default branch), never in the repo's clone itself
    branch: str | None = None
    base_branch: str | None = None
    commit_message: str | None = None  # after a completed run: commit everything in the worktree
    cwd: str | None = None  # relative to the repo's clone on the worker (or absolute inside it)
    env: dict[str, str] = Field(default_factory=dict)
    task: TaskRef | None = None
    session_id: str | None = None  # the aura session id for the run; default: execution_id
    resume_id: str | None = None  # the agent's own session to continue (follow-ups)


class StartResult(_Model):
    status: Literal["accepted", "rejected"]
    reason: str | None = None


class InterruptParams(_Model):
    execution_id: str


class InterruptResult(_Model):
    status: Literal["interrupting", "finished"]


class InputParams(_Model):
    execution_id: str
    kind: Literal["follow_up", "approval"]
    text: str = ""
    approve: bool | None = None  # for kind=approval


class InputResult(_Model):
    status: Literal["delivered"]


class AckParams(_Model):
    acks: list[ExecutionAck]


class LeaseExpiredParams(_Model):
    execution_ids: list[str]
    reason: str = "lease expired: the hub declared this worker lost"


CommitId = Annotated[str, Field(pattern=r"^[0-9a-f]{40}([0-9a-f]{24})?$")]


class BranchFetchParams(_Model):
    """Ask for the commits of a task branch in one of the worker's repos, as a git bundle."""

    repo: str  # a name from the worker's capabilities.repos
    branch: str = Field(min_length=1, max_length=250)
    base: str | None = None  # the branch the task started from: left out if no `have` is known
    # commits the hub already has: the bundle leaves out everything reachable from those the
    # worker knows (the hub's base tip and a few of its ancestors, the branch as fetched before)
    have: list[CommitId] = Field(default_factory=list, max_length=256)


class BranchFetchResult(_Model):
    branch: str
    head: str  # the branch's commit on the worker
    # base64 of a `git bundle` holding refs/heads/<branch>; null when the hub has every commit
    bundle: str | None = None
    size: int = 0  # the bundle's bytes (before base64)
    prerequisites: list[str] = Field(default_factory=list)  # commits the bundle leaves out
    # uncommitted files in the worker's worktree of the branch: not in the bundle
    uncommitted: list[str] = Field(default_factory=list)


class Empty(_Model):
    pass


# method -> params model. Direction: W = worker sends, H = hub sends.
PARAMS: dict[str, type[BaseModel]] = {
    "worker.hello": HelloParams,  # W request -> HelloResult
    "worker.heartbeat": HeartbeatParams,  # W notification
    "worker.draining": DrainingParams,  # W notification
    "worker.bye": ByeParams,  # W notification
    "execution.log": LogParams,  # W notification
    "execution.state": StateParams,  # W notification
    "execution.start": ExecutionStartParams,  # H request -> StartResult
    "execution.interrupt": InterruptParams,  # H request -> InterruptResult
    "execution.input": InputParams,  # H request -> InputResult
    "execution.ack": AckParams,  # H notification
    "branch.fetch": BranchFetchParams,  # H request -> BranchFetchResult
    "worker.lease_expired": LeaseExpiredParams,  # H notification
}


def error_obj(code: int, message: str, data: Any = None) -> dict[str, Any]:
    return RpcError(code, message, data).to_obj()
