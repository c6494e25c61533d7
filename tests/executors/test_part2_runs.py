"""Part 2 executors end to end without the real CLIs: cursor-agent and amp through fake
executables printing their real formats, the ACP client against a small ACP agent (policy, fs
confinement, session/load, cancel, supervised mode on a TTY), and ollama / lms / custom
endpoints against the scripted model server (SSE, JSON fallback, 401, timeouts, history, model
discovery with its cache and the selection prompt)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pexpect
import pytest

from aura_core.executors.acp import AcpRun, DualNormalizer, Policy
from aura_core.executors.base import LaunchSpec
from aura_core.executors.entries import render_text
from aura_core.executors.models import cache_file
from tests.executors.parse_util import FIXTURES
from tests.support import fixtures
from tests.support.model_server import Fail, ModelServer, Slow, Text

make_model_server = fixtures.make_model_server
ROOT = Path(__file__).resolve().parents[2]
FAKE_CURSOR = FIXTURES / "fake_cursor_agent.py"
FAKE_AMP = FIXTURES / "fake_amp.py"
FAKE_ACP = FIXTURES / "fake_acp_agent.py"

# The real CLI entry, run in a fresh interpreter.
SHIM = "import sys\nfrom aura_tui.cli import main\nsys.exit(main(sys.argv[1:]))\n"


def aura(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> Any:
    return subprocess.run(
        [sys.executable, "-c", SHIM, *args],
        env=env or dict(os.environ),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def spawn(*args: str, env: dict[str, str] | None = None) -> pexpect.spawn:
    return pexpect.spawn(
        sys.executable,
        ["-c", SHIM, *args],
        env=env or dict(os.environ),
        cwd=str(ROOT),
        encoding="utf-8",
        timeout=60,
        dimensions=(40, 200),
    )


def latest(env: dict[str, str] | None = None) -> dict[str, Any]:
    res = aura("session", "latest", "--json", env=env)
    assert res.returncode == 0, res.stderr
    data: dict[str, Any] = json.loads(res.stdout)["session"]
    return data


@pytest.fixture
def fake_env(tmp_path: Path) -> dict[str, str]:
    return dict(
        os.environ, FAKE_STATE=str(tmp_path / "fake-state"), FAKE_LOG=str(tmp_path / "calls")
    )


def calls(env: dict[str, str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(env["FAKE_LOG"]).read_text().splitlines()]


def workdir(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "README.md").write_text("hello\n")
    return repo


# ---- cursor-agent, amp ---------------------------------------------------------------------------


def test_cursor_agent_prompt_on_stdin_and_resume(tmp_path: Path, fake_env: dict[str, str]) -> None:
    repo = workdir(tmp_path)
    path = f"cursor-agent={FAKE_CURSOR}"
    res = aura("run", "-e", "cursor-agent", "-p=-first task", "--cwd", str(repo), "--force",
               "-m", "gpt-5", "--no-tui", "--executor-path", path, env=fake_env)  # fmt: skip
    assert res.returncode == 0, res.stderr
    (first,) = calls(fake_env)
    assert first["stdin"] == "-first task"  # the prompt, on stdin (a leading dash is safe)
    argv = first["argv"]
    assert argv[:4] == ["-p", "--output-format", "stream-json", "--trust"]
    assert "--force" in argv and argv[argv.index("--model") + 1] == "gpt-5"
    assert "✓ $ ls -la (exit 0)" in res.stdout and "✓ read README.md" in res.stdout
    assert "Cursor heard: -first task (turn 1" in res.stdout
    assert "~ Let me check." in res.stdout and "tokens: in 120 · out 30" in res.stdout
    sid = latest(fake_env)["agent_session_id"]
    assert sid and len(sid) == 36

    res = aura("run", "--resume-latest", "-p", "second", "--no-tui", "--executor-path", path,
               env=fake_env)  # fmt: skip
    assert res.returncode == 0, res.stderr
    second = calls(fake_env)[-1]
    assert second["argv"][second["argv"].index("--resume") + 1] == sid
    assert "--force" not in second["argv"]  # permissions are per run
    assert "⊘ $ ls -la [denied]" in res.stdout
    assert "Cursor heard: second (turn 2; before: -first task)" in res.stdout
    assert latest(fake_env)["agent_session_id"] == sid


def test_amp_prompt_on_stdin_allow_all_and_thread_continue(
    tmp_path: Path, fake_env: dict[str, str]
) -> None:
    repo = workdir(tmp_path)
    path = f"amp={FAKE_AMP}"
    res = aura("run", "-e", "amp", "-p", "first", "--cwd", str(repo), "--yolo", "--no-tui",
               "--executor-path", path, env=fake_env)  # fmt: skip
    assert res.returncode == 0, res.stderr
    (first,) = calls(fake_env)
    assert first["stdin"] == "first" and first["argv"][:2] == ["--execute", "--stream-json"]
    settings = json.loads(
        Path(first["argv"][first["argv"].index("--settings-file") + 1]).read_text()
    )
    assert settings["amp.dangerouslyAllowAll"] is True
    assert "✓ $ git status" in res.stdout and "Amp heard: first (turn 1)" in res.stdout
    thread = latest(fake_env)["agent_session_id"]
    assert thread.startswith("T-")

    res = aura("run", "--resume-latest", "-p", "second", "--no-tui", "--executor-path", path,
               env=fake_env)  # fmt: skip
    assert res.returncode == 0, res.stderr
    second = calls(fake_env)[-1]
    assert second["argv"][:3] == ["threads", "continue", thread] and second["stdin"] == "second"
    assert "Amp heard: first" not in res.stdout  # the replayed history is not shown again
    assert f"continued thread {thread} (2 earlier)" in res.stdout
    assert "Amp heard: second (turn 2)" in res.stdout and "⊘ $ git status [denied]" in res.stdout


# ---- the ACP client against a small ACP agent -----------------------------------------------


def acp_turn(
    cwd: Path, prompt: str, policy: Policy, env: dict[str, str], resume: str | None = None
) -> tuple[AcpRun, DualNormalizer, int, list[str]]:
    spec = LaunchSpec(argv=[sys.executable, str(FAKE_ACP)], env=env)
    run = AcpRun(spec, cwd, {}, prompt=prompt, policy=policy, resume_id=resume)
    norm = DualNormalizer(get_cli_normalizer(), "fake")
    raw: list[str] = []
    for batch in run.batches():
        for stream, data in batch:
            raw.append(data.decode())
            norm.feed(stream, data.decode())
    code = run.wait()
    norm.finish()
    return run, norm, code, raw


def get_cli_normalizer() -> Any:
    from aura_core.executors.copilot import CopilotNormalizer

    return CopilotNormalizer()


def test_acp_policy_fs_and_load_after_restart(tmp_path: Path) -> None:
    repo = workdir(tmp_path)
    (tmp_path / "secret.txt").write_text("top secret")
    env = {"FAKE_STATE": str(tmp_path / "acp-state"), "FAKE_READ": str(tmp_path / "secret.txt")}
    run, norm, code, raw = acp_turn(repo, "first", Policy(approver=None, allow=True), env)
    assert code == 0 and run.session_id
    assert (repo / "approved.txt").read_text() == "hi\n"  # fs/write_text_file inside: done
    shown = [render_text(e) for e in norm.active.entries]  # type: ignore[union-attr]
    assert "✓ $ echo hi > approved.txt (exit 0)" in shown
    assert "~ Thinking about it." in shown
    text = "\n".join(shown)
    assert "top secret" not in text and "is outside the workspace" in text  # fs read refused
    assert "todo 1/2 done: answer" in text and "tokens: in 3 · out 4" in text
    assert norm.agent_session_id == run.session_id
    # both directions are in the raw lines, in order: our answer follows the agent's request
    asks = [i for i, line in enumerate(raw) if '"session/request_permission"' in line]
    assert asks and '"optionId":"yes"' in raw[asks[0] + 1]

    (repo / "approved.txt").unlink()
    run2, norm2, code2, _ = acp_turn(
        repo, "second", Policy(approver=None, allow=False), env, resume=run.session_id
    )  # a new agent process: session/load
    assert code2 == 0 and run2.session_id == run.session_id
    text = "\n".join(render_text(e) for e in norm2.active.entries)  # type: ignore[union-attr]
    assert f"resumed session {run.session_id} (2 earlier updates)" in text
    assert "Fake agent done: second (turn 2)" in text and "first" not in text.split("resumed")[1]
    assert "⊘ $ echo hi > approved.txt [denied]" in text  # refused: read-only, nobody to ask
    assert not (repo / "approved.txt").exists()
    assert norm2.agent_session_id == run.session_id


def test_acp_cancel(tmp_path: Path) -> None:
    env = {"FAKE_STATE": str(tmp_path / "s")}
    spec = LaunchSpec(argv=[sys.executable, str(FAKE_ACP)], env=env)
    run = AcpRun(spec, tmp_path, {}, prompt="slow please", policy=Policy(approver=None, allow=True))
    lines: list[str] = []
    started = time.monotonic()
    for batch in run.batches():
        lines += [data.decode() for _stream, data in batch]
        if any('"session/prompt"' in line for line in lines) and not run.interrupted:
            run.interrupt()
    assert run.wait() == 130 and run.stop_reason == "cancelled"
    assert time.monotonic() - started < 10
    assert any('"session/cancel"' in line for line in lines)


def test_supervised_mode_on_a_tty(tmp_path: Path, fake_env: dict[str, str]) -> None:
    """`aura run --auto-approve false` on a terminal: the person is asked, the log keeps the
    request (pending approval) and the answer (denied with the reason, or run)."""
    repo = workdir(tmp_path)
    fake_env["FAKE_STATE"] = str(tmp_path / "acp-state")
    args = ["run", "-e", "qwen-code", "-p", "do it", "--cwd", str(repo), "--auto-approve",
            "false", "--no-tui", "--executor-path", f"qwen-code={FAKE_ACP}"]  # fmt: skip
    child = spawn(*args, env=fake_env)
    child.expect(r"asks to use echo hi: \$ echo hi > approved.txt")
    child.expect("allow\\? \\[y\\]es / \\[a\\]lways / \\[n\\]o")
    child.sendline("n not on a Friday")
    child.expect("You said no")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert not (repo / "approved.txt").exists()
    res = aura("session", "latest", env=fake_env)
    # the denial and its reason are in the log, and the tool stays denied: our answer is logged
    # before it is written, so the agent's "failed" update for the tool always comes after it
    assert "denied $ echo hi > approved.txt: not on a Friday" in res.stdout
    assert "⊘ $ echo hi > approved.txt [denied]" in res.stdout, res.stdout
    raw = aura("session", "latest", "--raw", env=fake_env).stdout
    assert '"reason":"not on a Friday"' in raw  # the answer is in the transcript

    child = spawn(*args, env=fake_env)
    child.expect("allow\\?")
    child.sendline("y")
    child.expect(pexpect.EOF)
    child.close()
    assert (repo / "approved.txt").read_text() == "hi\n"
    assert "✓ $ echo hi > approved.txt (exit 0)" in aura("session", "latest", env=fake_env).stdout


# ---- HTTP: lms, ollama, custom endpoint ----------------------------------------------------------


def test_lms_streams_and_resumes_its_own_history(make_model_server: Any) -> None:
    server: ModelServer = make_model_server(
        [Text("Hello there.", thinking="Greeting."), "Second answer."], tool_less_is_side=False
    )
    base = server.url + "/v1"
    res = aura("run", "-e", "lms", "-p", "hi", "-m", "fake-model", "--openai-endpoint", base,
               "--no-tui")  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "~ Greeting.\nHello there.\ntokens: in 10 · out 5" in res.stdout
    first = latest()
    assert first["agent_session_id"] == first["id"] and first["model"] == "fake-model"
    res = aura("run", "--resume-latest", "-p", "and now?", "--no-tui")  # endpoint remembered
    assert res.returncode == 0, res.stderr
    assert "Second answer." in res.stdout and "2 earlier messages" in res.stdout
    messages = server.main_requests()[-1].body["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert messages[1]["content"] == "Hello there." and messages[2]["content"] == "and now?"


def test_ollama_model_discovery_cache_and_refresh(make_model_server: Any) -> None:
    server: ModelServer = make_model_server(
        ["one", "two", "three"], tool_less_is_side=False, models=["llama3:8b", "qwen3:4b"]
    )
    env = dict(os.environ, OLLAMA_HOST=f"127.0.0.1:{server.port}")

    def tags() -> int:
        return sum(1 for r in server.requests if r.path == "/api/tags")

    res = aura("run", "-e", "ollama", "-p", "hi", "--no-tui", env=env)
    assert res.returncode == 0, res.stderr
    assert "no --model given: using llama3:8b (the first of 2)" in res.stderr
    assert server.main_requests()[-1].body["model"] == "llama3:8b" and tags() == 1
    assert latest(env)["model"] == "llama3:8b"
    res = aura("run", "-e", "ollama", "-p", "hi", "--no-tui", env=env)
    assert res.returncode == 0 and tags() == 1  # from the cache
    res = aura("run", "-e", "ollama", "-p", "hi", "--no-tui", "--refresh-model-cache", env=env)
    assert res.returncode == 0 and tags() == 2
    cache = json.loads(cache_file().read_text())
    (entry,) = cache.values()
    assert entry["models"] == ["llama3:8b", "qwen3:4b"]
    entry["at"] -= 25 * 3600  # older than the TTL: asked again
    cache_file().write_text(json.dumps(cache))
    res = aura("run", "-e", "ollama", "-p", "hi", "--no-tui", env=env)
    assert res.returncode == 0 and tags() == 3


def test_ollama_think_sections_and_resume(make_model_server: Any) -> None:
    """A reasoning model on ollama: `<think>` in the streamed content is thinking, the rest the
    answer; a follow-up sends our own history of the conversation back."""
    server: ModelServer = make_model_server(
        ["<think>The user greets me.</think>Hi! How can I help?", "Still here."],
        tool_less_is_side=False,
        models=["qwen3:4b"],
    )
    env = dict(os.environ, OLLAMA_HOST=f"127.0.0.1:{server.port}")
    res = aura("run", "-e", "ollama", "-m", "qwen3:4b", "-p", "hello", "--no-tui", env=env)
    assert res.returncode == 0, res.stderr
    assert "~ The user greets me." in res.stdout and "Hi! How can I help?" in res.stdout
    assert "<think>" not in res.stdout
    assert server.main_requests()[-1].path == "/v1/chat/completions"
    res = aura("run", "--resume-latest", "-p", "still there?", "--no-tui", env=env)
    assert res.returncode == 0, res.stderr
    assert "Still here." in res.stdout
    messages = server.main_requests()[-1].body["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert messages[0]["content"] == "hello" and messages[2]["content"] == "still there?"
    assert "Hi! How can I help?" in messages[1]["content"]


def test_model_selection_prompt_on_a_tty(make_model_server: Any) -> None:
    server: ModelServer = make_model_server(["picked"], tool_less_is_side=False,
                                            models=["llama3:8b", "qwen3:4b"])  # fmt: skip
    env = dict(os.environ, OLLAMA_HOST=f"127.0.0.1:{server.port}")
    child = spawn("run", "-e", "ollama", "-p", "hi", "--no-tui", env=env)
    child.expect("1. llama3:8b  \\(default\\)")
    child.expect("2. qwen3:4b")
    child.expect("model \\[1-2")
    child.sendline("2")
    child.expect("picked")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert server.main_requests()[-1].body["model"] == "qwen3:4b"


def test_no_models_is_an_error_naming_model(make_model_server: Any) -> None:
    server: ModelServer = make_model_server([], models=[])
    res = aura("run", "-e", "lms", "-p", "hi", "--no-tui", "--openai-endpoint", server.url + "/v1")
    assert res.returncode != 0 and "--model" in res.stderr
    assert not server.main_requests()


def test_custom_endpoint_json_fallback_401_and_timeout(make_model_server: Any) -> None:
    server: ModelServer = make_model_server(
        ["Plain JSON answer.", Fail(401, "Invalid API key"), Slow(3, "too late")],
        tool_less_is_side=False,
        force_json=True,
    )
    base = server.url + "/v1/"  # a trailing slash is fine
    common = ["run", "-e", "custom", "-m", "fake-model", "--openai-endpoint", base, "--no-tui"]
    res = aura(*common, "-p", "hi", env=dict(os.environ, OPENAI_API_KEY="sk-test"))
    assert res.returncode == 0, res.stderr
    assert "Plain JSON answer." in res.stdout
    assert server.main_requests()[0].headers["authorization"] == "Bearer sk-test"
    res = aura(*common, "-p", "hi")
    assert res.returncode == 1
    assert "error: HTTP 401: Invalid API key (setup: set the agent's API key)" in res.stdout
    started = time.monotonic()
    res = aura(*common, "-p", "hi", "--var", "AURA_TIMEOUT=1")
    assert res.returncode == 1 and "no answer in 1 s" in res.stdout
    assert time.monotonic() - started < 15


def test_custom_endpoint_asked_for_on_a_tty(make_model_server: Any, tmp_path: Path) -> None:
    server: ModelServer = make_model_server(["Asked and answered."], tool_less_is_side=False)
    script = (
        "from pathlib import Path\n"
        "from aura_core.executors.base import RunOptions, RunRequest\n"
        "from aura_core.executors.registry import get_executor\n"
        "from aura_core.runner import SessionRunner\n"
        "from aura_core.store.memory import MemoryStore\n"
        "o = RunOptions()\n"
        "req = RunRequest(session_id='s1', prompt='hi', cwd=Path('.'), model='m', options=o)\n"
        "r = SessionRunner(MemoryStore(), get_executor('custom', o), req, executor_name='custom')\n"
        "print('STATUS', r.run().status, o.openai_endpoint)\n"
    )
    child = pexpect.spawn(sys.executable, ["-c", script], cwd=str(ROOT), encoding="utf-8",
                          timeout=30, env=dict(os.environ))  # fmt: skip
    child.expect("OpenAI-compatible endpoint URL")
    child.sendline(server.url + "/v1")
    child.expect("STATUS completed " + server.url)
    child.expect(pexpect.EOF)
    assert server.main_requests()[0].body["messages"][-1]["content"] == "hi"
