"""The README's "Jobs from Python" example runs as written: it fires its job, stops, runs a
second time on the same file, and leaves only the jobs tables in `jobs.db`."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def _example() -> str:
    section = README.read_text().split("### Jobs from Python", 1)[1].split("\n## ", 1)[0]
    [code] = re.findall(r"```python\n(.*?)```", section, re.S)
    return code


def test_readme_python_example_fires_and_runs_twice(tmp_path: Path) -> None:
    (tmp_path / "example.py").write_text(_example())
    for run in (1, 2):
        done = subprocess.run(
            [sys.executable, "example.py"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, f"run {run}: {done.stderr}"
        assert done.stdout.startswith("reminder-42 {'task': 42} "), f"run {run}: {done.stdout}"
        assert done.stdout.rstrip().endswith("False"), done.stdout  # on time, not late
        assert "Traceback" not in done.stderr, done.stderr
    with sqlite3.connect(tmp_path / "jobs.db") as db:
        tables = {row[0] for row in db.execute("select name from sqlite_master where type='table'")}
    assert tables == {"alembic_version", "jobs", "job_dead_letters"}
