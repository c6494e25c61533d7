"""`aura hub` and `aura worker` as real processes, the command modules, and TLS."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from aura_core.worker.security import server_tls, token_path
from aura_tui.cli import UserError, build_parser
from aura_tui.commands import hub as hub_cmd
from aura_tui.commands import worker as worker_cmd
from tests.worker.conftest import (
    ROOT,
    Collector,
    HubFactory,
    Procs,
    assert_exact,
    online,
    start_params,
    wait_until,
)


def _module(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aura_core.worker", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=dict(os.environ),
        cwd=ROOT,
    )


def _parser() -> argparse.ArgumentParser:
    """The real CLI parser, which lists `hub` and `worker` in its command table."""
    return build_parser()


def test_token_is_made_once_private_and_rotates(capsys: pytest.CaptureFixture[str]) -> None:
    parser = _parser()
    assert worker_cmd.main(parser.parse_args(["worker", "token"])) == 0
    first = capsys.readouterr().out.strip()
    assert len(first) >= 40
    assert stat.S_IMODE(token_path().stat().st_mode) == 0o600
    assert worker_cmd.main(parser.parse_args(["worker", "token"])) == 0
    assert capsys.readouterr().out.strip() == first
    assert worker_cmd.main(parser.parse_args(["worker", "token", "--rotate"])) == 0
    rotated = capsys.readouterr().out.strip()
    assert rotated != first and token_path().read_text().strip() == rotated
    out = _module("worker", "token")
    assert out.returncode == 0 and out.stdout.strip() == rotated


def test_command_modules_parse_and_report_user_errors(tmp_path: Path) -> None:
    parser = _parser()
    args = parser.parse_args(
        ["hub", "--host", "0.0.0.0", "--port", "0", "--tls-cert", "c.pem", "--offline-after", "3"]
    )
    assert (args.host, args.port, args.tls_cert, args.offline_after) == ("0.0.0.0", 0, "c.pem", 3)
    with pytest.raises(UserError, match="both --tls-cert and --tls-key"):
        hub_cmd.main(args)
    with pytest.raises(UserError, match="say which: `aura worker serve"):
        worker_cmd.main(parser.parse_args(["worker"]))
    with pytest.raises(UserError, match="say which hub"):
        worker_cmd.main(parser.parse_args(["worker", "serve", "--token", "t"]))
    with pytest.raises(UserError, match="no such folder"):
        worker_cmd.main(
            parser.parse_args(
                ["worker", "serve", "--hub", "ws://x:1", "--token", "t", "--repo", "a=/nope/x"]
            )
        )
    with pytest.raises(SystemExit):
        parser.parse_args(["worker", "serve", "--repo", "nameonly"])
    args = parser.parse_args(
        ["worker", "serve", "--hub", "ws://h:1", "--repo", f"demo={tmp_path}", "-j", "3"]
    )
    os.environ["AURA_WORKER_TOKEN"] = "from-env"
    try:
        from aura_core.worker.cli import worker_config

        cfg = worker_config(args)
    finally:
        del os.environ["AURA_WORKER_TOKEN"]
    assert cfg.token == "from-env" and cfg.max_concurrency == 3
    assert cfg.repos == {"demo": tmp_path.resolve()}


def test_worker_reads_its_settings_from_config_toml(tmp_path: Path) -> None:
    from aura_core.paths import config_file
    from aura_core.worker.cli import worker_config

    cfg_path = config_file()
    cfg_path.parent.mkdir(parents=True, exist_ok=True)
    cfg_path.write_text(
        "[hub]\ntoken = 'hub-conf'\n\n"
        f"[worker]\nhub = 'wss://hub:7433'\nname = 'box'\nmax_concurrency = 4\n"
        f"repos = {{ app = '{tmp_path}' }}\n"
    )
    cfg = worker_config(_parser().parse_args(["worker", "serve"]))
    assert (cfg.hub_url, cfg.token, cfg.name, cfg.max_concurrency) == (
        "wss://hub:7433",
        "hub-conf",
        "box",
        4,
    )
    assert cfg.repos == {"app": tmp_path.resolve()}


def _read_event(proc: subprocess.Popen[str], timeout: float = 20) -> dict[str, Any]:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line:
            return dict(json.loads(line))
        if proc.poll() is not None:
            break
        time.sleep(0.02)
    raise AssertionError("no event from the hub")


def test_headless_hub_process_and_worker_list(procs: Procs, tmp_path: Path) -> None:
    listed = _module("worker", "list")
    assert "no hub has run here yet" in listed.stdout
    token = _module("worker", "token").stdout.strip()
    hub = procs.hub_process("--json", "--heartbeat", "0.3", "--offline-after", "3")
    event = _read_event(hub)
    assert event["event"] == "listening" and event["url"].startswith("ws://127.0.0.1:")
    procs.worker(event["url"], "w1", token=token)
    joined = _read_event(hub)
    assert (joined["event"], joined["name"], joined["state"]) == ("worker", "w1", "online")

    def snapshot() -> dict[str, Any]:
        return dict(json.loads(_module("worker", "list", "--json").stdout))

    wait_until(lambda: [w["state"] for w in snapshot()["workers"]] == ["online"], 10, "listed")
    snap = snapshot()
    assert snap["hub_running"] is True and snap["hub"]["url"] == event["url"]
    (row,) = snap["workers"]
    assert row["name"] == "w1" and row["repos"] == ["demo"] and row["max_concurrency"] == 2
    assert row["last_heartbeat"] is not None and time.time() - row["last_heartbeat"] < 5
    table = _module("worker", "list").stdout
    assert "running" in table.splitlines()[0]
    assert any(line.startswith("w1") and "online" in line for line in table.splitlines())
    hub.send_signal(signal.SIGTERM)
    assert hub.wait(15) == 0
    after = _module("worker", "list").stdout
    assert "not running" in after.splitlines()[0] and "disconnected?" in after


def _make_cert(tmp: Path) -> tuple[Path, Path]:
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return cert, key


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")
def test_tls_with_a_self_signed_certificate(
    make_hub: HubFactory, procs: Procs, collector: Collector, tmp_path: Path
) -> None:
    cert, key = _make_cert(tmp_path)
    hub = make_hub(tls=server_tls(cert, key))
    assert hub.url.startswith("wss://127.0.0.1:")
    procs.worker(hub.url, "trusting", "--tls-ca", str(cert))
    untrusting = procs.worker(hub.url, "untrusting")
    plain = procs.worker(hub.url.replace("wss://", "ws://"), "plain")
    wait_until(online(hub, 1), 20, "the worker that trusts the cert")
    assert hub.start_execution(start_params("tls-1", 300, delay=0)).accepted
    collector.wait(lambda: collector.final("tls-1") is not None, 20, "final state")
    assert_exact(collector, "tls-1", 300)
    time.sleep(1.0)
    assert [w.name for w in hub.workers()] == ["trusting"]
    assert untrusting.poll() is None and plain.poll() is None  # they keep retrying
    assert "CERTIFICATE_VERIFY_FAILED" in procs.log("untrusting")
