"""The worker hub under 100 worker connections on loopback.

Figures (the hub is a real `python -m aura_core.worker hub` process; the 100 workers are
protocol-exact clients in this process, since 100 daemons would only measure fork and RAM):
- hub CPU while idle: 100 workers heartbeating every 5 s (target < 5% of one core)
- log throughput through the hub: lines/s from the workers' first send to the hub's last
  acknowledgment, every line checked in, deduped and acked (target >= 100,000 lines/s); measured
  with the hub persisting to aura.db (its default) and with --no-store
- time to detect a lost worker: a worker's TCP connection is cut right after a heartbeat, as
  kill -9 would; time until the hub reports it offline (target 15-20 s with the real 5 s / 15 s)

`--quick` shortens the idle window and the line counts (CI); `--json PATH` writes the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from common import ROOT, isolated_env, report, temp_home
from websockets.asyncio.client import ClientConnection, connect

sys.path.insert(0, str(ROOT))

from aura_core.worker.protocol import HelloParams

CLK_TCK = os.sysconf("SC_CLK_TCK")
BATCH = 1000  # lines per execution.log message (the daemon sends up to 5000 / 512 KiB)


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat", "rb") as fh:
        fields = fh.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


class HubProcess:
    def __init__(self, home: Path, *extra: str) -> None:
        self.env = isolated_env(home)
        self.token = subprocess.run(
            [sys.executable, "-m", "aura_core.worker", "worker", "token"],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "aura_core.worker", "hub", "--port", "0", "--json", *extra],
            env=self.env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.events: list[tuple[float, dict[str, Any]]] = []
        self.cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()
        first = self.wait(lambda e: e["event"] == "listening", 30)
        self.url: str = first["url"]

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            event = json.loads(line)
            with self.cond:
                self.events.append((time.monotonic(), event))
                self.cond.notify_all()

    def wait(self, pred: Any, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for _, event in self.events:
                    if pred(event):
                        return event
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("the hub did not report it in time")
                self.cond.wait(left)

    def when(self, pred: Any) -> float | None:
        with self.cond:
            return next((t for t, e in self.events if pred(e)), None)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


class FakeWorker:
    """Speaks the worker side of the protocol: hello, heartbeats, log batches, acks."""

    def __init__(self, index: int, url: str, token: str, lines: int) -> None:
        self.name = f"bench-{index:03d}"
        self.url = url
        self.token = token
        self.lines = lines
        self.exec_id = f"exec-{index:03d}"
        self.ws: ClientConnection | None = None
        self.acked = -1
        self.all_acked = asyncio.Event()
        self.stop_beats = False
        self.messages: list[str] = []

    def prepare(self) -> None:
        """Encode every log message up front: the clock must measure the hub, not us."""
        for start in range(0, self.lines, BATCH):
            now = time.time()
            items = [
                [seq, "stdout", now, f"{seq:08d} " + "x" * 70, None]
                for seq in range(start, min(start + BATCH, self.lines))
            ]
            self.messages.append(
                json.dumps(
                    {
                        "jsonrpc": "2.0",
                        "method": "execution.log",
                        "params": {"execution_id": self.exec_id, "lines": items},
                    },
                    separators=(",", ":"),
                )
            )

    async def connect(self) -> None:
        self.ws = await connect(
            self.url,
            additional_headers={"Authorization": f"Bearer {self.token}"},
            ping_interval=None,
            max_size=None,
        )
        hello = HelloParams.model_validate(
            {
                "worker_id": self.name,
                "name": self.name,
                "version": "bench",
                "capabilities": {
                    "executors": [{"name": "custom"}],
                    "repos": ["*"],
                    "max_concurrency": 4,
                },
                "running": [{"execution_id": self.exec_id, "session_id": self.exec_id}],
            }
        )
        await self.ws.send(
            json.dumps(
                {
                    "jsonrpc": "2.0",
                    "id": 1,
                    "method": "worker.hello",
                    "params": hello.model_dump(mode="json"),
                }
            )
        )
        while True:
            msg = json.loads(await self.ws.recv())
            if msg.get("id") == 1:
                break

    async def beats(self, interval: float) -> None:
        assert self.ws is not None
        while not self.stop_beats:
            await self.heartbeat()
            await asyncio.sleep(interval)

    async def heartbeat(self) -> None:
        assert self.ws is not None
        beat = {"jsonrpc": "2.0", "method": "worker.heartbeat", "params": {"load": 0.1}}
        await self.ws.send(json.dumps(beat))

    async def read_acks(self) -> None:
        assert self.ws is not None
        async for raw in self.ws:
            msg = json.loads(raw)
            if msg.get("method") == "execution.ack":
                for ack in msg["params"]["acks"]:
                    self.acked = max(self.acked, ack["seq"])
                if self.acked >= self.lines - 1:
                    self.all_acked.set()

    async def stream(self) -> None:
        assert self.ws is not None
        for message in self.messages:
            await self.ws.send(message)
        await self.all_acked.wait()


async def run_cluster(hub: HubProcess, workers: int, lines: int, idle_s: float) -> dict[str, Any]:
    fakes = [FakeWorker(i, hub.url, hub.token, lines) for i in range(workers)]
    for fake in fakes:
        fake.prepare()
    await asyncio.gather(*(f.connect() for f in fakes))
    readers = [asyncio.ensure_future(f.read_acks()) for f in fakes]
    beats = [asyncio.ensure_future(f.beats(5.0)) for f in fakes]
    out: dict[str, Any] = {}
    if idle_s > 0:
        await asyncio.sleep(2.0)  # let the connection burst settle
        c0, t0 = cpu_seconds(hub.proc.pid), time.monotonic()
        await asyncio.sleep(idle_s)
        c1, t1 = cpu_seconds(hub.proc.pid), time.monotonic()
        out["idle_cpu"] = (c1 - c0) / (t1 - t0)
        out["idle_window"] = t1 - t0
    c0, t0 = cpu_seconds(hub.proc.pid), time.perf_counter()
    await asyncio.gather(*(f.stream() for f in fakes))
    t1, c1 = time.perf_counter(), cpu_seconds(hub.proc.pid)
    out["lines"] = workers * lines
    out["throughput"] = workers * lines / (t1 - t0)
    out["stream_cpu"] = (c1 - c0) / (t1 - t0)
    out["fakes"] = fakes
    out["tasks"] = readers + beats
    return out


async def detect_lost(hub: HubProcess, fake: FakeWorker) -> float:
    """Cut a worker's connection right after a heartbeat; seconds until the hub says offline."""
    assert fake.ws is not None
    fake.stop_beats = True
    await fake.heartbeat()
    await asyncio.sleep(0.05)
    transport = fake.ws.transport
    cut = time.monotonic()
    transport.abort()

    def offline(e: dict[str, Any]) -> bool:
        return e["event"] == "worker" and e["name"] == fake.name and e["state"] == "offline"

    await asyncio.to_thread(hub.wait, offline, 40)
    seen = hub.when(offline)
    assert seen is not None
    return seen - cut


