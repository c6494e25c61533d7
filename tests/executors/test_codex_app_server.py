"""codex in supervised mode over `codex app-server` (JSON-RPC on its stdio), verified against
@openai/codex 0.169.0: the recorded transcript parses into entries (reply, approved command,
denied command with its reason, thread id), and the real CLI, driven through `aura run` on a TTY
against the scripted model server, asks the person before running a command, honours a denial,
and resumes the same thread with `--resume-latest`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pexpect
import pytest

from aura_core.executors.base import ApprovalDecision, ApprovalRequest, RunOptions, RunRequest
from aura_core.executors.codex import CodexExecutor, CodexNormalizer
from aura_core.executors.codex_app_server import (
    CodexAppServerNormalizer,
    Decider,
    policy_of,
    wants_app_server,
)
from aura_core.executors.entries import (
    DENIED,
    PENDING_APPROVAL,
    SUCCESS,
    AssistantMessage,
    CommandRun,
    SystemMessage,
    Thinking,
    TokenUsage,
    render_text,
)
from tests.executors.parse_util import feed, lines, run, tools
from tests.executors.test_real_clis import aura, latest
from tests.support import fixtures
from tests.support.fixtures import agent_binary, missing_clis, offline_env, offline_model
from tests.support.model_server import ModelServer, Shell, Text

make_model_server = fixtures.make_model_server

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = "codex-app-server.jsonl"
THREAD = "01a213bd-4c95-7e90-9504-cdc19c92e920"


# ---- the recorded transcript --------------------------------------------------------------


def recorded() -> CodexAppServerNormalizer:
    n = CodexAppServerNormalizer()
    run(n, FIXTURE)
    return n


def test_recorded_transcript_entries() -> None:
    n = recorded()
    assert n.agent_session_id == THREAD
    text = "\n".join(render_text(e) for e in n.entries)
    assert "-- codex 0.169.0 over app-server" in text
    assert AssistantMessage("Creating the file.") in n.entries
    assert AssistantMessage("Done: created agent_file.txt") in n.entries
    assert Thinking("The command worked.") in n.entries
    first, second = tools(n.entries)
    assert isinstance(first.action, CommandRun) and isinstance(second.action, CommandRun)
    assert first.action.command == "echo created-by-agent > agent_file.txt"  # unwrapped
    assert (first.status, first.action.exit_code) == (SUCCESS, 0)
    assert second.action.command == "echo nope > denied.txt"
    assert second.status == DENIED
    assert "⊘ $ echo nope > denied.txt [denied]" in text
    assert "-- denied $ echo nope > denied.txt: no shell today" in text
    usage = [e for e in n.entries if isinstance(e, TokenUsage)]
    assert len(usage) == 1 and usage[0].input_tokens and usage[0].output_tokens
    # nothing unknown leaks out as raw lines
    assert {e.kind for e in n.entries} <= {
        "system_message", "assistant_message", "thinking", "tool_use", "token_usage"
    }  # fmt: skip


def test_approval_request_marks_the_tool_pending_then_the_answer_decides() -> None:
    raw = lines(FIXTURE)
    asked = next(i for i, ln in enumerate(raw) if "requestApproval" in ln and '"echo nope' in ln)
    n = CodexAppServerNormalizer()
    feed(n, raw[: asked + 1])
    pending = tools(n.entries)[-1]
    assert pending.status == PENDING_APPROVAL
    assert render_text(pending).endswith("[pending approval]")
    feed(n, raw[asked + 1 :])
    assert pending.status == DENIED


def test_exec_sessions_still_parse_with_the_codex_normalizer() -> None:
    executor = CodexExecutor()
    n = executor.normalizer()
    assert isinstance(n, CodexNormalizer)
    run(n, "codex-sample-tooluse.jsonl")  # type: ignore[arg-type]
    old = CodexNormalizer()
    run(old, "codex-sample-tooluse.jsonl")
    assert n.entries == old.entries  # type: ignore[attr-defined]
    assert n.agent_session_id == old.agent_session_id


def test_aura_system_lines_and_failed_turns() -> None:
    n = CodexAppServerNormalizer()
    feed(n, ["codex app-server: the agent's input is closed"], stream="system")
    err = {"error": {"message": "boom", "additionalDetails": None}, "willRetry": False}
    feed(n, [json.dumps({"method": "error", "params": err})])
    turn = {"threadId": "t", "turn": {"id": "u", "status": "failed", "error": {"message": "boom"}}}
    feed(n, [json.dumps({"method": "turn/completed", "params": turn})])
    assert isinstance(n.entries[0], SystemMessage)
    assert [render_text(e) for e in n.entries[1:]] == ["error: boom"]  # said once


def test_app_server_tracing_that_repeats_a_message_is_dropped() -> None:
    line = "\x1b[2m2026-11-25T17:25:03Z\x1b[0m ERROR codex_core::tools::router: error=exec_command "
    line += 'failed: CreateProcess { message: "Rejected(\\"rejected by user\\")" }'
    n = CodexAppServerNormalizer()
    feed(n, lines(FIXTURE)[:1])
    feed(n, [line], stream="stderr")
    assert not n.entries or "rejected" not in render_text(n.entries[-1])
    exec_run = CodexAppServerNormalizer()  # an exec session keeps showing its stderr
    feed(exec_run, [line], stream="stderr")
    assert "rejected by user" in render_text(exec_run.entries[-1])


# ---- policy -------------------------------------------------------------------------------


def req(**options: Any) -> RunRequest:
    return RunRequest("s", "p", Path("/tmp"), options=RunOptions(**options))


def test_transport_choice_and_policy() -> None:
    supervised = req(auto_approve=False, approver=lambda r: ApprovalDecision(True))
    assert wants_app_server(supervised)
    assert policy_of(supervised) == ("untrusted", "workspace-write")
    assert not wants_app_server(req(auto_approve=False))  # read-only exec
    assert not wants_app_server(req())
    chosen = req(vars={"AURA_TRANSPORT": "app-server"})
    assert wants_app_server(chosen) and policy_of(chosen) == ("never", "workspace-write")
    assert policy_of(req(yolo=True, vars={"AURA_TRANSPORT": "app-server"}))[1] == (
        "danger-full-access"
    )
    forced = req(auto_approve=False, approver=lambda r: ApprovalDecision(True),
                 vars={"AURA_TRANSPORT": "exec"})  # fmt: skip
    assert not wants_app_server(forced)


def test_decider_answers() -> None:
    seen: list[ApprovalRequest] = []

    def person(decision: ApprovalDecision) -> Decider:
        def ask(r: ApprovalRequest) -> ApprovalDecision:
            seen.append(r)
            return decision

        return Decider(approver=ask, allow=False)

    params = {"itemId": "c1", "command": "/bin/bash -lc 'rm -rf build'"}
    method = "item/commandExecution/requestApproval"
    assert person(ApprovalDecision(True)).decide(method, params, {}) == {"decision": "accept"}
    assert seen[-1].title == "$ rm -rf build" and seen[-1].tool_name == "shell"
    always = person(ApprovalDecision(True, always=True)).decide(method, params, {})
    assert always == {"decision": "acceptForSession"}
    no = person(ApprovalDecision(False, "not now")).decide(method, params, {})
    assert no == {"decision": "decline", "_meta": {"aura": {"reason": "not now"}}}
    item = {"c2": {"type": "fileChange", "changes": [{"path": "a.py"}]}}
    person(ApprovalDecision(True)).decide("item/fileChange/requestApproval", {"itemId": "c2"}, item)
    assert seen[-1].title == "edit a.py"
    legacy = person(ApprovalDecision(False, "why")).decide("execCommandApproval", params, {})
    assert legacy == {
        "decision": {"denied": {"rejection": "why"}},
        "_meta": {"aura": {"reason": "why"}},
    }
    nobody = Decider(approver=None, allow=False).decide(method, params, {})
    assert nobody["decision"] == "decline"


# ---- the real CLI -----------------------------------------------------------------------------


def require() -> None:
    if not missing_clis(("codex",)):
        return
    msg = f"codex CLI not installed at {agent_binary('codex')}: run scripts/install-agent-clis.sh"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(msg)
    pytest.skip(msg)


def git_repo(path: Path) -> Path:
    path.mkdir()
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    (path / "README.md").write_text("hello\n")
    return path


def codex_env(server: ModelServer, home: Path) -> dict[str, str]:
    env = dict(os.environ)  # HOME, XDG_* and AURA_HOME are temporary (tests/conftest.py)
    assert env["HOME"] == str(home)
    env.pop("OPENAI_API_KEY", None)
    env.update(offline_env("codex", server, home))
    return env


def agent_args() -> list[str]:
    return ["--executor-path", f"codex={agent_binary('codex')}", "--model",
            offline_model("codex") or "fake-model"]  # fmt: skip


def supervised(env: dict[str, str], *args: str) -> pexpect.spawn:
    return pexpect.spawn(
        sys.executable,
        ["-m", "aura_tui", "run", "--auto-approve", "false", "--no-tui", *args],
        env=env, cwd=str(ROOT), encoding="utf-8", timeout=120, dimensions=(40, 200),
    )  # fmt: skip


def finish(child: pexpect.spawn) -> str:
    try:
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    return str(child.before)


@pytest.mark.realcli
def test_supervised_approve_then_deny_then_resume(
    make_model_server: Any, isolated_home: Path, tmp_path: Path
) -> None:
    require()
    server: ModelServer = make_model_server(
        [
            Shell("echo created-by-agent > agent_file.txt", text="Creating the file."),
            Text("Done: created agent_file.txt", thinking="The command worked."),
        ]
    )
    repo = git_repo(tmp_path / "repo")
    env = codex_env(server, isolated_home)

    # (a) approve: the command runs in the repo
    child = supervised(env, "-e", "codex", "-p", "please create agent_file.txt",
                       "--cwd", str(repo), *agent_args())  # fmt: skip
    child.expect(r"\? codex asks to use shell: \$ echo created-by-agent > agent_file\.txt")
    child.sendline("y")
    out = finish(child)
    assert child.exitstatus == 0, out
    assert (repo / "agent_file.txt").read_text() == "created-by-agent\n"
    assert "Done: created agent_file.txt" in out
    first = latest(env)
    assert first["status"] == "completed" and first["executor"] == "codex"
    thread = first["agent_session_id"]
    assert thread and len(thread) >= 32
    shown = aura(env, "session", "latest").stdout
    assert "✓ $ echo created-by-agent > agent_file.txt (exit 0)" in shown, shown
    raw = aura(env, "session", "latest", "--raw").stdout
    assert '"method":"item/commandExecution/requestApproval"' in raw
    assert '"decision":"accept"' in raw

    # (b) resume the same thread, and deny with a reason: nothing is created
    server.add(Shell("echo nope > denied.txt"), Text("All right, I did not run it."))
    child = supervised(env, "--resume-latest", "-p", "now the second step", *agent_args())
    child.expect(r"\? codex asks to use shell: \$ echo nope > denied\.txt")
    child.sendline("n no shell today")
    out = finish(child)
    assert child.exitstatus == 0, out
    assert not (repo / "denied.txt").exists()
    assert "All right, I did not run it." in out
    follow = latest(env)
    assert follow["parent_id"] == first["id"]
    assert follow["agent_session_id"] == thread  # thread/resume kept the thread
    shown = aura(env, "session", "latest").stdout
    assert "⊘ $ echo nope > denied.txt [denied]" in shown, shown
    assert "denied $ echo nope > denied.txt: no shell today" in shown, shown
    # (c) the resumed turn sent the earlier conversation back to the model
    resumed = [r for r in server.main_requests() if "now the second step" in r.text()]
    assert resumed
    assert "please create agent_file.txt" in resumed[0].text()
    assert "Done: created agent_file.txt" in resumed[0].text()
    assert "rejected" in server.main_requests()[-1].text()  # codex told the model


@pytest.mark.realcli
def test_app_server_transport_without_supervision(
    make_model_server: Any, isolated_home: Path, tmp_path: Path
) -> None:
    """`--var AURA_TRANSPORT=app-server`: no questions (policy never), the command just runs."""
    require()
    server: ModelServer = make_model_server([Shell("echo hi > made.txt"), Text("Made it.")])
    repo = git_repo(tmp_path / "repo")
    env = codex_env(server, isolated_home)
    res = aura(env, "run", "-e", "codex", "-p", "make it", "--cwd", str(repo), "--no-tui",
               "--var", "AURA_TRANSPORT=app-server", *agent_args())  # fmt: skip
    assert res.returncode == 0, f"stdout:\n{res.stdout}\nstderr:\n{res.stderr}"
    assert (repo / "made.txt").read_text() == "hi\n"
    assert "Made it." in res.stdout
    tool_lines = [ln for ln in res.stdout.splitlines() if "echo hi > made.txt" in ln]
    assert len(tool_lines) == 1 and tool_lines[0].startswith("✓ $ "), res.stdout
    assert "codex 0.169.0 over app-server" in res.stdout
    assert latest(env)["agent_session_id"]
