"""TUI test setup: SVG snapshots live in the top-level `snapshots/` folder.

pytest-textual-snapshot stores each baseline at `<test dir>/__snapshots__/<module>/<test>.svg`,
decided by `SVGImageExtension.dirname`; overriding that classmethod here moves them to
`snapshots/<module>/<test>.svg` (syrupy asks the extension for the folder on every read and write).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import pytest_textual_snapshot

SNAPSHOTS = Path(__file__).resolve().parents[2] / "snapshots"


def _dirname(cls: Any, *, test_location: Any) -> str:
    return str(SNAPSHOTS / test_location.basename)


pytest_textual_snapshot.SVGImageExtension.dirname = classmethod(_dirname)  # type: ignore[assignment,method-assign]


@pytest.fixture
def anyio_backend() -> str:
    """Async tests here run on asyncio through anyio's pytest plugin (`pytestmark = anyio`)."""
    return "asyncio"
