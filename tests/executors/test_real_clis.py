"""The real claude, codex and gemini CLIs (pinned, from scripts/install-agent-clis.sh), driven
end to end through `aura run --no-tui` against the scripted model server: no network.

Each run must get the prompt to the server, really change a file in a git repo through a scripted
shell tool call, bring the reply back as entries, record the agent's session id, and a follow-up
(`--resume-latest`) must send the earlier conversation back to the model.

Missing CLIs skip these tests on a workstation, and fail them under CI=true.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest

from tests.support import fixtures
from tests.support.fixtures import agent_binary, missing_clis, offline_env, offline_model
from tests.support.model_server import ModelServer, Shell, Text

pytestmark = pytest.mark.realcli
make_model_server = fixtures.make_model_server  # the pytest fixtures, used by name
model_server = fixtures.model_server

AGENTS = ("claude", "codex", "gemini")
ROOT = Path(__file__).resolve().parents[2]
# Until the registry names these adapters, register them in the child before running the CLI.
_SHIM = (
    "import sys, aura_core.executors.registry as r\n"
    "for n, c in (('claude', 'Claude'), ('codex', 'Codex'), ('gemini', 'Gemini')):\n"
    "    r.is_available(n) or r.register(n, f'aura_core.executors.{n}:{c}Executor')\n"
    "from aura_tui.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def require(name: str) -> None:
    if not missing_clis((name,)):
        return
    msg = f"{name} CLI not installed at {agent_binary(name)}: run scripts/install-agent-clis.sh"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(msg)
    pytest.skip(msg)


def aura_argv() -> list[str]:
    from aura_core.executors.registry import is_available

    if all(is_available(n) for n in AGENTS):
        return [sys.executable, "-m", "aura_tui"]
    warnings.warn("claude/codex/gemini are not in the executor registry yet", stacklevel=2)
    return [sys.executable, "-c", _SHIM]


def aura(env: dict[str, str], *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*aura_argv(), *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def git_repo(path: Path) -> Path:
    path.mkdir()
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    (path / "README.md").write_text("hello\n")
    return path


def agent_env(name: str, server: ModelServer, home: Path) -> dict[str, str]:
    env = dict(os.environ)  # HOME, XDG_* and AURA_HOME are temporary (tests/conftest.py)
    assert env["HOME"] == str(home)
    for var in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY"):
        env.pop(var, None)
    env.update(offline_env(name, server, home))
    return env


def run_args(name: str, prompt: str, *extra: str) -> list[str]:
    model = offline_model(name)
    return [
        "run",
        "--executor",
        name,
        "--prompt",
        prompt,
        "--no-tui",
        "--executor-path",
        f"{name}={agent_binary(name)}",
        *(["--model", model] if model else []),
        *extra,
    ]


def latest(env: dict[str, str]) -> dict[str, Any]:
    res = aura(env, "session", "latest", "--json")
    assert res.returncode == 0, res.stderr
    data: dict[str, Any] = json.loads(res.stdout)["session"]
    return data


@pytest.mark.parametrize("name", AGENTS)
def test_edit_reply_session_and_resume(
    name: str, make_model_server: Any, isolated_home: Path, tmp_path: Path
) -> None:
    require(name)
    server: ModelServer = make_model_server(
        [
            Shell("echo created-by-agent > agent_file.txt && ls", text="Creating the file."),
            Text("Done: created agent_file.txt", thinking="The command worked."),
        ]
    )
    repo = git_repo(tmp_path / "repo")
    env = agent_env(name, server, isolated_home)

    res = aura(env, *run_args(name, "please create agent_file.txt", "--cwd", str(repo)))
    assert res.returncode == 0, f"stdout:\n{res.stdout}\nstderr:\n{res.stderr}"
    assert (repo / "agent_file.txt").read_text() == "created-by-agent\n"
    first = server.main_requests()
    assert first and "please create agent_file.txt" in first[0].text()
    assert len(first) == 2  # the tool call, then the final text after the tool result
    assert "created-by-agent" in first[1].text() or "agent_file.txt" in first[1].text()
    out = res.stdout
    assert "Done: created agent_file.txt" in out  # the reply, whole
    tool_lines = [ln for ln in out.splitlines() if "echo created-by-agent > agent_file.txt" in ln]
    assert len(tool_lines) == 1 and tool_lines[0].startswith("✓ $ "), out
    assert "tokens: in " in out
    session = latest(env)
    assert session["status"] == "completed" and session["executor"] == name
    agent_sid = session["agent_session_id"]
    assert agent_sid and len(agent_sid) >= 32

    server.add(Shell("echo second > second.txt"), "Second answer.")
    res2 = aura(
        env,
        "run",
        "--resume-latest",
        "--prompt",
        "now the second step",
        "--no-tui",
        "--executor-path",
        f"{name}={agent_binary(name)}",
    )
    assert res2.returncode == 0, f"stdout:\n{res2.stdout}\nstderr:\n{res2.stderr}"
    assert (repo / "second.txt").read_text() == "second\n"  # ran in the first session's folder
    assert "Second answer." in res2.stdout
    resumed = server.main_requests()[-1].text()
    assert "please create agent_file.txt" in resumed  # the earlier conversation went back
    assert "Done: created agent_file.txt" in resumed
    assert "now the second step" in resumed
    follow = latest(env)
    assert follow["parent_id"] == session["id"]
    assert follow["agent_session_id"] == agent_sid  # all three keep the id on resume


@pytest.mark.parametrize("name", AGENTS)
def test_missing_key_is_a_setup_error(
    name: str, model_server: ModelServer, isolated_home: Path, tmp_path: Path
) -> None:
    require(name)
    repo = git_repo(tmp_path / "repo")
    env = agent_env(name, model_server, isolated_home)
    for var in ("ANTHROPIC_API_KEY", "FAKE_API_KEY", "GEMINI_API_KEY"):
        env.pop(var, None)
    res = aura(env, *run_args(name, "hi", "--cwd", str(repo)), timeout=120)
    assert res.returncode != 0, res.stderr
    errors = [ln for ln in res.stdout.splitlines() if ln.startswith("error: ")]
    assert len(errors) == 1, f"stdout:\n{res.stdout}\nstderr:\n{res.stderr}"
    assert "(setup: " in res.stdout  # the hint closes the (possibly multi-line) error entry
    assert not model_server.main_requests()
    assert latest(env)["status"] == "failed"


def test_codex_through_openai_endpoint(
    make_model_server: Any, isolated_home: Path, tmp_path: Path
) -> None:
    """`--openai-endpoint` alone points codex at a Responses-API server (no config file)."""
    require("codex")
    server: ModelServer = make_model_server([Shell("echo via-endpoint > e.txt"), "ok"])
    repo = git_repo(tmp_path / "repo")
    env = dict(os.environ, CODEX_HOME=str(isolated_home / ".codex-empty"))
    env.pop("OPENAI_API_KEY", None)
    (isolated_home / ".codex-empty").mkdir()
    args = run_args("codex", "hi", "--cwd", str(repo), "--openai-endpoint", server.url + "/v1")
    res = aura(env, *args)
    assert res.returncode == 0, res.stderr
    assert (repo / "e.txt").read_text() == "via-endpoint\n"
    assert "authorization" not in server.main_requests()[0].headers


def test_claude_yolo_runs_as_root(
    make_model_server: Any, isolated_home: Path, tmp_path: Path
) -> None:
    """--yolo is --dangerously-skip-permissions, which claude refuses as root without
    IS_SANDBOX=1: the adapter sets it, so this works in CI (root) and anywhere else."""
    require("claude")
    server: ModelServer = make_model_server([Shell("echo yolo > ../outside.txt"), "ok"])
    repo = git_repo(tmp_path / "repo")
    env = agent_env("claude", server, isolated_home)
    res = aura(env, *run_args("claude", "hi", "--cwd", str(repo), "--yolo"))
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "outside.txt").read_text() == "yolo\n"  # no folder guard left
