"""The worker side of each system: `python -m bench.peers.worker SYSTEM CONFIG_JSON`.

Started by `systems.base.System.start` in a process group of its own. For an agent (an
embedded scheduler) it also serves `schedule` commands, one JSON line each on stdin, and
answers each with one JSON line on stdout; end of input stops it cleanly.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from bench.peers import sink
from bench.peers.systems import worker_entry

Schedule = Callable[[list[tuple[str, float]], bool], Awaitable[None]]


async def serve_agent(schedule: Schedule) -> None:
    """Answer the harness's commands until its end of input."""
    while True:
        line = await asyncio.to_thread(sys.stdin.readline)
        if not line:
            return
        command: dict[str, Any] = json.loads(line)
        try:
            jobs = [(str(i), float(d)) for i, d in command["jobs"]]
            await schedule(jobs, bool(command["batch"]))
            await asyncio.sleep(0)  # let callbacks the calls queued run first (APScheduler)
            answer: dict[str, Any] = {"ok": True}
        except Exception as exc:
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


def main() -> None:
    name, raw = sys.argv[1], sys.argv[2]
    cfg = json.loads(raw)
    sink.use(cfg["sink"])
    worker_entry(name)(cfg)


if __name__ == "__main__":
    main()
