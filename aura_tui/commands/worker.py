"""`aura worker serve|token|list`: run a worker daemon, show the hub's token, list workers."""

from __future__ import annotations

import argparse

from aura_tui.cli import UserError


def populate(parser: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    """Fill in the options (the CLI's lazy command table calls this)."""
    from aura_core.worker.cli import add_worker_arguments

    add_worker_arguments(parser, common)


def main(args: argparse.Namespace) -> int:
    from aura_core.worker.cli import CommandError, run_worker

    if getattr(args, "worker_command", None) is None:
        raise UserError("say which: `aura worker serve|token|list`")
    try:
        return run_worker(args)
    except CommandError as exc:
        raise UserError(str(exc), exc.code) from None
