"""The executor names, stdlib-free so the CLI parser can list them without loading adapters."""

EXECUTOR_NAMES: tuple[str, ...] = (
    "codex",
    "claude",
    "cursor-agent",
    "droid",
    "amp",
    "gemini",
    "opencode",
    "ollama",
    "lms",
    "custom",
    "qwen-code",
    "copilot",
)
