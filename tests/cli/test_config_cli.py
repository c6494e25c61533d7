"""`aura config path|init|show` through the real CLI."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from aura_core.board import Board
from aura_core.config import AuraConfig, load_config, parse_config
from aura_core.engine.prompts import default_templates, merge_templates
from aura_tui.commands.config import default_config_text
from tests.conftest import AuraCli


def config_path(home: Path) -> Path:
    return home / ".config" / "aura" / "config.toml"


def one_line_error(stderr: str) -> bool:
    return (
        stderr.count("\n") == 1 and stderr.startswith("aura: error: ") and "Traceback" not in stderr
    )


def test_path_follows_xdg_and_aura_config_dir(
    aura: AuraCli, isolated_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    res = aura("config", "path")
    assert res.returncode == 0, res.stderr
    assert res.stdout == f"{config_path(isolated_home)}\n"
    monkeypatch.setenv("AURA_CONFIG_DIR", str(tmp_path / "elsewhere"))
    res = aura("config", "path")
    assert res.stdout == f"{tmp_path / 'elsewhere' / 'config.toml'}\n"


def test_init_writes_a_commented_default_that_loads_back(
    aura: AuraCli, isolated_home: Path
) -> None:
    res = aura("config", "init")
    assert res.returncode == 0, res.stderr
    path = config_path(isolated_home)
    assert res.stdout == f"wrote {path}\n"
    text = path.read_text()
    for header in ("[[board.columns]]", "[[board.rules]]", "# [prompts]", "[scripts]",
                   "[worktrees]", "[runtime]", "# [executors.my-agent]", "[hub]", "[notify]",
                   "[keymap]", "# theme = "):  # fmt: skip
        assert header in text, header
    assert "# command = " in text and "# on_review = " in text
    assert sum(1 for line in text.splitlines() if line.startswith("#")) > 100

    config = load_config(path)
    board = Board.from_config({"board": config.board})
    default = Board.default()
    assert board.columns == default.columns and board.rules == default.rules
    assert config.model_dump(exclude={"board"}) == AuraConfig().model_dump(exclude={"board"})
    assert text == default_config_text()


def test_the_commented_prompts_are_the_default_templates(aura: AuraCli) -> None:
    text = default_config_text()
    block: list[str] = []
    inside = False
    for line in text.splitlines():
        if line == "# [prompts]":
            inside = True
        elif inside and not line.startswith("#"):
            break
        if inside:
            block.append(line[2:] if line.startswith("# ") else line[1:])
    prompts = tomllib.loads("\n".join(block) + "\n")["prompts"]
    assert prompts == default_templates()
    assert merge_templates(default_templates(), prompts) == default_templates()


def test_the_commented_examples_are_valid_when_uncommented() -> None:
    text = default_config_text()
    start = text.index("# [executors.claude]")
    end = text.index("# ---- hub")
    block = [
        line[2:]
        for line in text[start:end].splitlines()
        if line.startswith("# ") and (" = " in line or line.startswith("# ["))
    ]
    parsed = parse_config(tomllib.loads("\n".join(block)))
    assert parsed.executors["my-agent"].command == "my-agent --non-interactive"
    assert parsed.executors["claude"].path == "/opt/claude/bin/claude"


def test_init_refuses_to_overwrite_without_force(aura: AuraCli, isolated_home: Path) -> None:
    path = config_path(isolated_home)
    path.parent.mkdir(parents=True)
    path.write_text("[runtime]\nmax_concurrent = 5\n")
    res = aura("config", "init")
    assert res.returncode == 1 and one_line_error(res.stderr)
    assert "already exists" in res.stderr and "--force" in res.stderr
    assert path.read_text() == "[runtime]\nmax_concurrent = 5\n"
    res = aura("config", "init", "--force")
    assert res.returncode == 0, res.stderr
    assert path.read_text() == default_config_text()
    assert [p.name for p in path.parent.iterdir()] == ["config.toml"]  # no temp file left


def test_init_stdout_writes_nothing(aura: AuraCli, isolated_home: Path) -> None:
    res = aura("config", "init", "--stdout")
    assert res.returncode == 0 and res.stdout == default_config_text()
    assert not config_path(isolated_home).exists()


def test_show_prints_the_effective_config_as_toml_that_reads_back(
    aura: AuraCli, isolated_home: Path
) -> None:
    res = aura("config", "show")
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("# effective config from ") and "not created yet" in res.stdout
    data = tomllib.loads(res.stdout)
    assert data["runtime"]["max_concurrent"] == 3
    assert data["prompts"] == default_templates()
    assert data["worktrees"]["root"] == str(isolated_home / "aura-data" / "worktrees")
    assert [c["id"] for c in data["board"]["columns"]][:2] == ["backlog", "ready"]

    path = config_path(isolated_home)
    path.parent.mkdir(parents=True)
    path.write_text(
        'theme = "nord"\n[runtime]\nmax_concurrent = 5\n[notify]\non_review = "echo hi"\n'
        '[prompts]\nreview = "Review {{ branch }} please."\n'
        '[executors.claude]\nenv = { A = "1" }\n'
    )
    res = aura("config", "show")
    assert res.returncode == 0, res.stderr
    data = tomllib.loads(res.stdout)
    again = parse_config(data)  # what show prints is itself a valid config
    assert again.theme == "nord" and again.runtime.max_concurrent == 5
    assert again.notify.on_review == "echo hi" and again.executors["claude"].env == {"A": "1"}
    assert again.prompts["review"] == "Review {{ branch }} please."
    assert again.prompts["setup"] == default_templates()["setup"]


def test_show_json_and_one_section(aura: AuraCli) -> None:
    res = aura("config", "show", "--json")
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["notify"] == {"bell": True, "desktop": True, "on_review": None, "on_fail": None}
    assert data["theme"] is None
    res = aura("config", "show", "notify", "--json")
    assert json.loads(res.stdout) == {"notify": data["notify"]}
    res = aura("config", "show", "hub")
    assert tomllib.loads(res.stdout) == {
        "hub": {"enabled": False, "host": "127.0.0.1", "port": 7433}
    }


def test_show_reports_a_bad_config_in_one_line(aura: AuraCli, isolated_home: Path) -> None:
    path = config_path(isolated_home)
    path.parent.mkdir(parents=True)
    cases = {
        "[runtime]\nmax_concurrent = 'lots'\n": "runtime.max_concurrent",
        "[notfy]\nbell = false\n": "notfy",
        "[runtime\n": "not valid TOML",
        "[[board.columns]]\nid = 'todo'\nstate = 'backlog'\n": "board config: board.columns",
        "[prompts]\nreveiw = 'x'\n": "unknown prompt stage 'reveiw'",
        "[prompts]\nreview = '{{ task title }}'\n": "malformed placeholder",
    }
    for text, expected in cases.items():
        path.write_text(text)
        res = aura("config", "show")
        assert res.returncode == 1, text
        assert one_line_error(res.stderr), res.stderr
        assert expected in res.stderr, (text, res.stderr)


def test_config_without_action_and_unknown_section(aura: AuraCli) -> None:
    res = aura("config")
    assert res.returncode == 2 and one_line_error(res.stderr) and "path|init|show" in res.stderr
    res = aura("config", "show", "nope")
    assert res.returncode == 2 and "Traceback" not in res.stderr
