"""Arguments and entry points of `aura hub` and `aura worker ...`, shared by the aura CLI
(aura_tui/commands/hub.py, worker.py) and `python -m aura_core.worker` (which tests start as real
processes). Only argparse and the standard library load at import; each command imports the
rest when it runs.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from aura_core.worker.defaults import DEFAULT_PORT, HEARTBEAT_INTERVAL_S, OFFLINE_AFTER_S


class CommandError(Exception):
    """Bad input or setup: one line for the person, then this exit code."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


def _seconds(value: str) -> float:
    try:
        out = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got '{value}'") from None
    if out <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got '{value}'")
    return out


def _repo(value: str) -> tuple[str, str]:
    name, sep, path = value.partition("=")
    if not sep or not name.strip() or not path.strip():
        raise argparse.ArgumentTypeError(f"--repo needs NAME=PATH, got '{value}'")
    return name.strip(), path.strip()


# ---- arguments -------------------------------------------------------------------------------
def add_hub_arguments(p: argparse.ArgumentParser) -> None:
    """Flags left out fall back to [hub] in config.toml, then to the defaults shown."""
    p.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, help=f"port (default {DEFAULT_PORT}; 0: any free port)")
    p.add_argument("--tls-cert", metavar="PEM", help="serve wss:// with this certificate")
    p.add_argument("--tls-key", metavar="PEM", help="the certificate's private key")
    p.add_argument(
        "--heartbeat",
        type=_seconds,
        default=HEARTBEAT_INTERVAL_S,
        metavar="S",
        help=f"heartbeat interval asked of workers (default {HEARTBEAT_INTERVAL_S:g})",
    )
    p.add_argument(
        "--offline-after",
        type=_seconds,
        default=OFFLINE_AFTER_S,
        metavar="S",
        help=f"silence after which a worker is lost (default {OFFLINE_AFTER_S:g})",
    )
    p.add_argument(
        "--max-message", type=int, metavar="BYTES", help="largest JSON-RPC message accepted"
    )
    p.add_argument(
        "--no-store", action="store_true", help="do not record remote sessions in aura.db"
    )
    p.add_argument("--json", action="store_true", help="print events as JSON lines on stdout")
    p.add_argument("--verbose", "-v", action="store_true", help="log more")


