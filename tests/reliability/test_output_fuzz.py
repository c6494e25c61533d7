"""Hostile agent output: random bytes, invalid UTF-8, 100 MB without a newline, ANSI/OSC escape
storms, JSON nested 100k deep, and type-confused agent events.

(a) through `aura run --executor custom` (and a structured executor): the run completes, no
traceback, every byte is stored exactly (text, or raw bytes when not UTF-8), and the aura process
stays within a memory bound (peak RSS from wait4).
(b) straight into every normaliser's feed(): never an exception, every patch is usable by the
consumers (index in range, JSON-serialisable, renderable), lines no parser understood are kept as
entries, and no line costs super-linear time (a regex must not backtrack on a storm).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import pkgutil
import random
import subprocess
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aura_core.executors import entries as entries_mod
from aura_core.executors.entries import MAX_JSON_LINE, JsonlNormalizer, render_text
from tests.reliability.support import aura_argv, connect, db_file, has_traceback, lane_env

FIXTURES = Path(__file__).resolve().parent.parent / "executors" / "fixtures"
RSS_BOUND_MB = 400
HUGE_MB = 100
NEST = 100_000


# ---- the normalisers ----------------------------------------------------------------------------


def _executor_normalizer(name: str) -> Any:
    from aura_core.executors.registry import get_executor

    return get_executor(name).normalizer()


def _normalizer_factories() -> dict[str, Callable[[], Any]]:
    """Every normaliser there is: each available executor's (as the runner and `session show`
    get it), and every JsonlNormalizer subclass that needs no arguments, so a new agent is
    fuzzed without touching this file."""
    import aura_core.executors as pkg
    from aura_core.executors.registry import EXECUTOR_NAMES, get_executor, is_available

    found: dict[str, Callable[[], Any]] = {}
    for name in EXECUTOR_NAMES:
        if not is_available(name):
            continue
        try:
            normalizer = get_executor(name).normalizer()
        except Exception:
            continue  # an adapter still being written
        if normalizer is not None:
            found[type(normalizer).__name__] = partial(_executor_normalizer, name)
    for info in pkgutil.iter_modules(pkg.__path__):
        try:
            module = importlib.import_module(f"aura_core.executors.{info.name}")
        except Exception:
            continue
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, JsonlNormalizer)
                and value.__module__ == module.__name__
            ):
                try:
                    value()
                except TypeError:
                    continue
                found[value.__name__] = value
    return found


NORMALIZERS = _normalizer_factories()


def test_the_known_normalisers_are_fuzzed() -> None:
    names = set(NORMALIZERS)
    for agent in ("claude", "codex", "gemini"):
        if (Path(entries_mod.__file__).parent / f"{agent}.py").exists():
            assert f"{agent.capitalize()}Normalizer" in names, names


def _expected_kept(stream: str, text: str) -> str | None:
    """The text a line that no parser understands must keep in some entry (None: no promise)."""
    if stream != "stdout" or not text or text.isspace():
        return None
    if len(text) > MAX_JSON_LINE:
        return text[:100]
    if text.lstrip()[:1] != "{":
        return text[:100]
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError):
        return text.strip()[:100]
    return None if isinstance(obj, dict) else text.strip()[:100]


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def feed_checked(normalizer: Any, lines: list[tuple[str, str]], budget_s: float = 2.0) -> None:
    """Feed every line, checking what every consumer relies on; the entry list is rebuilt from
    the patches alone, as the TUI and `--json` consumers do."""
    mirror: list[Any] = []
    name = type(normalizer).__name__
    for stream, text in lines:
        started = time.perf_counter()
        patches = normalizer.feed(stream, text)
        took = time.perf_counter() - started
        assert took < budget_s, f"{name}: {took:.1f}s for {text[:60]!r}"
        _check_patches(name, mirror, patches)
        kept = _expected_kept(stream, text)
        if kept is not None:
            dicts = [p.entry.to_dict() for p in patches]
            assert any(kept in s for d in dicts for s in _strings(d)), (
                f"{name} dropped {text[:80]!r}"
            )
    _check_patches(name, mirror, normalizer.finish())


def _check_patches(name: str, mirror: list[Any], patches: Any) -> None:
    assert isinstance(patches, list), name
    for patch in patches:
        if patch.op == "append":
            assert patch.index == len(mirror), f"{name}: append at {patch.index}, {len(mirror)}"
            mirror.append(patch.entry)
        else:
            assert patch.op == "replace", f"{name}: op {patch.op!r}"
            assert 0 <= patch.index < len(mirror), f"{name}: replace {patch.index}/{len(mirror)}"
            mirror[patch.index] = patch.entry
        json.dumps(patch.entry.to_dict())
        assert isinstance(render_text(patch.entry), str)


def _nasty_lines() -> list[tuple[str, str]]:
    rng = random.Random(7)
    random_text = rng.randbytes(200_000).decode("utf-8", "replace")
    deep_object = '{"a":' * NEST + "1" + "}" * NEST
    deep_in_event = '{"type":"assistant","message":' + '{"content":' * NEST + "1" + "}" * NEST + "}"
    huge_text = '{"type":"assistant","message":{"content":[{"type":"text","text":"'
    huge_text += "x" * 3_000_000 + '"}]}}'
    lines = [
        ("stdout", "[" * NEST + "]" * NEST),
        ("stdout", "[" * NEST),
        ("stdout", deep_object),
        ("stdout", deep_in_event),
        ("stdout", "{" * NEST),
        ("stdout", huge_text),
        ("stdout", "{" + "a" * (MAX_JSON_LINE + 10)),
        ("stdout", "x" * (MAX_JSON_LINE + 10)),
        ("stdout", random_text.replace("\n", " ")),
        ("stderr", random_text.replace("\n", " ")),
        ("stdout", "\x00\x01\x02\r\r\x7f\ufffd\ufffd"),
        ("stdout", '{"type": 1e999999}'),
        ("stdout", '{"type": NaN, "session_id": Infinity}'),
        ("stdout", '{"a": 1} trailing garbage'),
        ("stdout", "   {  "),
        ("stdout", "\u2028\u2029\ufeff{}"),
    ]
    for stream in ("stdout", "stderr"):
        lines += [
            (stream, "\x1b]" * 20_000),  # OSC openers, never terminated
            (stream, "\x1b]0;" + "t" * 200_000),
            (stream, "\x1b[" * 100_000),
            (stream, "\x1b[31;1;4m" * 20_000 + "red" + "\x1b[0m"),
            (stream, "\x1b]8;;http://example.com\x1b\\link\x1b]8;;\x1b\\" * 5_000),
            (stream, ("\x1b[2J\x1b[H\x1b[?25l\x1b7\x1b8\x1bP" + "q" * 10) * 5_000),
        ]
    return lines


@pytest.mark.parametrize("name", sorted(NORMALIZERS))
def test_nasty_lines_into_each_normaliser(name: str) -> None:
    feed_checked(NORMALIZERS[name](), _nasty_lines())


def test_ansi_storm_costs_linear_time() -> None:
    """Regression: `\\x1b\\][^\\x07]*(\\x07|\\x1b\\\\)` backtracked over the whole line from every
    unterminated OSC opener: 20k openers (60 KB) on stderr took ~7 s, an 8 MB line hours, all
    inside the run loop. The TUI's log view had the same pattern."""
    storm = "\x1b]" * 20_000
    normalizer = JsonlNormalizer()
    started = time.perf_counter()
    normalizer.feed("stderr", storm)
    assert time.perf_counter() - started < 1.0
    try:
        from aura_tui.widgets.log_view import clean
    except ImportError:
        return
    started = time.perf_counter()
    clean(storm)
    assert time.perf_counter() - started < 1.0


