"""Claude stream-json -> entries (captured from claude 2.1.197 against the scripted server), and
the claude command line for each option."""

from __future__ import annotations

from pathlib import Path

import pytest

from aura_core.executors import claude as claude_mod
from aura_core.executors.base import RunMode, RunOptions, RunRequest, SetupRequired
from aura_core.executors.claude import ClaudeExecutor, ClaudeNormalizer
from aura_core.executors.entries import (
    AssistantMessage,
    CommandRun,
    ErrorMessage,
    FileEdit,
    FileRead,
    Generic,
    Raw,
    Search,
    Subtask,
    SystemMessage,
    Thinking,
    Todo,
    TokenUsage,
    ToolUse,
    WebFetch,
    render_text,
)
from tests.executors.parse_util import SHARED_SAMPLES, feed, kinds, lines, run, tools


def test_sample_text_reply() -> None:
    n = ClaudeNormalizer()
    first = n.feed("stdout", lines("claude-sample.jsonl")[0])
    assert n.agent_session_id == "3c4fa536-65b9-4189-b208-ca56a8501b7d"  # from the first line
    assert [p.op for p in first] == ["append"]
    run_rest = feed(n, lines("claude-sample.jsonl")[1:])
    assert run_rest
    assert kinds(n.entries) == ["system_message", "assistant_message", "token_usage"]
    assert n.entries[1] == AssistantMessage("Hello from the fake model!")
    usage = n.entries[2]
    assert isinstance(usage, TokenUsage)
    assert (usage.input_tokens, usage.output_tokens, usage.cost_usd) == (10, 5, 0.000175)
    assert usage.context_window == 1_000_000


def test_sample_tool_use_updated_in_place() -> None:
    n = ClaudeNormalizer()
    patches = run(n, "claude-sample-tooluse.jsonl")
    (tool,) = tools(n.entries)
    assert tool.tool_name == "Bash" and tool.tool_id == "toolu_74b3cf9aecad402ea3a3"
    assert isinstance(tool.action, CommandRun)
    assert tool.action.command == "echo created-by-agent > agent_file.txt && ls"
    assert (tool.status, tool.action.exit_code, tool.action.output) == (
        "success",
        0,
        "agent_file.txt",
    )
    index = n.entries.index(tool)
    assert [p.op for p in patches if p.index == index] == ["append", "replace"]
    assert n.entries[index + 1] == AssistantMessage("Done: created agent_file.txt")
    assert render_text(tool) == "✓ $ echo created-by-agent > agent_file.txt && ls (exit 0)"
    assert n.agent_session_id == "6438d822-4566-4d51-8289-aa2114c1dc54"


@pytest.mark.parametrize("name", ["claude-stream-json.jsonl", "claude-stream-json-tooluse.jsonl"])
def test_shared_samples_parse_like_the_copies(name: str) -> None:
    path = SHARED_SAMPLES / name
    if not path.is_file():
        pytest.skip("shared/reference/samples is not beside this checkout")
    copy = (
        "claude-sample.jsonl"
        if name == "claude-stream-json.jsonl"
        else "claude-sample-tooluse.jsonl"
    )
    a, b = ClaudeNormalizer(), ClaudeNormalizer()
    feed(a, path.read_text().splitlines())
    run(b, copy)
    assert [e.to_dict() for e in a.entries] == [e.to_dict() for e in b.entries]


def test_recorded_tool_session() -> None:
    n = ClaudeNormalizer()
    run(n, "claude-tools.jsonl")
    t = tools(n.entries)
    assert [x.tool_name for x in t] == [
        "Bash",
        "Read",
        "Edit",
        "Bash",
        "Write",
        "Grep",
        "TodoWrite",
    ]
    _, read, edit, failing, write, grep, todo = t
    assert isinstance(read.action, FileRead) and read.action.path.endswith("/a.txt")
    assert isinstance(edit.action, FileEdit) and edit.status == "success"
    assert edit.action.diff is not None and "@@ -1,1 +1,2 @@" in edit.action.diff
    assert edit.action.stats() == (2, 1)  # from claude's structuredPatch
    assert isinstance(failing.action, CommandRun)
    assert (failing.status, failing.action.exit_code) == ("failed", 3)
    assert failing.action.output and "oops" in failing.action.output
    assert isinstance(write.action, FileEdit) and write.action.change == "add"
    assert (grep.status, todo.status) == ("failed", "failed")  # tools absent in that session
    assert isinstance(todo.action, Todo) and todo.action.items[0].status == "completed"
    thinking = [e for e in n.entries if isinstance(e, Thinking)]
    assert thinking == [Thinking("Everything worked.")]
    assert n.entries[-2] == AssistantMessage("All done.")
    usage = n.entries[-1]
    assert isinstance(usage, TokenUsage) and (usage.input_tokens, usage.output_tokens) == (80, 40)
    assert render_text(failing) == "✗ $ echo oops >&2; exit 3 (exit 3)"
    assert render_text(edit).endswith("a.txt (+2 -1)")


