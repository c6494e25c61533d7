"""Claude Code in supervised mode: its control protocol over stdio, so tool permissions reach
the person.

`claude -p --input-format=stream-json --output-format=stream-json --permission-prompt-tool stdio`
reads our messages from stdin and asks before each tool the permission mode does not allow:
`{"type":"control_request","request_id":R,"request":{"subtype":"can_use_tool","tool_name",
"input","tool_use_id","permission_suggestions",...}}`, answered with
`{"type":"control_response","response":{"subtype":"success","request_id":R,"response":
{"behavior":"allow","updatedInput":...}}}` or `{"behavior":"deny","message":REASON}` (claude hands
the reason to the model as the tool's error). Verified against @anthropic-ai/claude-code 2.1.197.

We send `initialize`, then the prompt as a `user` line; the turn ends with the `result` line, after
which stdin is closed and claude exits. Cancel is the protocol's `interrupt`, then the signal
ladder. All our lines are kept in the transcript beside claude's, so the log shows each answer.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import threading
from pathlib import Path
from typing import Any

from aura_core.executors.base import ApprovalRequest, Approver, LaunchSpec, ask_person
from aura_core.executors.duplex import ID_PREFIX, AgentGone, DuplexRun
from aura_core.executors.entries import as_dict, as_list, as_str, describe_action

INIT_TIMEOUT_S = 60.0
CANCEL_GRACE_S = 3.0  # after the interrupt request, before the signal ladder


class ClaudeControlRun(DuplexRun):
    label = "claude"

    def __init__(
        self,
        spec: LaunchSpec,
        cwd: Path,
        env: dict[str, str],
        *,
        prompt: str,
        approver: Approver | None,
        describe: Any,
    ) -> None:
        super().__init__(spec, cwd, env)
        self.prompt = prompt
        self.approver = approver
        self.describe = describe  # (tool name, input) -> Action, for the question's one line
        self.is_error = False
        self.result_seen = False
        self._ids = itertools.count(1)
        self._ended = threading.Event()  # the result line arrived, or claude is gone
        self._answers: dict[str, threading.Event] = {}
        self.start_threads("claude")

    def interrupt(self) -> None:
        self.interrupted = True
        if self._gone.is_set() or self._ended.is_set():
            self.proc.interrupt()
            return
        with contextlib.suppress(AgentGone):
            self._request({"subtype": "interrupt"})
        timer = threading.Timer(CANCEL_GRACE_S, self.proc.interrupt)
        timer.daemon = True
        timer.start()

    # -- lines from claude ---------------------------------------------------------------------
    def _dispatch(self, data: bytes, seq: int) -> None:
        try:
            msg = json.loads(data)
        except ValueError:
            return
        if not isinstance(msg, dict):
            return
        kind = msg.get("type")
        if kind == "result":
            self.is_error = bool(msg.get("is_error"))
            self.result_seen = True
            self._ended.set()
        elif kind == "control_request":
            request = as_dict(msg.get("request"))
            threading.Thread(
                target=self._answer, args=(as_str(msg.get("request_id")), request, seq),
                name="claude-permission", daemon=True,
            ).start()  # fmt: skip
        elif kind == "control_response":
            rid = as_str(as_dict(msg.get("response")).get("request_id"))
            waiter = self._answers.pop(rid, None)
            if waiter is not None:
                waiter.set()

    def _agent_gone(self) -> None:
        self._ended.set()
        for waiter in list(self._answers.values()):
            waiter.set()

    def _answer(self, request_id: str, request: dict[str, Any], seq: int) -> None:
        if request.get("subtype") == "can_use_tool":
            self.wait_shown(seq)
            body = self._decide(request)
            response: dict[str, Any] = {"subtype": "success", "request_id": request_id}
            response["response"] = body
        else:  # hooks, MCP messages: we registered none
            response = {
                "subtype": "error",
                "request_id": request_id,
                "error": f"aura does not handle {as_str(request.get('subtype')) or 'this'}",
            }
        with contextlib.suppress(AgentGone):
            self.send({"type": "control_response", "response": response})

    def _decide(self, request: dict[str, Any]) -> dict[str, Any]:
        name = as_str(request.get("tool_name")) or "tool"
        tool_input = as_dict(request.get("input"))
        if self.approver is None:
            return {"behavior": "deny", "message": "nobody to ask: aura runs claude read-only"}
        action = self.describe(name, tool_input)
        question = ApprovalRequest(
            tool_name=as_str(request.get("display_name")) or name,
            title=describe_action(action, name),
            tool_id=as_str(request.get("tool_use_id")) or None,
            details=tool_input,
            agent="claude",
        )
        decision = ask_person(self.approver, question)
        if not decision.approve:
            reason = decision.reason or "the person denied this tool call"
            return {"behavior": "deny", "message": reason}
        body: dict[str, Any] = {"behavior": "allow", "updatedInput": tool_input}
        if decision.always:
            # claude's own suggestions ("allow `echo hi *`"), kept for this session only: never
            # written to the project's settings files inside the worktree
            rules = [
                {**s, "destination": "session"}
                for s in as_list(request.get("permission_suggestions"))
                if isinstance(s, dict)
                and s.get("type") in ("addRules", "replaceRules", "addDirectories")
            ]
            if rules:
                body["updatedPermissions"] = rules
        return body

    # -- our side -------------------------------------------------------------------------------
    def _request(self, request: dict[str, Any]) -> threading.Event:
        rid = f"{ID_PREFIX}{next(self._ids)}"
        waiter = threading.Event()
        self._answers[rid] = waiter
        self.send({"type": "control_request", "request_id": rid, "request": request})
        return waiter

    def _converse(self) -> int:
        initialized = self._request({"subtype": "initialize", "hooks": None})
        if not initialized.wait(INIT_TIMEOUT_S) and not self._gone.is_set():
            self.note(f"claude: no answer to initialize in {INIT_TIMEOUT_S:.0f} s")
            return 1
        if self._gone.is_set():
            return 1
        message = {"role": "user", "content": self.prompt}
        self.send({"type": "user", "message": message, "parent_tool_use_id": None})
        self._ended.wait()
        if self.interrupted:
            return 130
        if not self.result_seen:
            return 1  # claude exited without a result line (its stderr says why)
        return 1 if self.is_error else 0
