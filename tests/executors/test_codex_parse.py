"""`codex exec --json` -> entries (captured from codex 0.169.0 against the scripted server), and
the codex command line for each option."""

from __future__ import annotations

from pathlib import Path

import pytest

from aura_core.executors.base import RunMode, RunOptions, RunRequest
from aura_core.executors.codex import CodexExecutor, CodexNormalizer, unwrap_shell
from aura_core.executors.entries import (
    AssistantMessage,
    CommandRun,
    ErrorMessage,
    FileEdit,
    Generic,
    Raw,
    Search,
    SystemMessage,
    Thinking,
    Todo,
    TokenUsage,
    render_text,
)
from tests.executors.parse_util import SHARED_SAMPLES, feed, kinds, lines, run, tools

THREAD = "01a21309-5d23-76e2-bfb8-c033b4335991"


def test_sample_text_reply() -> None:
    n = CodexNormalizer()
    feed(n, lines("codex-sample.jsonl")[:1])
    assert n.agent_session_id == "01a21307-95fc-7991-b0c6-38b7b76ab1fe"
    run(n, "codex-sample.jsonl")
    assert kinds(n.entries) == ["system_message", "assistant_message", "token_usage"]
    assert n.entries[0].text.startswith("warning: Model metadata")  # type: ignore[union-attr]
    assert n.entries[1] == AssistantMessage("Hello from the fake model!")
    assert n.entries[2] == TokenUsage(10, 5, 0, 0, 0, 15)


def test_sample_tool_use_updated_in_place() -> None:
    n = CodexNormalizer()
    patches = run(n, "codex-sample-tooluse.jsonl")
    assert n.agent_session_id == THREAD
    (tool,) = tools(n.entries)
    assert isinstance(tool.action, CommandRun)
    assert tool.action.command == "echo created-by-agent > agent_file.txt && ls"  # unwrapped
    assert (tool.status, tool.action.exit_code) == ("success", 0)
    assert tool.action.output is not None and "agent_file.txt" in tool.action.output
    index = n.entries.index(tool)
    assert [p.op for p in patches if p.index == index] == ["append", "replace"]
    assert n.entries[index + 1] == AssistantMessage("Done: created agent_file.txt")


@pytest.mark.parametrize(
    ("shared", "copy"),
    [
        ("codex-exec-json.jsonl", "codex-sample.jsonl"),
        ("codex-exec-json-tooluse.jsonl", "codex-sample-tooluse.jsonl"),
    ],
)
def test_shared_samples_parse_like_the_copies(shared: str, copy: str) -> None:
    path = SHARED_SAMPLES / shared
    if not path.is_file():
        pytest.skip("shared/reference/samples is not beside this checkout")
    a, b = CodexNormalizer(), CodexNormalizer()
    feed(a, path.read_text().splitlines())
    run(b, copy)
    assert [e.to_dict() for e in a.entries] == [e.to_dict() for e in b.entries]


def test_recorded_tools_with_failure_and_reasoning() -> None:
    n = CodexNormalizer()
    run(n, "codex-tools.jsonl")
    ok, failed = tools(n.entries)
    assert isinstance(failed.action, CommandRun)
    assert (failed.status, failed.action.exit_code, failed.action.output) == ("failed", 3, "oops\n")
    assert render_text(failed) == "✗ $ echo oops >&2; exit 3 (exit 3)"
    assert render_text(ok) == "✓ $ echo created-by-agent > agent_file.txt && ls (exit 0)"
    assert Thinking("It worked.") in n.entries
    assert n.entries[-1] == TokenUsage(30, 15, 0, 0, 0, 45)


def test_file_changes_one_entry_per_file() -> None:
    n = CodexNormalizer()
    run(n, "codex-file-change.jsonl")
    changes = tools(n.entries)
    assert [(t.action.path.rsplit("/", 1)[-1], t.action.change, t.status) for t in changes] == [  # type: ignore[union-attr]
        ("a.txt", "update", "success"),
        ("hello.txt", "add", "success"),
    ]
    assert all(isinstance(t.action, FileEdit) for t in changes)
    assert render_text(changes[1]).startswith("✓ create /")


def test_missing_key_and_bad_key_are_setup_errors() -> None:
    n = CodexNormalizer()
    run(n, "codex-missing-key.jsonl")
    errors = [e for e in n.entries if isinstance(e, ErrorMessage)]
    assert errors == [ErrorMessage("Missing environment variable: `FAKE_API_KEY`.", "no_api_key")]
    n = CodexNormalizer()
    run(n, "codex-401.jsonl")
    (err,) = [e for e in n.entries if isinstance(e, ErrorMessage)]
    assert err.setup_required == "not_logged_in" and "401" in err.text


