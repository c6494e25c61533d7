"""The real qwen-code, opencode, copilot and droid CLIs (pinned, from
scripts/install-agent-clis.sh) driven end to end through `aura run` against the scripted model
server, offline: the prompt reaches the model, a scripted shell call really runs, the reply comes
back as entries, the agent's session id is recorded and a follow-up continues the conversation.
qwen, opencode and copilot also over ACP (session/load in a new agent process), and qwen in
supervised mode on a TTY with a permission request and a file read outside the workspace.

Missing CLIs skip these tests on a workstation, and fail them under CI=true.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pexpect
import pytest

from tests.executors.test_part2_runs import SHIM
from tests.support import fixtures
from tests.support.fixtures import NPM_BIN
from tests.support.model_server import ModelServer, Shell, Text, ToolCall, Turn

pytestmark = pytest.mark.realcli
make_model_server = fixtures.make_model_server

ROOT = Path(__file__).resolve().parents[2]
BINARY = {"qwen-code": "qwen", "opencode": "opencode", "copilot": "copilot", "droid": "droid"}
QWEN_SIDE = ("memory extraction",)  # qwen's memory subagent offers tools: not the conversation


def require(name: str) -> Path:
    path = NPM_BIN / BINARY[name]
    if os.access(path, os.X_OK):
        return path
    msg = f"{BINARY[name]} not installed at {path}: run scripts/install-agent-clis.sh"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(msg)
    pytest.skip(msg)


def shell(name: str, command: str) -> Turn:
    if name == "droid":  # droid's Execute insists on a risk assessment
        args = {"command": command, "riskLevelReason": "writes one file", "riskLevel": "low"}
        return ToolCall("Execute", args)
    return Shell(command)


Setup = tuple[dict[str, str], list[str]]


def offline(name: str, server: ModelServer, home: Path, repo: Path) -> Setup:
    """The environment and aura arguments that point the agent at the scripted server."""
    env = dict(os.environ)
    for var in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GH_TOKEN", "GITHUB_TOKEN"):
        env.pop(var, None)
    args = ["--executor-path", f"{name}={NPM_BIN / BINARY[name]}"]
    if name == "qwen-code":
        env.update(OPENAI_BASE_URL=server.url + "/v1", OPENAI_API_KEY="dummy",
                   OPENAI_MODEL="fake-model")  # fmt: skip
        args += ["--param", "--auth-type", "--param", "openai"]
    elif name == "opencode":
        config = json.loads((fixtures.ROOT / "tests/executors/fixtures/opencode.json").read_text())
        config["provider"]["fake"]["options"]["baseURL"] = server.url + "/v1"
        (repo / "opencode.json").write_text(json.dumps(config))
    elif name == "copilot":
        env.update(COPILOT_OFFLINE="true", COPILOT_PROVIDER_BASE_URL=server.url + "/v1",
                   COPILOT_PROVIDER_API_KEY="dummy", COPILOT_MODEL="fake-model")  # fmt: skip
    elif name == "droid":
        settings = home / ".factory" / "settings.json"
        settings.parent.mkdir(parents=True, exist_ok=True)
        model = {"model": "fake-model", "displayName": "Fake", "baseUrl": server.url + "/v1",
                 "apiKey": "dummy", "provider": "generic-chat-completion-api",
                 "maxOutputTokens": 4096}  # fmt: skip
        settings.write_text(json.dumps({"customModels": [model]}))
        args += ["-m", "custom:fake-model"]
    return env, args


def aura(env: dict[str, str], *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", SHIM, *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def latest(env: dict[str, str]) -> dict[str, Any]:
    res = aura(env, "session", "latest", "--json")
    assert res.returncode == 0, res.stderr
    data: dict[str, Any] = json.loads(res.stdout)["session"]
    return data


def git_repo(path: Path) -> Path:
    path.mkdir()
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    (path / "README.md").write_text("hello\n")
    return path


def converse(name: str, server: ModelServer, home: Path, repo: Path, *extra: str) -> None:
    """Two turns through `aura run`: a shell call and a reply, then a follow-up."""
    env, args = offline(name, server, home, repo)
    res = aura(env, "run", "-e", name, "-p", "please create agent_file.txt", "--cwd", str(repo),
               "--no-tui", *args, *extra)  # fmt: skip
    out = f"stdout:\n{res.stdout}\nstderr:\n{res.stderr}"
    assert res.returncode == 0, out
    assert (repo / "agent_file.txt").read_text() == "created-by-agent\n", out
    first = server.main_requests()
    assert "please create agent_file.txt" in first[0].text()
    assert "Done: created agent_file.txt" in res.stdout, out
    tool_lines = [ln for ln in res.stdout.splitlines() if "echo created-by-agent" in ln]
    assert len(tool_lines) == 1 and tool_lines[0].startswith("✓ $ "), out
    session = latest(env)
    assert session["status"] == "completed" and session["executor"] == name
    agent_sid = session["agent_session_id"]
    assert agent_sid

    server.add("Second answer.")
    res = aura(env, "run", "--resume-latest", "-p", "now the second step", "--no-tui", *args,
               *extra)  # fmt: skip
    out = f"stdout:\n{res.stdout}\nstderr:\n{res.stderr}"
    assert res.returncode == 0, out
    assert "Second answer." in res.stdout, out
    resumed = [r for r in server.main_requests() if "now the second step" in r.text()]
    assert resumed, out
    assert "please create agent_file.txt" in resumed[-1].text()  # the conversation went back
    assert "Done: created agent_file.txt" in resumed[-1].text()
    follow = latest(env)
    assert follow["parent_id"] == session["id"]
    if name == "droid":  # offline resume is --fork: a new session with the old history
        assert follow["agent_session_id"] and follow["agent_session_id"] != agent_sid
    else:
        assert follow["agent_session_id"] == agent_sid
    if extra and "acp" in extra[-1]:
        assert f"resumed session {agent_sid}" in res.stdout, out


def script() -> list[Turn]:
    return [
        Shell("echo created-by-agent > agent_file.txt"),
        Text("Done: created agent_file.txt"),
    ]


@pytest.mark.parametrize("name", ["qwen-code", "opencode", "copilot", "droid"])
def test_cli_prompt_reply_session_and_resume(
    name: str, make_model_server: Any, isolated_home: Path, tmp_path: Path
) -> None:
    require(name)
    turns = script()
    turns[0] = shell(name, "echo created-by-agent > agent_file.txt")
    server = make_model_server(turns, side_markers=QWEN_SIDE)
    converse(name, server, isolated_home, git_repo(tmp_path / "repo"))


@pytest.mark.parametrize("name", ["qwen-code", "opencode", "copilot"])
def test_acp_prompt_reply_and_load_after_restart(
    name: str, make_model_server: Any, isolated_home: Path, tmp_path: Path
) -> None:
    require(name)
    server = make_model_server(script(), side_markers=QWEN_SIDE)
    converse(name, server, isolated_home, git_repo(tmp_path / "repo"), "--var",
             "AURA_TRANSPORT=acp")  # fmt: skip


def test_qwen_supervised_on_a_tty_with_fs_outside(
    make_model_server: Any, isolated_home: Path, tmp_path: Path
) -> None:
    """A real ACP agent: its permission requests reach the person on the terminal; its read of
    a symlink leading outside the workspace is refused by aura's fs handler; a file inside is
    read through aura."""
    require("qwen-code")
    repo = git_repo(tmp_path / "repo")
    (tmp_path / "secret.txt").write_text("top secret\n")
    (repo / "link.txt").symlink_to(tmp_path / "secret.txt")
    server = make_model_server(
        [
            ToolCall("read_file", {"file_path": str(repo / "link.txt")}),
            ToolCall("read_file", {"file_path": str(repo / "README.md")}),
            Shell("echo nope > denied.txt"),
            "All done.",
        ],
        side_markers=QWEN_SIDE,
    )
    env, args = offline("qwen-code", server, isolated_home, repo)
    child = pexpect.spawn(
        sys.executable,
        ["-c", SHIM, "run", "-e", "qwen-code", "-p", "look around", "--cwd", str(repo),
         "--auto-approve", "false", "--no-tui", *args],
        env=env, cwd=str(ROOT), encoding="utf-8", timeout=120, dimensions=(40, 200),
    )  # fmt: skip
    child.expect(r"asks to use .*: read .*link\.txt")  # outside the folder: qwen asks first
    child.sendline("y")
    child.expect(r"asks to use .*: \$ echo nope > denied\.txt")
    child.sendline("n no shell today")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    assert not (repo / "denied.txt").exists()
    shown = aura(env, "session", "latest").stdout
    assert "refused by aura" in shown and "leads outside the workspace" in shown, shown
    assert "top secret" not in shown
    assert "✓ read " + str(repo / "README.md") in shown
    assert "⊘ $ echo nope > denied.txt [denied]" in shown
    assert "denied $ echo nope > denied.txt: no shell today" in shown
    # qwen ends the turn when a tool call is refused: no further model request
    raw = aura(env, "session", "latest", "--raw").stdout
    assert '"method":"fs/read_text_file"' in raw and '"method":"session/request_permission"' in raw


@pytest.mark.parametrize("name", ["qwen-code", "opencode", "copilot", "droid"])
def test_doctor_finds_the_real_cli(name: str) -> None:
    path = require(name)
    from aura_core.executors.registry import get_executor

    row = get_executor(name).availability(str(path))
    assert row.found and row.path == str(path) and row.version
    assert row.version.split(".")[0].isdigit()
