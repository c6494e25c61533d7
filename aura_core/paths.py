"""Where AURA keeps its files. Stdlib only: every command computes these before anything else.

On Linux this follows the XDG rules exactly as platformdirs does (a test checks they agree), so
`aura session latest` can start without importing platformdirs; elsewhere platformdirs decides.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

APP = "aura"
DB_NAME = "aura.db"


def _xdg(var: str, fallback: str) -> Path:
    value = os.environ.get(var, "").strip()
    return Path(value) if value else Path.home() / fallback


def data_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """The data folder: --data-dir, else AURA_HOME, else the platform's user data dir."""
    if override:
        return Path(override).expanduser()
    env = os.environ.get("AURA_HOME", "").strip()
    if env:
        return Path(env).expanduser()
    if sys.platform.startswith("linux"):
        return _xdg("XDG_DATA_HOME", ".local/share") / APP
    import platformdirs

    return Path(platformdirs.user_data_dir(APP, appauthor=False))


def config_dir() -> Path:
    env = os.environ.get("AURA_CONFIG_DIR", "").strip()
    if env:
        return Path(env).expanduser()
    if sys.platform.startswith("linux"):
        return _xdg("XDG_CONFIG_HOME", ".config") / APP
    import platformdirs

    return Path(platformdirs.user_config_dir(APP, appauthor=False))


def cache_dir() -> Path:
    if sys.platform.startswith("linux"):
        return _xdg("XDG_CACHE_HOME", ".cache") / APP
    import platformdirs

    return Path(platformdirs.user_cache_dir(APP, appauthor=False))


def db_path(data_override: str | os.PathLike[str] | None = None) -> Path:
    return data_dir(data_override) / DB_NAME


def config_file() -> Path:
    return config_dir() / "config.toml"
