"""`aura task` headless: the whole loop through the CLI, and kill -9 at every stage."""

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
from tests.support.gitrepo import git, make_repo, worktrees


def write_config(home: Path, text: str) -> None:
    cfg = home / ".config" / "aura"
    cfg.mkdir(parents=True, exist_ok=True)
    (cfg / "config.toml").write_text(text)


def test_task_loop_through_the_cli(aura: AuraCli, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    script = 'echo "$AURA_PROMPT" >> notes.txt; echo wrote notes'
    add = aura(
        *("task", "add", "--title", "Take notes", "--prompt", "first note", "--repo", str(repo)),
        *("--base-command", "sh", "--param", "-c", "--param", script),
    )
    assert add.returncode == 0, add.stderr
    task_id = add.stdout.strip()
    listed = aura("task", "list")
    assert "Take notes" in listed.stdout and "backlog" in listed.stdout
    start = aura("task", "start", task_id[:6])
    assert start.returncode == 0, start.stderr
    assert "wrote notes" in start.stdout
    shown = json.loads(aura("task", "show", task_id, "--json").stdout)
    assert shown["state"] == "review"
    branch = shown["executions"][-1]["branch"]
    wt = Path(shown["executions"][-1]["workspace"][0])
    assert {w["worktree"] for w in worktrees(repo)} >= {str(repo), str(wt)}
    diff = aura("task", "diff", task_id)
    assert "+first note" in diff.stdout
    stat = aura("task", "diff", task_id, "--stat")
    assert "added     notes.txt +" in stat.stdout and "1 file(s)" in stat.stdout
    follow = aura("task", "follow-up", task_id, "--feedback", "second note please")
    assert follow.returncode == 0, follow.stderr
    assert "second note please" in (wt / "notes.txt").read_text()
    refused = aura("task", "move", task_id, "backlog")
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    approve = aura("task", "approve", task_id, "--merge")
    assert approve.returncode == 0, approve.stderr
    assert "second note please" in git(repo, "show", "main:notes.txt")
    removed = aura("task", "remove", task_id)
    assert removed.returncode == 0, removed.stderr
    assert str(wt) not in {w["worktree"] for w in worktrees(repo)}
    assert branch not in git(repo, "branch", "--list")
    assert "No tasks yet" in aura("task", "list").stdout


def test_task_cli_errors(aura: AuraCli, tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    res = aura("task", "add", "--title", "x", "--repo", str(plain))
    assert res.returncode != 0 and "git" in res.stderr and "Traceback" not in res.stderr
    res = aura("task", "start", "nope")
    assert res.returncode != 0 and "no task matches" in res.stderr
    repo = make_repo(tmp_path / "repo")
    task_id = aura("task", "add", "--title", "x", "--repo", str(repo)).stdout.strip()
    res = aura("task", "approve", task_id)
    assert res.returncode != 0 and "not in review" in res.stderr
    res = aura("task", "diff", task_id)
    assert res.returncode != 0 and "no worktree yet" in res.stderr
    write_config(Path(os.environ["HOME"]), "[runtime]\nmax_concurrent = 'lots'\n")
    res = aura("task", "list")
    assert res.returncode != 0 and "runtime.max_concurrent" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


# --- kill -9 at every stage -------------------------------------------------------------------

SLOW = 'if [ -f "$GATE/{stage}" ]; then echo {stage}-begin; sleep 60; fi'
AGENT = (
    'case "$AURA_RUN_MODE" in review) ' + SLOW.format(stage="review") + "; echo VERDICT: approve;; "
    "*) echo coding-begin; echo change >> work.txt; "
    'if [ -f "$GATE/coding" ]; then sleep 60; fi;; esac'
)


def _db(home: Path) -> sqlite3.Connection:
    con = sqlite3.connect(home / "aura-data" / "aura.db", timeout=30)
    con.row_factory = sqlite3.Row
    return con


def _stage(home: Path) -> tuple[str | None, int]:
    try:
        con = _db(home)
        row = con.execute("SELECT id, stage FROM executions ORDER BY created_at DESC").fetchone()
        if row is None:
            return None, 0
        n = con.execute(
            "SELECT count(*) FROM events WHERE execution_id = ?", (row["id"],)
        ).fetchone()[0]
        return row["stage"], n
    except sqlite3.OperationalError:
        return None, 0


def _session_pgids(home: Path) -> list[int]:
    return [r[0] for r in _db(home).execute("SELECT pgid FROM sessions WHERE pgid IS NOT NULL")]


@pytest.mark.parametrize("stage", ["prepare_workspace", "setup", "coding", "cleanup", "review"])
def test_kill_9_at_each_stage(
    aura: AuraCli, isolated_home: Path, tmp_path: Path, stage: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = {"README.md": "hi\n"}
    if stage == "prepare_workspace":  # a checkout big enough to be caught in the middle
        files.update({f"data/f{i:04d}.bin": "x" * 40_000 + str(i) for i in range(2500)})
    repo = make_repo(tmp_path / "repo", files)
    gate = tmp_path / "gate"
    gate.mkdir()
    (gate / stage).touch()
    write_config(
        isolated_home,
        "[scripts]\n"
        f"setup = '{SLOW.format(stage='setup')}'\n"
        f"cleanup = '{SLOW.format(stage='cleanup')}'\n",
    )
    monkeypatch.setenv("GATE", str(gate))
    task_id = aura(
        *("task", "add", "--title", "Crash me", "--repo", str(repo), "--review"),
        *("--base-command", "sh", "--param", "-c", "--param", AGENT),
    ).stdout.strip()
    assert task_id
    proc = subprocess.Popen(
        [sys.executable, "-m", "aura_tui", "task", "start", task_id],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(os.environ),
    )
    want = "coding_initial" if stage == "coding" else stage
    deadline = time.monotonic() + 60
    seen = None
    while time.monotonic() < deadline:
        seen, _ = _stage(isolated_home)
        if seen == want:
            if stage == "prepare_workspace":
                break
            count = (
                _db(isolated_home)
                .execute("SELECT count(*) FROM log_lines WHERE text = ?", (f"{stage}-begin",))
                .fetchone()[0]
            )
            if count:
                break
        time.sleep(0.002)
    assert seen == want, f"never reached {want} (last {seen})"
    proc.kill()
    out, _ = proc.communicate(timeout=20)
    # the watchdog ends every agent process the dead aura left
    for pgid in _session_pgids(isolated_home):
        end = time.monotonic() + 15
        while procinfo.group_alive(pgid) and time.monotonic() < end:
            time.sleep(0.05)
        assert not procinfo.group_alive(pgid), f"process group {pgid} survived"
    lock = None
    if stage == "coding":  # killed while committing: git's lock stays behind (seen under load)
        row = _db(isolated_home).execute("SELECT workspace FROM executions").fetchone()
        worktree = json.loads(row[0])[0]
        lock = Path(worktree, git(Path(worktree), "rev-parse", "--git-dir").strip(), "index.lock")
        lock.touch()
    # the next aura command recovers: task blocked and resumable, sessions interrupted
    shown = json.loads(aura("task", "show", task_id, "--json").stdout)
    if lock is not None:
        assert not lock.exists()  # the dead aura's lock is cleared, so a resume can commit
    assert shown["state"] == "blocked"
    assert "interrupted by a crash" in shown["blocked_reason"]
    assert all(s["status"] != "running" for s in shown["sessions"])
    con = _db(isolated_home)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    stored = {r[0] for r in con.execute("SELECT text FROM log_lines")}
    for line in out.decode().splitlines():  # nothing printed before the kill is lost
        assert line in stored
    if stage != "prepare_workspace":
        wt = Path(shown["executions"][-1]["workspace"][0])
        assert str(wt) in {w["worktree"] for w in worktrees(repo)}
        if stage in ("review",):
            assert "Crash me" in git(wt, "log", "--format=%s", "-1")  # the turn's commit survived
    # retry: with the gate open it runs through to review
    (gate / stage).unlink()
    retry = aura("task", "start", task_id, timeout=120)
    assert retry.returncode == 0, retry.stderr
    final = json.loads(aura("task", "show", task_id, "--json").stdout)
    assert final["state"] == "review"
    wt = Path(final["executions"][-1]["workspace"][0])
    assert git(wt, "status", "--porcelain") == ""
    if stage == "prepare_workspace":
        assert len(list((wt / "data").iterdir())) == 2500  # a half checkout was repaired


def test_sigterm_to_task_start_cancels(isolated_home: Path, aura: AuraCli, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    task_id = aura(
        *("task", "add", "--title", "Long", "--repo", str(repo), "--base-command", "sh"),
        *("--param", "-c", "--param", "echo go; sleep 60"),
    ).stdout.strip()
    proc = subprocess.Popen(
        [sys.executable, "-m", "aura_tui", "task", "start", task_id],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(os.environ),
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        rows = _db(isolated_home).execute("SELECT count(*) FROM log_lines WHERE text='go'")
        if rows.fetchone()[0]:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    assert proc.returncode == 128 + signal.SIGTERM
    shown = json.loads(aura("task", "show", task_id, "--json").stdout)
    assert shown["state"] == "cancelled"
    assert shown["sessions"][-1]["status"] == "killed"


def test_orphaned_worktrees_preview_then_clean(aura: AuraCli, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    task_id = aura(
        *("task", "add", "--title", "Orphan me", "--repo", str(repo)),
        *("--base-command", "sh", "--param", "-c", "--param", "echo x > f.txt"),
    ).stdout.strip()
    assert aura("task", "start", task_id).returncode == 0
    shown = json.loads(aura("task", "show", task_id, "--json").stdout)
    wt = Path(shown["executions"][-1]["workspace"][0])
    assert aura("task", "orphans").stdout.strip() == "No orphaned worktrees."
    # a task deleted behind aura's back leaves its worktree orphaned (with unmerged work)
    con = sqlite3.connect(Path(os.environ["AURA_HOME"]) / "aura.db")
    con.execute("DELETE FROM tasks")
    con.commit()
    con.close()
    preview = aura("task", "orphans")
    assert "skipped" in preview.stdout and str(wt) in preview.stdout  # unmerged work is kept
    assert wt.exists()
    forced = aura("task", "orphans", "--clean", "--force")
    assert forced.returncode == 0 and "removed" in forced.stdout
    assert not wt.exists()
    assert str(wt) not in {w["worktree"] for w in worktrees(repo)}


def test_task_dev_prints_the_url_and_ctrl_c_stops_it(
    isolated_home: Path, aura: AuraCli, tmp_path: Path
) -> None:
    import socket
    import urllib.request

    with socket.socket() as sock:  # a free base port for this test
        sock.bind(("127.0.0.1", 0))
        base = int(sock.getsockname()[1])
    write_config(
        isolated_home,
        f"[runtime]\ndev_port_base = {base}\ndev_port_count = 20\n"
        "[scripts]\n"
        f"dev_server = 'echo up; exec {sys.executable} -m http.server $AURA_PORT "
        "--bind 127.0.0.1'\n",
    )
    repo = make_repo(tmp_path / "repo")
    # the agent sees the task's port as $AURA_PORT
    task_id = aura(
        *("task", "add", "--title", "Serve", "--repo", str(repo), "--base-command", "sh"),
        *("--param", "-c", "--param", 'echo "agent port $AURA_PORT"'),
    ).stdout.strip()
    start = aura("task", "start", task_id)
    assert start.returncode == 0, start.stderr
    shown = json.loads(aura("task", "show", task_id, "--json").stdout)
    port = shown["options"]["dev_port"]
    assert base <= port < base + 20
    assert f"agent port {port}" in start.stdout
    proc = subprocess.Popen(
        [sys.executable, "-m", "aura_tui", "task", "dev", task_id[:8]],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url == f"http://127.0.0.1:{port}", proc.stderr.read() if proc.stderr else ""
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    assert response.status == 200
                break
            except OSError:
                assert time.monotonic() < deadline, "the dev server never answered"
                time.sleep(0.1)
        # a second one is refused while it runs
        again = aura("task", "dev", task_id)
        assert again.returncode != 0 and "already running" in again.stderr
        # the move guard does not count it: a follow-up may change the code it serves
        moved = aura("task", "move", task_id, "in_progress").stderr
        assert "needs your feedback" in moved and "dev server" not in moved
        pgids = _session_pgids(isolated_home)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        out, err = proc.stdout.read(), proc.stderr.read() if proc.stderr else ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 128 + signal.SIGINT, err
    assert "up" in out.splitlines()  # its output was streamed
    assert "dev server killed" in err
    for pgid in pgids:
        end = time.monotonic() + 15
        while procinfo.group_alive(pgid) and time.monotonic() < end:
            time.sleep(0.05)
        assert not procinfo.group_alive(pgid), f"process group {pgid} survived"
    shown = json.loads(aura("task", "show", task_id, "--json").stdout)
    dev = [s for s in shown["sessions"] if s["stage"] == "dev_server"]
    assert len(dev) == 1 and dev[0]["status"] == "killed"
    assert shown["state"] == "review"  # the dev server leaves the task's state alone
    stop = aura("task", "dev", task_id, "--stop")
    assert stop.returncode == 0 and "no dev server" in stop.stdout


def test_task_dev_stop_ends_one_another_aura_runs(
    isolated_home: Path, aura: AuraCli, tmp_path: Path
) -> None:
    write_config(isolated_home, "[scripts]\ndev_server = 'echo up; sleep 120'\n")
    repo = make_repo(tmp_path / "repo")
    task_id = aura(
        *("task", "add", "--title", "Serve", "--repo", str(repo), "--base-command", "true"),
    ).stdout.strip()
    assert aura("task", "start", task_id).returncode == 0
    res = aura("task", "dev", "--stop", task_id)
    assert res.returncode == 0 and "no dev server" in res.stdout
    proc = subprocess.Popen(
        [sys.executable, "-m", "aura_tui", "task", "dev", task_id],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("http://127.0.0.1:")
        pgids = _session_pgids(isolated_home)
        stop = aura("task", "dev", task_id, "--stop")
        assert stop.returncode == 0 and "dev server stopped" in stop.stdout, stop.stderr
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 1  # its server ended without it asking
    for pgid in pgids:
        assert not procinfo.group_alive(pgid)


def test_task_dev_refusals(isolated_home: Path, aura: AuraCli, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    task_id = aura("task", "add", "--title", "x", "--repo", str(repo)).stdout.strip()
    res = aura("task", "dev", task_id)
    assert res.returncode != 0 and "[scripts] dev_server" in res.stderr
    write_config(isolated_home, "[scripts]\ndev_server = 'sleep 60'\n")
    res = aura("task", "dev", task_id)
    assert res.returncode != 0 and "no worktree yet" in res.stderr
    assert "Traceback" not in res.stderr
