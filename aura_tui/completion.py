"""Shell completion scripts generated from the argparse parser, so they can never drift from it.

`generate(parser, shell)` walks the parser once into a small model (commands, options, positional
slots, how each value completes) and renders it for bash, zsh, fish, powershell or elvish. Every
script carries the data it needs and a little walker in the shell's own language, so pressing TAB
never starts Python; only values marked dynamic (session ids) run `aura session list --ids-only`,
and a failure there completes nothing.

Stdlib only and cheap to import: `aura completion` runs on the CLI's fast path.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass, field
from typing import Any

__all__ = ["DYNAMIC", "KINDS", "SHELLS", "generate", "mark_dynamic"]

SHELLS = ("bash", "zsh", "fish", "powershell", "elvish")

# Dynamic kinds: the arguments given to the program whose output (one value a line) completes.
DYNAMIC: dict[str, tuple[str, ...]] = {"session-ids": ("session", "list", "--ids-only")}

# Everything an action may be marked with. "subcommands" completes a path of command names (for
# `aura help TOPIC...`); "none" turns off the guessing below.
KINDS = ("file", "dir", "command", "subcommands", "none", *DYNAMIC)

# The attribute carrying a mark on an argparse Action (set by mark_dynamic or directly).
ATTR = "aura_complete"

_DIR_WORDS = {"dir", "directory", "folder", "cwd", "worktree"}
_COMMAND_WORDS = {"command", "cmd", "program"}
_FILE_WORDS = {"path", "file", "filename", "executable", "exe", "script", "binary"}
_ALT_METAVAR = re.compile(r"^[\w.+-]+(\|[\w.+-]+)+$")  # e.g. "true|false"
_MAX_CHOICES = 500
_HELP_WIDTH = 90


def mark_dynamic(action: argparse.Action, kind: str) -> argparse.Action:
    """Tell the generator how to complete this action's values; returns the action for chaining.

    Needed where the parser alone cannot say it, e.g. `mark_dynamic(show.add_argument("id"),
    "session-ids")`. Kinds: see KINDS.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown completion kind {kind!r} (choose from {', '.join(KINDS)})")
    setattr(action, ATTR, kind)
    return action


# ---------------------------------------------------------------------------------------------
# The model


@dataclass(frozen=True)
class Value:
    """How one value completes: kind is "", "choices", "file", "dir", "command" or a DYNAMIC."""

    kind: str = ""
    choices: tuple[str, ...] = ()


@dataclass
class Option:
    flags: tuple[str, ...]
    help: str
    nargs: int  # 0: a flag; N: takes N values; -1: takes values up to the next option
    value: Value
    hidden: bool
    repeat: bool
    metavar: str


@dataclass
class Slot:
    """One positional word. `sub` marks where a subcommand name goes."""

    name: str
    value: Value
    optional: bool = False
    sub: bool = False
    topics: bool = False  # a `help TOPIC...` slot: names from the whole command tree


@dataclass(eq=False)
class Command:
    path: tuple[str, ...]
    help: str
    options: list[Option] = field(default_factory=list)
    slots: list[Slot] = field(default_factory=list)
    rest: bool = False  # the last slot repeats
    subs: list[tuple[str, str, Command]] = field(default_factory=list)  # visible (name, help, cmd)
    names: dict[str, Command] = field(default_factory=dict)  # every name and alias -> command

    @property
    def key(self) -> str:
        return " ".join(self.path)


def _clean_help(text: str | None, params: dict[str, Any]) -> str:
    """One short line: shells show it beside the candidate."""
    if not text or text == argparse.SUPPRESS:
        return ""
    try:
        text = text % params
    except (KeyError, TypeError, ValueError):
        pass
    text = " ".join(text.split())
    if len(text) > _HELP_WIDTH:
        text = text[: _HELP_WIDTH - 3].rstrip() + "..."
    return text


def _action_help(action: argparse.Action, prog: str) -> str:
    params: dict[str, Any] = dict(vars(action), prog=prog)
    for name, val in list(params.items()):
        if val is argparse.SUPPRESS:
            params[name] = ""
        elif hasattr(val, "__name__"):
            params[name] = val.__name__
    if params.get("choices") is not None:
        params["choices"] = ", ".join(str(c) for c in params["choices"])
    return _clean_help(action.help, params)


def _guess(action: argparse.Action) -> Value:
    """Path-like and command-like values from the dest, metavar and flags, which the CLI names
    consistently (--cwd DIR, --data-dir DIR, --base-command CMD, --executor-path ...)."""
    metavar = action.metavar if isinstance(action.metavar, str) else ""
    if metavar and _ALT_METAVAR.match(metavar):
        return Value("choices", tuple(metavar.split("|")))
    if "=" in metavar:  # KEY=VALUE pairs: nothing sensible to offer
        return Value()
    text = " ".join([action.dest or "", metavar, *action.option_strings]).lower()
    words = set(re.split(r"[^a-z0-9]+", text))
    kind = ""
    if isinstance(action.type, argparse.FileType):
        kind = "file"
    if words & _DIR_WORDS or (action.dest or "").endswith("dir"):
        kind = "dir"
    elif words & _COMMAND_WORDS:
        kind = "command"
    elif words & _FILE_WORDS or getattr(action.type, "__name__", "") in ("Path", "PurePath"):
        kind = "file"
    return Value(kind)


def _value(action: argparse.Action, topics: set[int]) -> Value:
    if id(action) in topics:
        return Value("subcommands")
    mark = getattr(action, ATTR, None)
    if isinstance(mark, str) and mark:
        return Value() if mark == "none" else Value(mark)
    choices = action.choices
    if choices is not None and not isinstance(choices, dict):
        try:
            items = tuple(str(c) for _, c in zip(range(_MAX_CHOICES + 1), choices, strict=False))
        except TypeError:
            items = ()
        if items and len(items) <= _MAX_CHOICES:
            return Value("choices", items)
        return Value()
    return _guess(action)


