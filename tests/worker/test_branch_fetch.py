"""`branch.fetch`: a real hub asks a real worker process for a branch's commits as a git bundle."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from aura_core.git.bundle import have_commits, import_bundle
from aura_core.worker.protocol import BranchFetchParams, ConnectionLost, ErrorCode, RpcError
from tests.support.gitrepo import git, make_repo
from tests.worker.conftest import HubFactory, Procs, online, wait_until


def _commit(repo: Path, name: str, text: str, message: str) -> str:
    (repo / name).write_text(text)
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", message)
    return git(repo, "rev-parse", "HEAD").strip()


def _error(hub: object, params: BranchFetchParams, worker: str = "w1") -> RpcError:
    with pytest.raises(RpcError) as info:
        hub.fetch_branch(worker, params, timeout=20)  # type: ignore[attr-defined]
    return info.value


def test_branch_fetch_sends_the_missing_commits_as_a_bundle(
    tmp_path: Path, make_hub: HubFactory, procs: Procs
) -> None:
    local = make_repo(tmp_path / "local" / "demo", {"README.md": "hello\n"})
    clone = tmp_path / "clone" / "demo"
    git(tmp_path, "clone", "-q", str(local), str(clone))
    git(clone, "checkout", "-qb", "aura/feature")
    _commit(clone, "a.txt", "a\n", "first")
    tip = _commit(clone, "b.txt", "b\n", "second")
    git(clone, "checkout", "-q", "main")
    before = git(clone, "for-each-ref")
    hub = make_hub()
    procs.worker(hub.url, "w1", repo=clone)
    wait_until(online(hub, 1), 20, "worker online")

    have = have_commits(local, "aura/feature", "main")
    params = BranchFetchParams(repo="demo", branch="aura/feature", base="main", have=have)
    result = hub.fetch_branch("w1", params, timeout=20)
    assert result.head == tip and result.bundle is not None and result.size > 0
    assert result.prerequisites == [git(local, "rev-parse", "main").strip()]
    assert result.uncommitted == []
    data = base64.b64decode(result.bundle)
    assert len(data) == result.size
    update = import_bundle(local, "aura/feature", result.head, data)
    assert update.before is None and update.after == tip
    assert git(local, "rev-parse", "aura/feature").strip() == tip
    assert git(local, "rev-parse", "refs/aura/remote/aura/feature").strip() == tip
    assert git(local, "log", "--format=%s", "main..aura/feature").splitlines() == [
        "second",
        "first",
    ]
    # asked again with what is here now: nothing to send
    have = have_commits(local, "aura/feature", "main")
    again = hub.fetch_branch("w1", params.model_copy(update={"have": have}), timeout=20)
    assert again.head == tip and again.bundle is None and again.size == 0
    # with no commit the worker knows, the worker's own base is left out
    blind = hub.fetch_branch("w1", params.model_copy(update={"have": ["0" * 40]}), timeout=20)
    assert blind.bundle is not None
    assert blind.prerequisites == [git(clone, "rev-parse", "main").strip()]
    assert git(clone, "for-each-ref") == before  # the worker's clone is only read


def test_branch_fetch_errors(tmp_path: Path, make_hub: HubFactory, procs: Procs) -> None:
    clone = make_repo(tmp_path / "clone" / "demo", {"README.md": "hello\n"})
    hub = make_hub()
    procs.worker(hub.url, "w1", repo=clone)
    wait_until(online(hub, 1), 20, "worker online")

    err = _error(hub, BranchFetchParams(repo="other", branch="main"))
    assert err.code == ErrorCode.UNSUPPORTED and err.message == (
        "this worker does not serve repo other"
    )
    assert err.data["reason"] == "unknown_repo"

    err = _error(hub, BranchFetchParams(repo="demo", branch="aura/nope"))
    assert err.code == ErrorCode.UNSUPPORTED
    assert err.message == "repo demo has no branch aura/nope on this worker"
    assert err.data == {"reason": "unknown_branch", "repo": "demo", "branch": "aura/nope"}

    for bad in ("-x", "a..b", "a b"):
        err = _error(hub, BranchFetchParams(repo="demo", branch=bad))
        assert err.code == ErrorCode.INVALID_PARAMS, bad
    # params the model refuses never leave the hub; a raw request gets -32602 from the worker
    raw = {"repo": "demo", "branch": "main", "have": ["not-a-commit"]}
    with pytest.raises(RpcError) as info:
        peer = next(iter(hub.hub._workers.values())).peer  # the worker's connection
        assert peer is not None
        hub._run_coro(peer.request("branch.fetch", raw), 20)
    assert info.value.code == ErrorCode.INVALID_PARAMS

    with pytest.raises(ConnectionLost, match="worker w9 is not connected to this hub"):
        hub.fetch_branch("w9", BranchFetchParams(repo="demo", branch="main"), timeout=20)
    # the connection is still fine after every refusal
    assert hub.fetch_branch("w1", BranchFetchParams(repo="demo", branch="main")).bundle


def test_branch_fetch_over_the_message_limit_is_refused(
    tmp_path: Path, make_hub: HubFactory, procs: Procs
) -> None:
    clone = make_repo(tmp_path / "clone" / "demo", {"README.md": "hello\n"})
    git(clone, "checkout", "-qb", "aura/big")
    (clone / "blob.bin").write_bytes(os.urandom(400_000))  # does not compress
    git(clone, "add", "-A")
    git(clone, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "big")
    hub = make_hub(max_message_bytes=256 << 10)
    procs.worker(hub.url, "w1", repo=clone)
    wait_until(online(hub, 1), 20, "worker online")
    err = _error(hub, BranchFetchParams(repo="demo", branch="aura/big", base="main"))
    assert err.code == ErrorCode.UNSUPPORTED
    limit = ((256 << 10) - (64 << 10)) * 3 // 4
    assert err.data["reason"] == "too_large" and err.data["limit"] == limit
    assert err.data["size"] > limit and "over the limit" in err.message
    # a small branch still comes through the same connection
    assert hub.fetch_branch("w1", BranchFetchParams(repo="demo", branch="main")).bundle
