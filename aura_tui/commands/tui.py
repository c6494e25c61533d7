"""`aura tui`: open the board (imports textual only here)."""

from __future__ import annotations

import argparse


def main(args: argparse.Namespace) -> int:
    from aura_tui.app import AuraApp
    from aura_tui.commands.common import open_store

    store = open_store(args)
    try:
        app = AuraApp(store=store)
        app.run()
        return app.return_code or 0
    finally:
        store.close()
