"""`aura completion SHELL`: the generated scripts, loaded into the real shells and asked for
completions the way a TAB press would.

bash: the completion function is called with COMP_WORDS/COMP_CWORD set as readline sets them.
zsh: an interactive zsh in a pty with TAB bound to a widget that runs the real completion system;
`compadd` is wrapped to print what would have been offered.
fish: `complete -C LINE`.
elvish: an interactive elvish in a pty (the edit: module only exists there) calls the registered
arg-completer; candidates are prefix-filtered here the way elvish's default matcher does.
powershell: not installed here, so the script's structure is checked.

A missing shell is a skip on a workstation, but a failure under CI=true. Every subprocess runs with
HOME, XDG_* and AURA_HOME in temporary folders, and an `aura` on PATH that runs this checkout.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from aura_tui import completion
from aura_tui.completion import SHELLS, generate, mark_dynamic

ROOT = Path(__file__).resolve().parents[2]
EXECUTORS = [
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
]
REAL_SHELLS = ("bash", "zsh", "fish", "elvish")
TIMEOUT = 60


def _ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def require(shell: str) -> str:
    """The shell's binary; skip without it locally, fail without it under CI."""
    path = shutil.which(shell)
    if path is None:
        msg = f"{shell} is not installed (apt-get install -y zsh fish elvish)"
        if _ci():
            pytest.fail(f"{msg}; CI must install it")
        pytest.skip(msg)
    return path


def build_real_parser() -> argparse.ArgumentParser:
    from aura_tui.cli import build_parser

    return build_parser()


# ---------------------------------------------------------------------------------------------
# The sandbox: isolated home, an `aura` on PATH, and two stored sessions


@dataclass
class Sandbox:
    root: Path
    env: dict[str, str]
    session_ids: list[str] = field(default_factory=list)
    sessions_skip: str = ""  # why session ids could not be prepared, if they could not

    def aura(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["aura", *args],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            env=self.env,
            cwd=self.root,
        )


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Sandbox:
    root = tmp_path_factory.mktemp("completion")
    home = root / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AURA_", "XDG_"))}
    dirs = {
        "HOME": home,
        "XDG_CONFIG_HOME": home / ".config",
        "XDG_DATA_HOME": home / ".local/share",
        "XDG_CACHE_HOME": home / ".cache",
        "XDG_STATE_HOME": home / ".local/state",
        "AURA_HOME": home / "aura-data",
        "ZDOTDIR": home,
    }
    for var, path in dirs.items():
        path.mkdir(parents=True, exist_ok=True)
        env[var] = str(path)
    bindir = root / "bin"
    bindir.mkdir()
    wrapper = bindir / "aura"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m aura_tui "$@"\n')
    wrapper.chmod(0o755)
    env["PATH"] = f"{bindir}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}"
    env["PYTHONPATH"] = str(ROOT)
    env["TERM"] = "dumb"
    env.pop("EDITOR", None)
    env.pop("VISUAL", None)
    box = Sandbox(root=root, env=env)

    for _ in range(2):
        made = box.aura(
            "run", "--executor", "custom", "--prompt", "x", "--base-command", "true", "--no-tui"
        )
        if made.returncode != 0:
            box.sessions_skip = f"`aura run --executor custom ... --no-tui` failed: {made.stderr}"
            return box
    listed = box.aura("session", "list", "--ids-only")
    ids = listed.stdout.split()
    if listed.returncode != 0 or len(ids) != 2:
        box.sessions_skip = f"`aura session list --ids-only` gave {listed!r}"
    box.session_ids = ids
    return box


# ---------------------------------------------------------------------------------------------
# Drivers: each takes a script and command lines, returns the candidates offered for each line


def _between_markers(text: str) -> list[list[str]]:
    blocks = re.findall(r"<<<\r?\n(.*?)>>>", text, flags=re.S)
    return [[x for x in block.replace("\r", "").split("\n") if x] for block in blocks]


