"""gemini stream-json -> entries (captured from gemini-cli 0.61.0 against the scripted server),
its stderr, and the gemini command line for each option."""

from __future__ import annotations

from pathlib import Path

import pytest

from aura_core.executors.base import RunMode, RunOptions, RunRequest
from aura_core.executors.entries import (
    AssistantMessage,
    CommandRun,
    ErrorMessage,
    FileEdit,
    FileRead,
    Generic,
    Raw,
    Search,
    SystemMessage,
    Todo,
    TokenUsage,
    UserMessage,
    WebFetch,
)
from aura_core.executors.gemini import GeminiExecutor, GeminiNormalizer
from tests.executors.parse_util import SHARED_SAMPLES, feed, kinds, lines, run, tools


def test_sample_deltas_make_one_message() -> None:
    n = GeminiNormalizer()
    feed(n, lines("gemini-sample.jsonl")[:1])
    assert n.agent_session_id == "4c07e6ee-efd6-409e-86d1-f54ea858b9ba"
    n = GeminiNormalizer()
    patches = run(n, "gemini-sample.jsonl")
    assert kinds(n.entries) == [
        "system_message",
        "user_message",
        "assistant_message",
        "token_usage",
    ]
    assert n.entries[1] == UserMessage("say hi")
    assert n.entries[2] == AssistantMessage("Hello from the fake model!")
    assert [p.op for p in patches if p.index == 2] == ["append", "replace"]
    assert n.entries[3] == TokenUsage(10, 5, 0, None, None, 15, None, None, "gemini-2.5-flash")


def test_shared_sample_parses_like_the_copy() -> None:
    path = SHARED_SAMPLES / "gemini-stream-json.jsonl"
    if not path.is_file():
        pytest.skip("shared/reference/samples is not beside this checkout")
    a, b = GeminiNormalizer(), GeminiNormalizer()
    feed(a, path.read_text().splitlines())
    run(b, "gemini-sample.jsonl")
    assert [e.to_dict() for e in a.entries] == [e.to_dict() for e in b.entries]


def test_recorded_tools() -> None:
    n = GeminiNormalizer()
    patches = run(n, "gemini-tools.jsonl")
    t = tools(n.entries)
    names = ["run_shell_command", "run_shell_command", "read_file", "replace", "write_file"]
    assert [x.tool_name for x in t] == names
    assert all(x.status == "success" for x in t)
    shell = t[0].action
    assert isinstance(shell, CommandRun) and shell.output == "a.txt\nagent_file.txt"
    assert shell.exit_code is None  # gemini does not report it on success
    assert isinstance(t[2].action, FileRead)
    edit = t[3].action
    assert isinstance(edit, FileEdit) and edit.stats() == (2, 1)
    assert isinstance(t[4].action, FileEdit) and t[4].action.change == "add"
    for x in t:
        assert [p.op for p in patches if p.index == n.entries.index(x)] == ["append", "replace"]
    texts = [e for e in n.entries if isinstance(e, AssistantMessage)]
    assert texts == [
        AssistantMessage("Let me make it."),
        AssistantMessage("Done: created agent_file.txt"),
    ]
    assert n.entries[-1] == TokenUsage(60, 30, 0, None, None, 90, None, None, "gemini-2.5-flash")


def test_api_error_result() -> None:
    n = GeminiNormalizer()
    run(n, "gemini-api-error.jsonl")
    (err,) = [e for e in n.entries if isinstance(e, ErrorMessage)]
    assert "API key not valid" in err.text and err.setup_required == "not_logged_in"
    assert not [e for e in n.entries if isinstance(e, TokenUsage)]  # nothing spent


def test_synthetic_events() -> None:
    n = GeminiNormalizer()
    run(n, "gemini-synthetic.jsonl")
    by_id = {x.tool_id: x for x in tools(n.entries)}
    todo = by_id["write_todos_1"].action
    assert isinstance(todo, Todo) and [i.text for i in todo.items] == ["Find bug", "Fix bug"]
    assert by_id["run_shell_command_2"].status == "denied"
    make = by_id["run_shell_command_3"]
    assert make.status == "failed" and make.action == CommandRun(
        "make test", 2, "Command: make test\nStdout: boom\nExit Code: 2"
    )
    assert by_id["google_web_search_4"].action == Search("gemini cli stream-json")
    assert by_id["web_fetch_5"].action == WebFetch("https://example.com/page")
    custom = by_id["mcp_custom_tool_6"].action
    assert isinstance(custom, Generic) and custom.result == "custom done"
    assert SystemMessage("warning: Loop detected, stopping execution") in n.entries
    assert ErrorMessage("Maximum session turns exceeded") in n.entries
    raws = [e for e in n.entries if isinstance(e, Raw)]
    assert len(raws) == 1 and '"brand_new_event"' in raws[0].text
    assert AssistantMessage("Looking at the code.") in n.entries
    assert AssistantMessage("Done.") in n.entries


