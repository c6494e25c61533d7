"""`aura hub`: the worker hub, headless (the board embeds the same Hub: Runtime.start_hub)."""

from __future__ import annotations

import argparse

from aura_tui.cli import UserError


def populate(parser: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    """Fill in the options (the CLI's lazy command table calls this)."""
    from aura_core.worker.cli import add_hub_arguments

    add_hub_arguments(parser)


def main(args: argparse.Namespace) -> int:
    from aura_core.worker.cli import CommandError, run_hub

    try:
        return run_hub(args)
    except CommandError as exc:
        raise UserError(str(exc), exc.code) from None
