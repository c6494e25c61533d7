"""The app's TCSS files; installed as the package `aura_tui.styles`."""

from pathlib import Path

STYLES_DIR = Path(__file__).parent
