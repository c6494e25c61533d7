"""Model discovery for the HTTP executors: ollama (`GET /api/tags`), LM Studio and any
OpenAI-compatible endpoint (`GET /v1/models`), cached 24 h in `<cache dir>/models.json`.

`--refresh-model-cache` bypasses (and rewrites) the cache. With `--model` omitted the executor
takes a model from here: on a terminal the person picks one (the first is the default), without
one the first is taken and a warning says so; no model at all is an error naming `--model`.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from aura_core.executors.base import SetupRequired
from aura_core.paths import cache_dir

TTL_S = 24 * 3600.0
TIMEOUT_S = 5.0


def cache_file() -> Path:
    return cache_dir() / "models.json"


def _read_cache() -> dict[str, Any]:
    try:
        data = json.loads(cache_file().read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_cache(data: dict[str, Any]) -> None:
    path = cache_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def fetch(kind: str, base: str, headers: dict[str, str] | None = None) -> list[str]:
    """Ask the server (no cache). `base` ends in /v1 for OpenAI-compatible servers."""
    with httpx.Client(timeout=TIMEOUT_S, headers=headers or {}) as client:
        if kind == "ollama":
            root = base[: -len("/v1")] if base.endswith("/v1") else base
            response = client.get(root + "/api/tags")
            if response.status_code < 400:
                tags = response.json().get("models") or []
                return [str(m.get("name") or m.get("model")) for m in tags if isinstance(m, dict)]
        response = client.get(base + "/models")
        response.raise_for_status()
        data = response.json()
    items = data.get("data") if isinstance(data, dict) else data
    return [str(m["id"]) for m in items or [] if isinstance(m, dict) and m.get("id")]


def discover(
    kind: str, base: str, *, refresh: bool = False, headers: dict[str, str] | None = None
) -> list[str]:
    """The server's models, from the cache when it is younger than the TTL."""
    key = f"{kind} {base}"
    cache = _read_cache()
    entry = cache.get(key)
    if (
        not refresh
        and isinstance(entry, dict)
        and isinstance(entry.get("models"), list)
        and time.time() - float(entry.get("at") or 0) < TTL_S
    ):
        return [str(m) for m in entry["models"]]
    models = fetch(kind, base, headers)
    cache[key] = {"at": time.time(), "models": models}
    try:
        _write_cache(cache)
    except OSError:
        pass  # a read-only cache only costs a request next time
    return models


def choose_model(models: list[str], *, executor: str, ask: bool) -> tuple[str, str | None]:
    """(model, note for the log). On a terminal the person picks; else the first, said."""
    if not models:
        raise SetupRequired(f"{executor}: no models found on the server; pass --model NAME")
    if not ask:
        return models[0], f"no --model given: using {models[0]} (the first of {len(models)})"
    out = sys.stderr
    out.write(f"{executor}: choose a model\n")
    for i, name in enumerate(models, 1):
        out.write(f"  {i}. {name}{'  (default)' if i == 1 else ''}\n")
    while True:
        out.write(f"model [1-{len(models)}, Enter for {models[0]}]: ")
        out.flush()
        line = sys.stdin.readline()
        if not line:
            raise SetupRequired(f"{executor}: no model chosen; pass --model NAME")
        answer = line.strip()
        if not answer:
            return models[0], None
        if answer.isdigit() and 1 <= int(answer) <= len(models):
            return models[int(answer) - 1], None
        if answer in models:
            return answer, None
        out.write(f"  not one of the {len(models)} models\n")