def add_worker_arguments(p: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    """Adds `serve`, `token` and `list` under a `worker` parser."""
    sub = p.add_subparsers(dest="worker_command", metavar="ACTION", parser_class=type(p))
    s = sub.add_parser("serve", help="run executions for a hub", parents=[common])
    s.add_argument("--hub", metavar="URL", help="ws://HOST:PORT or wss://... ($AURA_WORKER_HUB)")
    s.add_argument("--token", help="the hub's worker token ($AURA_WORKER_TOKEN)")
    s.add_argument("--name", help="name shown on the board (default: host name)")
    s.add_argument("--id", dest="worker_id", help="stable worker id (default: kept in data dir)")
    s.add_argument(
        "--max-concurrency", "-j", type=int, metavar="N", help="executions at once (default 2)"
    )
    s.add_argument(
        "--repo",
        action="append",
        type=_repo,
        default=[],
        metavar="NAME=PATH",
        help="a repo this worker serves and where its clone is (repeatable)",
    )
    s.add_argument(
        "--executor",
        action="append",
        default=[],
        metavar="NAME",
        help="offer only these executors (repeatable; default: every one found)",
    )
    s.add_argument(
        "--worktrees",
        metavar="DIR",
        help="where task worktrees go (default: <data dir>/worktrees)",
    )
    s.add_argument("--tls-ca", metavar="PEM", help="trust this CA or certificate for wss://")
    s.add_argument(
        "--tls-insecure", action="store_true", help="do not verify the hub's certificate"
    )
    s.add_argument(
        "--drain-timeout",
        type=float,
        default=30.0,
        metavar="S",
        help="on SIGTERM, wait this long for runs to finish before interrupting (default 30)",
    )
    s.add_argument(
        "--reconnect-max",
        type=_seconds,
        default=30.0,
        metavar="S",
        help="longest wait between reconnection attempts (default 30)",
    )
    s.add_argument(
        "--ping", type=_seconds, default=HEARTBEAT_INTERVAL_S, metavar="S", help=argparse.SUPPRESS
    )
    s.add_argument("--verbose", "-v", action="store_true", help="log more")
    t = sub.add_parser("token", help="print the worker token (made on first use)", parents=[common])
    t.add_argument("--rotate", action="store_true", help="make a new token (workers must update)")
    lst = sub.add_parser("list", help="workers known to the hub", parents=[common])
    lst.add_argument("--json", action="store_true", help="print JSON")


# ---- config ----------------------------------------------------------------------------------
def _config_section(name: str) -> dict[str, Any]:
    """One table of config.toml, read as plain TOML (so [worker] works whatever else is there)."""
    import tomllib

    from aura_core.paths import config_file

    path = config_file()
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise CommandError(f"cannot read {path}: {exc}") from None
    section = data.get(name, {})
    if not isinstance(section, dict):
        raise CommandError(f"{path}: [{name}] must be a table")
    return section


def hub_token(data: str | None) -> str:
    """[hub] token from config.toml if set, else the generated one in the data dir."""
    from aura_core.worker.security import load_or_create_token

    configured = _config_section("hub").get("token")
    return str(configured) if configured else load_or_create_token(data)


def _setup_logging(verbose: bool) -> None:
    import logging

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("websockets").setLevel(logging.INFO if verbose else logging.WARNING)


# ---- commands --------------------------------------------------------------------------------
def run_hub(args: argparse.Namespace) -> int:
    import asyncio
    import json
    import signal

    from aura_core.worker.hub import Hub
    from aura_core.worker.security import server_tls
    from aura_core.worker.statefile import WorkerInfo, state_path

    _setup_logging(args.verbose)
    data = getattr(args, "data_dir", None)
    conf = _config_section("hub")
    host = args.host or conf.get("host") or "127.0.0.1"
    port = args.port if args.port is not None else int(conf.get("port", DEFAULT_PORT))
    cert = args.tls_cert or conf.get("tls_cert")
    key = args.tls_key or conf.get("tls_key")
    if bool(cert) != bool(key):
        raise CommandError("give both --tls-cert and --tls-key (or neither)")
    tls = None
    if cert:
        try:
            tls = server_tls(os.path.expanduser(str(cert)), os.path.expanduser(str(key)))
        except (OSError, ValueError) as exc:
            raise CommandError(f"cannot load the TLS certificate or key: {exc}") from None
    token = hub_token(data)
    store = None
    if not args.no_store:
        from aura_core.paths import db_path
        from aura_core.recovery import recover_sessions
        from aura_core.store.sqlite import SqliteStore

        store = SqliteStore(db_path(data))
        recover_sessions(store)

    def emit(event: str, **fields: Any) -> None:
        if args.json:
            sys.stdout.write(json.dumps({"event": event, "ts": time.time(), **fields}) + "\n")
            sys.stdout.flush()

    def on_worker(info: WorkerInfo) -> None:
        emit("worker", worker_id=info.worker_id, name=info.name, state=info.state)

    kwargs: dict[str, Any] = {}
    if args.max_message:
        kwargs["max_message_bytes"] = args.max_message
    hub = Hub(
        token=token,
        host=host,
        port=port,
        store=store,
        tls=tls,
        heartbeat_interval=args.heartbeat,
        offline_after=args.offline_after,
        state_file=state_path(data),
        on_worker=on_worker,
        on_worker_lost=lambda eid, name: emit("worker_lost", execution_id=eid, worker=name),
        on_state=lambda eid, st: emit("state", **st.model_dump(mode="json")),
        **kwargs,
    )

    async def main() -> None:
        try:
            await hub.start()
        except OSError as exc:
            raise CommandError(f"cannot listen on {host}:{port}: {exc}", 1) from None
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        if args.json:
            emit("listening", url=hub.url, pid=os.getpid())
        else:
            sys.stdout.write(f"aura hub listening on {hub.url}\n")
            sys.stdout.flush()
        await stop.wait()
        await hub.stop()

    try:
        asyncio.run(main())
    finally:
        if store is not None:
            store.close()
    return 0


def worker_config(args: argparse.Namespace) -> Any:
    """The daemon's settings: flags, then $AURA_WORKER_*, then [worker] in config.toml."""
    from aura_core.worker.daemon import WorkerConfig
    from aura_core.worker.security import read_token

    conf = _config_section("worker")
    data = getattr(args, "data_dir", None)
    hub = args.hub or os.environ.get("AURA_WORKER_HUB", "").strip() or conf.get("hub")
    if not hub:
        raise CommandError("say which hub: --hub ws://HOST:PORT (or $AURA_WORKER_HUB)")
    token = (
        args.token
        or os.environ.get("AURA_WORKER_TOKEN", "").strip()
        or conf.get("token")
        or _config_section("hub").get("token")
        or read_token(data)
    )
    if not token:
        raise CommandError(
            "no worker token: pass --token (or set $AURA_WORKER_TOKEN); "
            "print it with `aura worker token` on the hub's machine"
        )
    repos: dict[str, Path] = {}
    conf_repos = conf.get("repos", {})
    if not isinstance(conf_repos, dict):
        raise CommandError("[worker] repos must be a table of NAME = PATH")
    for name, path in [*conf_repos.items(), *args.repo]:
        full = Path(os.path.expanduser(str(path))).resolve()
        if not full.is_dir():
            raise CommandError(f"--repo {name}={path}: no such folder")
        repos[str(name)] = full
    concurrency = args.max_concurrency or int(conf.get("max_concurrency", 2))
    if concurrency < 1:
        raise CommandError("--max-concurrency must be at least 1")
    cfg = WorkerConfig(
        hub_url=str(hub),
        token=str(token),
        max_concurrency=concurrency,
        repos=repos,
        executors=list(args.executor) or conf.get("executors") or None,
        tls_ca=args.tls_ca or conf.get("tls_ca"),
        tls_insecure=bool(args.tls_insecure),
        data_dir=data,
        drain_timeout=max(0.0, args.drain_timeout),
        reconnect_max=args.reconnect_max,
        ping_interval=args.ping,
        ping_timeout=max(args.ping * 3, 1.0),
    )
    worktrees = getattr(args, "worktrees", None) or conf.get("worktrees")
    if worktrees:
        cfg.worktrees_root = Path(os.path.expanduser(str(worktrees))).resolve()
    if args.name or conf.get("name"):
        cfg.name = str(args.name or conf.get("name"))
    if args.worker_id:
        cfg.worker_id = args.worker_id
    return cfg


def run_worker_serve(args: argparse.Namespace) -> int:
    import asyncio

    from aura_core.worker.daemon import WorkerDaemon, WorkerError

    _setup_logging(args.verbose)
    cfg = worker_config(args)
    try:
        return asyncio.run(WorkerDaemon(cfg).run())
    except WorkerError as exc:
        raise CommandError(str(exc), exc.code) from None


def run_worker_token(args: argparse.Namespace) -> int:
    from aura_core.worker.security import rotate_token

    data = getattr(args, "data_dir", None)
    if args.rotate:
        if _config_section("hub").get("token"):
            raise CommandError("the token is set in config.toml ([hub] token): change it there")
        token = rotate_token(data)
    else:
        token = hub_token(data)
    sys.stdout.write(token + "\n")
    return 0


def _ago(ts: float | None) -> str:
    if ts is None:
        return "-"
    secs = max(0.0, time.time() - ts)
    if secs < 60:
        return f"{secs:.0f}s ago"
    if secs < 3600:
        return f"{secs / 60:.0f}m ago"
    return f"{secs / 3600:.1f}h ago"


def run_worker_list(args: argparse.Namespace) -> int:
    import json

    from aura_core.worker.statefile import read_snapshot, state_path

    path = state_path(getattr(args, "data_dir", None))
    snap = read_snapshot(path)
    if args.json:
        out: dict[str, Any] = {"hub": None, "hub_running": False, "workers": []}
        if snap is not None:
            out = {
                "hub": snap.hub.model_dump(mode="json"),
                "hub_running": snap.hub.alive,
                "workers": [w.model_dump(mode="json") for w in snap.workers],
            }
        sys.stdout.write(json.dumps(out, indent=2) + "\n")
        return 0
    if snap is None:
        sys.stdout.write("no hub has run here yet: start one with `aura hub`\n")
        return 0
    alive = snap.hub.alive
    status = "running" if alive else f"not running (last seen {_ago(snap.hub.updated_at)})"
    sys.stdout.write(f"hub {snap.hub.url}: {status}\n")
    if not snap.workers:
        sys.stdout.write("no worker has connected\n")
        return 0
    rows = [("NAME", "STATE", "RUNNING", "LOAD", "LAST HEARTBEAT", "EXECUTORS", "REPOS")]
    for w in snap.workers:
        rows.append(
            (
                w.name,
                w.state if alive else f"{w.state}?",
                f"{len(w.running)}/{w.max_concurrency}",
                "-" if w.load is None else f"{w.load:.2f}",
                _ago(w.last_heartbeat),
                ",".join(e.name for e in w.executors) or "-",
                ",".join(w.repos) or "-",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        line = "  ".join(c.ljust(wd) for c, wd in zip(row, widths, strict=True))
        sys.stdout.write(line.rstrip() + "\n")
    return 0


def run_worker(args: argparse.Namespace) -> int:
    action = getattr(args, "worker_command", None)
    if action == "serve":
        return run_worker_serve(args)
    if action == "token":
        return run_worker_token(args)
    if action == "list":
        return run_worker_list(args)
    raise CommandError("say which: `aura worker serve|token|list`")
