"""Plain-text output of a run, live or from the store: raw lines, or entries for agents.

Used by `aura run --no-tui` and `aura session show`; never imports textual.
"""

from __future__ import annotations

import json
import sys
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aura_core.runner import Row, RunResult

STDERR_MARK = "[stderr] "
SYSTEM_MARK = "[aura] "


def _normalizer_for(executor: str, stored: dict[str, Any] | None = None) -> Any:
    """The parser of the executor that ran a session (for `custom`, command or endpoint)."""
    from aura_core.executors.base import RunOptions
    from aura_core.executors.registry import get_executor

    stored = stored or {}
    options = RunOptions(base_command=stored.get("base_command"))
    try:
        return get_executor(executor, options).normalizer()
    except Exception:
        return None


class EntryPrinter:
    """Prints entries once they are complete: an entry is done when a later one starts."""

    def __init__(self, out: IO[str], *, as_json: bool) -> None:
        self.out = out
        self.as_json = as_json
        self.entries: list[Any] = []
        self.printed = 0

    def apply(self, patches: list[Any]) -> None:
        for patch in patches:
            if self.as_json:
                self.out.write(
                    json.dumps(
                        {"op": patch.op, "index": patch.index, "entry": patch.entry.to_dict()}
                    )
                    + "\n"
                )
            if patch.op == "append" or patch.index >= len(self.entries):
                self.entries.append(patch.entry)
            else:
                self.entries[patch.index] = patch.entry
        if not self.as_json:
            self._print_upto(len(self.entries) - 1)

    def _print_upto(self, end: int) -> None:
        from aura_core.executors.entries import render_text

        while self.printed < end:
            text = render_text(self.entries[self.printed])
            if text:
                self.out.write(text.rstrip("\n") + "\n")
            self.printed += 1
        self.out.flush()

    def finish(self) -> None:
        if not self.as_json:
            self._print_upto(len(self.entries))


class PlainSink:
    """The live printer for `aura run` without the TUI."""

    def __init__(self, *, has_normalizer: bool, as_json: bool, quiet_summary: bool = False) -> None:
        self.has_normalizer = has_normalizer
        self.as_json = as_json
        self.quiet_summary = quiet_summary
        self.out = sys.stdout
        self.err = sys.stderr
        self.entries = EntryPrinter(self.out, as_json=as_json) if has_normalizer else None

    def started(self, session: dict[str, Any]) -> None:
        pass

    def lines(self, rows: list[Row]) -> None:
        out_lines: list[str] = []
        for row in rows:
            stream, text = row[2], row[4]
            if stream == "system":
                self._flush(out_lines)
                self.err.write(f"{SYSTEM_MARK}{text}\n")
            elif self.has_normalizer:
                continue
            elif stream == "stderr":
                self._flush(out_lines)
                self.err.write(f"{STDERR_MARK}{text}\n")
            elif self.as_json:
                out_lines.append(json.dumps({"seq": row[1], "stream": stream, "text": text}))
            else:
                out_lines.append(text)
        self._flush(out_lines)
        self.err.flush()

    def _flush(self, out_lines: list[str]) -> None:
        if out_lines:
            self.out.write("\n".join(out_lines) + "\n")
            out_lines.clear()
            self.out.flush()

    def patches(self, patches: list[Any]) -> None:
        if self.entries is not None:
            self.entries.apply(patches)

    def finished(self, result: RunResult) -> None:
        if self.entries is not None:
            self.entries.finish()
        self.out.flush()
        if self.quiet_summary:
            return
        code = "" if result.exit_code is None else f" · exit {result.exit_code}"
        why = f" · {result.error}" if result.error and result.status != "completed" else ""
        self.err.write(
            f"{SYSTEM_MARK}{result.status}{code} · {result.duration:.2f}s · "
            f"session {result.session_id[:8]}{why}\n"
        )
        self.err.flush()


def print_log(store: Any, row: dict[str, Any], *, raw: bool, out: IO[str]) -> None:
    structured = bool((row.get("options") or {}).get("structured"))
    stored = row.get("options") or {}
    normalizer = _normalizer_for(row["executor"], stored) if structured and not raw else None
    printer = EntryPrinter(out, as_json=False) if normalizer is not None else None
    buf: list[str] = []
    for _seq, stream, _ts, text in store.iter_log_rows(row["id"]):
        if stream == "system":
            buf.append(SYSTEM_MARK + text)
        elif printer is not None and normalizer is not None:
            if buf:
                out.write("\n".join(buf) + "\n")
                buf.clear()
            printer.apply(normalizer.feed(stream, text))
            continue
        elif stream == "stderr":
            buf.append(STDERR_MARK + text)
        else:
            buf.append(text)
        if len(buf) >= 4096:
            out.write("\n".join(buf) + "\n")
            buf.clear()
    if buf:
        out.write("\n".join(buf) + "\n")
    if printer is not None and normalizer is not None:
        printer.apply(normalizer.finish())
        printer.finish()
