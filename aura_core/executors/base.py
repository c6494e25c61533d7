"""The executor interface every agent adapter implements, and the value objects around it.

An adapter turns a RunRequest into a running agent (usually a LaunchSpec for a subprocess) and
gives a Normalizer that turns the agent's raw lines into normalised entries. Raw lines are stored
exactly as received; entries are always derived from them, so old sessions re-render with new
parsers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol


@dataclass(slots=True)
class ApprovalRequest:
    """An agent asks to use a tool (supervised mode); shown to the person, who approves or not."""

    tool_name: str
    title: str  # one line for the person: "$ rm -rf build", "edit src/app.py"
    kind: str | None = None  # ACP tool kind: execute, edit, read, fetch, ...
    tool_id: str | None = None
    details: Any = None  # the tool's raw input, when the agent gives it
    options: list[str] = field(default_factory=list)  # allow_once, allow_always, reject_once, ...
    agent: str = ""


@dataclass(slots=True)
class ApprovalDecision:
    approve: bool
    reason: str | None = None  # why not (kept in the log)
    always: bool = False  # approve this kind of call for the rest of the session


# Called from an executor thread while the agent waits; it may block (a TTY prompt, a modal).
Approver = Callable[[ApprovalRequest], ApprovalDecision]


def ask_person(approver: Approver, request: ApprovalRequest) -> ApprovalDecision:
    """The person's answer; a broken prompt (closed terminal, dead modal) approves nothing."""
    try:
        return approver(request)
    except Exception as exc:
        return ApprovalDecision(False, f"approval failed: {exc}")


class RunMode(StrEnum):
    initial = "initial"
    follow_up = "follow_up"
    review = "review"


@dataclass(slots=True)
class RunOptions:
    """The CLI's per-run options, as parsed. Each adapter maps what means something to it."""

    yolo: bool = False
    force: bool = False
    trust: bool = False
    auto_approve: bool | None = None  # None: the default policy (edit and run in the worktree)
    allow_all_tools: bool = False
    review: bool = False
    append_prompt: str | None = None
    vars: dict[str, str] = field(default_factory=dict)
    params: list[str] = field(default_factory=list)
    base_command: str | None = None
    openai_endpoint: str | None = None
    refresh_model_cache: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    # supervised mode (auto_approve False): asked about each permission request; None: refused
    approver: Approver | None = None


@dataclass(slots=True)
class RunRequest:
    session_id: str  # aura's own session id
    prompt: str
    cwd: Path
    model: str | None = None
    mode: RunMode = RunMode.initial
    resume_id: str | None = None  # the agent's own session/thread id to continue
    options: RunOptions = field(default_factory=RunOptions)
    executable: str | None = None  # --executor-path override
    env: dict[str, str] = field(default_factory=dict)  # extra env (config + --var)

    @property
    def full_prompt(self) -> str:
        extra = self.options.append_prompt
        return f"{self.prompt}\n\n{extra}" if extra else self.prompt


@dataclass(slots=True)
class LaunchSpec:
    """How to start an agent as a subprocess."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)  # added to the inherited environment
    stdin: bytes | None = None  # written, then EOF; None means no stdin (devnull)
    pty: bool = False
    warnings: list[str] = field(default_factory=list)  # one line each, shown before the run


@dataclass(slots=True)
class Availability:
    name: str
    found: bool
    path: str | None = None
    version: str | None = None
    override: str | None = None
    missing: list[str] = field(default_factory=list)  # what to do: install command, login, key
    note: str | None = None


class SetupRequired(Exception):
    """The agent cannot run here yet (not installed, no login, no API key); says what to do."""


RawLine = tuple[str, bytes]  # (stream name, line bytes without the trailing newline)


class AgentRun(Protocol):
    """A started agent. The runner drains `batches()` until it ends, then calls `wait()`."""

    pid: int | None
    pgid: int | None

    def batches(self) -> Iterator[list[RawLine]]: ...
    def wait(self) -> int: ...
    def interrupt(self) -> None: ...


class Normalizer(Protocol):
    """Turns raw lines into entries; stateful per session (tool calls update in place)."""

    agent_session_id: str | None

    def feed(self, stream: str, text: str) -> list[Any]: ...
    def finish(self) -> list[Any]: ...


class Executor(Protocol):
    name: str
    binary: str | None  # default program looked up on PATH; None for HTTP-only executors
    install_hint: str

    def availability(self, override: str | None = None) -> Availability: ...
    def start(self, request: RunRequest) -> AgentRun: ...
    def normalizer(self) -> Normalizer: ...
