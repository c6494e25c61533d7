"""Claude in supervised mode: the real claude CLI (pinned) over its control protocol, against the
scripted model server. Its `can_use_tool` questions reach the person on the terminal (pexpect
drives `aura run --auto-approve false`); an approved command runs, a denied one does not and the
log says why; "always" is kept for the session only; a follow-up continues the conversation.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pexpect
import pytest

from tests.executors.test_real_clis import aura_argv, require
from tests.support import fixtures
from tests.support.fixtures import agent_binary, offline_env
from tests.support.model_server import ModelServer, Shell, Text

pytestmark = pytest.mark.realcli
make_model_server = fixtures.make_model_server

ROOT = Path(__file__).resolve().parents[2]


def setup(server: ModelServer, home: Path, tmp_path: Path) -> tuple[dict[str, str], Path]:
    env = dict(os.environ)
    for var in ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN"):
        env.pop(var, None)
    env.update(offline_env("claude", server, home))
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    return env, repo


def aura(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*aura_argv(), *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=180,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip


def supervised(env: dict[str, str], repo: Path, prompt: str, *extra: str) -> pexpect.spawn:
    argv = [*aura_argv(), "run", "-e", "claude", "-p", prompt, "--cwd", str(repo),
            "--auto-approve", "false", "--no-tui",
            "--executor-path", f"claude={agent_binary('claude')}", *extra]  # fmt: skip
    return pexpect.spawn(argv[0], argv[1:], env=env, cwd=str(ROOT), encoding="utf-8",
                         timeout=120, dimensions=(40, 200))  # fmt: skip


def raw_lines(env: dict[str, str]) -> list[dict[str, Any]]:
    raw = aura(env, "session", "latest", "--raw").stdout
    out = []
    for line in raw.splitlines():
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict):
            out.append(obj)
    return out


def test_claude_asks_on_a_tty_approve_and_deny_with_reason(
    make_model_server: Any, isolated_home: Path, tmp_path: Path
) -> None:
    require("claude")
    server = make_model_server(
        [
            Shell("echo yes > approved.txt", text="First the approved one."),
            Shell("echo no > refused.txt"),
            Text("All done."),
        ]
    )
    env, repo = setup(server, isolated_home, tmp_path)
    child = supervised(env, repo, "make two files")
    child.expect(r"\? claude asks to use Bash: \$ echo yes > approved\.txt")
    child.sendline("y")
    child.expect(r"\? claude asks to use Bash: \$ echo no > refused\.txt")
    child.sendline("n not that one")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    assert (repo / "approved.txt").read_text() == "yes\n"
    assert not (repo / "refused.txt").exists()

    shown = aura(env, "session", "latest").stdout
    assert "✓ $ echo yes > approved.txt" in shown, shown
    assert "⊘ $ echo no > refused.txt" in shown and "[denied]" in shown, shown
    assert "denied $ echo no > refused.txt: not that one" in shown, shown
    assert "All done." in shown
    # the model was told why: the refusal reason is the tool's result in the next request
    assert "not that one" in server.main_requests()[-1].text()
    # both directions of the protocol are in the stored transcript
    lines = raw_lines(env)
    asked = [o for o in lines if as_sub(o) == "can_use_tool"]
    answers = [o["response"]["response"] for o in lines if o.get("type") == "control_response"
               and isinstance(o["response"].get("response"), dict)
               and "behavior" in o["response"]["response"]]  # fmt: skip
    assert len(asked) == 2
    assert [a["behavior"] for a in answers] == ["allow", "deny"]
    assert answers[1]["message"] == "not that one"


def as_sub(obj: dict[str, Any]) -> str | None:
    if obj.get("type") != "control_request":
        return None
    request = obj.get("request")
    return request.get("subtype") if isinstance(request, dict) else None


def test_always_is_kept_for_the_session_only_and_resume_continues(
    make_model_server: Any, isolated_home: Path, tmp_path: Path
) -> None:
    require("claude")
    server = make_model_server(
        [
            Shell("git init -q first"),
            Shell("git init -q second"),  # matches claude's suggested rule `git init *`
            Text("Both written."),
        ]
    )
    env, repo = setup(server, isolated_home, tmp_path)
    child = supervised(env, repo, "write twice")
    child.expect(r"asks to use Bash: \$ git init -q first")
    child.expect(r"\[a\]lways")
    child.sendline("a")
    # no second question: the rule was added for this session
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    assert "asks to use" not in (child.before or ""), child.before
    assert (repo / "first" / ".git").is_dir() and (repo / "second" / ".git").is_dir()
    answers = [o for o in raw_lines(env) if o.get("type") == "control_response"
               and "updatedPermissions" in json.dumps(o)]  # fmt: skip
    assert answers, "the 'always' answer carries claude's suggested rule"
    rules = answers[0]["response"]["response"]["updatedPermissions"]
    assert rules and all(r["destination"] == "session" for r in rules)
    # nothing was written into the project's claude settings
    assert not (repo / ".claude" / "settings.local.json").exists()

    first = json.loads(aura(env, "session", "latest", "--json").stdout)["session"]
    assert first["agent_session_id"]
    server.add(Text("Second answer."))
    res = aura(env, "run", "--resume-latest", "-p", "and now?", "--no-tui",
               "--auto-approve", "false", "--var", "AURA_TRANSPORT=control",
               "--executor-path", f"claude={agent_binary('claude')}")  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "Second answer." in res.stdout
    resumed = [r for r in server.main_requests() if "and now?" in r.text()]
    assert resumed and "write twice" in resumed[-1].text()
    follow = json.loads(aura(env, "session", "latest", "--json").stdout)["session"]
    assert follow["agent_session_id"] == first["agent_session_id"]


def test_without_a_terminal_supervised_claude_is_refused_not_run(
    make_model_server: Any, isolated_home: Path, tmp_path: Path
) -> None:
    """The control transport with nobody to ask refuses the tool and says so."""
    require("claude")
    server = make_model_server([Shell("echo x > nobody.txt"), Text("Could not.")])
    env, repo = setup(server, isolated_home, tmp_path)
    res = aura(env, "run", "-e", "claude", "-p", "try it", "--cwd", str(repo), "--no-tui",
               "--var", "AURA_TRANSPORT=control", "--auto-approve", "false",
               "--executor-path", f"claude={agent_binary('claude')}")  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert not (repo / "nobody.txt").exists()
    assert "nobody to ask" in res.stdout, res.stdout


def processes_in(folder: Path) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if (proc / "cwd").resolve() == folder.resolve():
                    found.append(int(proc.name))
            except OSError:
                continue
    return found


def test_ctrl_c_while_asked_stops_claude_and_keeps_the_log(
    make_model_server: Any, isolated_home: Path, tmp_path: Path
) -> None:
    require("claude")
    # the second turn answers the follow-up after the interruption
    server = make_model_server([Shell("git init -q never"), Text("Picking up where we left off.")])
    env, repo = setup(server, isolated_home, tmp_path)
    child = supervised(env, repo, "ask me")
    child.expect(r"asks to use Bash: \$ git init -q never")
    child.sendintr()
    child.expect(pexpect.EOF, timeout=30)
    child.close()
    assert child.exitstatus != 0
    assert not (repo / "never").exists()
    deadline = time.monotonic() + 10
    while processes_in(repo) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert processes_in(repo) == []
    session = json.loads(aura(env, "session", "latest", "--json").stdout)["session"]
    assert session["status"] == "killed", session["status"]
    assert "can_use_tool" in aura(env, "session", "latest", "--raw").stdout
    # the interrupted conversation can be continued: the agent's session id was kept
    killed = json.loads(aura(env, "session", "latest", "--json").stdout)["session"]
    assert killed["agent_session_id"]
    res = aura(env, "run", "--resume-latest", "-p", "go on without the command", "--no-tui",
               "--executor-path", f"claude={agent_binary('claude')}")  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "Picking up where we left off." in res.stdout
    resumed = [r for r in server.main_requests() if "go on without the command" in r.text()]
    assert resumed and "ask me" in resumed[-1].text()  # the earlier turn went back to the model
    follow = json.loads(aura(env, "session", "latest", "--json").stdout)["session"]
    assert follow["agent_session_id"] == killed["agent_session_id"]


def test_the_board_is_asked_and_its_answer_reaches_claude(
    make_model_server: Any, isolated_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The runtime as the board drives it: a `permission` event, answered by the person."""
    from aura_core.config import parse_config
    from aura_core.engine.runtime import Runtime, RuntimeEvent
    from aura_core.store.sqlite import SqliteStore

    require("claude")
    server = make_model_server([Shell("git init -q fromboard"), Text("Board approved.")])
    _env, repo = setup(server, isolated_home, tmp_path)
    (repo / "README.md").write_text("hi\n")
    subprocess.run(["git", "-C", str(repo), "add", "."], check=True)
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t",
                    "commit", "-qm", "init"], check=True)  # fmt: skip
    for key, value in offline_env("claude", server, isolated_home).items():
        monkeypatch.setenv(key, value)
    cfg = parse_config(
        {
            "worktrees": {"root": str(tmp_path / "wt")},
            "executors": {"claude": {"path": str(agent_binary("claude"))}},
        }
    )
    rt = Runtime(SqliteStore(tmp_path / "aura.db"), cfg)
    rt.answers_permissions = True
    asked: list[RuntimeEvent] = []

    def on_event(event: RuntimeEvent) -> None:
        if event.kind == "permission":
            asked.append(event)
            rt.answer_permission(event.request_id, True)

    rt.subscribe(on_event)
    try:
        task = rt.add_task(
            "Supervised", "init", "claude", options={"auto_approve": False}, repos=[str(repo)]
        )
        rt.start(task.id)
        assert rt.wait(task.id, timeout=120)
        assert len(asked) == 1 and "git init -q fromboard" in asked[0].detail
        wt = Path(rt.workspace(task.id)[0])
        assert (wt / "fromboard" / ".git").is_dir()
    finally:
        rt.shutdown()
