"""The real opencode CLI (opencode-ai 1.18.33) driven through its server's HTTP API
(`--var AURA_TRANSPORT=server`, and supervised mode) against the scripted model server, offline:
aura starts `opencode serve`, creates or continues a session, follows the event stream, answers
`permission.asked` through the person on the terminal, and stops the server afterwards.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import pexpect
import pytest

from aura_core.executors.base import RunOptions, RunRequest
from aura_core.executors.entries import DENIED, PENDING_APPROVAL, SUCCESS, ToolUse
from aura_core.executors.registry import get_executor
from tests.executors.test_part2_real_clis import (
    ROOT,
    SHIM,
    aura,
    converse,
    git_repo,
    latest,
    offline,
    require,
    script,
)
from tests.support import fixtures
from tests.support.model_server import Shell, Slow

pytestmark = pytest.mark.realcli
make_model_server = fixtures.make_model_server
SERVER = ("--var", "AURA_TRANSPORT=server")


def serve_processes(repo: Path) -> list[int]:
    """`opencode serve` processes started in `repo` (by aura), still alive."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().split(b"\0")
            cwd = os.readlink(entry / "cwd")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        opencode_serve = b"serve" in cmd and any(b"opencode" in c for c in cmd)
        if state != "Z" and opencode_serve and cwd == str(repo):
            found.append(int(entry.name))
    return found


def assert_no_server(repo: Path) -> None:
    deadline = time.monotonic() + 5
    while serve_processes(repo) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert serve_processes(repo) == []


def test_prompt_reply_and_resume_over_the_server(
    make_model_server: Any, isolated_home: Path, tmp_path: Path
) -> None:
    """A shell call runs, the reply is normalised, the opencode session id is kept and
    `--resume-latest` continues the same session in a new server."""
    require("opencode")
    server = make_model_server(script())
    repo = git_repo(tmp_path / "repo")
    converse("opencode", server, isolated_home, repo, *SERVER)
    assert_no_server(repo)
    env, _args = offline("opencode", server, isolated_home, repo)
    shown = aura(env, "session", "latest").stdout
    assert "resumed session ses_" in shown, shown
    raw = aura(env, "session", "latest", "--raw").stdout
    assert '"aura":"request","method":"GET","path":"/session/ses_' in raw
    assert '"type":"session.idle"' in raw and "/prompt_async" in raw


def test_supervised_on_a_tty_approve_and_deny(
    make_model_server: Any, isolated_home: Path, tmp_path: Path
) -> None:
    """Supervised mode goes through the server: each `permission.asked` reaches the person on
    the terminal; an approved command runs, a denied one does not and the log says why."""
    require("opencode")
    repo = git_repo(tmp_path / "repo")
    server = make_model_server(
        [Shell("echo yes > approved.txt"), Shell("echo no > denied.txt"), "All done."]
    )
    env, args = offline("opencode", server, isolated_home, repo)
    child = pexpect.spawn(
        sys.executable,
        [
            "-c",
            SHIM,
            "run",
            "-e",
            "opencode",
            "-p",
            "make two files",
            "--cwd",
            str(repo),
            "--auto-approve",
            "false",
            "--no-tui",
            *args,
        ],
        env=env,
        cwd=str(ROOT),
        encoding="utf-8",
        timeout=120,
        dimensions=(40, 200),
    )
    try:
        child.expect(r"\? opencode asks to use bash: \$ echo yes > approved\.txt")
        child.sendline("y")
        child.expect(r"\? opencode asks to use bash: \$ echo no > denied\.txt")
        child.sendline("n no shell today")
        child.expect("All done.")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0, child.before
    assert (repo / "approved.txt").read_text() == "yes\n"
    assert not (repo / "denied.txt").exists()
    assert_no_server(repo)
    # the model was told why
    after = [r for r in server.main_requests() if "no shell today" in r.text()]
    assert after, [r.text()[-300:] for r in server.main_requests()]

    shown = aura(env, "session", "latest").stdout
    assert "✓ $ echo yes > approved.txt" in shown, shown
    assert "⊘ $ echo no > denied.txt [denied]" in shown, shown
    assert "denied $ echo no > denied.txt: no shell today" in shown, shown
    session = latest(env)
    assert session["status"] == "completed" and session["agent_session_id"].startswith("ses_")
    raw = aura(env, "session", "latest", "--raw").stdout
    assert '"type":"permission.asked"' in raw
    assert '"reply":"once"' in raw and '"reply":"reject","message":"no shell today"' in raw


