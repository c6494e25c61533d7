"""LM Studio: its OpenAI-compatible server at http://127.0.0.1:1234/v1 (or LMS_BASE_URL, or
--openai-endpoint): `GET /v1/models`, streaming `POST /v1/chat/completions`, our own history."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import ClassVar

from aura_core.executors.agent_cli import _VERSION
from aura_core.executors.base import Availability, RunRequest
from aura_core.executors.openai_http import ChatExecutor, normalize_base, probe

DEFAULT_BASE = "http://127.0.0.1:1234/v1"


def lms_base() -> str:
    return normalize_base(os.environ.get("LMS_BASE_URL", "").strip() or DEFAULT_BASE)


class LmsExecutor(ChatExecutor):
    name: ClassVar[str] = "lms"
    binary: ClassVar[str | None] = "lms"
    install_hint: ClassVar[str] = "install LM Studio (https://lmstudio.ai), then `lms server start`"
    kind: ClassVar[str] = "openai"
    key_env: ClassVar[tuple[str, ...]] = ("LM_API_TOKEN",)

    def default_base(self, request: RunRequest) -> str | None:
        return lms_base()

    def find(self, override: str | None) -> str | None:
        if override:
            return override if Path(override).is_file() else shutil.which(override)
        found = shutil.which("lms")
        if found:
            return found
        home = Path.home() / ".lmstudio" / "bin" / "lms"  # where LM Studio puts it
        return str(home) if home.is_file() else None

    def availability(self, override: str | None = None) -> Availability:
        path = self.find(override)
        base = lms_base()
        models = probe(base + "/models")
        version = None
        if path:
            try:
                out = subprocess.run([path, "version"], capture_output=True, text=True,
                                     timeout=5, stdin=subprocess.DEVNULL)  # fmt: skip
                m = _VERSION.search(out.stdout + out.stderr)
                version = m.group(0) if m else None
            except (OSError, subprocess.SubprocessError):
                version = None
        found = bool(path or models is not None)
        missing = []
        if not found:
            missing.append(f"install: {self.install_hint}")
        elif models is None:
            missing.append(f"start the server: `lms server start` (nothing answers at {base})")
        return Availability(
            name=self.name,
            found=found,
            path=path or (base if models is not None else None),
            version=version,
            override=override,
            missing=missing,
            note=None if models is not None else f"no server at {base}",
        )
