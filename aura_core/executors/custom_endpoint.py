"""`custom` with --openai-endpoint URL (and no --base-command): chat with any OpenAI-compatible
server (vLLM, llama.cpp, a gateway). The key comes from the setting `api_key` or
OPENAI_API_KEY. Without an endpoint: asked for on a terminal, an error otherwise; a follow-up
reuses the endpoint its session used (kept with the conversation)."""

from __future__ import annotations

from typing import Any, ClassVar

from aura_core.executors.base import Availability, RunRequest, SetupRequired
from aura_core.executors.openai_http import ChatExecutor, ask, normalize_base
from aura_core.executors.settings import interactive


class CustomEndpointExecutor(ChatExecutor):
    name: ClassVar[str] = "custom"
    binary: ClassVar[str | None] = None
    install_hint: ClassVar[str] = "pass --openai-endpoint URL (an OpenAI-compatible server)"
    kind: ClassVar[str] = "openai"
    key_env: ClassVar[tuple[str, ...]] = ("OPENAI_API_KEY",)

    def resolve_base(self, request: RunRequest, history: dict[str, Any]) -> str:
        url = request.options.openai_endpoint or str(history.get("endpoint") or "")
        if not url and interactive():
            url = ask("OpenAI-compatible endpoint URL (e.g. http://127.0.0.1:8000/v1): ")
            request.options.openai_endpoint = url or None
        if not url:
            raise SetupRequired(
                "custom needs --openai-endpoint URL (an OpenAI-compatible server, e.g. "
                "http://127.0.0.1:8000/v1) or --base-command CMD (a command to run)"
            )
        if not url.startswith(("http://", "https://")):
            raise SetupRequired(f"--openai-endpoint {url}: give an http:// or https:// URL")
        return normalize_base(url)

    def availability(self, override: str | None = None) -> Availability:
        return Availability(
            name=self.name,
            found=True,
            note="an OpenAI-compatible server at --openai-endpoint; --base-command runs a command",
        )