def _sq(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def bash_words(line: str) -> list[str]:
    """COMP_WORDS as bash builds them: '=' is in COMP_WORDBREAKS, so it is a word of its own."""
    words: list[str] = []
    for token in line.split():
        words += [part for part in re.split(r"(=)", token) if part]
    if not line or line.endswith(" "):
        words.append("")
    return words


def run_bash(script: Path, lines: list[str], box: Sandbox) -> list[list[str]]:
    body = [
        f"source {_sq(str(script))}",
        "__try() {",
        '    local -a COMP_WORDS=("$@")',
        '    COMP_CWORD=$(( $# - 1 )); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}; COMPREPLY=()',
        "    _aura",
        "    printf '%s\\n' '<<<' \"${COMPREPLY[@]}\" '>>>'",
        "}",
    ]
    body += ["__try " + " ".join(_sq(w) for w in bash_words(line)) for line in lines]
    test = box.root / "drive.bash"
    test.write_text("\n".join(body) + "\n")
    out = subprocess.run(
        [require("bash"), "--norc", "--noprofile", str(test)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=box.env,
        cwd=box.root,
    )
    assert out.returncode == 0, out.stderr
    return _between_markers(out.stdout)


def run_fish(script: Path, lines: list[str], box: Sandbox) -> list[list[str]]:
    test = box.root / "drive.fish"
    test.write_text(
        f"source {_sq(str(script))}\n"
        "for line in $argv\n"
        "    echo '<<<'\n"
        '    complete -C "$line"\n'
        "    echo '>>>'\n"
        "end\n"
    )
    out = subprocess.run(
        [require("fish"), "--no-config", str(test), *lines],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=box.env,
        cwd=box.root,
    )
    assert out.returncode == 0, out.stderr
    return [[c.split("\t")[0] for c in block] for block in _between_markers(out.stdout)]


# Loaded into `zsh -f -i`: compinit, the completion script, TAB bound to a widget that runs the
# real completion and brackets it with markers, and compadd wrapped so every match it adds is also
# printed (after zsh-capture-completion; the matches are still added, so fallbacks such as
# _files trying all files when no folder matched behave as they do for a user).
ZSH_CAPTURE = r"""
bindkey -e
PROMPT='> '
RPROMPT=''
unsetopt beep autolist automenu
LISTMAX=100000
{fpath}
autoload -Uz compinit && compinit -u -D
{load}
zstyle ':completion:*' list-grouped false
zstyle ':completion:*' insert-tab false
zmodload zsh/zutil
compadd() {{
  # calls that only collect matches into arrays go through untouched
  if [[ ${{@[1,(i)(-|--)]}} == *-(O|A|D)\ * ]]; then
    builtin compadd "$@"
    return $?
  fi
  local -a __hits __dscr __tmp
  if (( $@[(I)-d] )); then
    __tmp=${{@[$[${{@[(i)-d]}}+1]]}}
    if [[ $__tmp == \(* ]]; then
      eval "__dscr=$__tmp"
    else
      __dscr=( "${{(@P)__tmp}}" )
    fi
  fi
  builtin compadd -A __hits -D __dscr "$@"
  local hit
  for hit in "${{__hits[@]}}"; do
    print -r -- "CAND:$hit"
  done
  builtin compadd "$@"
}}
__capture() {{
  print -r -- '<<<'
  zle complete-word
  print -r -- '>>>'
}}
zle -N __capture
bindkey '^I' __capture
print -r -- '<<READY>>'
"""


def run_zsh(
    script: Path, lines: list[str], box: Sandbox, *, mode: str = "source"
) -> list[list[str]]:
    import pexpect

    zsh = require("zsh")
    if mode == "fpath":  # installed as _aura on $fpath and autoloaded through #compdef
        funcs = box.root / "zfuncs"
        funcs.mkdir(exist_ok=True)
        shutil.copy(script, funcs / "_aura")
        rc = ZSH_CAPTURE.format(fpath=f"fpath=({_sq(str(funcs))} $fpath)", load="")
    else:  # sourced after compinit
        rc = ZSH_CAPTURE.format(fpath="", load=f"source {_sq(str(script))}")
    rcfile = box.root / f"capture-{mode}.zsh"
    rcfile.write_text(rc)
    child = pexpect.spawn(
        zsh,
        ["-f", "-i"],
        env=box.env,
        cwd=str(box.root),
        encoding="utf-8",
        timeout=TIMEOUT,
        dimensions=(50, 400),
    )
    results: list[list[str]] = []
    try:
        child.sendline(f"source {_sq(str(rcfile))}")
        child.expect("<<READY>>\r?\n")
        for line in lines:
            child.send(line + "\t")
            child.expect(">>>")
            text = child.before[child.before.rfind("<<<") :]
            # matches come quoted as they would be inserted (two\ words): unquote them
            hits = re.findall(r"CAND:(.*?)\r?\n", text)
            results.append([re.sub(r"\\(.)", r"\1", hit) for hit in hits])
            child.send("\x15")  # kill-whole-line before the next one
        child.sendline("exit")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    return results


def _elvish_list(words: list[str]) -> str:
    return "[" + " ".join("'" + w.replace("'", "''") + "'" for w in words) + "]"


def run_elvish(script: Path, lines: list[str], box: Sandbox) -> list[list[str]]:
    import pexpect

    elvish = require("elvish")
    out = box.root / "elvish-out.txt"
    err = box.root / "elvish-err.txt"
    calls = []
    for line in lines:
        words = line.split()
        if not line or line.endswith(" "):
            words.append("")
        calls.append(
            "    echo '<<<'\n"
            f"    $complete {_elvish_list(words)} | each {{|c|\n"
            "      if (eq (kind-of $c) string) { echo $c } else { echo $c[stem] }\n"
            "    }\n"
            "    echo '>>>'"
        )
    rc = box.root / "drive.elv"
    # the edit: module exists only in an interactive elvish, so this runs as its rc file
    rc.write_text(
        "try {\n"
        f"  eval (slurp < {_elvish_list([str(script)])[1:-1]})\n"
        "  var complete = {|words| $edit:completion:arg-completer[aura] $@words }\n"
        "  {\n" + "\n".join(calls) + "\n"
        f"  }} > {_elvish_list([str(out)])[1:-1]}\n"
        f"}} catch e {{ echo (show $e) > {_elvish_list([str(err)])[1:-1]} }}\n"
        "exit\n"
    )
    child = pexpect.spawn(
        elvish,
        ["-rc", str(rc)],
        env=box.env,
        cwd=str(box.root),
        encoding="utf-8",
        timeout=TIMEOUT,
        dimensions=(50, 400),
    )
    try:
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert not err.exists(), err.read_text()
    blocks = _between_markers(out.read_text())
    # elvish's default matcher keeps the candidates that start with the word being completed
    currents = [("" if line.endswith(" ") else line.split()[-1]) for line in lines]
    return [
        [c for c in block if c.startswith(cur)] for block, cur in zip(blocks, currents, strict=True)
    ]


DRIVERS: dict[str, Callable[[Path, list[str], Sandbox], list[list[str]]]] = {
    "bash": run_bash,
    "zsh": run_zsh,
    "fish": run_fish,
    "elvish": run_elvish,
}


# ---------------------------------------------------------------------------------------------
# What the real parser must complete, asked of every shell


def _subparsers(
    parser: argparse.ArgumentParser,
) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))


