"""Agents we talk *with* over their stdio (ACP, codex app-server, claude's control protocol).

A DuplexRun keeps the agent's stdin open, writes our messages to it and reads its lines, and is an
AgentRun like any subprocess: every line in both directions becomes a raw "stdout" line, in order,
so the stored transcript is the whole conversation. Requests that need an answer from the person
(permissions) are answered from plain threads while the runner drains lines; `wait_shown` lets the
runner show the request before the person is asked.

LineQueue is the AgentRun half on its own (the queue the runner drains, `note`, `wait_shown`),
for clients that talk to an agent some other way (opencode's HTTP server).

JsonRpcRun adds JSON-RPC 2.0 on top: our requests carry string ids `aura-N`, so in the transcript
a response with an `aura-` id answers us and any other response is ours to the agent.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import queue
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aura_core.executors.base import LaunchSpec, RawLine
from aura_core.executors.entries import as_dict, as_str, to_int
from aura_core.executors.process import ProcessRun

ID_PREFIX = "aura-"
EXIT_GRACE_S = 3.0  # after the turn: stdin is closed, then the agent has this long to exit
SHOWN_WAIT_S = 2.0  # a permission request is shown (entry drained) before the person is asked


class RpcError(Exception):
    """The agent answered a request of ours with an error."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"{message} ({code})")
        self.code = code
        self.message = message
        self.data = data


class AgentGone(Exception):
    """The agent exited or closed its input while we were talking to it."""


class StdioProcess(ProcessRun):
    """ProcessRun whose stdin stays open: the client writes messages to it."""

    def _feed_stdin(self, data: bytes) -> None:
        pass


class LineQueue:
    """The lines a run hands the runner, in order: `_emit` queues one (any thread), `batches`
    drains them until `_close_lines`; `wait_shown` waits until the runner has taken a line."""

    def __init__(self) -> None:
        self._q: queue.Queue[RawLine | None] = queue.Queue()
        self._queued = 0
        self._consumed = 0
        self._shown = threading.Condition()

    def batches(self, tick: float = 0.2) -> Iterator[list[RawLine]]:
        done = False
        while not done:
            try:
                item = self._q.get(timeout=tick)
            except queue.Empty:
                yield []
                continue
            batch: list[RawLine] = []
            while True:
                if item is None:
                    done = True
                    break
                batch.append(item)
                try:
                    item = self._q.get_nowait()
                except queue.Empty:
                    break
            taken = len(batch)
            yield batch
            with self._shown:
                self._consumed += taken
                self._shown.notify_all()

    def _emit(self, stream: str, data: bytes) -> int:
        with self._shown:
            self._queued += 1
            seq = self._queued
        self._q.put((stream, data))
        return seq

    def _close_lines(self) -> None:
        """No more lines: `batches` ends once the runner has taken those queued."""
        self._q.put(None)

    def note(self, text: str) -> None:
        """A line from aura itself, kept in the log as a system line."""
        self._emit("system", text.encode())

    def wait_shown(self, seq: int) -> None:
        """Let the runner show line `seq` (say a pending_approval entry) before going on."""
        deadline = time.monotonic() + SHOWN_WAIT_S
        with self._shown:
            while self._consumed < seq:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self._shown.wait(left)


class DuplexRun(LineQueue):
    """One turn with an agent over its stdio. Subclasses write `_converse` (returns the exit
    code) and `_dispatch` (sees each agent line with its sequence number)."""

    def __init__(self, spec: LaunchSpec, cwd: Path, env: dict[str, str]) -> None:
        super().__init__()
        self.spec = spec
        self.cwd = Path(cwd)
        self.interrupted = False
        self._code: int | None = None
        self._write_lock = threading.Lock()
        self._gone = threading.Event()
        launch = LaunchSpec(argv=spec.argv, env=spec.env, stdin=b"", warnings=spec.warnings)
        self.proc = StdioProcess(launch, self.cwd, env)
        self.pid: int | None = self.proc.pid
        self.pgid: int | None = self.proc.pgid

    def start_threads(self, name: str) -> None:
        """Called last by subclasses' __init__, once their own state exists."""
        self._reader = threading.Thread(target=self._read, name=f"{name}-read", daemon=True)
        self._reader.start()
        self._driver = threading.Thread(target=self._drive, name=f"{name}-drive", daemon=True)
        self._driver.start()

    # -- AgentRun ---------------------------------------------------------------------------
    def wait(self) -> int:
        self._driver.join()
        code = self.proc.wait()
        self._reader.join(timeout=5)
        return self._code if self._code is not None else (code or 1)

    def interrupt(self) -> None:
        self.interrupted = True
        self.proc.interrupt()

    # -- lines ------------------------------------------------------------------------------
    def _read(self) -> None:
        try:
            for batch in self.proc.batches():
                for stream, data in batch:
                    seq = self._emit(stream, data)
                    if stream == "stdout":
                        self._dispatch(data, seq)
        finally:
            self._gone.set()
            self._agent_gone()
            self._close_lines()

    def _dispatch(self, data: bytes, seq: int) -> None:
        raise NotImplementedError

    def _agent_gone(self) -> None:
        """The agent's output ended: wake whoever waits for an answer."""

    def send(self, msg: dict[str, Any]) -> None:
        line = json.dumps(msg, ensure_ascii=False, separators=(",", ":")).encode()
        stdin = self.proc.proc.stdin
        if stdin is None or self._gone.is_set():
            raise AgentGone("the agent's input is closed")
        with self._write_lock:
            # logged before it is written: the agent may answer before write() returns, and its
            # answer must come after our line in the transcript (a denial, then the agent's
            # "failed" update for that tool, not the other way round)
            self._emit("stdout", line)
            try:
                stdin.write(line + b"\n")
                stdin.flush()
            except (BrokenPipeError, OSError, ValueError) as exc:
                self.note(f"{self.label}: the line above was not delivered: {exc}")
                raise AgentGone(f"could not write to the agent: {exc}") from None

    def close_input(self) -> None:
        stdin = self.proc.proc.stdin
        with self._write_lock, contextlib.suppress(OSError, ValueError):
            if stdin is not None:
                stdin.close()

    # -- the conversation ----------------------------------------------------------------------
    def _drive(self) -> None:
        try:
            self._code = self._converse()
        except RpcError:
            self._code = 1  # the error response is in the transcript
        except AgentGone as exc:
            self.note(f"{self.label}: {exc}")
            self._code = None
        except Exception as exc:  # a client bug: say so, end the agent
            self.note(f"{self.label} client error: {exc!r}")
            self._code = 1
        finally:
            self._turn_over()
            self._end_agent()

    label = "agent"

    def _converse(self) -> int:
        raise NotImplementedError

    def _turn_over(self) -> None:
        """Hook: the conversation ended (normally or not)."""

    def _end_agent(self) -> None:
        """Such agents serve until their input closes: close it, then the ladder if need be."""
        self.close_input()
        deadline = time.monotonic() + EXIT_GRACE_S
        while time.monotonic() < deadline:
            if self.proc.proc.poll() is not None:
                return
            time.sleep(0.05)
        self.proc.interrupt()


