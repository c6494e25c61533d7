"""Agent versions are read once per installed binary and read again after an upgrade."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from aura_core.executors.registry import get_executor


def fake_droid(folder: Path, version: str, calls: Path) -> Path:
    binary = folder / "droid"
    binary.write_text(f"#!/bin/sh\necho x >> {calls}\necho {version}\n")
    binary.chmod(0o755)
    return binary


def test_version_is_remembered_until_the_binary_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = tmp_path / "calls"
    binary = fake_droid(tmp_path, "0.225.2", calls)
    monkeypatch.setenv("PATH", str(tmp_path))

    def probe() -> str | None:
        return get_executor("droid").availability().version

    assert probe() == "0.225.2"
    assert probe() == "0.225.2"
    assert calls.read_text().count("x") == 1  # the second look came from the cache
    cache = Path(os.environ["XDG_CACHE_HOME"]) / "aura" / "versions.json"
    assert cache.is_file()  # in the (test's own) cache dir

    fake_droid(tmp_path, "0.300.0", calls)  # an upgrade replaces the binary
    os.utime(binary, ns=(1, 1))
    assert probe() == "0.300.0"
    assert calls.read_text().count("x") == 2


def test_a_binary_whose_version_cannot_be_read_is_asked_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = tmp_path / "calls"
    fake_droid(tmp_path, "no-version-here", calls)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert get_executor("droid").availability().version is None
    assert get_executor("droid").availability().version is None
    assert calls.read_text().count("x") == 2
