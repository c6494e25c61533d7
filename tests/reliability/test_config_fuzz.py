"""Config fuzz: malformed TOML, unknown keys, wrong types, hostile key names and generated
tables. Every bad config is one line on stderr naming the file and the key, a non-zero exit, no
traceback; every config that loads must also be one the runtime (board, prompts) accepts.
"""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aura_core.config import AuraConfig, ConfigError, parse_config
from tests.reliability.support import has_traceback, lane_env, run_aura, write_config

SOURCE = "/somewhere/aura/config.toml"

# (config text, what the one error line must name)
CASES: list[tuple[str | bytes, str]] = [
    ("x = [1,", "not valid TOML"),
    ("[runtime\nmax_concurrent = 2", "not valid TOML"),
    ('a = "unterminated', "not valid TOML"),
    ("a = 1\na = 2", "not valid TOML"),
    (b"\xff\xfe\x00garbage", "cannot read"),
    ("bogus = 1", "bogus"),
    ("[runtime]\nbogus = 1", "runtime.bogus"),
    ('[runtime]\nmax_concurrent = "lots"', "runtime.max_concurrent"),
    ("[runtime]\nmax_concurrent = 0", "runtime.max_concurrent"),
    ("[runtime]\nmax_concurrent = 1e3", "runtime.max_concurrent"),
    ("[[runtime]]\nmax_concurrent = 1", "runtime"),
    ('runtime = "fast"', "runtime"),
    ('[worktrees]\nauto_commit = "maybe"', "worktrees.auto_commit"),
    ("[worktrees]\nroot = 5", "worktrees.root"),
    ("[hub]\nport = 99999", "hub.port"),
    ("[hub]\nport = -1", "hub.port"),
    ("[executors.claude]\nenv = {A = 1}", "executors.claude.env.A"),
    ('[executors.claude]\nargs = "--yolo"', "executors.claude.args"),
    ("[executors]\nclaude = 3", "executors.claude"),
    ("theme = 5", "theme"),
    ("[notify]\nbell = 2", "notify.bell"),
    ("[keymap]\nq = 1", "keymap.q"),
    ('"line\\nbreak" = 1', "line"),
    ('[runtime]\n"tab\\tand\\rreturn" = 1', "runtime."),
    ("[board]\ncolumns = 5", "board.columns"),
    ("[board]\nwip = 1", "board.wip"),
    ('[[board.columns]]\nid = "a"', "board.columns[0].state"),
    ('[[board.columns]]\nid = "a"\nstate = "nowhere"', "board.columns[0].state"),
    ('[[board.columns]]\nid = "a"\nstate = "backlog"\nwip_limit = 0', "wip_limit"),
    ('[[board.columns]]\nid = "a"\nstate = "backlog"\n"x\\ny" = 1', "board.columns[0]"),
    ('[[board.rules]]\nfrom = "x"', "board.rules[0]"),
    ('[prompts]\nnonsense = "x"', "nonsense"),
    ('[prompts]\ncoding_initial = ""', "coding_initial"),
    ("[prompts]\ncoding_initial = 5", "prompts.coding_initial"),
    ('[prompts]\ncoding_initial = "{{task title}}"', "coding_initial"),
]


@pytest.mark.parametrize(("text", "names"), CASES, ids=[str(i) for i in range(len(CASES))])
def test_bad_config_is_one_line_naming_file_and_key(
    tmp_path: Path, text: str | bytes, names: str
) -> None:
    env = lane_env(tmp_path / "home")
    path = write_config(env, "")
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    res = run_aura(env, "task", "list")
    assert not has_traceback(res.stderr), res.stderr
    lines = res.stderr.splitlines()
    assert res.returncode != 0 and len(lines) == 1, f"exit {res.returncode}: {res.stderr!r}"
    assert lines[0].startswith("aura: error: "), lines[0]
    assert str(path) in lines[0], f"the file is not named: {lines[0]}"
    assert names in lines[0], f"{names!r} is not named: {lines[0]}"


# ---- generated configs, in process --------------------------------------------------------------