class JsonRpcRun(DuplexRun):
    """JSON-RPC 2.0 over the stdio lines: our requests wait for their answers; the agent's
    requests are served each on its own thread (`_serve`), notifications only logged."""

    jsonrpc_field = True  # codex app-server omits "jsonrpc": "2.0" on the wire

    def __init__(self, spec: LaunchSpec, cwd: Path, env: dict[str, str]) -> None:
        super().__init__(spec, cwd, env)
        self._ids = itertools.count(1)
        self._pending: dict[str, tuple[threading.Event, list[dict[str, Any]]]] = {}
        self._pending_lock = threading.Lock()

    def message(self, **fields: Any) -> dict[str, Any]:
        return {"jsonrpc": "2.0", **fields} if self.jsonrpc_field else dict(fields)

    def notify(self, method: str, params: dict[str, Any] | None = None) -> None:
        msg = self.message(method=method)
        if params is not None:
            msg["params"] = params
        self.send(msg)

    def request(self, method: str, params: dict[str, Any], timeout: float | None = None) -> Any:
        rid = f"{ID_PREFIX}{next(self._ids)}"
        event = threading.Event()
        slot: list[dict[str, Any]] = []
        with self._pending_lock:
            self._pending[rid] = (event, slot)
        try:
            self.send(self.message(id=rid, method=method, params=params))
            if not event.wait(timeout):
                raise RpcError(-32001, f"{method}: no answer in {timeout:.0f} s")
        finally:
            with self._pending_lock:
                self._pending.pop(rid, None)
        if not slot:
            raise AgentGone(f"the agent exited before answering {method}")
        msg = slot[0]
        if "error" in msg:
            err = as_dict(msg.get("error"))
            raise RpcError(
                to_int(err.get("code")) or -32603, as_str(err.get("message")), err.get("data")
            )
        return msg.get("result")

    def _agent_gone(self) -> None:
        with self._pending_lock:
            for event, _slot in self._pending.values():
                event.set()

    def _dispatch(self, data: bytes, seq: int) -> None:
        try:
            msg = json.loads(data)
        except ValueError:
            return  # not JSON-RPC (a stray print): kept in the log, nothing to do
        if not isinstance(msg, dict):
            return
        method = msg.get("method")
        if isinstance(method, str):
            if "id" in msg:
                threading.Thread(
                    target=self._serve_guarded, args=(msg, seq), name="rpc-serve", daemon=True
                ).start()
            else:
                self._notified(method, as_dict(msg.get("params")))
            return
        rid = msg.get("id")
        if isinstance(rid, str):
            with self._pending_lock:
                waiter = self._pending.get(rid)
            if waiter is not None:
                waiter[1].append(msg)
                waiter[0].set()

    def _notified(self, method: str, params: dict[str, Any]) -> None:
        """Hook: a notification from the agent (already in the transcript)."""

    def _serve_guarded(self, msg: dict[str, Any], seq: int) -> None:
        reply = self.message(id=msg.get("id"))
        try:
            reply["result"] = self._serve(msg["method"], as_dict(msg.get("params")), seq)
        except PermissionError as exc:
            reply["error"] = {"code": -32602, "message": f"refused by aura: {exc}"}
        except NotImplementedError:
            reply["error"] = {"code": -32601, "message": f"method not supported: {msg['method']}"}
        except OSError as exc:
            reply["error"] = {"code": -32603, "message": f"{exc.strerror or exc}"}
        with contextlib.suppress(AgentGone):
            self.send(reply)

    def _serve(self, method: str, params: dict[str, Any], seq: int) -> Any:
        """Answer one request from the agent; raise NotImplementedError for unknown methods."""
        raise NotImplementedError
