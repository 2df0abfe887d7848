"""A full disk under a running duetime (a small tmpfs holds its data dir): writes are
refused 507 naming storage, nothing already saved is lost, `/readyz` says so, and all is
well again once there is room."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import Server
from tests.e2e.test_tasks_e2e import SECRET, User


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(disk)],
        capture_output=True,
        text=True,
    )
    assert mounted.returncode == 0, f"this test mounts a tmpfs (needs root): {mounted.stderr}"
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=True)


def fill(disk: Path) -> Path:
    """Write a file until the disk refuses more."""
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as out:
        chunk = b"\0" * 65536
        while True:
            try:
                out.write(chunk)
            except OSError:
                break
        for size in (4096, 512, 1):  # the last bytes too
            try:
                while True:
                    out.write(b"\0" * size)
            except OSError:
                pass
    return filler


def test_a_full_disk_is_507_naming_storage_and_readyz_says_so(
    small_disk: Path, make_server: Callable[..., Server]
) -> None:
    server = make_server(DUETIME_JWT_SECRET=SECRET, DUETIME_DATA_DIR=str(small_disk / "data"))
    server.start()
    alice = User(server, "alice")
    saved = [alice.create(title=f"before {i}")["id"] for i in range(5)]
    filler = fill(small_disk)

    answers: list[int] = []
    for i in range(400):
        r = alice.http.post("/api/tasks", json={"title": f"while full {i} " + "x" * 400})
        answers.append(r.status_code)
        if r.status_code == 201:
            saved.append(r.json()["id"])
        else:
            break
    assert answers[-1] == 507, answers
    assert "storage is full" in r.json()["detail"] and "nothing" in r.json()["detail"], r.text
    assert "full" in r.json()["detail"].lower()

    with server.client() as ops:
        ready = ops.get("/readyz")
    assert ready.status_code == 503, ready.text
    assert ready.json()["ready"] is False and "storage is full" in ready.json()["reason"]

    with server.client() as jobs:
        r = jobs.post("/v1.0/jobs/while-full", json={"dueTime": "1h", "data": "x" * 2000})
    assert r.status_code == 507, r.text
    assert (
        r.json()["errorCode"] == "DUETIME_STORAGE_FULL" and "storage is full" in r.json()["message"]
    )

    listed = alice.http.get("/api/tasks", params={"limit": 500})
    assert listed.status_code == 200, listed.text
    assert sorted(t["id"] for t in listed.json()["tasks"]) == sorted(saved)

    os.unlink(filler)
    after = alice.create(title="room again")
    with server.client() as ops:
        assert ops.get("/readyz").status_code == 204
    listed = alice.http.get("/api/tasks", params={"limit": 500}).json()["tasks"]
    assert after["id"] in {t["id"] for t in listed}
    assert "Traceback" not in (server._log).read_text()
    alice.http.close()
