"""The peers benchmark (bench/peers) runs, at a tiny size, for every system it compares.

`python -m bench.peers --smoke` goes through the benchmark's own code paths (its servers,
each system's workers in their processes, scheduling one call each and batched, the shared
sink, the report) with 50 jobs per system and no plots: the bench cannot rot unnoticed.
It starts its own PostgreSQL and Redis, as the benchmark does, from the same Debian binaries
the session's fixtures use.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from bench.peers.systems import SYSTEMS

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.postgres, pytest.mark.brokers, pytest.mark.timeout(180)]


def test_every_system_runs_every_job_of_the_smoke_run(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "bench.peers", "--smoke", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=150,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    turns = {t["system"]: t for t in results["turns"]}
    assert set(turns) == set(SYSTEMS)
    for name, turn in turns.items():
        assert "error" not in turn, f"{name}: {turn.get('error')}"
        result = turn["result"]
        assert result["add"]["single_per_s"] > 0
        assert ("batch_per_s" in result["add"]) == SYSTEMS[name].batch
        lateness = result["lateness_100"]
        assert lateness["expected"] == 50
        assert lateness["ran"] == 50, f"{name}: {lateness['missing']} of 50 never ran"
    assert "| duetime (SQLite) |" in (tmp_path / "report.md").read_text()
