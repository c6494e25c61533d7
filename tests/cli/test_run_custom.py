"""`aura run` with the generic command executor, end to end through the real CLI."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aura_core import procinfo
from tests.conftest import AuraCli

SEED = [
    "run",
    "--executor",
    "custom",
    "--prompt",
    "ignored",
    "--base-command",
    "sh",
    "--param",
    "-lc",
    "--param",
    "echo out_line; echo err_line 1>&2",
    "--no-tui",
]


def _db(home: Path) -> sqlite3.Connection:
    con = sqlite3.connect(home / "aura-data" / "aura.db")
    con.row_factory = sqlite3.Row
    return con


def test_seed_example_streams_and_persists(aura: AuraCli, isolated_home: Path) -> None:
    res = aura(*SEED)
    assert res.returncode == 0, res.stderr
    assert res.stdout == "out_line\n"
    assert "[stderr] err_line" in res.stderr
    assert "completed · exit 0" in res.stderr
    con = _db(isolated_home)
    session = con.execute("SELECT * FROM sessions").fetchone()
    assert session["status"] == "completed" and session["exit_code"] == 0
    assert session["finished_at"] >= session["started_at"]
    lines = con.execute("SELECT stream, text, ts FROM log_lines ORDER BY seq").fetchall()
    assert {(r["stream"], r["text"]) for r in lines} == {
        ("stdout", "out_line"),
        ("stderr", "err_line"),
    }
    assert all(r["ts"] >= session["started_at"] for r in lines)
    latest = aura("session", "latest")
    assert latest.returncode == 0
    assert "out_line" in latest.stdout and "[stderr] err_line" in latest.stdout
    assert "completed (exit 0)" in latest.stdout


def test_exit_code_prompt_vars_and_session_env(aura: AuraCli, isolated_home: Path) -> None:
    script = 'echo "P=$AURA_PROMPT"; echo "V=$FOO"; echo "S=$AURA_SESSION_ID"; exit 7'
    res = aura(
        "run", "-e", "custom", "-p", "do it", "--append-prompt", "carefully", "--var",
        "FOO=bar=baz", "--base-command", "sh", "--param", "-c", "--param", script, "--no-tui",
    )  # fmt: skip
    assert res.returncode == 7
    out = res.stdout.splitlines()
    assert out[0] == "P=do it"
    assert out[1:4] == ["", "carefully", "V=bar=baz"]
    sid = out[4].removeprefix("S=")
    row = _db(isolated_home).execute("SELECT * FROM sessions").fetchone()
    assert row["id"] == sid and row["status"] == "failed" and row["exit_code"] == 7
    assert "exited with code 7" in row["error"]


def test_invalid_utf8_and_long_lines_kept(aura: AuraCli, isolated_home: Path) -> None:
    script = "printf 'ok\\n\\377\\376bad\\n'; head -c 3000000 /dev/zero | tr '\\0' a; echo"
    res = aura("run", "-e", "custom", "-p", "x", "--base-command", "sh", "--param", "-c",
               "--param", script, "--no-tui")  # fmt: skip
    assert res.returncode == 0, res.stderr
    rows = _db(isolated_home).execute("SELECT text, raw FROM log_lines ORDER BY seq").fetchall()
    assert rows[0]["text"] == "ok"
    assert rows[1]["raw"] == b"\xff\xfebad" and rows[1]["text"].endswith("bad")
    assert len(rows[2]["text"]) == 3_000_000


def test_resume_links_sessions(aura: AuraCli, isolated_home: Path) -> None:
    first = aura(*SEED)
    assert first.returncode == 0
    second = aura("run", "--resume-latest", "-p", "again", "--base-command", "echo", "--no-tui")
    assert second.returncode == 0, second.stderr
    con = _db(isolated_home)
    rows = con.execute("SELECT id, parent_id FROM sessions ORDER BY created_at").fetchall()
    assert rows[1]["parent_id"] == rows[0]["id"]
    third = aura("run", "--session", rows[1]["id"][:6], "-p", "more", "--base-command", "echo",
                 "--no-tui")  # fmt: skip
    assert third.returncode == 0, third.stderr
    rows = con.execute("SELECT id, parent_id FROM sessions ORDER BY created_at").fetchall()
    assert rows[2]["parent_id"] == rows[1]["id"]
    bad = aura("run", "--session", "ffff", "-p", "x", "--no-tui")
    assert bad.returncode != 0 and "no session matches" in bad.stderr


def test_session_list_show_json(aura: AuraCli) -> None:
    assert aura(*SEED).returncode == 0
    listed = json.loads(aura("session", "list", "--json").stdout)
    assert len(listed) == 1 and listed[0]["status"] == "completed"
    shown = json.loads(aura("session", "show", listed[0]["id"][:5], "--json").stdout)
    assert [ln["text"] for ln in shown["log"] if ln["stream"] != "system"] == [
        "out_line",
        "err_line",
    ] or sorted(ln["text"] for ln in shown["log"]) == ["err_line", "out_line"]
    latest = json.loads(aura("session", "latest", "--json").stdout)
    assert latest["session"]["id"] == listed[0]["id"]
    table = aura("session", "list").stdout.splitlines()
    assert table[0].split() == ["ID", "EXECUTOR", "STATUS", "STARTED", "DURATION", "PROMPT"]
    assert table[1].startswith(listed[0]["id"][:8])
    ids = aura("session", "list", "--ids-only").stdout.split()
    assert ids == [listed[0]["id"]]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["run", "-e", "nope", "-p", "x"], "unknown executor 'nope'"),
        (["run", "-e", "custom", "--base-command", "true"], "missing prompt"),
        (["run", "-e", "custom", "-p", "x", "--var", "FOO", "--base-command", "true"], "KEY=VALUE"),
        (["run", "-e", "custom", "-p", "x", "--auto-approve", "maybe"], "true or false"),
        (["run", "-e", "custom", "-p", "x", "--executor-path", "custom=/no/such"], "no file at"),
        (["run", "-e", "custom", "-p", "x"], "--base-command"),
        (
            ["run", "-e", "custom", "-p", "x", "--cwd", "/no/such/dir", "--base-command", "true"],
            "no such directory",
        ),
        (["session", "show", "deadbeef"], "no session matches"),
        (["frobnicate"], "invalid choice"),
        (["completion", "tcsh"], "invalid choice: 'tcsh'"),
        (
            ["run", "-e", "custom", "-p", "x", "--base-command", "no-such-program-xyz"],
            "not found on PATH",
        ),
    ],
)
def test_bad_input_one_line_no_traceback(aura: AuraCli, args: list[str], needle: str) -> None:
    res = aura(*args)
    assert res.returncode != 0
    assert needle in res.stderr
    assert "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr


def test_corrupt_database_left_untouched(aura: AuraCli, isolated_home: Path) -> None:
    data = isolated_home / "aura-data"
    data.mkdir()
    (data / "aura.db").write_bytes(b"garbage" * 1000)
    res = aura("session", "list")
    assert res.returncode != 0 and "untouched" in res.stderr and "Traceback" not in res.stderr
    assert (data / "aura.db").read_bytes() == b"garbage" * 1000


def test_no_textual_on_fast_paths(aura: AuraCli) -> None:
    assert aura(*SEED).returncode == 0
    for args in (["session", "latest"], SEED):
        code = (
            "import sys, runpy\n"
            f"sys.argv = ['aura', *{args!r}]\n"
            "try:\n    runpy.run_module('aura_tui', run_name='__main__')\n"
            "except SystemExit:\n    pass\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich'))\n"
            "print('LOADED', bad, file=sys.stderr)\n"
        )
        res = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=dict(os.environ)
        )
        assert "LOADED []" in res.stderr, res.stderr


def _spawn_long_run(home: Path, script: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "aura_tui",
            "run",
            "-e",
            "custom",
            "-p",
            "long",
            "--base-command",
            "sh",
            "--param",
            "-c",
            "--param",
            script,
            "--no-tui",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )


def _wait_for_session(home: Path, timeout: float = 20) -> sqlite3.Row:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            row = _db(home).execute("SELECT * FROM sessions").fetchone()
            if row is not None and row["pid"]:
                count = _db(home).execute("SELECT count(*) FROM log_lines").fetchone()[0]
                if count >= 1:
                    return row  # type: ignore[no-any-return]
        except sqlite3.OperationalError:
            pass
        time.sleep(0.05)
    raise AssertionError("the session never started")


def _wait_gone(pgid: int, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not procinfo.group_alive(pgid):
            return True
        time.sleep(0.05)
    return False


# A tree: sh -> (sleep in a subshell: a grandchild) and a trap-ignoring child.
TREE = "echo started; (sleep 300 &) ; sh -c 'trap \"\" INT; sleep 300' & sleep 300"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_the_whole_group(isolated_home: Path, sig: int) -> None:
    proc = _spawn_long_run(isolated_home, TREE)
    row = _wait_for_session(isolated_home)
    proc.send_signal(sig)
    proc.communicate(timeout=30)
    assert proc.returncode == 128 + sig
    assert _wait_gone(row["pgid"])
    done = _db(isolated_home).execute("SELECT status FROM sessions").fetchone()
    assert done["status"] == "killed"


def test_sigkill_of_aura_leaves_no_orphans(aura: AuraCli, isolated_home: Path) -> None:
    proc = _spawn_long_run(isolated_home, TREE + "; echo never")
    row = _wait_for_session(isolated_home)
    proc.kill()
    proc.communicate(timeout=10)
    assert _wait_gone(row["pgid"], timeout=15), "agent processes survived aura's SIGKILL"
    res = aura("session", "latest")
    assert res.returncode == 0
    assert "interrupted" in res.stdout
    status = _db(isolated_home).execute("SELECT status FROM sessions").fetchone()["status"]
    assert status == "interrupted"
    assert "started" in res.stdout  # the line printed before the kill is kept


# A tool started in a session of its own (as gemini and claude do): not in the agent's group.
ESCAPED = "setsid sh -c 'echo $$ > {pidfile}; exec sleep 300' & echo started; sleep 300"


def _escaped_pid(pidfile: Path) -> int:
    deadline = time.monotonic() + 10
    while not pidfile.exists() or not pidfile.read_text().strip():
        assert time.monotonic() < deadline, "the escaped child never started"
        time.sleep(0.05)
    return int(pidfile.read_text())


def _pid_gone(pid: int, timeout: float = 15) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not procinfo.is_alive(pid, None):
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("how", ["sigterm", "sigkill"])
def test_stop_reaches_tools_in_their_own_session(
    isolated_home: Path, tmp_path: Path, how: str
) -> None:
    pidfile = tmp_path / "escaped.pid"
    proc = _spawn_long_run(isolated_home, ESCAPED.format(pidfile=pidfile))
    _wait_for_session(isolated_home)
    escaped = _escaped_pid(pidfile)
    time.sleep(1.2)  # let aura see the tree once (it looks every second)
    proc.send_signal(signal.SIGTERM if how == "sigterm" else signal.SIGKILL)
    proc.communicate(timeout=30)
    assert _pid_gone(escaped), f"the tool in its own session survived {how}"


def test_agent_defined_in_the_config(aura: AuraCli, isolated_home: Path) -> None:
    cfg = isolated_home / ".config" / "aura"
    cfg.mkdir(parents=True, exist_ok=True)
    (cfg / "config.toml").write_text(
        "[executors.echoer]\n"
        "command = \"sh -c 'echo agent got: $1 / $GREETING' echoer\"\n"
        'env = { GREETING = "hi" }\n'
        "[executors.reader]\n"
        "command = \"sh -c 'read line; echo read: $line'\"\n"
        'prompt = "stdin"\n'
    )
    res = aura("run", "-e", "echoer", "-p", "do it", "--no-tui")
    assert res.returncode == 0, res.stderr
    assert res.stdout == "agent got: do it / hi\n"
    res = aura("run", "-e", "reader", "-p", "from stdin", "--no-tui")
    assert res.returncode == 0, res.stderr
    assert res.stdout == "read: from stdin\n"
    listed = json.loads(aura("session", "list", "--json").stdout)
    assert {r["executor"] for r in listed} == {"echoer", "reader"}
    doctor = json.loads(aura("doctor", "--json").stdout)
    echoer = next(r for r in doctor if r["name"] == "echoer")
    assert echoer["found"] and "defined in the config" in echoer["note"]
    bad = aura("run", "-e", "nobody", "-p", "x", "--no-tui")
    assert bad.returncode != 0 and "echoer" in bad.stderr and "Traceback" not in bad.stderr
