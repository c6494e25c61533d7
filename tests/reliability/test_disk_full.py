"""AURA_HOME on a 2 MB filesystem made by the test, while an agent logs 10 MB: a clear one-line
error, a failed session that says why, nothing corrupted, and everything works again once space
returns.

The filesystem is a tmpfs (`mount -t tmpfs -o size=2m`, as root or through `sudo -n`), else a
loop-mounted ext2 image. Without either the test is skipped, saying why; under CI=true as root
that is a failure instead (the runner can do it, so the test must run).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.reliability.support import (
    MARK_VAR,
    aura_argv,
    check_store,
    db_file,
    has_traceback,
    integrity,
    lane_env,
    marked_pids,
    printed_lines,
    run_aura,
    stored_lines,
    wait_until,
)

SIZE_KB = 2048
BALLAST = 768 << 10
BIG = "import sys\nfor i in range(200000): print(f'line {i:08d} ' + 'x' * 40)"


def _try(argv: list[str]) -> str | None:
    """None on success, else why it failed."""
    try:
        res = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{argv[0]}: {exc}"
    return None if res.returncode == 0 else f"{' '.join(argv)}: {res.stderr.strip()}"


def _mount(where: Path) -> tuple[list[str] | None, list[str]]:
    """Mount a SIZE_KB filesystem on `where`: (its unmount command or None, why each way failed)."""
    errors: list[str] = []
    root = os.geteuid() == 0
    sudo = [] if root else ["sudo", "-n"]
    owner = "" if root else f",uid={os.getuid()},gid={os.getgid()}"
    err = _try(
        [*sudo, "mount", "-t", "tmpfs", "-o", f"size={SIZE_KB}k{owner}", "tmpfs", str(where)]
    )
    if err is None:
        return [*sudo, "umount", str(where)], errors
    errors.append(err)
    image = where.parent / "small.img"
    with image.open("wb") as fh:
        fh.truncate(SIZE_KB * 1024)
    err = _try(["mkfs.ext2", "-q", "-F", "-m", "0", str(image)])
    if err is None:
        err = _try([*sudo, "mount", "-o", "loop", str(image), str(where)])
        if err is None:
            if not root:
                _try([*sudo, "chown", f"{os.getuid()}:{os.getgid()}", str(where)])
            return [*sudo, "umount", str(where)], errors
    errors.append(err)
    return None, errors


@contextlib.contextmanager
def small_filesystem(where: Path) -> Iterator[Path]:
    where.mkdir(parents=True, exist_ok=True)
    umount, errors = _mount(where)
    if umount is None:
        reason = "cannot make a small filesystem: " + " | ".join(errors)
        if os.environ.get("CI") == "true" and os.geteuid() == 0:
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        yield where
    finally:
        if _try(umount) is not None:
            _try([*umount[:-1], "-l", umount[-1]])


def _fill(path: Path) -> Path:
    """Take every free byte of the filesystem holding `path` (unbuffered: nothing left to flush)."""
    filler = path / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        for size in (65536, 512, 1):
            with contextlib.suppress(OSError):
                while os.write(fd, b"\0" * size):
                    pass
    finally:
        os.close(fd)
    return filler


def _one_line_error(res: subprocess.CompletedProcess[str], what: str) -> None:
    assert not has_traceback(res.stderr), f"{what}: traceback:\n{res.stderr}"
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("aura: error:")]
    assert res.returncode != 0 and len(lines) == 1, f"{what}: {res.returncode} {res.stderr!r}"
    assert "disk is full" in lines[0], f"{what}: {lines[0]}"


def test_disk_full_while_logging(tmp_path: Path) -> None:
    with small_filesystem(tmp_path / "fs") as fs:
        env = lane_env(tmp_path / "home", AURA_HOME=str(fs))
        db = db_file(env)
        ballast = fs / "ballast"  # deleted at the end: how space "returns"
        ballast.write_bytes(b"\0" * BALLAST)
        first = run_aura(
            env, "run", "-e", "custom", "-p", "first", "--base-command", "seq", "--param", "1",
            "--param", "100", "--no-tui", cwd=tmp_path,
        )  # fmt: skip
        assert first.returncode == 0, first.stderr

        # 1. a run started on a disk with no byte left: one line, no traceback
        filler = _fill(fs)
        try:
            full = run_aura(
                env, "run", "-e", "custom", "-p", "no room", "--base-command", "echo",
                "--param", "hi", "--no-tui", cwd=tmp_path,
            )  # fmt: skip
            _one_line_error(full, "aura run on a full disk")
            listed = run_aura(env, "session", "list")
            assert not has_traceback(listed.stderr), listed.stderr
            if listed.returncode != 0:
                _one_line_error(listed, "aura session list on a full disk")
        finally:
            filler.unlink()

        # 2. an agent logging 10 MB into what is left: stopped, failed with the reason, no traceback
        mark = f"diskfull-{os.getpid()}"
        started = time.monotonic()
        big = subprocess.run(
            aura_argv(
                *("run", "-e", "custom", "-p", "big", "--no-tui"),
                *("--base-command", "python3", "--param", "-c", "--param", BIG),
            ),
            env={**env, MARK_VAR: mark},
            capture_output=True,
            timeout=120,
            cwd=tmp_path,
        )
        took = time.monotonic() - started
        err = big.stderr.decode(errors="replace")
        assert big.returncode != 0, err
        assert not has_traceback(err), err
        assert "could not store the log" in err and "disk is full" in err, err
        assert took < 60, f"the run went on for {took:.0f}s after the disk filled"
        assert wait_until(lambda: not marked_pids(mark), 10), "the agent outlived the failure"
        sessions = json.loads(run_aura(env, "session", "list", "--json").stdout)
        by_prompt = {s["prompt"]: s for s in sessions}
        assert by_prompt["big"]["status"] == "failed"
        assert "disk is full" in by_prompt["big"]["error"]
        printed = printed_lines(big.stdout)
        assert printed, "nothing was logged before the disk filled: the test proves nothing"
        stored = stored_lines(db)
        assert all(p in stored for p in printed), "a line shown before the failure was not kept"
        assert integrity(db) == "ok"

        ballast.unlink()

        # 3. space is back: new runs work, earlier rows are intact, the store is consistent
        again = run_aura(
            env, "run", "-e", "custom", "-p", "again", "--base-command", "seq", "--param", "1",
            "--param", "50", "--no-tui", cwd=tmp_path,
        )  # fmt: skip
        assert again.returncode == 0, again.stderr
        assert again.stdout.split() == [str(i) for i in range(1, 51)]
        shown = run_aura(env, "session", "show", by_prompt["first"]["id"], "--raw")
        assert [ln for ln in shown.stdout.splitlines()[-100:]] == [str(i) for i in range(1, 101)]
        assert check_store(db) == []
