"""`python -m bench.peers [--quick | --smoke] [--rounds N] [--systems a,b] [--out DIR]`."""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.peers import report
from bench.peers.measures import FULL, QUICK, SMOKE, Sizes, Turn, kill_restart, pending
from bench.peers.servers import PostgresServer, RedisServer
from bench.peers.sink import Outcome, Reader
from bench.peers.systems import SYSTEMS
from bench.peers.systems.base import Env, System

_DOCS = Path(__file__).resolve().parents[2] / "docs"


def _outcome(o: Outcome) -> dict[str, Any]:
    return {
        "expected": o.expected, "ran": o.ran, "missing": o.missing,
        "duplicates": o.duplicates, "early": o.early,
        "lateness": o.lateness, "first_starts": o.first_starts,
    }  # fmt: skip


def _fast(system: System, reader: Reader, tag: str, sizes: Sizes) -> dict[str, Any]:
    turn = Turn(system, reader, tag, sizes)
    result: dict[str, Any] = {"first_job_s": turn.warm_up()}
    began = time.monotonic()
    result["add"] = turn.add_rate(sizes.single, sizes.batched)
    lap = _lap("add", began)
    for rate in sizes.rates:
        result[f"lateness_{rate}"] = _outcome(turn.lateness(rate, sizes.seconds, sizes.grace))
        lap = _lap(f"lateness {rate}/s", lap)
    if sizes.burst:
        outcome, due = turn.burst(sizes.burst, sizes.grace)
        result["burst"] = _outcome(outcome) | {"due": due}
        _lap("burst", lap)
    return result


def _lap(what: str, since: float) -> float:
    now = time.monotonic()
    print(f"  {what}: {now - since:.1f} s", flush=True)
    return now


def _kill(system: System, reader: Reader, tag: str, sizes: Sizes) -> dict[str, Any]:
    turn = Turn(system, reader, tag, sizes)
    turn.warm_up()
    turn.add_rate(50, 500)  # learns the scheduling rate, sets the lead time
    result = kill_restart(system, reader, tag, sizes.kill, sizes.grace, turn.rate)
    return result | {"outcome": _outcome(result["outcome"])}


def _pending(system: System, reader: Reader, tag: str, sizes: Sizes) -> dict[str, Any]:
    Turn(system, reader, tag, sizes).warm_up()
    return pending(system, reader, tag, sizes.ready, sizes.memory, sizes.fill_cap)


GROUPS = {"fast": _fast, "kill": _kill, "pending": _pending}


def run(
    sizes: Sizes, rounds: int, names: list[str], work: Path, measures: list[str] | None = None
) -> dict[str, Any]:
    pg = PostgresServer().start()
    redis = RedisServer(work / "redis").start()
    results: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "sizes": sizes.__dict__,
        "rounds": rounds,
        "systems": {n: SYSTEMS[n].label for n in names},
        "turns": [],
    }
    wanted = measures or list(GROUPS)
    groups = [
        g
        for g in GROUPS
        if g in wanted and (g != "kill" or sizes.kill) and (g != "pending" or sizes.ready)
    ]
    try:
        for gi, group in enumerate(groups):
            for r in range(rounds):
                shift = (gi + r) % len(names)
                for name in names[shift:] + names[:shift]:
                    results["turns"].append(_turn(group, name, r, sizes, work, pg, redis))
    finally:
        redis.stop()
        pg.stop()
    results["finished"] = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    return results


def _turn(group: str, name: str, r: int, sizes: Sizes, work: Path, pg: PostgresServer,
          redis: RedisServer) -> dict[str, Any]:  # fmt: skip
    tmp = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=work))
    env = Env(tmp=tmp, sink=tmp / "sink", pg=pg, redis=redis, redis_db=list(SYSTEMS).index(name))
    env.sink.mkdir()
    began = time.monotonic()
    entry: dict[str, Any] = {"group": group, "system": name, "round": r}
    print(f"[{time.strftime('%H:%M:%S')}] {group:8} round {r + 1}: {name}", flush=True)
    system = SYSTEMS[name](env)
    try:
        system.setup()
        system.start()
        entry["result"] = GROUPS[group](system, Reader(env.sink), f"{name}-{r}", sizes)
    except Exception as exc:
        entry["error"] = f"{type(exc).__name__}: {exc}"
        print(f"  error: {entry['error'][:2000]}", flush=True)
    finally:
        system.close()
        shutil.rmtree(tmp, ignore_errors=True)
    entry["seconds"] = time.monotonic() - began
    print(f"  {entry['seconds']:.1f} s", flush=True)
    return entry


def main() -> None:
    # a SIGTERM runs the clean-ups (workers, servers) as Ctrl-C does
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    parser = argparse.ArgumentParser(description=__doc__)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="smaller counts, one round")
    size.add_argument("--smoke", action="store_true", help="50 jobs per system, no plots")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--systems", default=",".join(SYSTEMS), help="comma-separated")
    parser.add_argument("--out", type=Path, default=None, help="results.json and report.md")
    parser.add_argument("--plots", type=Path, default=None, help=f"PNG directory ({_DOCS})")
    parser.add_argument("--measures", default=",".join(GROUPS), help="fast,kill,pending")
    parser.add_argument("--ready", type=int, default=None, help="pending at the restart")
    parser.add_argument("--memory", type=int, default=None, help="pending for the RSS figure")
    parser.add_argument("--fill-cap", type=float, default=None, help="seconds of filling")
    args = parser.parse_args()
    sizes = SMOKE if args.smoke else QUICK if args.quick else FULL
    for field in ("ready", "memory", "fill_cap"):
        if getattr(args, field) is not None:
            sizes = dataclasses.replace(sizes, **{field: getattr(args, field)})
    rounds = args.rounds or (3 if sizes is FULL else 1)
    names = [n for n in args.systems.split(",") if n]
    unknown = set(names) - set(SYSTEMS)
    if unknown:
        parser.error(f"unknown systems {sorted(unknown)}; known: {', '.join(SYSTEMS)}")
    with tempfile.TemporaryDirectory(prefix="duetime-peers-") as tmp:
        results = run(sizes, rounds, names, Path(tmp), args.measures.split(","))
    results["versions"] = report.versions()
    text = report.markdown(results)
    print(text)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "results.json").write_text(json.dumps(results))
        (args.out / "report.md").write_text(text)
    if not args.smoke:
        report.plots(results, args.plots or _DOCS)


if __name__ == "__main__":
    main()