def test_transcript_reparses_with_pending_and_denied(
    make_model_server: Any, isolated_home: Path, tmp_path: Path
) -> None:
    """Read-only without a person to ask: the permission request is refused with aura's reason,
    and the stored lines re-parse with the executor's normaliser (pending, then denied)."""
    require("opencode")
    repo = git_repo(tmp_path / "repo")
    server = make_model_server([Shell("echo no > denied.txt"), "Understood."])
    env, args = offline("opencode", server, isolated_home, repo)
    res = aura(
        env,
        "run",
        "-e",
        "opencode",
        "-p",
        "try it",
        "--cwd",
        str(repo),
        "--no-tui",
        "--auto-approve",
        "false",
        *args,
        *SERVER,
    )
    out = f"stdout:\n{res.stdout}\nstderr:\n{res.stderr}"
    assert res.returncode == 0, out
    assert not (repo / "denied.txt").exists(), out
    assert "read-only" in res.stdout, out  # the refusal says why
    raw = aura(env, "session", "latest", "--raw").stdout
    lines = [ln for ln in raw.splitlines() if ln.startswith("{")]  # the stdout lines
    assert json.loads(lines[0])["aura"] == "server"
    norm = get_executor("opencode").normalizer()
    statuses: list[str] = []
    for line in lines:
        for patch in norm.feed("stdout", line):
            if isinstance(patch.entry, ToolUse):
                statuses.append(patch.entry.status)
    norm.finish()
    assert norm.agent_session_id and norm.agent_session_id.startswith("ses_")
    assert PENDING_APPROVAL in statuses and statuses[-1] == DENIED, statuses
    assert SUCCESS not in statuses


def test_interrupt_aborts_the_session_and_stops_the_server(
    make_model_server: Any, isolated_home: Path, tmp_path: Path
) -> None:
    """Cancel: `POST /session/{id}/abort`, the turn ends as aborted, the server goes."""
    binary = require("opencode")
    repo = git_repo(tmp_path / "repo")
    server = make_model_server([Slow(60, "too late")])
    offline("opencode", server, isolated_home, repo)
    executor = get_executor("opencode")
    options = RunOptions(vars={"AURA_TRANSPORT": "server"})
    request = RunRequest(
        session_id="s1", prompt="take your time", cwd=repo, executable=str(binary), options=options
    )
    run = executor.start(request)
    norm = executor.normalizer()
    texts: list[str] = []
    asked = False
    started = time.monotonic()
    try:
        for batch in run.batches():
            for stream, data in batch:
                for patch in norm.feed(stream, data.decode()):
                    texts.append(getattr(patch.entry, "text", ""))
            if not asked and server.main_requests():
                asked = True
                run.interrupt()
            assert time.monotonic() - started < 60
    finally:
        code = run.wait()
    assert asked and code == 130
    assert "cancel requested" in texts and "aborted" in texts, texts
    assert norm.agent_session_id and norm.agent_session_id.startswith("ses_")
    assert_no_server(repo)


# a transcript as OpencodeServerRun records it (trimmed from a real run of opencode 1.18.33)
SID = "ses_dec44e6edffeT9dRYDvo1Pmloa"
MSG = "msg_213bb1c09001wG3wPgXIU2ilKC"
REJECTED = (
    "The user rejected permission to use this specific tool call with the following feedback: "
    "not that"
)


