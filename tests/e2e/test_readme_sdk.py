"""The README's Dapr SDK example runs as written against a real duetime: its job is
scheduled, read back and deleted over gRPC, and its event is published."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.e2e.conftest import Server

README = Path(__file__).resolve().parents[2] / "README.md"


def _section(title: str) -> str:
    return README.read_text().split(f"### {title}", 1)[1].split("\n### ", 1)[0]


def test_readme_sdk_example_runs_against_duetime(
    make_server: Callable[..., Server], tmp_path: Path
) -> None:
    section = _section("Dapr apps, with no Dapr installed")
    [code] = re.findall(r"```python\n(.*?)```", section, re.S)
    [shell] = re.findall(r"```sh\n(.*?)```", section, re.S)
    assert "DAPR_HTTP_ENDPOINT=http://127.0.0.1:8000 DAPR_GRPC_ENDPOINT=127.0.0.1:50001" in shell
    server = make_server().start()
    (tmp_path / "app.py").write_text(code)
    env = {
        **os.environ,
        "DAPR_HTTP_ENDPOINT": server.url,  # the README's ports, on the test's free ones
        "DAPR_GRPC_ENDPOINT": f"127.0.0.1:{server.grpc_port}",
    }
    done = subprocess.run(
        [sys.executable, "app.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "@weekly"
    with server.client() as http:
        assert http.get("/v1.0/jobs/weekly-report").status_code == 404  # deleted at the end