# -- hypothesis: type-confused real events ---------------------------------------------------------


def _fixture_events() -> list[dict[str, Any]]:
    events = []
    for path in sorted(FIXTURES.glob("*.jsonl")):
        for line in path.read_text().splitlines():
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if isinstance(obj, dict):
                events.append(obj)
    return events


EVENTS = _fixture_events()
JSON_LEAF = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=30),
    st.sampled_from(["", "text", "tool_use", "tool_result", "error", "delta", "1", "-1"]),
)
JSON_VALUE = st.recursive(
    JSON_LEAF,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(value, dict):
        for key, v in value.items():
            yield from _paths(v, (*prefix, key))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, (*prefix, i))


@st.composite
def mutated_event(draw: st.DrawFn) -> str:
    """A real agent event with some of its values replaced by anything (or deleted)."""
    event = json.loads(json.dumps(draw(st.sampled_from(EVENTS))))
    for _ in range(draw(st.integers(1, 4))):
        paths = [p for p in _paths(event) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = event
        for key in path[:-1]:
            parent = parent[key]
        if isinstance(parent, dict) and draw(st.booleans()) and len(paths) > 1:
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(JSON_VALUE)
    return json.dumps(event)


LINE = st.one_of(
    mutated_event(),
    mutated_event(),
    JSON_VALUE.map(json.dumps),
    st.dictionaries(st.sampled_from(["type", "subtype", "item", "event", "msg"]), JSON_VALUE).map(
        json.dumps
    ),
    st.text(max_size=200),
    st.binary(max_size=200).map(lambda b: b.decode("utf-8", "replace")),
)


@pytest.mark.parametrize("name", sorted(NORMALIZERS))
@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    lines=st.lists(st.tuples(st.sampled_from(["stdout", "stdout", "stderr"]), LINE), max_size=25)
)
def test_type_confused_events_never_break_a_normaliser(name: str, lines: list[Any]) -> None:
    feed_checked(NORMALIZERS[name](), lines)


