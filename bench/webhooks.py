"""Webhook deliveries per second from one duetime process to a local receiver.

    .venv/bin/python -m bench.webhooks --deliveries 20000 --concurrency 100

Writes N pending deliveries to a SQLite database (as reminders reaching the inbox do), then
starts the delivery worker with the real `WebhookChannel` and times until every delivery is
recorded as delivered (signing, the SSRF check, the HTTP POST, the attempt row and the
state update included, and the event relay publishing each `reminder.delivered` event,
as in the service). The receiver is a separate process (uvicorn, one worker) on loopback;
both share the machine's cores.
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

import httpx
from sqlalchemy import func, insert, select

from duetime.clock import SystemClock
from duetime.db.engine import create_engine, migrate
from duetime.db.tables import channel_settings, deliveries
from duetime.delivery.model import RetryPolicy
from duetime.delivery.store import SqlDeliveryStore
from duetime.delivery.webhook import WebhookChannel
from duetime.delivery.worker import DeliveryWorker
from duetime.events.embedded import EmbeddedEventPublisher
from duetime.events.relay import EventRelay
from duetime.events.store import SqlEventStore
from duetime.tasks.model import new_id

RECEIVER = """
count = 0
async def app(scope, receive, send):
    global count
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    if scope["method"] == "POST":
        count += 1
        body = b""
    else:
        body = str(count).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
"""


async def run(total: int, concurrency: int, port: int) -> None:
    workdir = tempfile.mkdtemp(prefix="duetime-bench-")
    with open(os.path.join(workdir, "receiver.py"), "w") as f:  # noqa: ASYNC230
        f.write(RECEIVER)
    receiver = subprocess.Popen(  # noqa: ASYNC220
        [
            sys.executable,
            "-m",
            "uvicorn",
            "receiver:app",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        cwd=workdir,
    )
    engine = create_engine(f"sqlite:///{workdir}/bench.db")
    try:
        async with httpx.AsyncClient() as probe:
            for _ in range(100):
                try:
                    await probe.get(f"http://127.0.0.1:{port}/")
                    break
                except httpx.HTTPError:
                    await asyncio.sleep(0.1)
        await migrate(engine)
        now = SystemClock().now_micros()
        payload = json.dumps({"specversion": "1.0", "id": "x", "data": {"title": "bench"}})
        async with engine.begin() as conn:
            await conn.execute(
                insert(channel_settings),
                {
                    "user_id": "u",
                    "webhook_url": f"http://127.0.0.1:{port}/hook",
                    "webhook_enabled": True,
                    "webhook_secret": "whsec_bench",
                    "email_enabled": False,
                    "updated_us": now,
                },
            )
            rows = [
                {
                    "id": new_id(),
                    "notification_id": new_id(),
                    "user_id": "u",
                    "channel": "webhook",
                    "target": f"http://127.0.0.1:{port}/hook",
                    "event_id": str(i),
                    "payload": payload,
                    "state": "pending",
                    "attempts": 0,
                    "attempt_limit": 3,
                    "next_attempt_us": now,
                    "created_us": now,
                    "updated_us": now,
                    "replays": 0,
                }
                for i in range(total)
            ]
            for i in range(0, total, 500):
                await conn.execute(insert(deliveries), rows[i : i + 500])
        store = SqlDeliveryStore(engine)
        channel = WebhookChannel(allow_private=True, max_connections=concurrency)
        relay = EventRelay(SqlEventStore(engine), EmbeddedEventPublisher(), SystemClock())
        await relay.start()  # publishes the reminder.delivered events, as in the service
        worker = DeliveryWorker(
            store,
            {"webhook": channel},
            SystemClock(),
            RetryPolicy(),
            concurrency=concurrency,
            on_recorded=relay.kick,
        )
        began = time.perf_counter()
        cpu = time.process_time()
        await worker.start()
        count = (
            select(func.count()).select_from(deliveries).where(deliveries.c.state == "delivered")
        )
        while True:
            async with engine.connect() as conn:
                done = int(await conn.scalar(count) or 0)
            if done >= total:
                break
            await asyncio.sleep(0.2)  # the count holds the one SQLite connection: rarely
        elapsed = time.perf_counter() - began
        cpu = time.process_time() - cpu
        await worker.stop()
        await relay.stop()
        await channel.aclose()
        await store.close()
        async with httpx.AsyncClient() as probe:
            received = int((await probe.get(f"http://127.0.0.1:{port}/")).text)
        print(f"deliveries: {total}, concurrency: {concurrency}")
        print(f"time: {elapsed:.2f} s, rate: {total / elapsed:,.0f} deliveries/s")
        print(f"received by the receiver: {received}")
        print(f"duetime process CPU: {cpu:.2f} s ({cpu / total * 1e6:.0f} µs per delivery)")
    finally:
        await engine.dispose()
        receiver.terminate()
        receiver.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--deliveries", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--port", type=int, default=18767)
    args = parser.parse_args()
    asyncio.run(run(args.deliveries, args.concurrency, args.port))


if __name__ == "__main__":
    main()