def _option_nargs(action: argparse.Action) -> int:
    nargs = action.nargs
    if nargs is None or nargs == argparse.OPTIONAL:
        return 1
    if isinstance(nargs, int):
        return nargs
    return -1  # "*", "+", REMAINDER


def _metavar(action: argparse.Action) -> str:
    if isinstance(action.metavar, str) and action.metavar:
        return action.metavar
    if isinstance(action.metavar, tuple) and action.metavar:
        return str(action.metavar[0])
    return (action.dest or "value").lower().replace("_", "-")


def _sub_helps(action: argparse._SubParsersAction[Any]) -> dict[str, str]:
    helps: dict[str, str] = {}
    for pseudo in action._get_subactions():
        helps[pseudo.dest] = pseudo.help if isinstance(pseudo.help, str) else ""
    return helps


def _build(
    parser: argparse.ArgumentParser,
    path: tuple[str, ...],
    help_text: str,
    prog: str,
    seen: dict[int, Command],
    topics: set[int],
) -> Command:
    cmd = Command(path=path, help=help_text)
    seen[id(parser)] = cmd
    topic_slots: list[Slot] = []
    for action in parser._actions:
        if action.option_strings:
            flags = tuple(f for f in action.option_strings if f[:1] == "-" and len(f) > 1)
            if not flags:
                continue
            nargs = _option_nargs(action)
            cmd.options.append(
                Option(
                    flags=flags,
                    help=_action_help(action, prog),
                    nargs=nargs,
                    value=_value(action, topics) if nargs else Value(),
                    hidden=action.help == argparse.SUPPRESS,
                    repeat=isinstance(
                        action,
                        argparse._AppendAction
                        | argparse._AppendConstAction
                        | argparse._CountAction
                        | argparse._ExtendAction,
                    ),
                    metavar=_metavar(action),
                )
            )
        elif isinstance(action, argparse._SubParsersAction):
            cmd.slots.append(Slot(name=_metavar(action), value=Value(), sub=True))
            helps = _sub_helps(action)
            primary: dict[int, str] = {}
            for name, child in action.choices.items():
                if id(child) in primary:  # an alias of a parser already walked
                    cmd.names[name] = seen[id(child)]
                    continue
                primary[id(child)] = name
                text = helps.get(name, "")
                child_help = "" if text == argparse.SUPPRESS else text
                node = _build(child, (*path, name), _clean_help(child_help, {}), prog, seen, topics)
                if not node.help:
                    node.help = _clean_help(child.description, {}) or name
                cmd.names[name] = node
                if text != argparse.SUPPRESS:
                    cmd.subs.append((name, node.help, node))
            break  # everything after the subcommand belongs to it
        else:
            value = _value(action, topics)
            pnargs = action.nargs
            slot = Slot(name=_metavar(action), value=value, optional=pnargs in ("?", "*"))
            if value.kind == "subcommands":
                topic_slots.append(slot)
                continue
            if isinstance(pnargs, int):
                cmd.slots.extend(Slot(slot.name, value) for _ in range(pnargs))
            elif pnargs in ("*", "+", argparse.REMAINDER):
                cmd.slots.append(slot)
                cmd.rest = True
                break
            else:
                cmd.slots.append(slot)
    if topic_slots:
        cmd.slots.append(Slot(topic_slots[0].name, Value(), optional=True, sub=True, topics=True))
    return cmd


def _mirror_topics(cmd: Command, root: Command) -> None:
    """Turn `help TOPIC...` positionals into a tree of command names mirroring the real one."""

    def copy(src: Command, path: tuple[str, ...]) -> Command:
        node = Command(path=path, help=src.help, options=cmd.options)
        for name, text, child in src.subs:
            twin = copy(child, (*path, name))
            node.subs.append((name, text, twin))
            node.names[name] = twin
        if node.subs:
            node.slots.append(Slot(cmd.slots[-1].name, Value(), optional=True, sub=True))
        return node

    for name, text, child in root.subs:
        if child is cmd:
            continue
        twin = copy(child, (*cmd.path, name))
        cmd.subs.append((name, text, twin))
        cmd.names[name] = twin


def _help_topics(parser: argparse.ArgumentParser) -> set[int]:
    """`aura help TOPIC...` completes command names unless the author said otherwise."""
    found: set[int] = set()
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        child = action.choices.get("help")
        if child is None:
            continue
        for pos in child._actions:
            if (
                not pos.option_strings
                and not isinstance(pos, argparse._SubParsersAction)
                and pos.choices is None
                and getattr(pos, ATTR, None) is None
                and pos.dest in ("topic", "topics", "command", "commands")
                and pos.nargs in ("*", "?", "+")
            ):
                found.add(id(pos))
    return found


def build_model(parser: argparse.ArgumentParser, prog: str = "aura") -> Command:
    """The parser as a tree of Commands (public so tests and other front ends can inspect it)."""
    root = _build(parser, (), _clean_help(parser.description, {}), prog, {}, _help_topics(parser))
    for cmd in walk(root):
        if cmd.slots and cmd.slots[-1].topics:
            _mirror_topics(cmd, root)
    return root


def walk(root: Command) -> list[Command]:
    """Every command, parents first."""
    out: list[Command] = []
    todo = [root]
    while todo:
        cmd = todo.pop(0)
        out.append(cmd)
        todo.extend(child for child in _unique(cmd.names.values()) if child not in out)
    return out


def _unique(cmds: Any) -> list[Command]:
    """Each command once (aliases map several names to one)."""
    seen: list[Command] = []
    for cmd in cmds:
        if cmd not in seen:
            seen.append(cmd)
    return seen


def _visible_flags(cmd: Command) -> list[tuple[str, Option]]:
    return [(flag, opt) for opt in cmd.options if not opt.hidden for flag in opt.flags]


def _aliases(cmd: Command) -> list[tuple[str, Command]]:
    return list(cmd.names.items())


