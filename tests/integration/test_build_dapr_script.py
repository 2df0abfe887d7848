"""scripts/build-dapr.sh says what it is doing on a cold cache, and a version the Go module
proxy refuses is one clear error, with nothing left half-built."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_cold_build_says_so_and_a_refused_version_is_one_clear_error(tmp_path: Path) -> None:
    env = {**os.environ, "DUETIME_CACHE_DIR": str(tmp_path), "DAPR_VERSION": "v0.0.0-nope"}
    done = subprocess.run(
        [ROOT / "scripts" / "build-dapr.sh"], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 1 and done.stdout == ""
    lines = done.stderr.splitlines()
    assert lines[0].startswith("build-dapr: building daprd and scheduler v0.0.0-nope from the")
    assert lines[1].startswith(f"build-dapr: cached in {tmp_path}/dapr/v0.0.0-nope-")
    assert lines[2].startswith("build-dapr: go mod download: github.com/dapr/dapr@v0.0.0-nope")
    assert "Traceback" not in done.stderr
    assert list((tmp_path / "dapr").iterdir()) == []  # no staging left behind