# ---- through `aura run` --------------------------------------------------------------------------


def _run_measured(env: dict[str, str], cwd: Path, *args: str) -> tuple[int, str, float]:
    """Run aura with stdout discarded: (exit code, stderr, peak RSS in MB of it and its reaped
    children, from wait4)."""
    err_path = cwd / "stderr.txt"
    with err_path.open("wb") as err:
        proc = subprocess.Popen(
            aura_argv(*args), env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=err
        )
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            proc.returncode = -1  # reaped by wait4 above (or killed below)
            try:
                os.kill(proc.pid, 9)
            except OSError:
                pass
    return (
        os.waitstatus_to_exitcode(status),
        err_path.read_text(errors="replace"),
        (usage.ru_maxrss / 1024),
    )


def _stored_bytes(env: dict[str, str], prompt: str) -> Iterator[tuple[str, bytes]]:
    con = connect(db_file(env))
    try:
        sid = con.execute("SELECT id FROM sessions WHERE prompt = ?", (prompt,)).fetchone()[0]
        for stream, text, raw in con.execute(
            "SELECT stream, text, raw FROM log_lines WHERE session_id = ? ORDER BY seq", (sid,)
        ):
            yield stream, raw if raw is not None else text.encode("utf-8", "surrogatepass")
    finally:
        con.close()


# Writes the same bytes the test computes: a seeded mix of random bytes, invalid UTF-8, escape
# storms and 100k-deep JSON, one "record" per line.
MIX_AGENT = r"""
import random, sys
rng = random.Random(int(sys.argv[1]))
w = sys.stdout.buffer.write
N = 100000
records = [
    rng.randbytes(300000).replace(b"\n", b" "),
    b"\xff\xfe\xfd invalid \xc3\x28 utf-8 \xed\xa0\x80 surrogate \xf4\x90\x80\x80 \xc0\xaf",
    b"\x1b]" * 20000,
    b"\x1b]0;" + b"t" * 100000,
    b"\x1b[31;1m" * 20000 + b"red\x1b[0m",
    b"[" * N + b"]" * N,
    b'{"a":' * N + b"1" + b"}" * N,
    b"\r\r\x00\x07\x08 controls",
    b"",
    b"last line without a newline",
]
w(b"\n".join(records))
"""


def _mix_expected(seed: int) -> list[bytes]:
    namespace: dict[str, Any] = {}
    code = MIX_AGENT.replace('w(b"\\n".join(records))', "").replace("int(sys.argv[1])", "SEED")
    exec(code, {"SEED": seed, "sys": __import__("sys")}, namespace)
    records: list[bytes] = namespace["records"]
    return records


