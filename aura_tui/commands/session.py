"""`aura session list|show|latest`: stored sessions and their logs. Never imports textual."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from aura_tui.cli import UserError
from aura_tui.commands.common import fmt_duration, fmt_time, open_store


def _duration(row: dict[str, Any]) -> float | None:
    if row.get("started_at") is None or row.get("finished_at") is None:
        return None
    return float(row["finished_at"]) - float(row["started_at"])


def _excerpt(text: str, width: int) -> str:
    one = " ".join((text or "").split())
    return one if len(one) <= width else one[: width - 1] + "…"


def _list(store: Any, args: argparse.Namespace) -> int:
    rows = store.list_session_rows(limit=args.limit or None)
    out = sys.stdout
    if args.ids_only:
        out.write("".join(f"{r['id']}\n" for r in rows))
        return 0
    if args.json:
        json.dump([_public(r) for r in rows], out, indent=2)
        out.write("\n")
        return 0
    if not rows:
        out.write(
            "No sessions yet. Start one: aura run --executor custom --prompt hi "
            "--base-command echo --no-tui\n"
        )
        return 0
    header = ("ID", "EXECUTOR", "STATUS", "STARTED", "DURATION", "PROMPT")
    table = [
        (
            r["id"][:8],
            r["executor"],
            r["status"],
            fmt_time(r["started_at"] or r["created_at"]),
            fmt_duration(_duration(r)),
            _excerpt(r["prompt"], 48),
        )
        for r in rows
    ]
    widths = [max(len(h), *(len(t[i]) for t in table)) for i, h in enumerate(header)]
    for line in (header, *table):
        out.write("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() + "\n")
    return 0


def _public(row: dict[str, Any]) -> dict[str, Any]:
    data = dict(row)
    data["duration"] = _duration(row)
    return data


def _show(store: Any, row: dict[str, Any], args: argparse.Namespace) -> int:
    out = sys.stdout
    if args.json:
        out.write('{"session": ')
        json.dump(_public(row), out)
        out.write(', "log": [')
        first = True
        for seq, stream, ts, text in store.iter_log_rows(row["id"]):
            out.write(("" if first else ",") + "\n  ")
            json.dump({"seq": seq, "stream": stream, "ts": ts, "text": text}, out)
            first = False
        out.write("\n]}\n")
        return 0
    fields = [
        ("session", row["id"]),
        ("executor", row["executor"] + (f" ({row['model']})" if row.get("model") else "")),
        (
            "status",
            row["status"] + (f" (exit {row['exit_code']})" if row["exit_code"] is not None else ""),
        ),
        ("started", fmt_time(row["started_at"])),
        ("duration", fmt_duration(_duration(row))),
        ("cwd", row["cwd"]),
    ]
    if row.get("agent_session_id"):
        fields.append(("agent id", row["agent_session_id"]))
    if row.get("parent_id"):
        fields.append(("continues", row["parent_id"]))
    if row.get("error"):
        fields.append(("error", row["error"]))
    fields.append(("prompt", _excerpt(row["prompt"], 200)))
    for key, value in fields:
        out.write(f"{key + ':':<10} {value}\n")
    out.write("\n")
    from aura_tui.commands.render import print_log

    print_log(store, row, raw=args.raw, out=out)
    return 0


def main(args: argparse.Namespace) -> int:
    store = open_store(args)
    try:
        if args.session_command == "list":
            return _list(store, args)
        if args.session_command == "latest":
            row = store.latest_session_row()
            if row is None:
                raise UserError(
                    "no sessions yet: start one with `aura run --executor NAME --prompt TEXT`", 1
                )
            return _show(store, row, args)
        if args.session_command == "show":
            return _show(store, store.find_session_row(args.id), args)
        raise UserError(f"unknown session action '{args.session_command}'")
    finally:
        store.close()