def test_partial_messages_stream_in_place() -> None:
    n = ClaudeNormalizer()
    patches = run(n, "claude-partial.jsonl")
    texts = [e for e in n.entries if isinstance(e, AssistantMessage)]
    assert texts == [
        AssistantMessage("Let me make it."),
        AssistantMessage("Done: created agent_file.txt"),
    ]
    first = n.entries.index(texts[0])
    ops = [p.op for p in patches if p.index == first]
    assert ops[0] == "append" and ops.count("replace") >= 2  # grew delta by delta
    assert [e for e in n.entries if isinstance(e, Thinking)] == [Thinking("It worked.")]
    (tool,) = tools(n.entries)
    assert isinstance(tool.action, CommandRun) and tool.status == "success"
    assert tool.action.command.startswith("echo created-by-agent")  # from input_json_delta
    assert n.agent_session_id == "c0e00a6d-d43c-492d-9e81-bfd9b1ebd20c"


def test_denied_tools() -> None:
    n = ClaudeNormalizer()
    run(n, "claude-denied.jsonl")
    status = {t.tool_id: t.status for t in tools(n.entries)}
    assert status["toolu_fake000002"] == "denied"
    assert status["toolu_fake000005"] == "denied"
    assert status["toolu_fake000006"] == "denied"
    assert status["toolu_fake000003"] == "failed"  # the file did not exist: not a denial
    denied = next(t for t in tools(n.entries) if t.tool_id == "toolu_fake000006")
    assert render_text(denied).startswith("⊘ ") and render_text(denied).endswith("[denied]")


def test_not_logged_in_is_setup_required() -> None:
    n = ClaudeNormalizer()
    run(n, "claude-not-logged-in.jsonl")
    errors = [e for e in n.entries if isinstance(e, ErrorMessage)]
    assert errors == [ErrorMessage("Not logged in · Please run /login", "not_logged_in")]
    assert not [e for e in n.entries if isinstance(e, AssistantMessage)]


def test_api_retry_is_a_system_line() -> None:
    n = ClaudeNormalizer()
    run(n, "claude-retry.jsonl")
    assert SystemMessage("API error 401 authentication_failed; retry 1/10") in n.entries


def test_synthetic_session_covers_the_rest() -> None:
    n = ClaudeNormalizer()
    run(n, "claude-synthetic.jsonl")
    by_id = {t.tool_id: t for t in tools(n.entries)}
    todo = by_id["toolu_todo"].action
    assert isinstance(todo, Todo) and [i.status for i in todo.items] == [
        "completed",
        "in_progress",
        "pending",
    ]
    task = by_id["toolu_task"]
    assert isinstance(task.action, Subtask) and task.action.agent == "general-purpose"
    assert task.action.result == "The failing test is test_parse."
    sub = by_id["toolu_sub_bash"]
    assert sub.parent_id == "toolu_task" and sub.status == "timed_out"
    assert "I will grep for it." not in [getattr(e, "text", None) for e in n.entries]
    assert isinstance(by_id["toolu_fetch"].action, WebFetch)
    multi = by_id["toolu_multi"].action
    assert isinstance(multi, FileEdit) and multi.stats() == (3, 2)
    mcp = by_id["toolu_mcp"]
    assert isinstance(mcp.action, Generic) and mcp.status == "denied"
    assert SystemMessage("conversation compacted") in n.entries
    raws = [e for e in n.entries if isinstance(e, Raw)]
    assert len(raws) == 1 and '"brand_new_event"' in raws[0].text  # kept as is
    assert ErrorMessage("claude stopped: it reached the maximum number of turns") in n.entries
    usage = n.entries[-1]
    assert isinstance(usage, TokenUsage)
    assert (usage.cache_read_tokens, usage.cache_write_tokens) == (4000, 300)
    assert (usage.cost_usd, usage.context_window) == (0.0421, 200_000)


def test_glob_and_search_tools() -> None:
    assert claude_mod.claude_action("Grep", {"pattern": "TODO"}) == Search("TODO")
    assert claude_mod.claude_action("WebSearch", {"query": "q"}) == Search("q")
    assert isinstance(claude_mod.claude_action("Unknown", "not a dict"), Generic)


# ---- command line ---------------------------------------------------------------------------


def _req(tmp_path: Path, **kw: object) -> RunRequest:
    fake = tmp_path / "claude"
    if not fake.exists():
        fake.write_text("#!/bin/sh\necho '2.1.197 (Claude Code)'\n")
        fake.chmod(0o755)
    opts = kw.pop("options", RunOptions())
    return RunRequest(
        session_id="s1",
        prompt=str(kw.pop("prompt", "do it")),
        cwd=tmp_path,
        executable=str(fake),
        options=opts,  # type: ignore[arg-type]
        **kw,  # type: ignore[arg-type]
    )


