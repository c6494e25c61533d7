"""`python -m aura_core.worker hub|worker ...`: `aura hub` and `aura worker serve|token|list`
with the same arguments, without the aura CLI around them (tests start real processes with it)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from aura_core.worker.cli import (
    CommandError,
    add_hub_arguments,
    add_worker_arguments,
    run_hub,
    run_worker,
)


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-dir", metavar="DIR", default=argparse.SUPPRESS)
    parser = argparse.ArgumentParser(prog="python -m aura_core.worker", parents=[common])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    add_hub_arguments(sub.add_parser("hub", help="run the hub", parents=[common]))
    add_worker_arguments(
        sub.add_parser("worker", help="serve, token, list", parents=[common]), common
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "hub":
            return run_hub(args)
        return run_worker(args)
    except CommandError as exc:
        sys.stderr.write(f"aura: error: {exc}\n")
        return exc.code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
