"""The hub's snapshot of its workers, a JSON file in the data dir, read by `aura worker list`.

A file rather than a table: the hub rewrites it (atomically, at most once a second) as workers
come, beat and go, and the listing must work from another shell while the hub runs; nothing else
queries it, so it needs no schema migration.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from aura_core import procinfo
from aura_core.paths import data_dir
from aura_core.worker.protocol import ExecutorInfo

STATE_FILE = "workers.json"

WorkerState = Literal["online", "draining", "disconnected", "offline", "stopped"]


class WorkerInfo(BaseModel):
    worker_id: str
    name: str
    version: str = ""
    state: WorkerState
    address: str | None = None
    host: str | None = None
    pid: int | None = None
    executors: list[ExecutorInfo] = Field(default_factory=list)
    repos: list[str] = Field(default_factory=list)
    max_concurrency: int = 1
    running: list[str] = Field(default_factory=list)
    load: float | None = None
    last_heartbeat: float | None = None  # wall clock of the last message from the worker
    connected_at: float | None = None
    lost_at: float | None = None


class HubInfo(BaseModel):
    pid: int
    start: int | None = None  # the process start time, so a reused pid is not taken for the hub
    url: str
    started_at: float
    updated_at: float
    stopped: bool = False

    @property
    def alive(self) -> bool:
        return not self.stopped and procinfo.is_alive(self.pid, self.start)


class HubSnapshot(BaseModel):
    hub: HubInfo
    workers: list[WorkerInfo] = Field(default_factory=list)


def state_path(data_override: str | os.PathLike[str] | None = None) -> Path:
    return data_dir(data_override) / STATE_FILE


def write_snapshot(path: Path, snapshot: HubSnapshot) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(snapshot.model_dump_json(indent=1))
    os.replace(tmp, path)


def read_snapshot(path: Path) -> HubSnapshot | None:
    try:
        return HubSnapshot.model_validate(json.loads(path.read_text()))
    except (OSError, ValueError):
        return None
