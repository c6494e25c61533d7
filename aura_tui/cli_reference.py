"""The README's CLI reference, generated from the argparse parser so it can never drift.

`python -m aura_tui.cli_reference` prints it; `--write` replaces the text between
`<!-- cli-reference:start -->` and `<!-- cli-reference:end -->` in README.md and refreshes
docs/cli-reference.md when that file exists. A test fails when the committed text differs from
what the parser says, naming the command to run.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

START = "<!-- cli-reference:start -->"
END = "<!-- cli-reference:end -->"
ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOC = ROOT / "docs" / "cli-reference.md"
HINT = "python -m aura_tui.cli_reference --write"

_Key = tuple[tuple[str, ...], str]


class ReferenceError_(Exception):
    """The README cannot be updated (no markers); the message says what to add."""


def _subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, str, argparse.ArgumentParser]]:
    """(name, help, parser) of each subcommand in the order they were added; aliases once."""
    out: list[tuple[str, str, argparse.ArgumentParser]] = []
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        helps = {a.dest: a.help or "" for a in action._choices_actions}
        seen: set[int] = set()
        for name, child in action.choices.items():
            if id(child) not in seen:
                seen.add(id(child))
                out.append((name, helps.get(name, ""), child))
    return out


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _help(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    if not action.help:
        return ""
    text = parser._get_formatter()._expand_help(action) if "%" in action.help else action.help
    if action.required and action.option_strings:
        text += " (required)"
    return text


def _signature(action: argparse.Action) -> str:
    if action.option_strings:
        names = ", ".join(sorted(action.option_strings, key=lambda s: (not s.startswith("--"), s)))
        if action.nargs == 0:
            return names
    if action.metavar is not None:
        metavar = action.metavar if isinstance(action.metavar, str) else " ".join(action.metavar)
    elif action.choices is not None:
        metavar = "{" + ",".join(str(c) for c in action.choices) + "}"
    else:
        metavar = action.dest.upper() if action.option_strings else action.dest
    if action.nargs in ("*", "?"):
        metavar = f"[{metavar}]"
    elif action.nargs == "+":
        metavar = f"{metavar} [...]"
    return f"{names} {metavar}" if action.option_strings else metavar


def _key(action: argparse.Action) -> _Key:
    return (tuple(action.option_strings), action.help or "")


def _documented(parser: argparse.ArgumentParser, skip: set[_Key]) -> Iterator[argparse.Action]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction | argparse._HelpAction):
            continue
        if action.help == argparse.SUPPRESS or _key(action) in skip:
            continue
        yield action


def _table(rows: Sequence[tuple[str, str]], head: tuple[str, str]) -> list[str]:
    lines = [f"| {head[0]} | {head[1]} |", "|---|---|"]
    lines += [f"| `{_cell(a)}` | {_cell(b)} |" for a, b in rows]
    return [*lines, ""]


def _section(
    parser: argparse.ArgumentParser, path: list[str], skip: set[_Key], summary: str = ""
) -> list[str]:
    """One command: its description, arguments, options and the list of its subcommands."""
    lines = [f"### `{' '.join(path)}`", ""]
    about = " ".join((parser.description or summary).split())
    if about:
        about = about[0].upper() + about[1:]
        lines += [about if about[-1] in ".!?" else about + ".", ""]
    actions = list(_documented(parser, skip))
    positional = [(_signature(a), _help(parser, a)) for a in actions if not a.option_strings]
    options = [(_signature(a), _help(parser, a)) for a in actions if a.option_strings]
    if positional:
        lines += _table(positional, ("argument", "meaning"))
    if options:
        lines += _table(options, ("option", "meaning"))
    children = _subcommands(parser)
    if children:
        rows = [(f"{' '.join(path)} {name}", help_) for name, help_, _ in children]
        lines += _table(rows, ("command", "what it does"))
    return lines


def _walk(
    parser: argparse.ArgumentParser, path: list[str], skip: set[_Key], summary: str = ""
) -> Iterator[str]:
    yield from _section(parser, path, skip, summary)
    for name, help_, child in _subcommands(parser):
        yield from _walk(child, [*path, name], skip, help_)


def render_markdown(parser: argparse.ArgumentParser) -> str:
    """Every command, subcommand, argument and option of `parser` with its help, as Markdown.

    Options of the top-level parser that every subcommand repeats (like --data-dir) are listed
    once, under the top-level command. Nothing depends on the terminal width.
    """
    shared = {
        _key(a)
        for a in parser._actions
        if a.option_strings and not isinstance(a, argparse._HelpAction | argparse._VersionAction)
    }
    lines = [
        f"<!-- generated from the argument parser by `{HINT}`; do not edit by hand -->",
        "",
        f"Options of `{parser.prog}` itself are accepted by every command too.",
        "",
        *_section(parser, [parser.prog], set()),
    ]
    for name, help_, child in _subcommands(parser):
        lines += _walk(child, [parser.prog, name], shared, help_)
    return "\n".join(lines).rstrip() + "\n"


def readme_section(text: str) -> str | None:
    """The text between the markers (without them), or None when the markers are missing."""
    start = text.find(START)
    end = text.find(END, start + 1)
    if start < 0 or end < 0:
        return None
    return text[start + len(START) : end].strip("\n") + "\n"


def replace_section(text: str, generated: str) -> str:
    start = text.find(START)
    end = text.find(END, start + 1)
    if start < 0 or end < 0:
        raise ReferenceError_(
            f"README has no `{START}` ... `{END}` markers; add them under '## CLI reference'"
        )
    return text[: start + len(START)] + "\n" + generated + text[end:]


def write(readme: Path = README, doc: Path = DOC) -> list[Path]:
    """Update the README section (and docs/cli-reference.md if present); returns what changed."""
    from aura_tui.cli import build_parser

    generated = render_markdown(build_parser())
    changed: list[Path] = []
    targets = 0
    if readme.exists() and readme_section(readme.read_text(encoding="utf-8")) is not None:
        targets += 1
        old = readme.read_text(encoding="utf-8")
        new = replace_section(old, generated)
        if new != old:
            readme.write_text(new, encoding="utf-8")
            changed.append(readme)
    if doc.exists():
        targets += 1
        if doc.read_text(encoding="utf-8") != generated:
            doc.write_text(generated, encoding="utf-8")
            changed.append(doc)
    if not targets:
        raise ReferenceError_(
            f"nothing to update: {readme} has no `{START}` marker and {doc} does not exist"
        )
    return changed


def main(argv: Sequence[str] | None = None) -> int:
    from aura_tui.cli import build_parser

    ap = argparse.ArgumentParser(
        prog="python -m aura_tui.cli_reference",
        description="Print the CLI reference, or write it into README.md.",
    )
    ap.add_argument("--write", action="store_true", help="update README.md and the docs copy")
    ap.add_argument("--readme", type=Path, default=README, help="README to update")
    ap.add_argument("--doc", type=Path, default=DOC, help="docs copy to refresh if present")
    args = ap.parse_args(argv)
    if not args.write:
        sys.stdout.write(render_markdown(build_parser()))
        return 0
    try:
        changed = write(args.readme, args.doc)
    except ReferenceError_ as exc:
        sys.stderr.write(f"cli_reference: {exc}\n")
        return 1
    for path in changed:
        sys.stdout.write(f"updated {path}\n")
    if not changed:
        sys.stdout.write("already up to date\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
