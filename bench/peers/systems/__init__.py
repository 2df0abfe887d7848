"""One module per system under test; `SYSTEMS` in the order the report shows them."""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any

from bench.peers.systems.aps import ApsMemory, ApsSqlite
from bench.peers.systems.arq_redis import ArqRedis
from bench.peers.systems.base import System
from bench.peers.systems.celery_redis import CeleryRedis
from bench.peers.systems.duetime_engine import DuetimePostgres, DuetimeSqlite
from bench.peers.systems.procrastinate_pg import ProcrastinatePostgres
from bench.peers.systems.rq_redis import RqRedis

SYSTEMS: dict[str, type[System]] = {
    cls.name: cls
    for cls in (
        DuetimeSqlite,
        DuetimePostgres,
        ApsMemory,
        ApsSqlite,
        ProcrastinatePostgres,
        ArqRedis,
        CeleryRedis,
        RqRedis,
    )
}


def worker_entry(name: str) -> Callable[[dict[str, Any]], None]:
    """The worker process's main function for system `name`."""
    module = import_module(SYSTEMS[name].__module__)
    entry: Callable[[dict[str, Any]], None] = module.run_worker
    return entry