def test_default_launch(tmp_path: Path) -> None:
    spec = ClaudeExecutor().build_launch(_req(tmp_path, prompt="-rf is not a flag"))
    assert spec.argv == [
        str(tmp_path / "claude"),
        "-p",
        "--output-format=stream-json",
        "--verbose",
        "--permission-mode",
        "acceptEdits",
        "--allowedTools=Bash",
        "--",
        "-rf is not a flag",
    ]
    assert spec.warnings == []
    assert spec.env["AURA_PROMPT"] == "-rf is not a flag" and spec.env["AURA_SESSION_ID"] == "s1"
    assert spec.stdin is None


def test_model_resume_params_vars_append(tmp_path: Path) -> None:
    opts = RunOptions(append_prompt="Be brief.", vars={"FOO": "bar"}, params=["--effort", "high"])
    spec = ClaudeExecutor().build_launch(
        _req(tmp_path, model="sonnet", resume_id="abc-123", mode=RunMode.follow_up, options=opts)
    )
    argv = spec.argv
    assert argv[argv.index("--model") + 1] == "sonnet"
    assert argv[argv.index("--resume") + 1] == "abc-123"
    assert argv[-4:] == ["--effort", "high", "--", "do it\n\nBe brief."]
    assert spec.env["FOO"] == "bar"


@pytest.mark.parametrize(
    ("options", "mode", "expect"),
    [
        (RunOptions(force=True), RunMode.initial, "--allowedTools=Bash,Edit"),
        (RunOptions(allow_all_tools=True), RunMode.initial, "--allowedTools=Bash,Edit"),
        (RunOptions(auto_approve=True), RunMode.initial, "--allowedTools=Bash,Edit"),
        (RunOptions(auto_approve=False), RunMode.initial, "plan"),
        (RunOptions(), RunMode.review, "plan"),
    ],
)
def test_permission_levels(tmp_path: Path, options: RunOptions, mode: RunMode, expect: str) -> None:
    argv = ClaudeExecutor().build_launch(_req(tmp_path, options=options, mode=mode)).argv
    assert any(a.startswith(expect) for a in argv), argv
    assert "--dangerously-skip-permissions" not in argv


def test_yolo_sets_is_sandbox_as_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(claude_mod, "running_as_root", lambda: True)
    spec = ClaudeExecutor().build_launch(_req(tmp_path, options=RunOptions(yolo=True)))
    assert "--dangerously-skip-permissions" in spec.argv and "--permission-mode" not in spec.argv
    assert spec.env["IS_SANDBOX"] == "1"
    monkeypatch.setattr(claude_mod, "running_as_root", lambda: False)
    spec = ClaudeExecutor().build_launch(_req(tmp_path, options=RunOptions(yolo=True)))
    assert "IS_SANDBOX" not in spec.env


def test_meaningless_options_warn_once_each(tmp_path: Path) -> None:
    opts = RunOptions(trust=True, openai_endpoint="http://x/v1", refresh_model_cache=True)
    spec = ClaudeExecutor().build_launch(_req(tmp_path, options=opts))
    assert len(spec.warnings) == 3
    assert all("\n" not in w for w in spec.warnings)
    assert any("--trust" in w for w in spec.warnings)
    assert any("--openai-endpoint" in w for w in spec.warnings)


def test_base_command_replaces_the_program(tmp_path: Path) -> None:
    opts = RunOptions(base_command="npx -y @anthropic-ai/claude-code@2.1.197")
    argv = ClaudeExecutor().build_launch(_req(tmp_path, options=opts)).argv
    assert argv[:4] == ["npx", "-y", "@anthropic-ai/claude-code@2.1.197", "-p"]


def test_missing_binary_is_setup_required(tmp_path: Path) -> None:
    req = _req(tmp_path)
    req.executable = str(tmp_path / "nope" / "claude")
    with pytest.raises(SetupRequired, match="npm install -g @anthropic-ai/claude-code"):
        ClaudeExecutor().build_launch(req)


def test_availability(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _req(tmp_path)  # writes the fake binary
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    a = ClaudeExecutor().availability(str(tmp_path / "claude"))
    assert a.found and a.version == "2.1.197" and a.path == str(tmp_path / "claude")
    assert any("ANTHROPIC_API_KEY" in m for m in a.missing)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
    assert ClaudeExecutor().availability(str(tmp_path)).missing == []  # a folder holding it
    gone = ClaudeExecutor().availability(str(tmp_path / "missing"))
    assert not gone.found and gone.missing == ["install: npm install -g @anthropic-ai/claude-code"]


def test_tool_use_entry_round_trips() -> None:
    from aura_core.executors.entries import entry_from_dict

    n = ClaudeNormalizer()
    run(n, "claude-synthetic.jsonl")
    for entry in n.entries:
        assert entry_from_dict(entry.to_dict()) == entry
    assert isinstance(n.entries[0], SystemMessage)
    assert all(isinstance(t, ToolUse) for t in tools(n.entries))