def _visible_commands(parser: argparse.ArgumentParser) -> set[str]:
    return {a.dest for a in _subparsers(parser)._get_subactions() if a.help != argparse.SUPPRESS}


def _long_options(parser: argparse.ArgumentParser) -> set[str]:
    return {
        flag
        for a in parser._actions
        if a.help != argparse.SUPPRESS
        for flag in a.option_strings
        if flag.startswith("--")
    }


@dataclass(frozen=True)
class Case:
    name: str
    line: str
    expect: Callable[[list[str], Sandbox], None]


def _equal(want: Callable[[Sandbox], set[str]]) -> Callable[[list[str], Sandbox], None]:
    def check(got: list[str], box: Sandbox) -> None:
        assert set(got) == want(box)

    return check


def _includes(want: Callable[[Sandbox], set[str]]) -> Callable[[list[str], Sandbox], None]:
    def check(got: list[str], box: Sandbox) -> None:
        missing = want(box) - set(got)
        assert not missing, f"missing {sorted(missing)} from {got}"

    return check


def _names(got: list[str]) -> set[str]:
    """Paths as the last name (shells differ in whether they echo the typed folder)."""
    return {os.path.basename(g.rstrip("/")) for g in got}


def _dirs_only(got: list[str], box: Sandbox) -> None:
    assert _names(got) == {"alpha", "beta"}, got


