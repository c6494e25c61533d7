"""kill -9 of `aura task start` at random points of a task's life, then everything must hold.

Each trial adds a task whose agent prints numbered lines in quick bursts with short sleeps, starts
it, and SIGKILLs the aura process at a random delay of 0-1.5 s (from before the engine starts to
after review is reached). Then: no process of the run is left (recorded process groups and every
process carrying the trial's mark), no line the killed process printed is missing from the store,
the store is consistent (integrity check, event logs replay to the stored states, no session left
'running' after the next aura command), the repo's worktrees and objects are intact, and
`aura task start` again brings the task to review.

Two lanes run side by side (each its own AURA_HOME and repo), one with a setup script and a review
stage, one plain. The seed is AURA_RELIABILITY_SEED (default: fixed), the trial count
AURA_RELIABILITY_TRIALS (default 50); a failure names the seed, lane and trial.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tests.reliability.support import (
    MARK_VAR,
    aura_argv,
    check_store,
    connect,
    db_file,
    describe,
    end_marked,
    lane_env,
    live_group_members,
    marked_pids,
    printed_lines,
    run_aura,
    stored_lines,
    wait_until,
    write_config,
)
from tests.support.gitrepo import git, make_repo, worktrees

SEED = int(os.environ.get("AURA_RELIABILITY_SEED", "20240607"))
TRIALS = int(os.environ.get("AURA_RELIABILITY_TRIALS", "50"))
MAX_DELAY_S = 1.5
ORPHAN_TIMEOUT_S = 8.0  # the watchdog's ladder is SIGTERM, 2 s, SIGKILL

# Review mode prints and approves; coding prints numbered bursts and changes a file.
AGENT = (
    'for b in 1 2 3 4 5; do seq -f "$AURA_RUN_MODE-$b-%g" 1 25; sleep 0.06; done; '
    'if [ "$AURA_RUN_MODE" = review ]; then echo "VERDICT: approve"; '
    'else echo "$AURA_SESSION_ID" >> work.txt; fi'
)


@dataclass
class Lane:
    name: str
    root: Path
    review: bool
    rng: random.Random
    env: dict[str, str] = field(default_factory=dict)
    repo: Path = Path()
    problems: list[str] = field(default_factory=list)
    trials: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)

    def setup(self) -> None:
        self.env = lane_env(self.root / "home")
        self.repo = make_repo(self.root / "repo")
        if self.review:
            write_config(self.env, "[scripts]\nsetup = 'echo setup-ok'\ncleanup = 'true'\n")

    def fail(self, trial: int, delay: float, message: str) -> None:
        self.problems.append(
            f"[seed {SEED} lane {self.name} trial {trial} delay {delay:.3f}s] {message}"
        )


def _add_task(lane: Lane, title: str) -> str:
    """Added in-process (the CLI's `task add` is tested elsewhere): trials stay fast."""
    from aura_core.engine.runtime import Runtime
    from aura_core.store.sqlite import SqliteStore

    store = SqliteStore(db_file(lane.env))
    try:
        runtime = Runtime(store, recover=False, data_dir=lane.env["AURA_HOME"])
        options = {"base_command": "sh", "params": ["-c", AGENT]}
        task = runtime.add_task(
            title, "", "custom", options=options, repos=[str(lane.repo)], review=lane.review
        )
    finally:
        store.close()
    return task.id


def _task_show(lane: Lane, task_id: str) -> dict[str, object]:
    res = run_aura(lane.env, "task", "show", task_id, "--json")
    assert res.returncode == 0, res.stderr
    data: dict[str, object] = json.loads(res.stdout)
    return data


def _session_groups(lane: Lane, task_id: str) -> list[int]:
    con_db = db_file(lane.env)
    if not con_db.exists():
        return []
    import sqlite3

    con = sqlite3.connect(con_db, timeout=30)
    try:
        rows = con.execute(
            "SELECT pgid FROM sessions WHERE task_id = ? AND pgid IS NOT NULL", (task_id,)
        ).fetchall()
    finally:
        con.close()
    return [int(r[0]) for r in rows]


def _trial(lane: Lane, trial: int) -> None:
    delay = lane.rng.uniform(0.0, MAX_DELAY_S)
    mark = f"{lane.name}-{trial}-{os.getpid()}"
    env = {**lane.env, MARK_VAR: mark}
    task_id = _add_task(lane, f"Trial {trial}")
    proc = subprocess.Popen(
        aura_argv("task", "start", task_id),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # 1. nothing of the run outlives it: recorded groups, and every process carrying the mark
    groups = _session_groups(lane, task_id)
    if not wait_until(
        lambda: not any(live_group_members(g) for g in groups) and not marked_pids(mark),
        ORPHAN_TIMEOUT_S,
    ):
        left = [p for g in groups for p in live_group_members(g)] + marked_pids(mark)
        lane.fail(trial, delay, f"orphan processes after the kill: {describe(sorted(set(left)))}")
        end_marked(mark)
    # 2. every line the killed process printed is in the store
    db = db_file(lane.env)
    printed = printed_lines(out)
    if printed:
        stored = stored_lines(db, task_id)
        missing = [p for p in printed if p not in stored]
        if missing:
            lane.fail(
                trial,
                delay,
                f"{len(missing)} of {len(printed)} printed lines missing from the store, "
                f"first {missing[:3]}",
            )
    # 3. the next aura command recovers; the store is consistent
    shown = _task_show(lane, task_id)
    for problem in check_store(db):
        lane.fail(trial, delay, f"store: {problem}")
    # 4. the repo, its worktrees and the turns' commits are intact
    fsck = subprocess.run(
        ["git", "fsck", "--no-progress"], cwd=lane.repo, capture_output=True, text=True
    )
    if fsck.returncode != 0:
        lane.fail(trial, delay, f"git fsck: {fsck.stdout} {fsck.stderr}")
    registered = {w["worktree"] for w in worktrees(lane.repo)}
    executions = shown.get("executions") or []
    assert isinstance(executions, list)
    for execution in executions:
        for path in execution.get("workspace") or []:
            if path not in registered:
                lane.fail(trial, delay, f"worktree {path} is recorded but not registered")
            elif subprocess.run(["git", "status"], cwd=path, capture_output=True).returncode:
                lane.fail(trial, delay, f"`git status` fails in worktree {path}")
    sessions = shown.get("sessions") or []
    assert isinstance(sessions, list)
    for session in sessions:
        head_after = (session.get("options") or {}).get("head_after")
        if (
            head_after
            and subprocess.run(
                ["git", "cat-file", "-e", f"{head_after}^{{commit}}"], cwd=lane.repo
            ).returncode
        ):
            lane.fail(trial, delay, f"commit {head_after} of session {session['id'][:8]} lost")
    # 5. resumable: `aura task start` again reaches review
    state = shown["state"]
    stage = executions[-1].get("stage") if executions else None
    outcome = f"{state} at {stage}" if state == "blocked" else str(state)
    lane.outcomes[outcome] = lane.outcomes.get(outcome, 0) + 1
    if state != "review":
        retry = run_aura(env, "task", "start", task_id, timeout=90)
        if retry.returncode != 0:
            lane.fail(
                trial, delay, f"resume from {state} failed ({retry.returncode}): {retry.stderr}"
            )
            end_marked(mark)
            return
    con = connect(db)
    try:
        state = con.execute("SELECT state FROM tasks WHERE id = ?", (task_id,)).fetchone()[0]
        workspace = con.execute(
            "SELECT workspace FROM executions WHERE task_id = ? ORDER BY created_at DESC",
            (task_id,),
        ).fetchone()[0]
    finally:
        con.close()
    if state != "review":
        lane.fail(trial, delay, f"after resume the task is {state}, not review")
        return
    wt = Path(json.loads(workspace)[0])
    if git(wt, "status", "--porcelain").strip():
        lane.fail(trial, delay, f"worktree not clean after resume: {git(wt, 'status', '-s')}")
    if not (wt / "work.txt").exists():
        lane.fail(trial, delay, "the agent's change is missing after resume")
    for problem in check_store(db):
        lane.fail(trial, delay, f"store after resume: {problem}")
    if not wait_until(lambda: not marked_pids(mark), 5):
        lane.fail(trial, delay, f"left running after resume: {describe(marked_pids(mark))}")
    end_marked(mark)


def _run_lane(lane: Lane, trials: range) -> Lane:
    lane.setup()
    for trial in trials:
        _trial(lane, trial)
        lane.trials += 1
    return lane


def test_kill_9_at_random_points(tmp_path: Path) -> None:
    master = random.Random(SEED)
    lanes = [
        Lane("review", tmp_path / "a", review=True, rng=random.Random(master.random())),
        Lane("plain", tmp_path / "b", review=False, rng=random.Random(master.random())),
    ]
    half = (TRIALS + 1) // 2
    ranges = [range(0, half), range(half, TRIALS)]
    with ThreadPoolExecutor(max_workers=len(lanes)) as pool:
        done = list(pool.map(_run_lane, lanes, ranges))
    assert sum(lane.trials for lane in done) == TRIALS
    problems = [p for lane in done for p in lane.problems]
    summary = {lane.name: lane.outcomes for lane in done}
    print(f"kill -9 trials (seed {SEED}): task state found after the kill, per lane: {summary}")
    assert not problems, f"{len(problems)} problem(s) (task states after kill: {summary}):\n" + (
        "\n".join(problems[:40])
    )