def test_stderr_noise_dropped_and_errors_merged() -> None:
    n = GeminiNormalizer()
    feed(n, lines("gemini-no-key.stderr"), "stderr")
    assert len(n.entries) == 1
    err = n.entries[0]
    assert isinstance(err, ErrorMessage) and err.setup_required == "no_api_key"
    assert err.text.count("\n") == 1  # the two lines, one entry
    n = GeminiNormalizer()
    feed(n, lines("gemini-api-error.stderr"), "stderr")
    (err,) = n.entries  # banner and [STARTUP] lines dropped; the stack trace kept together
    assert isinstance(err, ErrorMessage) and err.text.startswith("Error when talking to Gemini API")
    assert "status: 401" in err.text


def test_stdout_resets_stderr_merging() -> None:
    n = GeminiNormalizer()
    n.feed("stderr", "some note")
    n.feed("stdout", lines("gemini-sample.jsonl")[0])
    n.feed("stderr", "another note")
    assert [type(e).__name__ for e in n.entries] == ["SystemMessage"] * 3


# ---- command line ---------------------------------------------------------------------------


def _req(tmp_path: Path, **kw: object) -> RunRequest:
    fake = tmp_path / "gemini"
    if not fake.exists():
        fake.write_text("#!/bin/sh\necho 0.61.0\n")
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
    spec = GeminiExecutor().build_launch(_req(tmp_path, prompt="-y means yes"))
    assert spec.argv == [
        str(tmp_path / "gemini"),
        "-o",
        "stream-json",
        "--skip-trust",
        "--approval-mode",
        "auto_edit",
        "--allowed-tools=run_shell_command",
        "--prompt=-y means yes",
    ]
    assert spec.warnings == []


def test_model_resume(tmp_path: Path) -> None:
    argv = (
        GeminiExecutor()
        .build_launch(
            _req(tmp_path, model="gemini-2.5-pro", resume_id="sid", mode=RunMode.follow_up)
        )
        .argv
    )
    assert argv[argv.index("-m") + 1] == "gemini-2.5-pro"
    assert argv[argv.index("--resume") + 1] == "sid"
    assert argv[-1] == "--prompt=do it"


@pytest.mark.parametrize(
    ("options", "mode", "approval"),
    [
        (RunOptions(yolo=True), RunMode.initial, "yolo"),
        (RunOptions(force=True), RunMode.initial, "yolo"),
        (RunOptions(auto_approve=True), RunMode.initial, "yolo"),
        (RunOptions(auto_approve=False), RunMode.initial, "default"),
        (RunOptions(), RunMode.review, "default"),
        (RunOptions(trust=True), RunMode.initial, "auto_edit"),
    ],
)
def test_permission_levels(
    tmp_path: Path, options: RunOptions, mode: RunMode, approval: str
) -> None:
    spec = GeminiExecutor().build_launch(_req(tmp_path, options=options, mode=mode))
    assert spec.argv[spec.argv.index("--approval-mode") + 1] == approval
    assert ("--allowed-tools=run_shell_command" in spec.argv) == (approval == "auto_edit")
    assert spec.warnings == []  # --trust is always on for headless gemini


def test_warnings_and_vars(tmp_path: Path) -> None:
    opts = RunOptions(openai_endpoint="http://x", vars={"GEMINI_API_KEY": "k"})
    spec = GeminiExecutor().build_launch(_req(tmp_path, options=opts))
    assert spec.warnings == ["--openai-endpoint means nothing to gemini; ignored"]
    assert spec.env["GEMINI_API_KEY"] == "k"


def test_availability(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _req(tmp_path)
    for var in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "GOOGLE_GENAI_USE_VERTEXAI"):
        monkeypatch.delenv(var, raising=False)
    a = GeminiExecutor().availability(str(tmp_path / "gemini"))
    assert a.found and a.version == "0.61.0" and any("GEMINI_API_KEY" in m for m in a.missing)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert GeminiExecutor().availability().path == str(tmp_path / "gemini")