KEYS = {
    "": ["board", "prompts", "scripts", "worktrees", "runtime", "executors", "hub", "notify",
         "keymap", "theme"],
    "scripts": ["setup", "cleanup"],
    "worktrees": ["root", "prefix", "auto_commit"],
    "runtime": ["max_concurrent", "reviewer"],
    "hub": ["host", "port", "tls_cert", "tls_key", "token"],
    "notify": ["bell", "desktop", "on_review", "on_fail"],
    "executor": ["path", "env", "args", "command"],
    "board": ["columns", "rules"],
    "column": ["id", "name", "state", "order", "wip_limit"],
    "rule": ["from", "to", "requires_clean_git", "requires_no_running_process"],
    "prompts": ["setup", "coding_initial", "coding_follow_up", "review", "cleanup"],
}  # fmt: skip
TOML_LEAF = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.sampled_from(["backlog", "ready", "running", "review", "done", "{{ task_title }}", "{{"]),
)
TOML_VALUE = st.recursive(
    TOML_LEAF,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
ODD_KEY = st.text(alphabet=string.printable + "\u00e9\u2028\x00", min_size=1, max_size=10)


def _table(kind: str) -> st.SearchStrategy[dict[str, Any]]:
    keys = st.one_of(st.sampled_from(KEYS[kind]), ODD_KEY) if KEYS.get(kind) else ODD_KEY
    return st.dictionaries(keys, TOML_VALUE, max_size=4)


@st.composite
def configs(draw: st.DrawFn) -> dict[str, Any]:
    """Mostly the real shape, with wrong types, odd keys and odd values mixed in."""
    data: dict[str, Any] = {}
    for key in draw(st.lists(st.sampled_from(KEYS[""]), max_size=5, unique=True)):
        if key in ("scripts", "worktrees", "runtime", "hub", "notify", "prompts"):
            data[key] = draw(st.one_of(_table(key), TOML_VALUE))
        elif key == "executors":
            data[key] = draw(
                st.one_of(st.dictionaries(st.text(max_size=8), _table("executor"), max_size=2),
                          TOML_VALUE)
            )  # fmt: skip
        elif key == "board":
            board: dict[str, Any] = {}
            if draw(st.booleans()):
                board["columns"] = draw(st.one_of(st.lists(_table("column"), max_size=4),
                                                  TOML_VALUE))  # fmt: skip
            if draw(st.booleans()):
                board["rules"] = draw(st.one_of(st.lists(_table("rule"), max_size=4), TOML_VALUE))
            data[key] = draw(st.one_of(st.just(board), TOML_VALUE))
        else:
            data[key] = draw(TOML_VALUE)
    if draw(st.booleans()):
        data[draw(ODD_KEY)] = draw(TOML_VALUE)
    return data


def _runtime_accepts(config: AuraConfig) -> None:
    """What the runtime builds from a config at start: it must not fail on a loaded config."""
    from aura_core.engine.runtime import Runtime
    from aura_core.store.memory import MemoryStore

    Runtime(MemoryStore(), config, recover=False)


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=configs())
def test_generated_configs_load_or_fail_in_one_line(data: dict[str, Any]) -> None:
    try:
        config = parse_config(data, SOURCE)
    except ConfigError as exc:
        message = str(exc)
        assert message.startswith(f"{SOURCE}: "), message
        assert "\n" not in message and "\r" not in message, repr(message)
        return
    _runtime_accepts(config)


# ---- generated configs, through the CLI ---------------------------------------------------------


@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=configs())
def test_generated_configs_through_aura_task_list(tmp_path_factory: Any, data: Any) -> None:
    try:
        text = tomli_w.dumps(data)
    except (TypeError, ValueError):
        return  # not representable as TOML (e.g. a NUL in a key)
    env = lane_env(tmp_path_factory.mktemp("cfg"))
    path = write_config(env, text)
    res = run_aura(env, "task", "list")
    assert not has_traceback(res.stderr), res.stderr
    if res.returncode != 0:
        lines = res.stderr.splitlines()
        assert len(lines) == 1 and str(path) in lines[0], res.stderr
