"""A fake GitHub CLI (`gh`) for tests: a Python script put first on PATH.

It records every call (argv and cwd) and answers like the real one for what AURA uses:
`gh auth status`, `gh pr create` (refusing, like gh, when the head branch is not on the remote)
and `gh pr view BRANCH --json FIELDS` with the JSON shapes gh prints. Its PRs live in a JSON
file the test edits to play GitHub (merge the PR, report CI checks, approve).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

SCRIPT = r"""
import json, os, subprocess, sys

state_dir = os.environ["FAKE_GH_STATE"]
state_file = os.path.join(state_dir, "state.json")
args = sys.argv[1:]
with open(os.path.join(state_dir, "calls.jsonl"), "a") as fh:
    fh.write(json.dumps({"argv": args, "cwd": os.getcwd()}) + "\n")
with open(state_file) as fh:
    state = json.load(fh)


def save():
    with open(state_file, "w") as fh:
        json.dump(state, fh)


def opt(name):
    return args[args.index(name) + 1] if name in args else None


if args[:2] == ["auth", "status"]:
    if state["auth"]:
        print("github.com\n  ✓ Logged in to github.com account octocat (keyring)")
        sys.exit(0)
    print("You are not logged into any GitHub hosts. To log in, run: gh auth login",
          file=sys.stderr)
    sys.exit(1)

if not state["auth"]:
    print("To get started with GitHub CLI, please run:  gh auth login", file=sys.stderr)
    sys.exit(4)

if args[:2] == ["pr", "create"]:
    base, head, title = opt("--base"), opt("--head"), opt("--title")
    with open(opt("--body-file")) as fh:
        body = fh.read()
    pushed = subprocess.run(["git", "ls-remote", "--exit-code", "origin", "refs/heads/" + head],
                            capture_output=True)
    if pushed.returncode != 0:
        print("aborted: you must first push the current branch to a remote, or use the --head "
              "flag", file=sys.stderr)
        sys.exit(1)
    existing = state["prs"].get(head)
    if existing and existing["state"] == "OPEN":
        print('a pull request for branch "%s" into branch "%s" already exists:\n%s'
              % (head, base, existing["url"]), file=sys.stderr)
        sys.exit(1)
    number = state["next"]
    state["next"] += 1
    url = "https://github.com/acme/widgets/pull/%d" % number
    state["prs"][head] = {
        "number": number, "url": url, "state": "OPEN", "mergedAt": None,
        "reviewDecision": "", "statusCheckRollup": [], "title": title, "body": body,
        "baseRefName": base, "headRefName": head, "isDraft": "--draft" in args,
    }
    save()
    print("\nCreating pull request for %s into %s in acme/widgets\n" % (head, base),
          file=sys.stderr)
    print(url)
    sys.exit(0)

if args[:2] == ["pr", "view"]:
    branch = args[2]
    pr = state["prs"].get(branch)
    if pr is None:
        print('no pull requests found for branch "%s"' % branch, file=sys.stderr)
        sys.exit(1)
    fields = opt("--json").split(",")
    print(json.dumps({f: pr.get(f) for f in fields}))
    sys.exit(0)

print("unknown command %r for fake gh" % " ".join(args), file=sys.stderr)
sys.exit(2)
"""


class FakeGh:
    """The fake `gh` in `bin_dir`, its state in `state_dir`; `env()` puts it first on PATH."""

    def __init__(self, root: Path, *, auth: bool = True) -> None:
        self.bin_dir = root / "fake-gh-bin"
        self.state_dir = root / "fake-gh-state"
        self.bin_dir.mkdir(parents=True, exist_ok=True)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        script = self.bin_dir / "gh"
        script.write_text(f"#!{sys.executable}\n{SCRIPT}")
        script.chmod(0o755)
        self._save({"auth": auth, "prs": {}, "next": 1})

    def _load(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.state_dir / "state.json").read_text())
        return data

    def _save(self, state: dict[str, Any]) -> None:
        (self.state_dir / "state.json").write_text(json.dumps(state))

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        env = dict(os.environ if base is None else base)
        env["PATH"] = f"{self.bin_dir}{os.pathsep}{env.get('PATH', '')}"
        env["FAKE_GH_STATE"] = str(self.state_dir)
        return env

    def set_auth(self, ok: bool) -> None:
        state = self._load()
        state["auth"] = ok
        self._save(state)

    def calls(self) -> list[list[str]]:
        path = self.state_dir / "calls.jsonl"
        if not path.exists():
            return []
        return [json.loads(line)["argv"] for line in path.read_text().splitlines()]

    def pr(self, branch: str) -> dict[str, Any]:
        prs: dict[str, dict[str, Any]] = self._load()["prs"]
        return prs[branch]

    def update(self, branch: str, **fields: Any) -> None:
        state = self._load()
        state["prs"][branch].update(fields)
        self._save(state)
