"""A newcomer's first start, from a copy of the checkout with no .venv: `./scripts/run.sh`
installs, shows its progress, becomes ready and says where it listens and how to get a token;
the second start installs nothing."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]


def _copy_checkout(into: Path) -> None:
    """The checkout's files as a fresh clone would have them (uncommitted edits included)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout
    for name in filter(None, listed.decode().split("\0")):
        source = ROOT / name
        if source.is_file():
            (into / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, into / name)


class Start:
    """`./scripts/run.sh` running, its output read as it comes."""

    def __init__(self, checkout: Path, env: dict[str, str]) -> None:
        self.lines: list[str] = []
        self._proc = subprocess.Popen(
            ["./scripts/run.sh"],
            cwd=checkout,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, text: str, timeout: float) -> float:
        started = time.monotonic()
        while not any(text in line for line in self.lines):
            if self._proc.poll() is not None:
                self._reader.join(5)
                pytest.fail(f"run.sh exited {self._proc.returncode}:\n" + "\n".join(self.lines))
            assert time.monotonic() - started < timeout, "\n".join(self.lines)
            time.sleep(0.1)
        return time.monotonic() - started

    def stop(self) -> None:
        self._proc.terminate()
        try:
            self._proc.wait(30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(10)
        self._reader.join(5)
        assert self._proc.stdout is not None
        self._proc.stdout.close()


@pytest.mark.timeout(900)
def test_run_sh_from_a_clean_checkout(tmp_path: Path) -> None:
    checkout = tmp_path / "duetime"
    _copy_checkout(checkout)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DUETIME_", "VIRTUAL_ENV"))}
    env |= {
        "DUETIME_DATA_DIR": str(tmp_path / "data"),
        "DUETIME_PORT": str(port),
        "DUETIME_GRPC_PORT": "0",
    }
    url = f"http://127.0.0.1:{port}"

    first = Start(checkout, env)
    try:
        first.wait_for(f"duetime ready on {url}", timeout=600)
        assert any("installing into .venv" in line for line in first.lines)
        assert any(line.strip().startswith("Resolved ") for line in first.lines), first.lines
        assert not any(line.startswith("   + ") for line in first.lines)  # not 60 package lines
        assert any("token NAME" in line and ".venv/bin/duetime" in line for line in first.lines)
        assert httpx.get(f"{url}/readyz").status_code == 204
    finally:
        first.stop()

    second = Start(checkout, env)
    try:
        took = second.wait_for(f"duetime ready on {url}", timeout=60)
        assert not any("installing" in line for line in second.lines), second.lines
        assert took < 30, f"a second start took {took:.1f} s"
        token = subprocess.run(
            [".venv/bin/duetime", "token", "alice"],
            cwd=checkout,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        tasks = httpx.get(f"{url}/api/tasks", headers={"authorization": f"Bearer {token}"})
        assert tasks.status_code == 200, tasks.text
    finally:
        second.stop()
