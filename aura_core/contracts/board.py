"""Board shape: the user's columns, each mapped onto one canonical state, and the moves allowed."""

from __future__ import annotations

from pydantic import BaseModel, Field

from aura_core.contracts.engine import CanonicalTaskState


class BoardColumn(BaseModel):
    id: str
    name: str
    canonical_state: CanonicalTaskState
    order: int
    wip_limit: int | None = Field(default=None, ge=1)


class TransitionRule(BaseModel):
    from_column_id: str
    to_column_id: str
    requires_clean_git: bool = False
    requires_no_running_process: bool = False
