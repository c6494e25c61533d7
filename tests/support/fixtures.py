"""Pytest fixtures for driving agents offline: the scripted model server, and the environment
each real agent CLI needs to talk to it instead of its vendor's API.

Import them in a conftest (or a test module) with
`from tests.support.fixtures import model_server, make_model_server  # noqa: F401`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.model_server import ModelServer, Turn

ROOT = Path(__file__).resolve().parent.parent.parent
# where scripts/install-agent-clis.sh put the pinned CLIs (AURA_NPM_TOOLS: another install dir)
NPM_BIN = Path(os.environ.get("AURA_NPM_TOOLS") or ROOT / ".npm-tools") / "node_modules" / ".bin"
OFFLINE_AGENTS = ("claude", "codex", "gemini")
GEMINI_MODEL = "gemini-2.5-flash"  # without -m gemini asks a router model first, and loops
CODEX_MODEL = "fake-model"

MakeServer = Callable[..., ModelServer]


@pytest.fixture
def make_model_server() -> Iterator[MakeServer]:
    """`make_model_server(script, **options)` -> a started ModelServer, stopped after the test."""
    servers: list[ModelServer] = []

    def make(script: list[Turn] | None = None, **options: Any) -> ModelServer:
        server = ModelServer(script, **options).start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def model_server(make_model_server: MakeServer) -> ModelServer:
    """A started server with an empty script: `model_server.add(Shell("..."), "done")`."""
    return make_model_server()


def agent_binary(name: str) -> Path:
    """The pinned CLI installed by scripts/install-agent-clis.sh."""
    return NPM_BIN / name


def offline_env(name: str, server: ModelServer, home: Path) -> dict[str, str]:
    """Environment (and files under `home`, which must be the agent's HOME) that make a real
    agent CLI use the scripted server. Verified with claude 2.1.197, codex 0.169.0, gemini
    0.61.0; pass `--model offline_model(name)` too."""
    if name == "claude":
        return {
            "ANTHROPIC_BASE_URL": server.url,
            "ANTHROPIC_API_KEY": "dummy",
            "DISABLE_AUTOUPDATER": "1",
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        }
    if name == "codex":
        codex_home = home / ".codex"
        codex_home.mkdir(parents=True, exist_ok=True)
        (codex_home / "config.toml").write_text(
            f'model = "{CODEX_MODEL}"\n'
            'model_provider = "fake"\n\n'
            "[model_providers.fake]\n"
            'name = "Fake local"\n'
            f'base_url = "{server.url}/v1"\n'
            'env_key = "FAKE_API_KEY"\n'
            'wire_api = "responses"\n'
        )
        return {"CODEX_HOME": str(codex_home), "FAKE_API_KEY": "dummy"}
    if name == "gemini":
        settings = home / ".gemini" / "settings.json"
        settings.parent.mkdir(parents=True, exist_ok=True)
        settings.write_text(json.dumps({"security": {"auth": {"selectedType": "gemini-api-key"}}}))
        return {"GEMINI_API_KEY": "dummy", "GOOGLE_GEMINI_BASE_URL": server.url}
    raise ValueError(f"no offline recipe for {name}")


def offline_model(name: str) -> str | None:
    return {"codex": CODEX_MODEL, "gemini": GEMINI_MODEL}.get(name)


def missing_clis(names: tuple[str, ...] = OFFLINE_AGENTS) -> list[str]:
    return [n for n in names if not os.access(agent_binary(n), os.X_OK)]
