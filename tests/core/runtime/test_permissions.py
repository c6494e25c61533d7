"""Supervised mode on the board: an agent's permission request reaches the person and back."""

from __future__ import annotations

from pathlib import Path

import pytest

from aura_core.config import parse_config
from aura_core.contracts import CanonicalTaskState
from aura_core.engine.runtime import Runtime, RuntimeError_, RuntimeEvent
from aura_core.store.sqlite import SqliteStore
from tests.support.gitrepo import make_repo

FAKE_ACP = Path(__file__).resolve().parents[2] / "executors" / "fixtures" / "fake_acp_agent.py"


def _runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Runtime:
    monkeypatch.setenv("FAKE_STATE", str(tmp_path / "acp-state"))
    cfg = parse_config(
        {
            "worktrees": {"root": str(tmp_path / "wt")},
            "executors": {"qwen-code": {"path": str(FAKE_ACP)}},
        }
    )
    rt = Runtime(SqliteStore(tmp_path / "aura.db"), cfg)
    rt.answers_permissions = True  # as the board does
    return rt


@pytest.mark.parametrize(("approve", "always"), [(True, False), (True, True), (False, False)])
def test_permission_request_is_asked_and_answered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, approve: bool, always: bool
) -> None:
    rt = _runtime(tmp_path, monkeypatch)
    repo = make_repo(tmp_path / "repo")
    asked: list[RuntimeEvent] = []

    def on_event(event: RuntimeEvent) -> None:
        if event.kind == "permission":
            asked.append(event)
            rt.answer_permission(
                event.request_id, approve, "" if approve else "not today", always=always
            )

    rt.subscribe(on_event)
    task = rt.add_task(
        "Supervised", "do it", "qwen-code", options={"auto_approve": False}, repos=[str(repo)]
    )
    rt.start(task.id)
    assert rt.wait(task.id, timeout=120)
    assert len(asked) == 1 and asked[0].task_id == task.id and asked[0].tool
    assert rt.store.get_task(task.id).state == CanonicalTaskState.review
    wt = Path(rt.workspace(task.id)[0])
    assert (wt / "approved.txt").exists() is approve
    session = rt.turns(task.id)[0]
    log = "\n".join(line.text for line in rt.store.read_log(session.id))
    if not approve:
        assert "not today" in log
    chosen = '"optionId":"always"' if always else '"optionId":"yes"'
    assert (chosen in log) is approve  # "always" reaches the agent as its allow_always option
    with pytest.raises(RuntimeError_, match="no longer waiting"):
        rt.answer_permission(asked[0].request_id, True)
