"""Which binary an executor runs: --executor-path now, else the one saved from an earlier
--executor-path, else `[executors.NAME] path` in the config, else PATH (the adapter's lookup)."""

from __future__ import annotations

from typing import Any

_KEY = "executor_path."


def save(store: Any, overrides: dict[str, str]) -> None:
    for name, path in overrides.items():
        store.set_setting(_KEY + name, path)


def saved(store: Any, name: str) -> str | None:
    value = store.get_setting(_KEY + name)
    return str(value) if value else None


def resolve(store: Any, config: Any, name: str, cli: dict[str, str] | None = None) -> str | None:
    if cli and name in cli:
        return cli[name]
    path = saved(store, name)
    if path:
        return path
    section = (getattr(config, "executors", None) or {}).get(name)
    return getattr(section, "path", None) or None


def env_for(config: Any, name: str) -> dict[str, str]:
    section = (getattr(config, "executors", None) or {}).get(name)
    return dict(getattr(section, "env", None) or {})