def _session_ids(got: list[str], box: Sandbox) -> None:
    if box.sessions_skip:
        pytest.skip(box.sessions_skip)
    assert set(got) == set(box.session_ids)


def _session_prefix(got: list[str], box: Sandbox) -> None:
    if box.sessions_skip:
        pytest.skip(box.sessions_skip)
    prefix = box.session_ids[0][:1]
    assert set(got) == {i for i in box.session_ids if i.startswith(prefix)}


def _run_parser() -> argparse.ArgumentParser:
    return _subparsers(build_real_parser()).choices["run"]


CASES = [
    Case(
        "subcommands",
        "aura ",
        _equal(lambda box: _visible_commands(build_real_parser())),
    ),
    Case("subcommand-prefix", "aura ses", _equal(lambda box: {"session"})),
    Case("executor-values", "aura run --executor ", _equal(lambda box: set(EXECUTORS))),
    Case(
        "executor-short-prefix",
        "aura run -e c",
        _equal(lambda box: {e for e in EXECUTORS if e.startswith("c")}),
    ),
    Case(
        "executor-after-other-options",
        "aura run --prompt hi --cwd . --executor ",
        _equal(lambda box: set(EXECUTORS)),
    ),
    Case("tui-executor-values", "aura tui --executor ", _equal(lambda box: set(EXECUTORS))),
    Case("shell-names", "aura completion ", _equal(lambda box: set(SHELLS))),
    Case("session-actions", "aura session ", _equal(lambda box: {"list", "show", "latest"})),
    Case(
        "session-actions-after-global-option",
        "aura --data-dir somewhere session ",
        _equal(lambda box: {"list", "show", "latest"}),
    ),
    Case("run-options", "aura run --", _includes(lambda box: _long_options(_run_parser()))),
    Case(
        "run-option-prefix",
        "aura run --exec",
        _equal(lambda box: {"--executor", "--executor-path"}),
    ),
    Case("cwd-dirs", "aura run --cwd tree/", _dirs_only),
    Case("session-ids", "aura session show ", _session_ids),
    Case("session-id-prefix", "aura session show {prefix}", _session_prefix),
    Case("help-topics", "aura help session ", _equal(lambda box: {"list", "show", "latest"})),
]


def _line(case: Case, box: Sandbox) -> str:
    prefix = box.session_ids[0][:1] if box.session_ids else "0"
    return case.line.replace("{prefix}", prefix)


class Results(dict[str, list[list[str]]]):
    """Candidates per shell, computed on first use: each shell starts once for all its cases."""

    def __init__(self, parser: argparse.ArgumentParser, lines: list[str], box: Sandbox) -> None:
        super().__init__()
        self.parser, self.lines, self.box = parser, lines, box

    def __missing__(self, shell: str) -> list[list[str]]:
        script = self.box.root / f"{self.parser.prog}-{id(self)}.{shell}"
        script.write_text(generate(self.parser, shell))
        got = DRIVERS[shell](script, self.lines, self.box)
        assert len(got) == len(self.lines), got
        self[shell] = got
        return got


@pytest.fixture(scope="module")
def real_results(sandbox: Sandbox) -> Results:
    tree = sandbox.root / "tree"
    for sub in ("alpha", "beta"):
        (tree / sub).mkdir(parents=True, exist_ok=True)
    (tree / "gamma.txt").write_text("not a folder\n")
    return Results(build_real_parser(), [_line(case, sandbox) for case in CASES], sandbox)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
@pytest.mark.parametrize("shell", REAL_SHELLS)
def test_real_parser_completes(
    shell: str, case: Case, real_results: Results, sandbox: Sandbox
) -> None:
    require(shell)
    got = real_results[shell][CASES.index(case)]
    case.expect(got, sandbox)