def test_hostile_output_through_aura_run(tmp_path: Path) -> None:
    env = lane_env(tmp_path / "home")
    seed = 11
    code, err, rss = _run_measured(
        env, tmp_path,
        *("run", "-e", "custom", "-p", "mix", "--no-tui", "--base-command", "python3"),
        *("--param", "-c", "--param", MIX_AGENT, "--param", str(seed)),
    )  # fmt: skip
    assert code == 0 and not has_traceback(err), err
    stored = [data for stream, data in _stored_bytes(env, "mix") if stream == "stdout"]
    assert stored == _mix_expected(seed)
    assert rss < RSS_BOUND_MB, f"peak RSS {rss:.0f} MB"


HUGE_AGENT = (
    "import sys\nw = sys.stdout.buffer.write\n"
    f"for i in range({HUGE_MB}): w(bytes([97 + i % 26]) * (1 << 20))\n"
)


def test_100_mb_without_a_newline_in_bounded_memory(tmp_path: Path) -> None:
    env = lane_env(tmp_path / "home")
    code, err, rss = _run_measured(
        env, tmp_path,
        *("run", "-e", "custom", "-p", "huge", "--no-tui", "--base-command", "python3"),
        *("--param", "-c", "--param", HUGE_AGENT),
    )  # fmt: skip
    assert code == 0 and not has_traceback(err), err
    want, got, size = hashlib.sha256(), hashlib.sha256(), 0
    for i in range(HUGE_MB):
        want.update(bytes([97 + i % 26]) * (1 << 20))
    for stream, data in _stored_bytes(env, "huge"):
        assert stream == "stdout"
        got.update(data)
        size += len(data)
    assert size == HUGE_MB << 20
    assert got.hexdigest() == want.hexdigest()
    print(f"peak RSS {rss:.0f} MB for {HUGE_MB} MB without a newline")
    assert rss < RSS_BOUND_MB, f"peak RSS {rss:.0f} MB for {HUGE_MB} MB without a newline"


def test_hostile_output_through_a_structured_executor(tmp_path: Path) -> None:
    """The same storm as claude's output (a fake binary): entries are derived live and again by
    `aura session show`, with no traceback; the raw lines are all kept."""
    agent = tmp_path / "fake-claude"
    agent.write_text("#!/usr/bin/env python3\n" + MIX_AGENT.replace("int(sys.argv[1])", "11"))
    agent.chmod(0o755)
    env = lane_env(tmp_path / "home")
    for executor in sorted({"claude", "codex", "gemini"} & _available()):
        prompt = f"storm-{executor}"
        code, err, rss = _run_measured(
            env, tmp_path,
            *("run", "-e", executor, "-p", prompt, "--no-tui"),
            *("--executor-path", f"{executor}={agent}"),
        )  # fmt: skip
        assert not has_traceback(err), f"{executor}: {err[-3000:]}"
        assert code == 0, f"{executor}: exit {code}: {err[-2000:]}"
        assert rss < RSS_BOUND_MB, f"{executor}: peak RSS {rss:.0f} MB"
        sid = next(iter(_session_ids(env, prompt)))
        show = subprocess.run(
            aura_argv("session", "show", sid), env=env, capture_output=True, timeout=120
        )
        assert show.returncode == 0 and not has_traceback(show.stderr.decode(errors="replace"))
        kept = [d for s, d in _stored_bytes(env, prompt) if s == "stdout"]
        assert len(kept) >= len(_mix_expected(11)) - 1  # a pty may merge nothing, split nothing


def _available() -> set[str]:
    from aura_core.executors.registry import EXECUTOR_NAMES, is_available

    return {n for n in EXECUTOR_NAMES if is_available(n)}


def _session_ids(env: dict[str, str], prompt: str) -> list[str]:
    con = connect(db_file(env))
    try:
        return [r[0] for r in con.execute("SELECT id FROM sessions WHERE prompt = ?", (prompt,))]
    finally:
        con.close()
