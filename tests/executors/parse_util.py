"""Feeding captured agent output to a normaliser, the way the runner does, and checking the
patch stream is one a consumer can apply."""

from __future__ import annotations

from pathlib import Path

from aura_core.executors.entries import Entry, EntryPatch, JsonlNormalizer, ToolUse

FIXTURES = Path(__file__).resolve().parent / "fixtures"
SHARED_SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "reference" / "samples"


def lines(name: str) -> list[str]:
    return (FIXTURES / name).read_text().splitlines()


def feed(norm: JsonlNormalizer, texts: list[str], stream: str = "stdout") -> list[EntryPatch]:
    patches: list[EntryPatch] = []
    for text in texts:
        patches += norm.feed(stream, text)
    return patches


def run(norm: JsonlNormalizer, name: str) -> list[EntryPatch]:
    """Feed a fixture line by line, then finish; check the patches replay to the entries."""
    patches = feed(norm, lines(name))
    patches += norm.finish()
    assert replay(patches) == norm.entries
    return patches


def replay(patches: list[EntryPatch]) -> list[Entry]:
    """Apply patches like a UI would; appends must be in order, replaces must hit an entry."""
    out: list[Entry] = []
    for p in patches:
        if p.op == "append":
            assert p.index == len(out), f"append at {p.index} but {len(out)} entries"
            out.append(p.entry)
        else:
            assert p.op == "replace" and 0 <= p.index < len(out), p
            out[p.index] = p.entry
    return out


def tools(entries: list[Entry]) -> list[ToolUse]:
    return [e for e in entries if isinstance(e, ToolUse)]


def kinds(entries: list[Entry]) -> list[str]:
    return [e.kind for e in entries]
