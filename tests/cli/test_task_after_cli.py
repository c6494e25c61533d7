"""`aura task add --after`, `aura task after` and `aura task show`: task dependencies headless."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import AuraCli
from tests.support.gitrepo import git, make_repo


def add(aura: AuraCli, repo: Path, title: str, script: str, *extra: str) -> str:
    res = aura(
        *("task", "add", "--title", title, "--repo", str(repo), "--column", "ready"),
        *("--base-command", "sh", "--param", "-c", "--param", script, *extra),
    )
    assert res.returncode == 0, res.stderr
    return res.stdout.strip()


def test_after_through_the_cli(aura: AuraCli, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    a = add(aura, repo, "Fix login", "echo fixed > login.txt")
    b = add(aura, repo, "Add audit", "cat login.txt > audit.txt", "--after", "fix login")
    c = add(aura, repo, "Docs", "true")
    assert json.loads(aura("task", "show", b, "--json").stdout)["options"]["after"] == [a]

    refused = aura("task", "after", a, b[:8])
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "'Add audit' already runs after 'Fix login': that would be a cycle" in refused.stderr
    unknown = aura("task", "add", "--title", "x", "--repo", str(repo), "--after", "nope")
    assert unknown.returncode == 1 and "no task has the id or title 'nope'" in unknown.stderr
    assert aura("task", "after", b).returncode != 0  # neither deps nor --clear

    res = aura("task", "after", c, "Fix login", b[:8])
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("Docs: after 'Fix login'") and "'Add audit'" in res.stdout
    res = aura("task", "after", c, "--clear")
    assert res.returncode == 0 and res.stdout == "Docs: after no task\n"

    waits = aura("task", "move", b, "in_progress")
    assert waits.returncode == 0, waits.stderr
    assert waits.stdout == "'Add audit' starts when 'Fix login' is done\n"
    shown = aura("task", "show", b).stdout
    assert f"after:     'Fix login' {a[:8]} (ready); starts when they are done" in shown
    assert "execution" not in shown
    assert "ready (starts when what it runs after is done)" in aura("task", "list").stdout

    assert aura("task", "start", a).returncode == 0
    approved = aura("task", "approve", a, "--merge")
    assert approved.returncode == 0, approved.stderr
    assert "Fix login: approved and merged\nAdd audit: started\n" in approved.stdout
    data = json.loads(aura("task", "show", b, "--json").stdout)
    assert data["state"] == "review"
    wt = Path(data["executions"][-1]["workspace"][0])
    assert "Fix login" in git(wt, "log", "--format=%s").splitlines()
    assert (wt / "audit.txt").read_text() == "fixed\n"