def test_bash_session_ids_newest_first(real_results: Results, sandbox: Sandbox) -> None:
    """`aura session list --ids-only` prints newest first; bash must keep that order."""
    require("bash")
    if sandbox.sessions_skip:
        pytest.skip(sandbox.sessions_skip)
    got = real_results["bash"][[c.name for c in CASES].index("session-ids")]
    assert got == sandbox.session_ids


@pytest.mark.parametrize(
    ("line", "want"),
    [
        ("aura run --executor=", set(EXECUTORS)),  # readline completes after the '='
        ("aura run --executor=cl", {"claude"}),
        ("aura run --auto-approve ", {"true", "false"}),
        ("aura session show --json ", None),  # still the id slot after a flag
        ("aura run --prompt ", set()),  # free text: offer nothing rather than noise
    ],
)
def test_bash_details(line: str, want: set[str] | None, sandbox: Sandbox) -> None:
    require("bash")
    script = sandbox.root / "aura.details.bash"
    script.write_text(generate(build_real_parser(), "bash"))
    (got,) = run_bash(script, [line], sandbox)
    if want is None:
        if sandbox.sessions_skip:
            pytest.skip(sandbox.sessions_skip)
        want = set(sandbox.session_ids)
    assert set(got) == want


def test_zsh_autoloaded_from_fpath(sandbox: Sandbox) -> None:
    """Installed as _aura on $fpath (the #compdef route), not sourced."""
    require("zsh")
    script = sandbox.root / "aura.fpath.zsh"
    script.write_text(generate(build_real_parser(), "zsh"))
    got = run_zsh(script, ["aura run --executor ", "aura "], sandbox, mode="fpath")
    assert set(got[0]) == set(EXECUTORS)
    assert set(got[1]) == _visible_commands(build_real_parser())


def test_dynamic_values_survive_a_failing_command(sandbox: Sandbox) -> None:
    """No `aura` that works on PATH: session ids complete to nothing, and nothing breaks."""
    broken = sandbox.root / "broken-bin"
    broken.mkdir(exist_ok=True)
    fake = broken / "aura"
    fake.write_text("#!/bin/sh\necho 'boom' >&2\nexit 3\n")
    fake.chmod(0o755)
    env = dict(sandbox.env, PATH=f"{broken}{os.pathsep}{sandbox.env['PATH']}")
    box = Sandbox(root=sandbox.root, env=env)
    parser = build_real_parser()
    for shell in ("bash", "fish"):
        require(shell)
        script = sandbox.root / f"aura.broken.{shell}"
        script.write_text(generate(parser, shell))
        got = DRIVERS[shell](script, ["aura session show ", "aura session "], box)
        assert got[0] == [], shell
        assert set(got[1]) == {"list", "show", "latest"}, shell


# ---------------------------------------------------------------------------------------------
# A parser with the awkward corners, so the generator is not only right for today's CLI