def ours(mark: str, **fields: Any) -> tuple[str, dict[str, Any]]:
    return "stdout", {"aura": mark, **fields}


def event(kind: str, **props: Any) -> tuple[str, dict[str, Any]]:
    return "stdout", {"id": "evt_x", "type": kind, "properties": {"sessionID": SID, **props}}


def part(pid: str, kind: str, message: str = MSG, **fields: Any) -> tuple[str, dict[str, Any]]:
    return event(
        "message.part.updated",
        part={"id": pid, "messageID": message, "type": kind, "sessionID": SID, **fields},
    )


def bash(status: str, **state: Any) -> tuple[str, dict[str, Any]]:
    return part("prt_t", "tool", tool="bash", callID="call_1", state={"status": status, **state})


TRANSCRIPT: list[tuple[str, Any]] = [
    ("stderr", "Warning: OPENCODE_SERVER_PASSWORD is not set; server is unsecured."),
    ("stderr", "opencode server listening on http://127.0.0.1:4096"),
    ours("server", url="http://127.0.0.1:4096", started=True),
    ours("request", method="POST", path="/session", body={}),
    ours("response", method="POST", path="/session", status=200, body={"id": SID}),
    ours("request", method="GET", path="/event"),
    ("stdout", {"id": "evt_0", "type": "server.connected", "properties": {}}),
    event("message.updated", info={"id": "msg_user", "role": "user"}),
    part("prt_u", "text", "msg_user", text="the prompt"),
    event("message.updated", info={"id": MSG, "role": "assistant"}),
    part("prt_r", "reasoning", text=""),
    event("message.part.delta", messageID=MSG, partID="prt_r", field="text", delta="let me "),
    event("message.part.delta", messageID=MSG, partID="prt_r", field="text", delta="think"),
    bash("pending", input={}),
    event(
        "permission.asked",
        id="per_1",
        permission="bash",
        patterns=["rm -rf x"],
        metadata={"command": "rm -rf x"},
        always=["rm *"],
        tool={"messageID": MSG, "callID": "call_1"},
    ),
    bash("running", input={"command": "rm -rf x"}),
    ours(
        "request",
        method="POST",
        path="/permission/per_1/reply",
        body={"reply": "reject", "message": "not that"},
    ),
    event("permission.replied", requestID="per_1", reply="reject"),
    bash("error", input={"command": "rm -rf x"}, error=REJECTED),
    part("prt_x", "text", text="Fine."),
    part(
        "prt_f",
        "step-finish",
        cost=0.01,
        tokens={"input": 10, "output": 5, "reasoning": 0, "cache": {"read": 2, "write": 0}},
    ),
    event("session.idle"),
]


def test_server_transcript_entries() -> None:
    norm = get_executor("opencode").normalizer()
    patches = []
    for stream, item in TRANSCRIPT:
        text = item if isinstance(item, str) else json.dumps(item)
        patches += norm.feed(stream, text)
    patches += norm.finish()
    entries: list[Any] = []
    statuses = []
    for p in patches:
        if p.op == "append":
            entries.append(p.entry)
        else:
            entries[p.index] = p.entry
        if isinstance(p.entry, ToolUse):
            statuses.append(p.entry.status)
    kinds = [type(e).__name__ for e in entries]
    assert kinds == [
        "SystemMessage",
        "Thinking",
        "ToolUse",
        "SystemMessage",
        "AssistantMessage",
        "TokenUsage",
    ], entries
    assert entries[0].text == "opencode server started at http://127.0.0.1:4096"
    assert entries[1].text == "let me think"
    tool = entries[2]
    assert tool.tool_name == "bash" and tool.action.command == "rm -rf x"
    assert tool.status == DENIED and PENDING_APPROVAL in statuses
    assert entries[3].text == "denied $ rm -rf x: not that"
    assert entries[4].text == "Fine."
    assert entries[5].input_tokens == 10 and entries[5].cache_read_tokens == 2
    assert norm.agent_session_id == SID
