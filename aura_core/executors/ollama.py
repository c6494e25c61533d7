"""ollama: chat through its OpenAI-compatible HTTP API (`POST /v1/chat/completions` at
127.0.0.1:11434, or OLLAMA_HOST, or --openai-endpoint), models from `GET /api/tags`.

HTTP rather than `ollama run` in a PTY: the stream is structured (no spinner or ANSI to strip),
reasoning models' `<think>` sections (or `reasoning` deltas) still become thinking entries, and
the conversation history is ours (openai_http.py), so follow-ups resume it.
"""

from __future__ import annotations

import os
import shutil
from typing import ClassVar

from aura_core.executors.agent_cli import CliAgent
from aura_core.executors.base import Availability, RunRequest
from aura_core.executors.openai_http import ChatExecutor, probe

DEFAULT_HOST = "http://127.0.0.1:11434"


def ollama_root() -> str:
    host = os.environ.get("OLLAMA_HOST", "").strip()
    if not host:
        return DEFAULT_HOST
    if "://" not in host:
        host = "http://" + host
    if host.count(":") == 1:  # no port
        host += ":11434"
    return host.rstrip("/")


class OllamaExecutor(ChatExecutor):
    name: ClassVar[str] = "ollama"
    binary: ClassVar[str | None] = "ollama"
    install_hint: ClassVar[str] = (
        "install ollama (https://ollama.com/download), then `ollama serve`"
    )
    kind: ClassVar[str] = "ollama"

    def default_base(self, request: RunRequest) -> str | None:
        return ollama_root() + "/v1"

    def availability(self, override: str | None = None) -> Availability:
        path = shutil.which(override or "ollama")
        root = ollama_root()
        info = probe(root + "/api/version")
        version = str(info.get("version")) if info and info.get("version") else None
        if version is None and path:
            version = CliAgent.version(path, timeout=5)
        missing = []
        if info is None:
            missing.append(f"start the server: `ollama serve` (nothing answers at {root})")
        return Availability(
            name=self.name,
            found=bool(path or info),
            path=path or (root if info else None),
            version=version,
            override=override,
            missing=missing if (path or info) else [f"install: {self.install_hint}"],
            note=None if info else f"no server at {root}",
        )