def _ident(prog: str) -> str:
    return re.sub(r"\W", "_", prog)


def _header(shell: str, prog: str, how: str) -> str:
    return (
        f"# {shell} completion for {prog}: generated from its argument parser by "
        f"`{prog} completion {shell}`.\n# Regenerate rather than edit. {how}\n"
    )


# ---------------------------------------------------------------------------------------------
# bash


def _sh(text: str) -> str:
    """POSIX single quotes (bash, zsh)."""
    return "'" + text.replace("'", "'\\''") + "'"


def _sh_words(items: list[str] | tuple[str, ...]) -> str:
    return " ".join(_sh(i) for i in items)


def _bash_value(value: Value, p: str) -> str:
    if value.kind == "choices":
        return f"__{p}_v=choices; __{p}_cv=({_sh_words(value.choices)})"
    if value.kind:
        return f"__{p}_v={value.kind}"
    return ""


def _bash(root: Command, prog: str) -> str:
    p = _ident(prog)
    cmds = walk(root)
    out = [
        "# shellcheck shell=bash",
        _header(
            "bash",
            prog,
            f"Load it with\n#   source <({prog} completion bash)\n# or save it as "
            f"~/.local/share/bash-completion/completions/{prog}",
        ),
    ]
    # per command: visible subcommand names and option strings
    out.append(f"__{p}_cmd() {{")
    out.append("    # The subcommand names and option strings offered under path $1.")
    out.append('    case "$1" in')
    for cmd in cmds:
        subs = [name for name, _, _ in cmd.subs]
        flags = [flag for flag, _ in _visible_flags(cmd)]
        out.append(
            f"        {_sh(cmd.key)}) __{p}_subs=({_sh_words(subs)}); "
            f"__{p}_opts=({_sh_words(flags)}) ;;"
        )
    out.append(f"        *) __{p}_subs=(); __{p}_opts=() ;;")
    out += ["    esac", "}", ""]

    out.append(f"__{p}_sub() {{")
    out.append("    # The canonical path of subcommand word $2 under path $1, or nothing.")
    out.append('    case "$1>$2" in')
    for cmd in cmds:
        for name, child in _aliases(cmd):
            out.append(f"        {_sh(cmd.key + '>' + name)}) __{p}_next={_sh(child.key)} ;;")
    out.append(f"        *) __{p}_next='' ;;")
    out += ["    esac", "}", ""]

    out.append(f"__{p}_opt() {{")
    out.append("    # How many values option $2 of path $1 takes (-1: up to the next option) and")
    out.append("    # how they complete.")
    out.append(f"    __{p}_n=0; __{p}_v=''; __{p}_cv=()")
    out.append('    case "$1>$2" in')
    for cmd in cmds:
        for opt in cmd.options:
            if not opt.nargs:
                continue
            pats = "|".join(_sh(cmd.key + ">" + flag) for flag in opt.flags)
            body = "; ".join(x for x in (f"__{p}_n={opt.nargs}", _bash_value(opt.value, p)) if x)
            out.append(f"        {pats}) {body} ;;")
    out += ["    esac", "}", ""]

    out.append(f"__{p}_slot() {{")
    out.append(
        "    # How positional word number $2 (from 0) of path $1 completes; sub: a subcommand."
    )
    out.append(f"    __{p}_v=''; __{p}_cv=()")
    out.append('    case "$1" in')
    for cmd in cmds:
        arms = []
        for i, slot in enumerate(cmd.slots):
            body = "sub" if slot.sub else ""
            code = f"__{p}_v=sub" if body else _bash_value(slot.value, p)
            if not code:
                continue
            if cmd.rest and i == len(cmd.slots) - 1:
                arms.append(f"*) (( $2 >= {i} )) && {{ {code}; }} ;;")
            else:
                arms.append(f"{i}) {code} ;;")
        if arms:
            out.append(f'        {_sh(cmd.key)}) case "$2" in {" ".join(arms)} esac ;;')
    out += ["    esac", "}", ""]

    dyn_arms = []
    for kind, argv in DYNAMIC.items():
        run = " ".join([_sh(prog), *(_sh(a) for a in argv)])
        dyn_arms.append(
            f"        {kind})\n"
            f"            type compopt &>/dev/null && compopt -o nosort 2>/dev/null\n"
            f"            while IFS= read -r c; do\n"
            f'                [[ -n $c && $c == "$cur"* ]] && COMPREPLY+=("$pre$c")\n'
            f"            done < <(command {run} 2>/dev/null) ;;"
        )
    out += [
        f"__{p}_values() {{",
        f"    # Add to COMPREPLY the completions of kind $__{p}_v matching $1, each after $2.",
        '    local cur="$1" pre="$2" c',
        f'    case "$__{p}_v" in',
        "        choices|sub)",
        f'            for c in "${{__{p}_cv[@]}}"; do',
        '                [[ $c == "$cur"* ]] && COMPREPLY+=("$pre$c")',
        "            done ;;",
        "        file|dir|command)",
        "            type compopt &>/dev/null && compopt -o filenames 2>/dev/null",
        f"            local -a how=(-f); [[ $__{p}_v == dir ]] && how=(-d)",
        f"            [[ $__{p}_v == command ]] && how=(-c)",
        "            while IFS= read -r c; do",
        '                [[ -n $c ]] && COMPREPLY+=("$pre$c")',
        '            done < <(compgen "${how[@]}" -- "$cur") ;;',
        *dyn_arms,
        "    esac",
        "}",
        "",
        f"_{p}() {{",
        "    # Walk the words before the cursor the way argparse would: track the subcommand path,",
        "    # the positional index and whether the last option still wants values.",
        "    local cur=\"${COMP_WORDS[COMP_CWORD]}\" path='' pos=0 pend=0 popt='' dd=0 i w",
        f"    local __{p}_subs __{p}_opts __{p}_next __{p}_n __{p}_v __{p}_cv",
        "    COMPREPLY=()",
        "    for ((i = 1; i < COMP_CWORD; i++)); do",
        '        w="${COMP_WORDS[i]}"',
        "        # '--opt=value' arrives as '--opt' '=' 'value' when '=' is in COMP_WORDBREAKS",
        "        if [[ $w == '=' && ${COMP_WORDS[i-1]} == -?* ]]; then",
        "            (( pend == 0 )) && pend=1",
        "            continue",
        "        fi",
        "        if (( pend != 0 )); then",
        "            if [[ $w != -?* ]]; then",
        "                (( pend > 0 )) && pend=$((pend - 1))",
        "                continue",
        "            fi",
        "            pend=0",
        "        fi",
        "        if (( ! dd )) && [[ $w == -?* ]]; then",
        "            if [[ $w == -- ]]; then dd=1; continue; fi",
        "            [[ $w == *=* ]] && continue",
        f'            __{p}_opt "$path" "$w"',
        f'            pend=$__{p}_n; popt="$w"',
        "            continue",
        "        fi",
        f'        __{p}_slot "$path" "$pos"',
        f"        if [[ $__{p}_v == sub ]]; then",
        f'            __{p}_sub "$path" "$w"',
        f'            if [[ -n $__{p}_next ]]; then path="$__{p}_next"; pos=0; continue; fi',
        "        fi",
        "        pos=$((pos + 1))",
        "    done",
        "    if [[ $cur == '=' && ${COMP_WORDS[COMP_CWORD-1]} == -?* ]]; then",
        "        cur=''  # readline completes what follows the '='",
        "        (( pend == 0 )) && pend=1",
        "    fi",
        "    if (( pend != 0 )) && [[ $cur != -?* ]]; then",
        f'        __{p}_opt "$path" "$popt"; __{p}_values "$cur" \'\'',
        "        return 0",
        "    fi",
        "    if (( ! dd )) && [[ $cur == -?*=* ]]; then",
        f'        __{p}_opt "$path" "${{cur%%=*}}"',
        f'        (( __{p}_n != 0 )) && __{p}_values "${{cur#*=}}" "${{cur%%=*}}="',
        "        return 0",
        "    fi",
        "    if (( ! dd )) && [[ $cur == -* ]]; then",
        f'        __{p}_cmd "$path"; __{p}_v=choices; __{p}_cv=("${{__{p}_opts[@]}}")',
        f"        __{p}_values \"$cur\" ''",
        "        return 0",
        "    fi",
        f'    __{p}_slot "$path" "$pos"',
        f"    if [[ $__{p}_v == sub ]]; then",
        f'        __{p}_cmd "$path"; __{p}_cv=("${{__{p}_subs[@]}}")',
        "    fi",
        f"    __{p}_values \"$cur\" ''",
        "    return 0",
        "}",
        "",
        f"complete -F _{p} {_sh(prog)}",
        "",
    ]
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------
# zsh