def edge_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aura")
    parser.add_argument("--verbose", "-v", action="count", help="louder (%(default)s)")
    parser.add_argument("--secret", help=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command")
    task = sub.add_parser("task", help="tasks", aliases=["t"])
    tsub = task.add_subparsers(dest="task_command")
    add = tsub.add_parser("add", help="add a task: [quoted] 'help' $HOME")
    add.add_argument("--mode", choices=["plain", "two words", "it's"], help="mode")
    add.add_argument("--pair", nargs=2, metavar=("A", "B"), help="two values")
    add.add_argument("--tags", nargs="*", help="any number of tags")
    add.add_argument("title", help="title")
    add.add_argument("color", choices=["red", "green"], help="color")
    add.add_argument("files", nargs="*", type=Path, help="attachments")
    rm = tsub.add_parser("rm", help="remove tasks")
    mark_dynamic(rm.add_argument("ids", nargs="+"), "session-ids")
    tsub.add_parser("list", help="list tasks")
    sub.add_parser("hidden-cmd", help=argparse.SUPPRESS)
    return parser


EDGE_CASES: list[tuple[str, str, set[str]]] = [
    ("aliases-offer-primary-names", "aura ", {"task"}),
    ("alias-is-followed", "aura t ", {"add", "rm", "list"}),
    ("hidden-option-not-offered", "aura --s", set()),
    ("choices-with-spaces-and-quotes", "aura task add --mode ", {"plain", "two words", "it's"}),
    (
        "after-a-two-value-option",
        "aura task add --pair x y --mode ",
        {"plain", "two words", "it's"},
    ),
    ("second-positional-choices", "aura task add my-title ", {"red", "green"}),
    ("positional-after-nargs-2-option", "aura task add --pair a b my-title ", {"red", "green"}),
    ("greedy-option-then-option", "aura t add --tags a b c --mode p", {"plain"}),
    ("dynamic-repeats", "aura task rm one ", {"ID-NEW", "ID-OLD"}),
]


@pytest.fixture(scope="module")
def edge_box(sandbox: Sandbox) -> Sandbox:
    """An `aura` that only answers `session list --ids-only`, with fixed ids."""
    fake_bin = sandbox.root / "fake-bin"
    fake_bin.mkdir(exist_ok=True)
    fake = fake_bin / "aura"
    fake.write_text(
        '#!/bin/sh\n[ "$*" = "session list --ids-only" ] && printf "ID-NEW\\nID-OLD\\n"\n'
    )
    fake.chmod(0o755)
    env = dict(sandbox.env, PATH=f"{fake_bin}{os.pathsep}{sandbox.env['PATH']}")
    return Sandbox(root=sandbox.root, env=env)


@pytest.fixture(scope="module")
def edge_results(edge_box: Sandbox) -> Results:
    return Results(edge_parser(), [line for _, line, _ in EDGE_CASES], edge_box)


@pytest.mark.parametrize("index", range(len(EDGE_CASES)), ids=[c[0] for c in EDGE_CASES])
@pytest.mark.parametrize("shell", REAL_SHELLS)
def test_edge_parser_completes(shell: str, index: int, edge_results: Results) -> None:
    require(shell)
    _, line, want = EDGE_CASES[index]
    assert set(edge_results[shell][index]) == want, line


# ---------------------------------------------------------------------------------------------
# powershell (no pwsh here): the script's shape


def _ps_code(script: str) -> str:
    """The script without comments and string literals, for counting brackets."""
    out = []
    i = 0
    while i < len(script):
        ch = script[i]
        if ch == "#":
            while i < len(script) and script[i] != "\n":
                i += 1
        elif ch == "'":
            i += 1
            while i < len(script):
                if script[i] == "'" and script[i + 1 : i + 2] == "'":
                    i += 2
                elif script[i] == "'":
                    break
                else:
                    i += 1
            i += 1
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def test_powershell_script_shape() -> None:
    parser = build_real_parser()
    script = generate(parser, "powershell")
    assert "Register-ArgumentCompleter -Native -CommandName 'aura' -ScriptBlock {" in script
    assert "param($wordToComplete, $commandAst, $cursorPosition)" in script
    assert '"' not in _ps_code(script), "only single-quoted strings: no interpolation surprises"
    code = _ps_code(script)
    for open_, close in ("{}", "()", "[]"):
        depth = 0
        for ch in code:
            depth += (ch == open_) - (ch == close)
            assert depth >= 0, f"unbalanced {open_}{close}"
        assert depth == 0, f"unbalanced {open_}{close}"
    for name in _visible_commands(parser) | {"list", "show", "latest"}:
        assert f"t = '{name}'" in script
    for name in EXECUTORS:
        assert f"'{name}'" in script
    for flag in _long_options(_run_parser()):
        assert f"t = '{flag}'" in script
    for action in _run_parser()._actions:
        for flag in action.option_strings if action.nargs != 0 else ():
            assert f"'run>{flag}'" in script  # how many values it takes and how they complete
    for shell in SHELLS:
        assert f"'{shell}'" in script
    assert "'session-ids'" in script and "'session' 'list' '--ids-only'" in script


def test_powershell_quotes_help_text() -> None:
    parser = argparse.ArgumentParser(prog="aura")
    parser.add_argument("--x", help="it's \u2019curly\u2019")
    script = generate(parser, "powershell")
    assert "'it''s \u2019\u2019curly\u2019\u2019'" in script


# ---------------------------------------------------------------------------------------------
# The generator itself


def test_scripts_follow_the_parser() -> None:
    """Nothing is hand-kept: an option added to the parser shows up in every script."""
    parser = build_real_parser()
    run = _subparsers(parser).choices["run"]
    run.add_argument("--zz-new-option", choices=["zz-alpha", "zz-beta"], help="brand new")
    for shell in SHELLS:
        script = generate(parser, shell)
        assert "zz-new-option" in script, shell
        assert "zz-alpha" in script and "zz-beta" in script, shell


def test_cli_prints_the_generated_script(sandbox: Sandbox) -> None:
    for shell in SHELLS:
        out = sandbox.aura("completion", shell)
        assert out.returncode == 0, out.stderr
        assert out.stdout == generate(build_real_parser(), shell)


def test_unknown_shell_and_kind_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown shell"):
        generate(build_real_parser(), "tcsh")
    action = argparse.ArgumentParser().add_argument("--x")
    with pytest.raises(ValueError, match="unknown completion kind"):
        mark_dynamic(action, "sessions")
    assert mark_dynamic(action, "dir") is action
    assert getattr(action, completion.ATTR) == "dir"


def test_guesses_from_names() -> None:
    parser = argparse.ArgumentParser(prog="aura")
    parser.add_argument("--cwd", metavar="DIR")
    parser.add_argument("--data-dir")
    parser.add_argument("--base-command", metavar="CMD")
    parser.add_argument("--prompt-file")
    parser.add_argument("--executor-path", metavar="NAME=PATH")
    parser.add_argument("--auto-approve", metavar="true|false")
    parser.add_argument("--model")
    mark_dynamic(parser.add_argument("--log-dir"), "none")
    model = completion.build_model(parser)
    kinds = {o.flags[0]: o.value for o in model.options}
    assert kinds["--cwd"].kind == "dir"
    assert kinds["--data-dir"].kind == "dir"
    assert kinds["--base-command"].kind == "command"
    assert kinds["--prompt-file"].kind == "file"
    assert kinds["--executor-path"].kind == ""  # NAME=PATH: a file name alone would be wrong
    assert kinds["--auto-approve"].choices == ("true", "false")
    assert kinds["--model"].kind == ""
    assert kinds["--log-dir"].kind == ""


def test_import_is_stdlib_only() -> None:
    """It runs on the CLI's fast path: importing it must not pull in third-party packages."""
    code = (
        "import sys; before = set(sys.modules); import aura_tui.completion; "
        "new = {m.split('.')[0] for m in set(sys.modules) - before}; "
        "print(sorted(new - set(sys.stdlib_module_names) - {'aura_tui'}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


# ---------------------------------------------------------------------------------------------
# One real TAB press per shell: the script registers itself, and the completed line runs


TAB_SHELLS = {
    "bash": (["--norc", "--noprofile", "-i"], "source {script}"),
    "zsh": (["-f", "-i"], "autoload -Uz compinit; compinit -u -D; source {script}"),
    "fish": (["--no-config", "-i"], "source {script}"),
}


@pytest.mark.parametrize("shell", sorted(TAB_SHELLS))
def test_tab_press_completes_and_runs(shell: str, sandbox: Sandbox) -> None:
    """Typing `aura completion zs<TAB><Enter>` runs `aura completion zsh`."""
    import pexpect

    binary = require(shell)
    args, load = TAB_SHELLS[shell]
    script = sandbox.root / f"tab.{shell}"
    script.write_text(generate(build_real_parser(), shell))
    child = pexpect.spawn(
        binary,
        args,
        env=sandbox.env,
        cwd=str(sandbox.root),
        encoding="utf-8",
        timeout=TIMEOUT,
        dimensions=(50, 200),
    )
    try:
        child.sendline(load.format(script=_sq(str(script))) + "; echo 'LOAD''ED'")
        child.expect("LOADED")
        child.send("aura completion zs\t")
        child.expect("zsh")  # the completed word is echoed before Enter is pressed
        child.send("\r")
        child.expect("#compdef aura")
        child.sendline("exit")
    finally:
        child.close(force=True)


def test_missing_shell_skips_locally_but_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="not installed"):
        require("elvish")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must install it"):
        require("elvish")
