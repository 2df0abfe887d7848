"""SSE fan-out: N clients connected to `GET /api/notifications/stream` as one user; how long
one notification takes to reach all of them.

    .venv/bin/python -m bench.sse_fanout --clients 1000 --rounds 5

Starts `duetime serve` (SQLite in a temp dir) and connects the clients from this process
with plain asyncio sockets (lighter than an HTTP library, so the clients' own cost does not
dominate). Each round creates a task due 2 s later; latency is measured from the
notification's `fired_at` (when it reached the inbox) to each client reading it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta

import httpx

from duetime.auth import issue_token

SECRET = "bench-secret-0123456789abcdef0123456789"


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Client:
    def __init__(self) -> None:
        self.arrivals: dict[str, float] = {}  # notification id → wall clock
        self.ready = asyncio.Event()

    async def run(self, port: int, token: str) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            (
                "GET /api/notifications/stream HTTP/1.1\r\nhost: 127.0.0.1\r\n"
                f"authorization: Bearer {token}\r\naccept: text/event-stream\r\n\r\n"
            ).encode()
        )
        try:
            while True:
                line = await reader.readline()
                if not line:
                    return
                if line.startswith(b": connected"):
                    self.ready.set()
                elif b"data: {" in line:  # chunked framing: the data line is intact
                    data = json.loads(line[line.index(b"{") :])
                    self.arrivals[data["notification_id"]] = time.time()
        finally:
            writer.close()


async def run(clients: int, rounds: int, port: int) -> None:
    workdir = tempfile.mkdtemp(prefix="duetime-bench-")
    env = {
        **os.environ,
        "DUETIME_DATA_DIR": workdir,
        "DUETIME_PORT": str(port),
        "DUETIME_JWT_SECRET": SECRET,
        "DUETIME_LOG_LEVEL": "warning",
    }
    server = subprocess.Popen([sys.executable, "-m", "duetime", "serve"], env=env)  # noqa: ASYNC220
    token = issue_token(SECRET, "fan", ttl=timedelta(hours=1), now=datetime.now(UTC))
    headers = {"authorization": f"Bearer {token}"}
    tasks: list[asyncio.Task[None]] = []
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=headers) as api:
            for _ in range(300):
                try:
                    if (await api.get("/readyz")).status_code == 204:
                        break
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
            readers = [Client() for _ in range(clients)]
            began = time.perf_counter()
            for i in range(0, clients, 100):  # connect in waves, as a server would see it
                tasks += [asyncio.create_task(c.run(port, token)) for c in readers[i : i + 100]]
                await asyncio.gather(*(c.ready.wait() for c in readers[i : i + 100]))
            print(f"{clients} clients connected in {time.perf_counter() - began:.2f} s")
            all_latencies: list[float] = []
            for r in range(rounds):
                due = datetime.now(UTC) + timedelta(seconds=2)
                body = {"title": f"round {r}", "due_at": due.isoformat()}
                (await api.post("/api/tasks", json=body)).raise_for_status()
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    notes = (await api.get("/api/notifications")).json()["notifications"]
                    if len(notes) > r:
                        break
                    await asyncio.sleep(0.2)
                note = notes[0]
                fired = datetime.fromisoformat(note["fired_at"].replace("Z", "+00:00"))
                while not all(note["id"] in c.arrivals for c in readers):
                    if time.monotonic() > deadline:
                        break
                    await asyncio.sleep(0.05)
                got = [c.arrivals[note["id"]] for c in readers if note["id"] in c.arrivals]
                latencies = [(t - fired.timestamp()) * 1000 for t in got]
                all_latencies += latencies
                print(
                    f"round {r + 1}: reached {len(got)}/{clients}; from fired_at: "
                    f"first {min(latencies):.1f} ms, p50 {_pct(latencies, 0.5):.1f} ms, "
                    f"p99 {_pct(latencies, 0.99):.1f} ms, max {max(latencies):.1f} ms"
                )
            print(
                f"all rounds: p50 {_pct(all_latencies, 0.5):.1f} ms, "
                f"p99 {_pct(all_latencies, 0.99):.1f} ms, max {max(all_latencies):.1f} ms"
            )
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        server.terminate()
        server.wait(15)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--port", type=int, default=18768)
    args = parser.parse_args()
    asyncio.run(run(args.clients, args.rounds, args.port))


if __name__ == "__main__":
    main()