def _zsh_esc(text: str) -> str:
    """Text inside an _arguments spec: brackets, colons and expansion characters are special."""
    for ch in ("\\", "[", "]", ":", "$", "`"):
        text = text.replace(ch, "\\" + ch)
    return text


def _zsh_action(value: Value, p: str) -> str:
    if value.kind == "choices":
        # zsh splits the list like shell words: escape everything but plain characters
        items = " ".join(re.sub(r"([^\w.,+@%/=-])", r"\\\1", c) for c in value.choices)
        return f"({items})"
    if value.kind == "file":
        return "_files"
    if value.kind == "dir":
        return "_files -/"
    if value.kind == "command":
        return "_command_names -e"
    if value.kind in DYNAMIC:
        return f"_{p}__dyn_{_ident(value.kind)}"
    return " "


def _zsh_fn(p: str, cmd: Command, names: dict[str, str]) -> str:
    if cmd.key in names:
        return names[cmd.key]
    base = f"_{p}" + "".join("__" + _ident(part) for part in cmd.path)
    name, n = base, 1
    while name in names.values():
        n += 1
        name = f"{base}{n}"
    names[cmd.key] = name
    return name


def _zsh(root: Command, prog: str) -> str:
    p = _ident(prog)
    names: dict[str, str] = {}
    out = [
        f"#compdef {prog}",
        _header(
            "zsh",
            prog,
            f"Either save it as _{prog} in a directory on $fpath\n# (before compinit runs), "
            f"or load it after compinit with\n#   source <({prog} completion zsh)",
        ),
    ]
    for kind, argv in DYNAMIC.items():
        run = " ".join([_sh(prog), *(_sh(a) for a in argv)])
        tag = kind
        out += [
            f"_{p}__dyn_{_ident(kind)}() {{",
            f"    # {kind}, newest first, from `{prog} {' '.join(argv)}`; nothing if it fails.",
            "    local -a items expl",
            f'    items=( ${{(f)"$(_call_program {tag} {run} 2>/dev/null)"}} )',
            f"    _wanted -V {tag} expl {_sh(kind.replace('-', ' ')[:-1])} compadd -a items",
            "}",
            "",
        ]
    for cmd in walk(root):
        fn = _zsh_fn(p, cmd, names)
        specs: list[str] = []
        for opt in cmd.options:
            if opt.hidden:
                continue
            help_part = f"[{_zsh_esc(opt.help)}]" if opt.help else ""
            excl = ""
            if len(opt.flags) > 1 and not opt.repeat:
                excl = "(" + " ".join(opt.flags) + ")"
            star = "*" if opt.repeat else ""
            args = ""
            if opt.nargs:
                msg = _zsh_esc(opt.metavar)
                action = _zsh_action(opt.value, p)
                args = f":{msg}:{action}" * max(opt.nargs, 1)
            for flag in opt.flags:
                suffix = ""
                if opt.nargs:
                    suffix = "=" if flag.startswith("--") else "+"
                specs.append(_sh(f"{excl}{star}{flag}{suffix}{help_part}{args}"))
        has_sub = False
        for i, slot in enumerate(cmd.slots):
            msg = _zsh_esc(slot.name)
            if slot.sub:
                specs.append(_sh(f":{msg}:->command"))
                specs.append(_sh("*:: :->arg"))
                has_sub = True
                break
            action = _zsh_action(slot.value, p)
            if cmd.rest and i == len(cmd.slots) - 1:
                specs.append(_sh(f"*:{msg}:{action}"))
            else:
                specs.append(_sh(f"{':' if slot.optional else ''}:{msg}:{action}"))
        out.append(f"{fn}() {{")
        if has_sub:
            context = "-".join((prog, *cmd.path))
            out += [
                '    local curcontext="$curcontext" state state_descr line ret=1',
                "    typeset -A opt_args",
                "    _arguments -C -S \\",
                *(f"        {s} \\" for s in specs),
                "        && ret=0",
                "    case $state in",
                "        (command)",
                "            local -a subcommands",
                "            subcommands=(",
                *(
                    "                " + _sh(name.replace(":", "\\:") + ":" + (text or name))
                    for name, text, _ in cmd.subs
                ),
                "            )",
                f"            _describe -t commands {_sh(' '.join((prog, *cmd.path, 'command')))}"
                " subcommands && ret=0 ;;",
                "        (arg)",
                f'            curcontext="${{curcontext%:*:*}}:{context}-$words[1]:"',
                "            case $words[1] in",
            ]
            by_child: dict[int, list[str]] = {}
            for name, child in _aliases(cmd):
                by_child.setdefault(id(child), []).append(name)
            for child in _unique(cmd.names.values()):
                pats = "|".join(re.sub(r"([^\w-])", r"\\\1", n) for n in by_child[id(child)])
                out.append(f"                ({pats}) {_zsh_fn(p, child, names)} && ret=0 ;;")
            out += ["            esac ;;", "    esac", "    return ret", "}", ""]
        else:
            if specs:
                out += ["    _arguments -S \\", *(f"        {s} \\" for s in specs[:-1])]
                out += [f"        {specs[-1]}", "}", ""]
            else:
                out += ["    _message 'no more arguments'", "}", ""]
    out += [
        "if [[ $zsh_eval_context[-1] == loadautofunc ]]; then",
        "    # autoloaded from $fpath through #compdef: complete now",
        f'    _{p} "$@"',
        "else",
        "    # sourced: register with compinit",
        f"    compdef _{p} {_sh(prog)}",
        "fi",
        "",
    ]
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------
# fish


