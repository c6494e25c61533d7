"""Notifications: a fake notify-send on PATH, hooks that write files, never blocking the caller."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

from aura_core.config import NotifyConfig, parse_config
from aura_core.engine.runtime import Runtime, RuntimeEvent
from aura_core.notify import Notification, Notifier
from aura_core.store.sqlite import SqliteStore
from tests.support.gitrepo import make_repo

FAKE_NOTIFY_SEND = """\
import json, os, sys
with open(os.environ["FAKE_NOTIFY_LOG"], "a") as fh:
    fh.write(json.dumps(sys.argv[1:]) + "\\n")
"""
HOOK = 'printf "%s|%s|%s|%s\\n" "$AURA_EVENT" "$AURA_TASK_ID" "$AURA_TASK_TITLE" "$AURA_MESSAGE"'


@pytest.fixture
def desktop_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fake notify-send first on PATH; returns the file it appends its argv to."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "notify-send"
    script.write_text(f"#!{sys.executable}\n{FAKE_NOTIFY_SEND}")
    script.chmod(0o755)
    log = tmp_path / "notify-send.log"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_NOTIFY_LOG", str(log))
    return log


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_review_runs_desktop_and_hook_with_the_task_in_its_env(
    desktop_log: Path, tmp_path: Path
) -> None:
    out = tmp_path / "hook.out"
    notifier = Notifier(NotifyConfig(on_review=f"{HOOK} >> {out}", on_fail=f"echo no >> {out}"))
    result = notifier.notify("review", "Fix login", "'Fix login' needs review", task_id="t-1")
    assert result == Notification(kind="review", bell=True, desktop=True, hook=True)
    assert notifier.wait(10)
    assert lines(out) == ["review|t-1|Fix login|'Fix login' needs review"]
    args = [json.loads(line) for line in lines(desktop_log)]
    assert args == [
        ["--app-name=AURA", "--urgency=normal", "AURA: Fix login", "'Fix login' needs review"]
    ]


def test_fail_uses_on_fail_and_critical_urgency(desktop_log: Path, tmp_path: Path) -> None:
    out = tmp_path / "hook.out"
    notifier = Notifier(NotifyConfig(on_review=f"echo no >> {out}", on_fail=f"{HOOK} >> {out}"))
    result = notifier.notify("fail", "Fix login", "'Fix login' failed: exit 1", task_id="t-2")
    assert result.hook and result.desktop and result.bell
    assert notifier.wait(10)
    assert lines(out) == ["fail|t-2|Fix login|'Fix login' failed: exit 1"]
    assert "--urgency=critical" in json.loads(lines(desktop_log)[0])


def test_switches_off(desktop_log: Path, tmp_path: Path) -> None:
    notifier = Notifier(NotifyConfig(bell=False, desktop=False))
    result = notifier.notify("review", "T", "m")
    assert result == Notification(kind="review", bell=False, desktop=False, hook=False)
    assert notifier.wait(5)
    assert lines(desktop_log) == []
    with pytest.raises(ValueError, match="review"):
        notifier.notify("done", "T", "m")  # type: ignore[arg-type]


def test_without_notify_send_nothing_breaks(tmp_path: Path) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    notifier = Notifier(NotifyConfig(on_fail="exit 3"), env={**os.environ, "PATH": str(empty)})
    result = notifier.notify("fail", "T", "m")
    assert not result.desktop and result.hook  # /bin/sh is found without PATH
    assert notifier.wait(5)
    broken = Notifier(NotifyConfig(on_review="no-such-command-for-aura --x"))
    assert broken.notify("review", "T", "m").hook
    assert broken.wait(5)


def test_a_slow_hook_never_blocks_and_is_stopped_after_its_time(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    hook = f"echo $$ > {pid_file}; sleep 30; echo late > {tmp_path / 'late'}"
    notifier = Notifier(NotifyConfig(desktop=False, on_review=hook), hook_timeout=0.5)
    started = time.monotonic()
    assert notifier.notify("review", "T", "m").hook
    assert time.monotonic() - started < 0.5
    assert notifier.wait(10)
    pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not (tmp_path / "late").exists()


def test_hook_output_is_discarded(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    notifier = Notifier(NotifyConfig(desktop=False, on_review="echo LOUD; echo NOISY >&2"))
    notifier.notify("review", "T", "m")
    assert notifier.wait(5)
    captured = capfd.readouterr()
    assert "LOUD" not in captured.out and "NOISY" not in captured.err


def test_attach_to_the_runtime_on_review_and_on_fail(desktop_log: Path, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    out = tmp_path / "hook.out"
    cfg = parse_config(
        {
            "worktrees": {"root": str(tmp_path / "wt")},
            "notify": {"on_review": f"{HOOK} >> {out}", "on_fail": f"{HOOK} >> {out}"},
        }
    )
    rt = Runtime(SqliteStore(tmp_path / "aura.db"), cfg)
    notifier = Notifier(cfg.notify)
    seen: list[Notification] = []
    unsubscribe = notifier.attach(rt, seen.append)

    def run(title: str, script: str) -> str:
        options = {"base_command": "sh", "params": ["-c", script]}
        task = rt.add_task(title, "p", "custom", options=options, repos=[str(repo)])
        rt.start(task.id)
        assert rt.wait(task.id, timeout=60)
        return task.id

    good = run("Good task", "echo done > out.txt")
    bad = run("Bad task", "echo broken >&2; exit 3")
    assert notifier.wait(10)
    assert [n.kind for n in seen] == ["review", "fail"] and all(n.bell for n in seen)
    hooked = lines(out)
    assert hooked[0] == f"review|{good}|Good task|'Good task' needs review"
    assert hooked[1].startswith(f"fail|{bad}|Bad task|'Bad task' failed")
    assert len(lines(desktop_log)) == 2

    unsubscribe()
    rt._emit(RuntimeEvent("notify", good, level="error", message="ignored"))
    rt._emit(RuntimeEvent("log", good))
    assert notifier.wait(5) and len(seen) == 2


def test_quitting_with_a_running_task_is_not_a_failure(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    out = tmp_path / "hook.out"
    cfg = parse_config(
        {
            "worktrees": {"root": str(tmp_path / "wt")},
            "notify": {"desktop": False, "on_fail": f"{HOOK} >> {out}"},
        }
    )
    rt = Runtime(SqliteStore(tmp_path / "aura.db"), cfg)
    notifier = Notifier(cfg.notify)
    seen: list[Notification] = []
    notifier.attach(rt, seen.append)
    options = {"base_command": "sh", "params": ["-c", "echo started; sleep 30"]}
    task = rt.add_task("Long", "p", "custom", options=options, repos=[str(repo)])
    logs: list[RuntimeEvent] = []
    rt.subscribe(lambda e: logs.append(e) if e.kind == "log" else None)
    rt.start(task.id)
    deadline = time.monotonic() + 30
    while not any("started" in row[4] for e in logs for row in e.rows):
        assert time.monotonic() < deadline, "the task never started"
        time.sleep(0.05)
    rt.shutdown(stop_running=False)
    assert rt.store.get_task(task.id).state.value == "blocked"
    assert notifier.wait(5)
    assert seen == [] and lines(out) == []
