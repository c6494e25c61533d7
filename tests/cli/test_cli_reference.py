"""The generated CLI reference: complete, stable, and the committed copy up to date."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from aura_tui import cli_reference
from aura_tui.cli import build_parser
from aura_tui.cli_reference import (
    END,
    HINT,
    START,
    ReferenceError_,
    readme_section,
    render_markdown,
    replace_section,
    write,
)

ROOT = Path(__file__).resolve().parents[2]


def walk(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ("aura",)
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from walk(child, (*path, name))


def sections(text: str) -> dict[str, str]:
    parts = re.split(r"^### `([^`]+)`$", text, flags=re.M)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts), 2)}


def test_committed_reference_is_up_to_date() -> None:
    generated = render_markdown(build_parser())
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    committed = readme_section(readme)
    where = "README.md"
    if committed is None:
        where = "docs/cli-reference.md"
        committed = (ROOT / where).read_text(encoding="utf-8")
    assert committed == generated, f"{where} is out of date: run `{HINT}`"


def test_every_command_and_option_is_documented() -> None:
    parser = build_parser()
    by_command = sections(render_markdown(parser))
    shared = {s for a in parser._actions for s in a.option_strings} - {"-h", "--help", "--version"}
    for path, sub in walk(parser):
        name = " ".join(path)
        assert name in by_command, f"no section for `{name}`"
        body = by_command[name]
        for action in sub._actions:
            if action.help == argparse.SUPPRESS or isinstance(action, argparse._HelpAction):
                continue
            if isinstance(action, argparse._SubParsersAction):
                for child in action.choices:
                    assert f"`{name} {child}`" in body
                continue
            if path != ("aura",) and set(action.option_strings) & shared:
                continue
            label = action.option_strings[-1] if action.option_strings else None
            assert label is None or label in body, f"`{name}`: {label} is not documented"
            if action.help:
                first = " ".join(action.help.split())[:20].replace("|", "\\|")
                assert first in body, f"`{name}`: help of {action.dest} is missing"
    assert "| `--data-dir DIR` |" in by_command["aura"]


def test_the_text_does_not_depend_on_the_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "40")
    narrow = render_markdown(build_parser())
    monkeypatch.setenv("COLUMNS", "250")
    assert render_markdown(build_parser()) == narrow
    assert "bash \\| zsh" in narrow  # pipes in help text cannot break the tables


def test_write_replaces_only_the_marked_section(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\n## CLI reference\n\n{START}\nold text\n{END}\n\n## After\n")
    doc = tmp_path / "cli-reference.md"
    assert write(readme, doc) == [readme]
    text = readme.read_text()
    assert text.startswith("# Title\n\n## CLI reference\n\n") and text.endswith(
        f"{END}\n\n## After\n"
    )
    assert readme_section(text) == render_markdown(build_parser())
    assert write(readme, doc) == []  # idempotent
    doc.write_text("stale\n")
    assert write(readme, doc) == [doc] and doc.read_text() == render_markdown(build_parser())


def test_write_without_markers_says_what_to_add(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# Title\n")
    with pytest.raises(ReferenceError_, match="cli-reference:start"):
        replace_section(readme.read_text(), "x\n")
    code = cli_reference.main(["--write", "--readme", str(readme), "--doc", str(tmp_path / "no")])
    assert code == 1 and "cli-reference:start" in capsys.readouterr().err
    assert readme.read_text() == "# Title\n"


def test_module_prints_the_reference() -> None:
    res = subprocess.run(
        [sys.executable, "-m", "aura_tui.cli_reference"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout == render_markdown(build_parser())