def _fish(text: str) -> str:
    """Fish single quotes: only backslash and the quote are escaped."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _fish_word(text: str) -> str:
    return text if re.fullmatch(r"[\w.,:+@%/-]+", text) else _fish(text)


def _fish_list(items: list[str]) -> str:
    return " ".join(_fish(i) for i in items) if items else ""


def _fish_value_args(value: Value, p: str, option: bool) -> str:
    """The `complete` arguments producing these values (for an option's value: -r/-x too)."""
    req, excl = ("-r ", "-x ") if option else ("", "")
    if value.kind == "choices":
        # "\t" after each: an explicit empty description, so -d describes only the option
        return excl + "-a " + _fish(" ".join(_fish_word(c) + "\\t" for c in value.choices))
    if value.kind == "file":
        return req + "-F"
    if value.kind == "dir":
        return excl + "-a '(__fish_complete_directories)'"
    if value.kind == "command":
        return excl + "-a '(__fish_complete_command)'"
    if value.kind in DYNAMIC:
        return excl + f"-a '(__{p}_dyn_{_ident(value.kind)})'"
    return excl.strip()


def _fish_script(root: Command, prog: str) -> str:
    p = _ident(prog)
    cmds = walk(root)
    sub_keys: list[str] = []
    sub_paths: list[str] = []
    for cmd in cmds:
        for name, child in _aliases(cmd):
            sub_keys.append(f"{cmd.key}>{name}")
            sub_paths.append(child.key)
    opt_keys: list[str] = []
    opt_nargs: list[str] = []
    for cmd in cmds:
        for opt in cmd.options:
            if opt.nargs:
                for flag in opt.flags:
                    opt_keys.append(f"{cmd.key}>{flag}")
                    opt_nargs.append(str(opt.nargs))
    sub_slots = [f"{cmd.key}>{i}" for cmd in cmds for i, s in enumerate(cmd.slots) if s.sub]
    out = [
        _header(
            "fish",
            prog,
            f"Load it with\n#   {prog} completion fish | source\n# or save it as "
            f"~/.config/fish/completions/{prog}.fish",
        ),
        f"function __{p}_state --description 'Print the {prog} subcommand path, positional index"
        " and pending option values before the cursor'",
        "    # argparse rules: options may take values, '--' ends options, a subcommand",
        "    # name switches to its own options and positionals",
        f"    set -l sub_keys {_fish_list(sub_keys)}",
        f"    set -l sub_paths {_fish_list(sub_paths)}",
        f"    set -l opt_keys {_fish_list(opt_keys)}",
        f"    set -l opt_nargs {_fish_list(opt_nargs)}",
        f"    set -l sub_slots {_fish_list(sub_slots)}",
        "    set -l tokens (commandline -opc)",
        "    set -e tokens[1]",
        "    set -l path ''",
        "    set -l pos 0",
        "    set -l pend 0",
        "    set -l dd 0",
        "    for w in $tokens",
        "        if test $pend -ne 0",
        "            if not string match -qr -- '^-.' $w",
        "                test $pend -gt 0; and set pend (math $pend - 1)",
        "                continue",
        "            end",
        "            set pend 0",
        "        end",
        "        if test $dd -eq 0; and string match -qr -- '^-.' $w",
        "            if test $w = --",
        "                set dd 1",
        "            else if not string match -q -- '*=*' $w",
        '                set -l i (contains -i -- "$path>$w" $opt_keys)',
        "                and set pend $opt_nargs[$i]",
        "            end",
        "            continue",
        "        end",
        '        if contains -- "$path>$pos" $sub_slots',
        '            set -l i (contains -i -- "$path>$w" $sub_keys)',
        '            if test -n "$i"',
        "                set path $sub_paths[$i]",
        "                set pos 0",
        "                continue",
        "            end",
        "        end",
        "        set pos (math $pos + 1)",
        "    end",
        "    printf '%s\\n' \"$path\" $pos $pend",
        "end",
        "",
        f"function __{p}_at --argument-names want",
        "    # true when the cursor is under subcommand path $want",
        f"    set -l st (__{p}_state)",
        '    test "$st[1]" = "$want"',
        "end",
        "",
        f"function __{p}_pos --argument-names want n rest",
        "    # true when the cursor is on positional $n of path $want (or later if $rest)",
        f"    set -l st (__{p}_state)",
        '    test "$st[1]" = "$want"; and test $st[3] -eq 0; or return 1',
        '    if test -n "$rest"',
        "        test $st[2] -ge $n",
        "    else",
        "        test $st[2] -eq $n",
        "    end",
        "end",
        "",
    ]
    for kind, argv in DYNAMIC.items():
        out += [
            f"function __{p}_dyn_{_ident(kind)}",
            f"    # {kind}, newest first; nothing if the command fails",
            f"    command -q {_fish(prog)}; or return 0",
            f"    command {_fish(prog)} {' '.join(_fish(a) for a in argv)} 2>/dev/null",
            "end",
            "",
        ]
    c = f"complete -c {_fish(prog)}"
    out.append(f"{c} -f  # no file names unless a value asks for them")
    for cmd in cmds:
        at = _fish(f"__{p}_at {_fish(cmd.key)}")
        for i, slot in enumerate(cmd.slots):
            rest = " 1" if cmd.rest and i == len(cmd.slots) - 1 else ""
            cond = _fish(f"__{p}_pos {_fish(cmd.key)} {i}{rest}")
            if slot.sub:
                for name, text, _ in cmd.subs:
                    out.append(f"{c} -n {cond} -a {_fish(_fish_word(name))} -d {_fish(text)}")
                break
            if slot.value.kind:
                args = _fish_value_args(slot.value, p, option=False)
                out.append(f"{c} -n {cond} {args} -d {_fish(slot.name)}")
        for opt in cmd.options:
            if opt.hidden:
                continue
            parts = []
            for flag in opt.flags:
                if flag.startswith("--"):
                    parts.append(f"-l {_fish(flag[2:])}")
                elif len(flag) == 2:
                    parts.append(f"-s {_fish(flag[1:])}")
                else:
                    parts.append(f"-o {_fish(flag[1:])}")
            if opt.nargs:
                parts.append(_fish_value_args(opt.value, p, option=True))
            if opt.help:
                parts.append(f"-d {_fish(opt.help)}")
            out.append(f"{c} -n {at} {' '.join(parts)}")
    out.append("")
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------
# elvish


def _elv(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _elv_value(value: Value) -> str:
    if value.kind == "choices":
        return f"[&k=choices &c=[{' '.join(_elv(c) for c in value.choices)}]]"
    return f"[&k={_elv(value.kind)}]"


def _elv_map(pairs: list[tuple[str, str]]) -> str:
    if not pairs:
        return "[&]"
    inner = "\n".join(f"    &{_elv(k)}={v}" for k, v in pairs)
    return f"[\n{inner}\n  ]"


def _elvish(root: Command, prog: str) -> str:
    cmds = walk(root)
    subs = [(f"{cmd.key}>{name}", _elv(child.key)) for cmd in cmds for name, child in _aliases(cmd)]
    sub_names = [
        (
            cmd.key,
            "[" + " ".join(f"[{_elv(name)} {_elv(text)}]" for name, text, _ in cmd.subs) + "]",
        )
        for cmd in cmds
    ]
    opt_names = [
        (
            cmd.key,
            "[" + " ".join(f"[{_elv(f)} {_elv(o.help)}]" for f, o in _visible_flags(cmd)) + "]",
        )
        for cmd in cmds
    ]
    opts = [
        (f"{cmd.key}>{flag}", f"[&n=(num {opt.nargs}) &v={_elv_value(opt.value)}]")
        for cmd in cmds
        for opt in cmd.options
        if opt.nargs
        for flag in opt.flags
    ]
    slots = [
        (
            cmd.key,
            "[" + " ".join("[&k=sub]" if s.sub else _elv_value(s.value) for s in cmd.slots) + "]",
        )
        for cmd in cmds
        if cmd.slots
    ]
    rest = [(cmd.key, "$true") for cmd in cmds if cmd.rest]
    dyn = "\n".join(
        f"      }} elif (eq $k {_elv(kind)}) {{\n"
        f"        try {{ (external {_elv(prog)}) {' '.join(_elv(a) for a in argv)} 2>/dev/null"
        " | from-lines | each {|c| put $pre$c } } catch { }"
        for kind, argv in DYNAMIC.items()
    )
    header = _header(
        "elvish",
        prog,
        f"Load it (e.g. in ~/.config/elvish/rc.elv) with\n#   eval ({prog} completion elvish"
        " | slurp)",
    )
    return f"""{header}use str

set edit:completion:arg-completer[{_elv(prog)}] = ({{
  var subs = {_elv_map(subs)}
  var sub-names = {_elv_map(sub_names)}
  var opt-names = {_elv_map(opt_names)}
  var opts = {_elv_map(opts)}
  var slots = {_elv_map(slots)}
  var rest = {_elv_map(rest)}

  # How positional word $i (from 0) of path $p completes.
  var slot = {{|p i|
    if (not (has-key $slots $p)) {{
      put [&k='']
    }} elif (< $i (count $slots[$p])) {{
      put $slots[$p][$i]
    }} elif (has-key $rest $p) {{
      put $slots[$p][-1]
    }} else {{
      put [&k='']
    }}
  }}
  var is-opt = {{|w| and (str:has-prefix $w -) (> (count $w) 1) }}

  # Candidates of a value spec for word $cur, each after $pre.
  var values = {{|spec cur pre|
    var k = $spec[k]
    if (eq $k choices) {{
      for c $spec[c] {{ put $pre$c }}
    }} elif (eq $k file) {{
      edit:complete-filename $cur
    }} elif (eq $k dir) {{
      edit:complete-filename $cur | each {{|c| if (str:has-suffix $c[stem] /) {{ put $c }} }}
    }} elif (eq $k command) {{
      edit:complete-sudo sudo $cur
{dyn}
    }}
  }}

  put {{|@words|
    # Walk the words before the cursor as argparse would.
    var cur = $words[-1]
    var path = ''
    var pos = (num 0)
    var pend = (num 0)
    var popt = ''
    var dd = $false
    for w $words[1..-1] {{
      if (!= $pend 0) {{
        if (not ($is-opt $w)) {{
          if (> $pend 0) {{ set pend = (- $pend 1) }}
          continue
        }}
        set pend = (num 0)
      }}
      if (and (not $dd) ($is-opt $w)) {{
        if (eq $w --) {{
          set dd = $true
        }} elif (not (str:contains $w =)) {{
          var key = $path'>'$w
          if (has-key $opts $key) {{ set pend = $opts[$key][n]; set popt = $w }}
        }}
        continue
      }}
      var skey = $path'>'$w
      if (and (eq ($slot $path $pos)[k] sub) (has-key $subs $skey)) {{
        set path = $subs[$skey]
        set pos = (num 0)
        continue
      }}
      set pos = (+ $pos 1)
    }}
    if (and (!= $pend 0) (not ($is-opt $cur))) {{
      $values $opts[$path'>'$popt][v] $cur ''
    }} elif (and (not $dd) ($is-opt $cur) (str:contains $cur =)) {{
      var flag val = (str:split &max=2 = $cur)
      if (has-key $opts $path'>'$flag) {{
        $values $opts[$path'>'$flag][v] $val $flag'='
      }}
    }} elif (and (not $dd) (str:has-prefix $cur -)) {{
      for pair $opt-names[$path] {{
        edit:complex-candidate $pair[0] &display=$pair[0]' '$pair[1]
      }}
    }} else {{
      var spec = ($slot $path $pos)
      if (eq $spec[k] sub) {{
        for pair $sub-names[$path] {{
          edit:complex-candidate $pair[0] &display=$pair[0]' '$pair[1]
        }}
      }} else {{
        $values $spec $cur ''
      }}
    }}
  }}
}})
"""


# ---------------------------------------------------------------------------------------------
# powershell


def _ps(text: str) -> str:
    """PowerShell single quotes; the typographic quotes count as quotes there too."""
    for ch in ("'", "\u2018", "\u2019", "\u201a", "\u201b"):
        text = text.replace(ch, ch + ch)
    return "'" + text + "'"


def _ps_value(value: Value) -> str:
    if value.kind == "choices":
        return f"@{{ k = 'choices'; c = @({', '.join(_ps(c) for c in value.choices)}) }}"
    return f"@{{ k = {_ps(value.kind)}; c = @() }}"


def _ps_items(pairs: list[tuple[str, str]], kind: str) -> str:
    if not pairs:
        return "@()"
    return (
        "@("
        + ", ".join(f"@{{ t = {_ps(t)}; h = {_ps(h or t)}; r = '{kind}' }}" for t, h in pairs)
        + ")"
    )


def _powershell(root: Command, prog: str) -> str:
    p = _ident(prog)
    cmds = walk(root)
    cmd_arms = []
    for cmd in cmds:
        subs = _ps_items([(n, t) for n, t, _ in cmd.subs], "ParameterValue")
        opts = _ps_items([(f, o.help) for f, o in _visible_flags(cmd)], "ParameterName")
        cmd_arms.append(f"            {_ps(cmd.key)} {{ return @{{ s = {subs}; o = {opts} }} }}")
    sub_arms = [
        f"            {_ps(cmd.key + '>' + name)} {{ return {_ps(child.key)} }}"
        for cmd in cmds
        for name, child in _aliases(cmd)
    ]
    opt_arms = [
        f"            {_ps(cmd.key + '>' + flag)} "
        f"{{ return @{{ n = {opt.nargs}; v = {_ps_value(opt.value)} }} }}"
        for cmd in cmds
        for opt in cmd.options
        if opt.nargs
        for flag in opt.flags
    ]
    slot_arms = []
    for cmd in cmds:
        if not cmd.slots:
            continue
        specs = ", ".join(
            "@{ k = 'sub'; c = @() }" if s.sub else _ps_value(s.value) for s in cmd.slots
        )
        rest = "$true" if cmd.rest else "$false"
        slot_arms.append(f"            {_ps(cmd.key)} {{ $l = @({specs}); $r = {rest} }}")
    dyn_arms = "\n".join(
        f"            {_ps(kind)} {{\n"
        "                $out = @()\n"
        f"                try {{ $out = @(& {_ps(prog)} {' '.join(_ps(a) for a in argv)}"
        " 2>$null) } catch { }\n"
        "                foreach ($line in $out) {\n"
        "                    if ($line) { $items += ,@{ t = [string]$line; h = [string]$line;"
        " r = 'ParameterValue' } }\n"
        "                }\n"
        "            }"
        for kind, argv in DYNAMIC.items()
    )
    header = _header(
        "powershell",
        prog,
        f"Load it (e.g. in $PROFILE) with\n#   {prog} completion powershell | Out-String |"
        " Invoke-Expression",
    )
    nl = "\n"
    return f"""{header}
Register-ArgumentCompleter -Native -CommandName {_ps(prog)} -ScriptBlock {{
    param($wordToComplete, $commandAst, $cursorPosition)

    # Subcommand names and options offered under a path.
    function __{p}_cmd([string]$path) {{
        switch -Exact -CaseSensitive ($path) {{
{nl.join(cmd_arms)}
        }}
        return @{{ s = @(); o = @() }}
    }}
    # Canonical path of a subcommand word under a path, or $null.
    function __{p}_sub([string]$path, [string]$word) {{
        switch -Exact -CaseSensitive ($path + '>' + $word) {{
{nl.join(sub_arms)}
        }}
        return $null
    }}
    # How many values an option takes (-1: up to the next option) and how they complete.
    function __{p}_opt([string]$path, [string]$flag) {{
        switch -Exact -CaseSensitive ($path + '>' + $flag) {{
{nl.join(opt_arms)}
        }}
        return @{{ n = 0; v = @{{ k = ''; c = @() }} }}
    }}
    # How positional word $index (from 0) of a path completes; k = 'sub': a subcommand.
    function __{p}_slot([string]$path, [int]$index) {{
        $l = @(); $r = $false
        switch -Exact -CaseSensitive ($path) {{
{nl.join(slot_arms)}
        }}
        if ($index -lt $l.Count) {{ return $l[$index] }}
        if ($r -and $l.Count -gt 0) {{ return $l[$l.Count - 1] }}
        return @{{ k = ''; c = @() }}
    }}
    function __{p}_isopt([string]$w) {{
        return ($w.Length -gt 1 -and $w.StartsWith('-', [StringComparison]::Ordinal))
    }}

    $words = @()
    foreach ($el in $commandAst.CommandElements) {{
        if ($el.Extent.EndOffset -ge $cursorPosition) {{ break }}
        if ($el -is [System.Management.Automation.Language.StringConstantExpressionAst]) {{
            $words += ,[string]$el.Value
        }} else {{
            $words += ,[string]$el.Extent.Text
        }}
    }}

    # Walk the words before the cursor as argparse would.
    $path = ''; $pos = 0; $pend = 0; $popt = ''; $dd = $false
    for ($i = 1; $i -lt $words.Count; $i++) {{
        $w = $words[$i]
        if ($pend -ne 0) {{
            if (-not (__{p}_isopt $w)) {{
                if ($pend -gt 0) {{ $pend-- }}
                continue
            }}
            $pend = 0
        }}
        if (-not $dd -and (__{p}_isopt $w)) {{
            if ($w -ceq '--') {{ $dd = $true }}
            elseif (-not $w.Contains('=')) {{ $pend = (__{p}_opt $path $w).n; $popt = $w }}
            continue
        }}
        if ((__{p}_slot $path $pos).k -ceq 'sub') {{
            $next = __{p}_sub $path $w
            if ($null -ne $next) {{ $path = $next; $pos = 0; continue }}
        }}
        $pos++
    }}

    $cur = [string]$wordToComplete
    $pre = ''
    $spec = $null
    $items = @()
    if ($pend -ne 0 -and -not (__{p}_isopt $cur)) {{
        $spec = (__{p}_opt $path $popt).v
    }} elseif (-not $dd -and (__{p}_isopt $cur) -and $cur.Contains('=')) {{
        $eq = $cur.IndexOf('=')
        $o = __{p}_opt $path ($cur.Substring(0, $eq))
        if ($o.n -ne 0) {{
            $spec = $o.v
            $pre = $cur.Substring(0, $eq + 1)
            $cur = $cur.Substring($eq + 1)
        }}
    }} elseif (-not $dd -and $cur.StartsWith('-', [StringComparison]::Ordinal)) {{
        $items = (__{p}_cmd $path).o
    }} else {{
        $spec = __{p}_slot $path $pos
        if ($spec.k -ceq 'sub') {{ $items = (__{p}_cmd $path).s; $spec = $null }}
    }}

    if ($null -ne $spec) {{
        switch -Exact -CaseSensitive ($spec.k) {{
            'choices' {{
                foreach ($c in $spec.c) {{ $items += ,@{{ t = $c; h = $c; r = 'ParameterValue' }} }}
            }}
            'dir' {{
                $parent = Split-Path -Parent $cur
                $found = @(Get-ChildItem -Directory -Path ($cur + '*') -ErrorAction Ignore)
                foreach ($d in $found) {{
                    $t = if ($parent) {{ Join-Path $parent $d.Name }} else {{ $d.Name }}
                    $items += ,@{{ t = $t; h = $d.FullName; r = 'ProviderContainer' }}
                }}
            }}
            'command' {{
                $found = @(Get-Command -CommandType Application -Name ($cur + '*') -EA Ignore)
                foreach ($a in $found) {{
                    $items += ,@{{ t = $a.Name; h = $a.Source; r = 'Command' }}
                }}
            }}
{dyn_arms}
        }}
        # 'file' and unknown kinds: return nothing, so PowerShell completes paths itself.
    }}

    foreach ($item in $items) {{
        if ($item.t.StartsWith($cur, [StringComparison]::Ordinal)) {{
            $tip = if ($item.h) {{ $item.h }} else {{ $item.t }}
            [System.Management.Automation.CompletionResult]::new(
                $pre + $item.t, $item.t, $item.r, $tip)
        }}
    }}
}}
"""


# ---------------------------------------------------------------------------------------------


_RENDER = {
    "bash": _bash,
    "zsh": _zsh,
    "fish": _fish_script,
    "powershell": _powershell,
    "elvish": _elvish,
}


def generate(parser: argparse.ArgumentParser, shell: str, prog: str = "aura") -> str:
    """The completion script for `shell` (one of SHELLS), built from `parser` alone."""
    if shell not in _RENDER:
        raise ValueError(f"unknown shell {shell!r} (choose from {', '.join(SHELLS)})")
    return _RENDER[shell](build_model(parser, prog), prog)
