"""Part 2 executors without running anything: their parsers on real captured output (samples
from the real CLIs and ACP transcripts), the ACP workspace confinement and permission policy,
the chat stream parser, the registry dispatch and `aura doctor`'s availability rows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from aura_core.executors.acp import AcpNormalizer, DualNormalizer, Policy, confine
from aura_core.executors.base import (
    ApprovalDecision,
    ApprovalRequest,
    RunOptions,
    RunRequest,
    SetupRequired,
)
from aura_core.executors.entries import (
    DENIED,
    NOT_LOGGED_IN,
    PENDING_APPROVAL,
    SUCCESS,
    AssistantMessage,
    CommandRun,
    ErrorMessage,
    FileRead,
    SystemMessage,
    Thinking,
    TokenUsage,
    render_text,
)
from aura_core.executors.registry import EXECUTOR_NAMES, get_executor
from tests.executors.parse_util import FIXTURES, feed, lines, replay, run, tools

HELLO = "Hello from the fake model!"
PART2 = ("cursor-agent", "droid", "amp", "opencode", "qwen-code", "copilot", "ollama", "lms")


def texts(entries: list[Any]) -> list[str]:
    return [e.text for e in entries if isinstance(e, AssistantMessage)]


# ---- the CLIs' own formats (samples captured from the real CLIs) -------------------------------


def test_qwen_stream_json() -> None:
    norm = get_executor("qwen-code").normalizer()
    patches = feed(norm, lines("qwen-stream-json.jsonl")) + norm.finish()
    entries = replay(patches)
    assert texts(entries) == [HELLO]
    assert norm.agent_session_id == "2719b056-f29c-4bce-893d-16af40363b93"
    assert any(isinstance(e, TokenUsage) for e in entries)


def test_qwen_shell_tool_and_exit_code() -> None:
    norm = get_executor("qwen-code").normalizer()
    call = {"type": "assistant", "session_id": "s", "message": {"id": "m", "content": [
        {"type": "tool_use", "id": "c1", "name": "run_shell_command",
         "input": {"command": "echo hi > f.txt"}}]}}  # fmt: skip
    result = {"type": "user", "session_id": "s", "message": {"content": [
        {"type": "tool_result", "tool_use_id": "c1", "is_error": False,
         "content": "Command: echo hi\nOutput: (empty)\nExit Code: 3"}]}}  # fmt: skip
    entries = replay(feed(norm, [json.dumps(init_line("s")), json.dumps(call), json.dumps(result)]))
    (tool,) = tools(entries)
    assert isinstance(tool.action, CommandRun) and tool.action.command == "echo hi > f.txt"
    assert tool.status == SUCCESS and tool.action.exit_code == 3


def init_line(sid: str) -> dict[str, Any]:
    return {"type": "system", "subtype": "init", "session_id": sid, "model": "m"}


def test_copilot_json() -> None:
    norm = get_executor("copilot").normalizer()
    patches = feed(norm, lines("copilot-json.jsonl")) + norm.finish()
    entries = replay(patches)
    assert texts(entries) == [HELLO]  # the deltas and the final message are one entry
    assert norm.agent_session_id == "a65f8194-b24a-47fc-b08d-00ed174bc978"
    assert not [e for e in entries if e.kind == "raw"]  # every event understood or skipped


def test_droid_stream_json() -> None:
    norm = get_executor("droid").normalizer()
    entries = replay(run(norm, "droid-exec-stream-json.jsonl"))
    assert texts(entries) == [HELLO]  # the user's prompt is not repeated
    assert norm.agent_session_id == "7bbc3fd3-cd24-44c0-b8be-6e0989a639e7"
    assert isinstance(entries[0], SystemMessage) and "custom:Fake-0" in entries[0].text
    assert isinstance(entries[-1], TokenUsage)


def test_opencode_run_json() -> None:
    norm = get_executor("opencode").normalizer()
    entries = replay(feed(norm, lines("opencode-run-json.jsonl")) + norm.finish())
    assert texts(entries) == [HELLO]
    assert norm.agent_session_id == "ses_decdf2f4effedVmnFaIVFzmLE2"
    assert isinstance(entries[-1], TokenUsage)


def test_opencode_tool_use() -> None:
    norm = get_executor("opencode").normalizer()
    event = {"type": "tool_use", "sessionID": "ses_1", "part": {"type": "tool", "tool": "bash",
             "callID": "c1", "state": {"status": "completed", "input": {"command": "ls"},
             "output": "a\n", "metadata": {"exit": 2}}}}  # fmt: skip
    (tool,) = tools(replay(feed(norm, [json.dumps(event)])))
    assert isinstance(tool.action, CommandRun) and tool.action.exit_code == 2
    assert tool.status == SUCCESS and tool.action.output == "a\n"


@pytest.mark.parametrize("agent", ["qwen", "opencode", "copilot"])
def test_acp_transcripts(agent: str) -> None:
    """The real agents' ACP transcripts (ids as aura sends them): the same executor normaliser
    recognises ACP from the first line."""
    name = {"qwen": "qwen-code"}.get(agent, agent)
    norm = get_executor(name).normalizer()
    assert isinstance(norm, DualNormalizer)
    entries = replay(feed(norm, lines(f"{agent}-acp.jsonl")) + norm.finish())
    assert isinstance(norm.active, AcpNormalizer)
    assert texts(entries) == [HELLO]  # chunks merged into one message
    assert norm.agent_session_id
    assert "over ACP" in render_text(entries[0])


def test_acp_permission_pending_then_denied_with_reason() -> None:
    norm = AcpNormalizer("x")
    call = {"toolCallId": "t1", "title": "rm", "kind": "execute", "rawInput": {"command": "rm x"}}
    msgs = [
        {"jsonrpc": "2.0", "method": "session/update",
         "params": {"update": {"sessionUpdate": "tool_call", **call, "status": "pending"}}},
        {"jsonrpc": "2.0", "id": 7, "method": "session/request_permission",
         "params": {"toolCall": call, "options": [{"optionId": "ok", "kind": "allow_once"},
                                                  {"optionId": "no", "kind": "reject_once"}]}},
    ]  # fmt: skip
    entries = replay(feed(norm, [json.dumps(m) for m in msgs]))
    assert tools(entries)[0].status == PENDING_APPROVAL
    answer = {"jsonrpc": "2.0", "id": 7, "result": {"outcome": {"outcome": "selected",
              "optionId": "no"}, "_meta": {"aura": {"reason": "not now"}}}}  # fmt: skip
    failed = {"jsonrpc": "2.0", "method": "session/update", "params": {"update": {
        "sessionUpdate": "tool_call_update", "toolCallId": "t1", "status": "failed"}}}  # fmt: skip
    feed(norm, [json.dumps(answer), json.dumps(failed)])
    (tool,) = tools(norm.entries)
    assert tool.status == DENIED  # a failure after a denial stays a denial
    assert any("denied $ rm x: not now" in render_text(e) for e in norm.entries)


def test_acp_auth_error_is_setup() -> None:
    norm = AcpNormalizer("droid")
    msgs = [{"jsonrpc": "2.0", "id": "aura-2", "method": "session/new", "params": {}},
            {"jsonrpc": "2.0", "id": "aura-2", "error": {"code": -32000, "message":
             "Authentication required: set a FACTORY_API_KEY environment variable."}}]  # fmt: skip
    (err,) = [e for e in replay(feed(norm, [json.dumps(m) for m in msgs])) if e.kind != "raw"]
    assert isinstance(err, ErrorMessage) and err.setup_required


# ---- cursor-agent and amp: the fake executables' output (their real formats) --------------------


def fake_output(script: str, args: list[str], stdin: str, tmp_path: Path) -> list[str]:
    env = dict(os.environ, FAKE_STATE=str(tmp_path / "state"), FAKE_LOG=str(tmp_path / "log"))
    res = subprocess.run(
        [sys.executable, str(FIXTURES / script), *args],
        input=stdin, capture_output=True, text=True, env=env, check=True,
    )  # fmt: skip
    return res.stdout.splitlines()


def test_cursor_stream_json(tmp_path: Path) -> None:
    out = fake_output("fake_cursor_agent.py", ["-p", "--output-format", "stream-json",
                      "--trust", "--force"], "hello", tmp_path)  # fmt: skip
    norm = get_executor("cursor-agent").normalizer()
    entries = replay(feed(norm, out) + norm.finish())
    assert [e.kind for e in entries] == [
        "system_message", "thinking", "tool_use", "tool_use", "assistant_message", "token_usage"
    ]  # fmt: skip
    assert isinstance(entries[1], Thinking) and entries[1].text == "Let me check."
    shell, read = tools(entries)
    assert isinstance(shell.action, CommandRun) and shell.action.exit_code == 0
    assert shell.status == SUCCESS and isinstance(read.action, FileRead)
    assert norm.agent_session_id and texts(entries)[0].startswith("Cursor heard: hello")


def test_cursor_rejected_shell_is_denied(tmp_path: Path) -> None:
    out = fake_output("fake_cursor_agent.py", ["-p", "--output-format", "stream-json",
                      "--trust"], "hello", tmp_path)  # fmt: skip
    norm = get_executor("cursor-agent").normalizer()
    assert tools(replay(feed(norm, out)))[0].status == DENIED


def test_amp_stream_json(tmp_path: Path) -> None:
    out = fake_output("fake_amp.py", ["--execute", "--stream-json"], "hi amp", tmp_path)
    norm = get_executor("amp").normalizer()
    entries = replay(feed(norm, out) + norm.finish())
    (tool,) = tools(entries)
    assert isinstance(tool.action, CommandRun) and tool.action.command == "git status"
    assert tool.status == DENIED  # rejected without amp.dangerouslyAllowAll
    assert texts(entries) == ["Amp heard: hi amp (turn 1)"]
    assert norm.agent_session_id and norm.agent_session_id.startswith("T-")


# ---- ACP confinement and policy ---------------------------------------------------------------


def test_confine(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    (root / "sub").mkdir(parents=True)
    (tmp_path / "secret").write_text("s")
    (root / "out").symlink_to(tmp_path / "secret")
    (root / "outdir").symlink_to(tmp_path)
    (root / "in").symlink_to(root / "sub")
    assert confine(root, str(root / "sub" / "new.txt")) == (root / "sub" / "new.txt").resolve()
    assert confine(root, "sub/a.txt") == (root / "sub" / "a.txt").resolve()
    assert confine(root, str(root / "in" / "x")) == (root / "sub" / "x").resolve()
    for bad in (
        str(tmp_path / "secret"),  # absolute, outside
        str(root / "sub" / ".." / ".." / "secret"),  # `..`
        "../secret",
        str(root / "out"),  # a symlink leading out
        str(root / "outdir" / "secret"),  # through a symlinked folder
        "/etc/passwd",
        "",
    ):
        with pytest.raises(PermissionError):
            confine(root, bad)


def permission_params() -> dict[str, Any]:
    return {
        "toolCall": {"toolCallId": "t", "title": "x", "kind": "edit", "rawInput": {}},
        "options": [
            {"optionId": "a1", "kind": "allow_once"},
            {"optionId": "a2", "kind": "allow_always"},
            {"optionId": "r1", "kind": "reject_once"},
        ],
    }


def test_policy() -> None:
    def chosen(policy: Policy) -> Any:
        return policy.decide(permission_params())["outcome"].get("optionId")

    assert chosen(Policy(approver=None, allow=True)) == "a1"
    refused = Policy(approver=None, allow=False).decide(permission_params())
    assert refused["outcome"]["optionId"] == "r1" and refused["_meta"]["aura"]["reason"]
    seen: list[ApprovalRequest] = []

    def approver(decision: ApprovalDecision) -> Any:
        return lambda req: seen.append(req) or decision

    assert chosen(Policy(approver=approver(ApprovalDecision(True)), allow=False)) == "a1"
    always = approver(ApprovalDecision(True, always=True))
    assert chosen(Policy(approver=always, allow=False)) == "a2"
    no = Policy(approver=approver(ApprovalDecision(False, "why")), allow=True)
    assert no.decide(permission_params())["_meta"]["aura"]["reason"] == "why"
    assert seen[0].options == ["allow_once", "allow_always", "reject_once"]

    def broken(req: ApprovalRequest) -> ApprovalDecision:
        raise RuntimeError("tty gone")

    assert chosen(Policy(approver=broken, allow=True)) == "r1"  # never approve on a failure


# ---- the chat stream ----------------------------------------------------------------------------


def chunk(**delta: Any) -> str:
    return json.dumps({"choices": [{"index": 0, "delta": delta}]})


def test_chat_think_tags_across_chunks() -> None:
    norm = get_executor("ollama").normalizer()
    request = {"type": "aura.request", "session": "s1", "url": "u", "model": "m", "history": 0}
    parts = ["<thi", "nk>plan ", "it</th", "ink>\n\nThe ", "answer", "."]
    out = [json.dumps(request), *[chunk(content=p) for p in parts]]
    out += [json.dumps({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2}})]
    entries = replay(feed(norm, [*out, "[DONE]"]) + norm.finish())
    assert [e.kind for e in entries] == ["system_message", "thinking", "assistant_message",
                                         "token_usage"]  # fmt: skip
    assert entries[1].text == "plan it" and entries[2].text == "The answer."  # type: ignore[union-attr]
    assert norm.agent_session_id == "s1"


def test_chat_reasoning_field_and_json_body() -> None:
    norm = get_executor("lms").normalizer()
    body = {"choices": [{"message": {"role": "assistant", "content": "Whole.",
                                     "reasoning_content": "hmm"}}], "usage": {}}  # fmt: skip
    entries = replay(feed(norm, [chunk(reasoning_content="a"), chunk(reasoning_content="b"),
                                 chunk(content="x"), json.dumps(body)]))  # fmt: skip
    assert [(e.kind, e.text) for e in entries] == [  # type: ignore[union-attr]
        ("thinking", "ab"), ("assistant_message", "x"), ("thinking", "hmm"),
        ("assistant_message", "Whole."),
    ]  # fmt: skip


def test_chat_http_401_is_setup() -> None:
    norm = get_executor("lms").normalizer()
    err = {"type": "aura.error", "status": 401, "message": "Invalid API key"}
    (entry,) = replay(feed(norm, [json.dumps(err)]))
    assert isinstance(entry, ErrorMessage) and entry.setup_required == "no_api_key"
    err = {"type": "aura.error", "status": 403, "message": "forbidden"}
    feed(norm, [json.dumps(err)])
    last = norm.entries[-1]
    assert isinstance(last, ErrorMessage) and last.setup_required == NOT_LOGGED_IN


# ---- registry, doctor ---------------------------------------------------------------------------


def test_every_name_resolves_and_custom_dispatch() -> None:
    for name in EXECUTOR_NAMES:
        executor = get_executor(name)
        assert executor.name == name
        assert executor.normalizer() is not None or name == "custom"
    assert type(get_executor("custom")).__name__ == "CommandExecutor"
    assert type(get_executor("custom", RunOptions(base_command="sh"))).__name__ == (
        "CommandExecutor"
    )
    endpoint = get_executor("custom", RunOptions(openai_endpoint="http://127.0.0.1:9/v1"))
    assert type(endpoint).__name__ == "CustomEndpointExecutor"


@pytest.mark.parametrize("name", PART2)
def test_availability_when_missing(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setenv("OLLAMA_HOST", "127.0.0.1:9")  # nothing listens on port 9
    monkeypatch.setenv("LMS_BASE_URL", "http://127.0.0.1:9/v1")
    row = get_executor(name).availability()
    assert not row.found and row.missing and "install" in row.missing[0]


def test_availability_of_a_present_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "droid"
    fake.write_text("#!/bin/sh\necho 0.225.2\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("FACTORY_API_KEY", raising=False)
    row = get_executor("droid").availability()
    assert row.found and row.version == "0.225.2" and row.path == str(fake)
    assert row.missing and "FACTORY_API_KEY" in row.missing[0]  # no key, no login, no models
    # a login saved by `droid` (its encrypted file needs its key beside it) counts
    factory = Path.home() / ".factory"
    factory.mkdir(exist_ok=True)
    (factory / "auth.v2.file").write_text("x")
    assert get_executor("droid").availability().missing
    (factory / "auth.v2.key").write_text("k")
    assert not get_executor("droid").availability().missing


def test_custom_endpoint_without_url_is_a_clear_error(tmp_path: Path) -> None:
    executor = get_executor("custom", RunOptions())
    request = RunRequest(session_id="s", prompt="hi", cwd=tmp_path)
    with pytest.raises(SetupRequired, match="--openai-endpoint"):
        executor.start(request)


@pytest.mark.parametrize("name", ["droid", "amp", "cursor-agent", "gemini"])
def test_supervised_mode_says_when_an_agent_cannot_ask(name: str, tmp_path: Path) -> None:
    def never(request: ApprovalRequest) -> ApprovalDecision:
        raise AssertionError("nothing to ask")

    options = RunOptions(auto_approve=False, approver=never)
    executor: Any = get_executor(name, options)
    request = RunRequest(
        session_id="s", prompt="hi", cwd=tmp_path, executable="/bin/true", options=options
    )
    spec = executor.build_launch(request)
    assert any("cannot ask before a tool runs" in w for w in spec.warnings), spec.warnings
    # and the run is read-only: no flag that lets it edit or run unasked
    assert not {"--yolo", "--force", "--dangerously-allow-all", "--auto"} & set(spec.argv)