async def bench(quick: bool) -> list[dict[str, object]]:
    workers = 100
    idle_s = 5.0 if quick else 40.0
    lines = 2_000 if quick else 20_000
    rows: list[dict[str, object]] = []
    hub = HubProcess(temp_home())
    try:
        res = await run_cluster(hub, workers, lines, idle_s)
        lost_s = await detect_lost(hub, res["fakes"][0])
        rss = _rss_mib(hub.proc.pid)
        for fake in res["fakes"]:
            if fake.ws is not None:
                await fake.ws.close()
        for task in res["tasks"]:
            task.cancel()
    finally:
        hub.stop()
    plain = HubProcess(temp_home(), "--no-store")
    try:
        res2 = await run_cluster(plain, workers, lines, 0)
        for fake in res2["fakes"]:
            if fake.ws is not None:
                await fake.ws.close()
        for task in res2["tasks"]:
            task.cancel()
    finally:
        plain.stop()
    rows.append(
        {
            "figure": f"hub CPU idle, {workers} workers ({res['idle_window']:.0f} s)",
            "value": f"{res['idle_cpu'] * 100:.2f}% of a core",
            "target": "< 5%",
            "ok": res["idle_cpu"] < 0.05,
        }
    )
    rows.append(
        {
            "figure": f"log throughput, persisted ({res['lines']:,} lines)",
            "value": f"{res['throughput']:,.0f} lines/s",
            "target": ">= 100,000 lines/s",
            "ok": res["throughput"] >= 100_000,
            "hub_cpu": f"{res['stream_cpu'] * 100:.0f}%",
        }
    )
    rows.append(
        {
            "figure": f"log throughput, --no-store ({res2['lines']:,} lines)",
            "value": f"{res2['throughput']:,.0f} lines/s",
            "target": ">= 100,000 lines/s",
            "ok": res2["throughput"] >= 100_000,
            "hub_cpu": f"{res2['stream_cpu'] * 100:.0f}%",
        }
    )
    rows.append(
        {
            "figure": "lost worker detected (5 s beat, 15 s limit)",
            "value": f"{lost_s:.1f} s",
            "target": "15-20 s",
            "ok": 15.0 <= lost_s <= 20.0,
        }
    )
    rows.append({"figure": "hub RSS with 100 workers", "value": f"{rss:.0f} MiB"})
    return rows


def _rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short CI mode")
    parser.add_argument("--json", metavar="PATH", help="write the figures here")
    args = parser.parse_args()
    rows = asyncio.run(bench(args.quick))
    report("hub", rows, args.json)
    return 0 if all(r.get("ok", True) for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
