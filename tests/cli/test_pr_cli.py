"""`aura task pr open|status|sync` through the real CLI, with a fake gh and a bare git remote."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import AuraCli
from tests.support.fakegh import FakeGh
from tests.support.gitrepo import git, make_repo

SCRIPT = 'echo "the plan" > plan.txt; echo wrote the plan'


@pytest.fixture
def gh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeGh:
    fake = FakeGh(tmp_path)
    for key, value in fake.env().items():
        if os.environ.get(key) != value:
            monkeypatch.setenv(key, value)
    return fake


def reviewed_task(aura: AuraCli, tmp_path: Path) -> tuple[str, str]:
    """A task whose run finished (in Review), in a repo with a bare `origin`; (id, branch)."""
    repo = make_repo(tmp_path / "repo")
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(tmp_path / "remote.git"))
    git(repo, "remote", "add", "origin", str(tmp_path / "remote.git"))
    git(repo, "push", "-q", "origin", "main")
    add = aura(
        *("task", "add", "--title", "Plan it", "--prompt", "Write the plan.", "--repo", str(repo)),
        *("--base-command", "sh", "--param", "-c", "--param", SCRIPT),
    )
    assert add.returncode == 0, add.stderr
    task_id = add.stdout.strip()
    start = aura("task", "start", task_id)
    assert start.returncode == 0, start.stderr
    shown = json.loads(aura("task", "show", task_id, "--json").stdout)
    return task_id, shown["executions"][-1]["branch"]


def one_line_error(stderr: str) -> bool:
    return (
        stderr.count("\n") == 1 and stderr.startswith("aura: error: ") and "Traceback" not in stderr
    )


def test_open_status_sync_to_done(aura: AuraCli, gh: FakeGh, tmp_path: Path) -> None:
    task_id, branch = reviewed_task(aura, tmp_path)

    opened = aura("task", "pr", "open", task_id[:8])
    assert opened.returncode == 0, opened.stderr
    assert opened.stdout == (
        "Plan it: PR #1 open · CI no checks · review none (opened)\n"
        "https://github.com/acme/widgets/pull/1\n"
    )
    assert git(tmp_path / "remote.git", "branch", "--list", branch).strip() == branch
    assert "- `plan.txt` (added, +1 -0)" in gh.pr(branch)["body"]

    again = aura("task", "pr", "open", task_id, "--json")
    data = json.loads(again.stdout)
    assert data["created"] is False and data["number"] == 1 and data["branch"] == branch

    gh.update(
        branch,
        reviewDecision="APPROVED",
        statusCheckRollup=[
            {"__typename": "CheckRun", "name": "test", "status": "COMPLETED",
             "conclusion": "SUCCESS", "workflowName": "CI"},
        ],
    )  # fmt: skip
    status = aura("task", "pr", "status", task_id)
    assert status.returncode == 0, status.stderr
    assert (
        status.stdout.splitlines()[0] == "Plan it: PR #1 open · CI passing (1/1) · review approved"
    )
    as_json = json.loads(aura("task", "pr", "status", task_id, "--json").stdout)
    assert as_json["ci"] == "passing" and as_json["url"].endswith("/pull/1")

    synced = aura("task", "pr", "sync", task_id)
    assert synced.returncode == 0 and "open" in synced.stdout
    gh.update(branch, state="MERGED", mergedAt="2025-05-05T05:05:05Z")
    synced = aura("task", "pr", "sync", task_id, "--json")
    assert synced.returncode == 0, synced.stderr
    result = json.loads(synced.stdout)
    assert result["outcome"] == "merged" and result["task_state"] == "done"
    shown = json.loads(aura("task", "show", task_id, "--json").stdout)
    assert shown["state"] == "done" and shown["options"]["pr"]["state"] == "merged"
    assert aura("task", "pr", "sync", task_id).stdout == "Plan it: PR merged; already done\n"


def test_status_without_a_pr(aura: AuraCli, gh: FakeGh, tmp_path: Path) -> None:
    task_id, _ = reviewed_task(aura, tmp_path)
    res = aura("task", "pr", "status", task_id)
    assert res.returncode == 1 and "no pull request yet" in res.stdout


def test_gh_missing_or_logged_out_is_one_line(
    aura: AuraCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    task_id, _ = reviewed_task(aura, tmp_path)
    bin_dir = tmp_path / "no-gh-bin"
    bin_dir.mkdir()
    for tool in ("git", "sh"):
        found = shutil.which(tool)
        assert found is not None
        (bin_dir / tool).symlink_to(found)
    with monkeypatch.context() as m:
        m.setenv("PATH", str(bin_dir))
        for action in ("open", "status", "sync"):
            res = aura("task", "pr", action, task_id)
            assert res.returncode == 1 and one_line_error(res.stderr), res.stderr
            assert "install GitHub CLI (gh) and run gh auth login" in res.stderr

    fake = FakeGh(tmp_path, auth=False)
    monkeypatch.setenv("PATH", fake.env()["PATH"])
    monkeypatch.setenv("FAKE_GH_STATE", str(fake.state_dir))
    res = aura("task", "pr", "open", task_id)
    assert res.returncode == 1 and one_line_error(res.stderr)
    assert "not logged in: run gh auth login" in res.stderr


def test_pr_needs_an_action_and_a_task(aura: AuraCli) -> None:
    res = aura("task", "pr")
    assert res.returncode == 2 and "Traceback" not in res.stderr
    res = aura("task", "pr", "open")
    assert res.returncode == 2 and "TASK" in res.stderr
    res = aura("task", "pr", "status", "nope")
    assert res.returncode != 0 and "no task matches" in res.stderr