def test_synthetic_items() -> None:
    n = CodexNormalizer()
    run(n, "codex-synthetic.jsonl")
    by_id = {t.tool_id: t for t in tools(n.entries)}
    todo = by_id["item_1"]
    assert isinstance(todo.action, Todo) and todo.status == "success"
    assert [i.status for i in todo.action.items] == ["completed", "completed"]  # updated twice
    assert n.entries.index(todo) < n.entries.index(by_id["item_2"])  # kept its place
    ls = by_id["item_2"].action
    assert isinstance(ls, CommandRun) and ls.command == "ls"
    search = by_id["item_3"]
    assert isinstance(search.action, Generic) and search.action.result == "found 3 pages"
    fetch = by_id["item_4"]
    assert fetch.status == "failed" and fetch.action.result == "error: page not found"  # type: ignore[union-attr]
    assert by_id["item_5"].action == Search("python json streaming parser")
    assert by_id["item_6"].status == "denied"
    assert [by_id[f"item_7#{i}"].status for i in (0, 1)] == ["failed", "failed"]
    raws = [e for e in n.entries if isinstance(e, Raw)]
    assert len(raws) == 1 and '"collab_tool_call"' in raws[0].text
    assert AssistantMessage("All fixed.") in n.entries
    usage = next(e for e in n.entries if isinstance(e, TokenUsage))
    assert (usage.cache_read_tokens, usage.reasoning_tokens) == (1800, 120)
    assert SystemMessage("stream disconnected before completion: retrying 1/5") in n.entries
    assert n.entries[-1] == ErrorMessage("stream disconnected before completion")


@pytest.mark.parametrize(
    ("wrapped", "inner"),
    [
        ("/bin/bash -lc 'echo hi'", "echo hi"),
        ("bash -lc ls", "ls"),
        ("/bin/bash -lc 'echo '\"'\"'q'\"'\"''", "echo 'q'"),
        ("/usr/bin/zsh -c 'a && b'", "a && b"),
        ("python script.py", "python script.py"),
        ("bash -lc 'unterminated", "bash -lc 'unterminated"),
    ],
)
def test_unwrap_shell(wrapped: str, inner: str) -> None:
    assert unwrap_shell(wrapped) == inner


# ---- command line ---------------------------------------------------------------------------


def _req(tmp_path: Path, **kw: object) -> RunRequest:
    fake = tmp_path / "codex"
    if not fake.exists():
        fake.write_text("#!/bin/sh\necho 'codex-cli 0.169.0'\n")
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
    spec = CodexExecutor().build_launch(_req(tmp_path, prompt="--help"))
    assert spec.argv == [
        str(tmp_path / "codex"),
        "exec",
        "--json",
        "--skip-git-repo-check",
        "-s",
        "workspace-write",
        "--",
        "--help",
    ]
    assert spec.warnings == [] and spec.stdin is None


def test_resume_model_trust(tmp_path: Path) -> None:
    opts = RunOptions(trust=True, params=["-c", "model_reasoning_effort=high"])
    spec = CodexExecutor().build_launch(
        _req(tmp_path, model="gpt-5", resume_id=THREAD, mode=RunMode.follow_up, options=opts)
    )
    assert spec.argv[4:] == [
        "-m",
        "gpt-5",
        "-s",
        "workspace-write",
        "--trust",
        "-c",
        "model_reasoning_effort=high",
        "resume",
        THREAD,
        "--",
        "do it",
    ]


@pytest.mark.parametrize(
    ("options", "mode", "flag", "warns"),
    [
        (RunOptions(yolo=True), RunMode.initial, "--dangerously-bypass-approvals-and-sandbox", 0),
        (RunOptions(auto_approve=False), RunMode.initial, "read-only", 0),
        (RunOptions(), RunMode.review, "read-only", 0),
        (RunOptions(force=True), RunMode.initial, "workspace-write", 1),
        (RunOptions(allow_all_tools=True), RunMode.initial, "workspace-write", 1),
    ],
)
def test_permission_levels(
    tmp_path: Path, options: RunOptions, mode: RunMode, flag: str, warns: int
) -> None:
    spec = CodexExecutor().build_launch(_req(tmp_path, options=options, mode=mode))
    assert flag in spec.argv
    assert len(spec.warnings) == warns
    if flag.startswith("--dangerously"):
        assert "-s" not in spec.argv


def test_openai_endpoint_becomes_a_provider(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    opts = RunOptions(openai_endpoint="http://127.0.0.1:9/v1/", vars={"X": "1"})
    spec = CodexExecutor().build_launch(_req(tmp_path, options=opts))
    flags = [spec.argv[i + 1] for i, a in enumerate(spec.argv) if a == "-c"]
    assert 'model_provider="aura_endpoint"' in flags
    assert 'model_providers.aura_endpoint.base_url="http://127.0.0.1:9/v1"' in flags
    assert 'model_providers.aura_endpoint.wire_api="responses"' in flags
    assert not any("env_key" in f for f in flags)
    assert spec.warnings == [] and spec.env["X"] == "1"
    monkeypatch.setenv("OPENAI_API_KEY", "sk")
    spec = CodexExecutor().build_launch(_req(tmp_path, options=opts))
    assert any(a.endswith('env_key="OPENAI_API_KEY"') for a in spec.argv)


def test_availability_reads_login_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _req(tmp_path)
    for var in ("OPENAI_API_KEY", "CODEX_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("CODEX_HOME", str(tmp_path / "ch"))
    a = CodexExecutor().availability(str(tmp_path / "codex"))
    assert a.version == "0.169.0" and any("codex login" in m for m in a.missing)
    (tmp_path / "ch").mkdir()
    (tmp_path / "ch" / "auth.json").write_text("{}")
    assert CodexExecutor().availability(str(tmp_path / "codex")).missing == []
