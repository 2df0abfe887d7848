"""Task creation called in-process through the ASGI app (no sockets, no HTTP parser): the
app's own CPU cost per request, without a client competing for the cores.

    .venv/bin/python -m bench.tasks_asgi --tasks 3000 --batches 10

Prints requests/s and the process's CPU time per request (event loop and SQLite threads).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from duetime.app import create_app
from duetime.auth import issue_token
from duetime.db.engine import prepare
from duetime.settings import Settings

SECRET = "bench-secret-0123456789abcdef0123456789"
DUE = "2099-01-01T09:00:00Z"


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(Settings(data_dir=tmp, jwt_secret=SECRET))
        await prepare(f"sqlite:///{tmp}/duetime.db")
        token = issue_token(SECRET, "bench", ttl=timedelta(hours=1), now=datetime.now(UTC))

        async def post(path: str, body: bytes) -> int:
            scope = {
                "type": "http",
                "asgi": {"version": "3.0"},
                "http_version": "1.1",
                "method": "POST",
                "scheme": "http",
                "path": path,
                "raw_path": path.encode(),
                "root_path": "",
                "query_string": b"",
                "headers": [
                    (b"host", b"bench"),
                    (b"content-type", b"application/json"),
                    (b"authorization", f"Bearer {token}".encode()),
                    (b"content-length", str(len(body)).encode()),
                ],
                "client": ("127.0.0.1", 1),
                "server": ("127.0.0.1", 80),
            }
            messages = [{"type": "http.request", "body": body, "more_body": False}]
            status = 0

            async def receive() -> dict[str, Any]:
                if messages:
                    return messages.pop()
                await asyncio.Event().wait()  # never disconnects
                raise AssertionError

            async def send(message: dict[str, Any]) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]

            await app(scope, receive, send)
            return status

        async with app.router.lifespan_context(app):
            one = json.dumps({"title": "bench", "due_at": DUE}).encode()
            queue = iter(range(args.tasks))

            async def worker() -> None:
                for _ in queue:
                    assert await post("/api/tasks", one) == 201

            for _ in range(200):  # warm-up
                await post("/api/tasks", one)
            cpu, wall = time.process_time(), time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(args.concurrency)))
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            print(
                f"POST /api/tasks, {args.concurrency} concurrent: {args.tasks / wall:,.0f} req/s, "
                f"CPU {cpu / args.tasks * 1e6:,.0f} µs per request"
            )
            if args.batches:
                tasks = [{"title": f"imported {i}", "due_at": DUE} for i in range(1000)]
                batch = json.dumps({"tasks": tasks}).encode()
                assert await post("/api/tasks/batch", batch) == 201
                cpu, wall = time.process_time(), time.perf_counter()
                for _ in range(args.batches):
                    assert await post("/api/tasks/batch", batch) == 201
                cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
                count = args.batches * 1000
                print(
                    f"POST /api/tasks/batch, {args.batches} x 1,000: {count / wall:,.0f} tasks/s, "
                    f"CPU {cpu / count * 1e6:,.0f} µs per task"
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--batches", type=int, default=10)
    import uvloop

    uvloop.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
