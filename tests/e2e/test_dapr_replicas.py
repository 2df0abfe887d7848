"""Two duetime replicas on the Dapr backend: real daprd and scheduler v1.16.5, one PostgreSQL.

Each replica is a `duetime serve` process with its own daprd; both daprds use the app-id
`duetime` and the same scheduler, so the scheduler hands each trigger to one of them. 500
reminders of 10 users, spread over 15 s and created through both replicas' APIs, must each
reach their user's inbox exactly once, never early, and both replicas must have received
triggers (counted in their access logs: `POST /job/reminder-...`).

The crash test kills replica 2 **and its daprd** with SIGKILL mid-way through the deliveries:
that is what a dying pod or host does (the sidecar shares the pod). Killing duetime alone
would leave daprd 2 connected to the scheduler and taking triggers for an app that is gone;
Dapr then retries per the job's failure policy, possibly on the same daprd, which tests Dapr's
retry routing rather than duetime.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from duetime.auth import issue_token
from duetime.localdapr import Daprd, DaprdPorts, Scheduler
from tests.e2e.conftest import Server

pytestmark = pytest.mark.postgres

SECRET = "test-secret-for-dapr-replicas-0123456789"
USERS = [f"user{i}" for i in range(10)]
TOTAL = 500
LEAD = 8.0  # seconds from the start of creation to the first due time
SPREAD = 15.0  # seconds over which the due times are spread
TRIGGER_LINE = re.compile(r'"POST /job/(reminder-[^ ]+) HTTP/1\.1" 200')


def iso(dt: datetime) -> str:
    return dt.isoformat().replace("+00:00", "Z")


def parse(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


def auth(user: str) -> dict[str, str]:
    tok = issue_token(SECRET, user, ttl=timedelta(hours=1), now=datetime.now(UTC))
    return {"authorization": f"Bearer {tok}"}


@dataclass
class Replica:
    server: Server
    daprd: Daprd
    log: Path

    def triggers(self) -> list[str]:
        """Job names of the triggers this replica answered 200 (its access log)."""
        return TRIGGER_LINE.findall(self.log.read_text(errors="replace"))

    def kill(self) -> None:
        self.server.kill()
        self.daprd.kill()


class Cluster:
    def __init__(self, root: Path, postgres_url: str) -> None:
        self.root = root
        self.postgres_url = postgres_url
        self.scheduler = Scheduler(root / "scheduler")
        self.replicas: list[Replica] = []

    def start(self) -> Cluster:
        self.scheduler.start()
        # Replica 1 runs the migrations; replica 2 starts once replica 1 is ready.
        for i in (1, 2):
            self._replica(i)
        for r in self.replicas:
            wait_connected(r.daprd)
        return self

    def _replica(self, i: int) -> Replica:
        work = self.root / f"replica{i}"
        work.mkdir(parents=True)
        ports = DaprdPorts()
        log = work / "server.log"
        server = Server(
            {
                "DUETIME_SCHEDULER": "dapr",
                "DUETIME_DATABASE_URL": self.postgres_url,
                "DUETIME_DATA_DIR": str(work / "data"),
                "DUETIME_JWT_SECRET": SECRET,
                "DUETIME_DAPR_HTTP_ENDPOINT": f"http://127.0.0.1:{ports.http}",
                "DUETIME_LOG_LEVEL": "info",
            },
            log,
        )
        daprd = Daprd(
            work / "daprd",
            app_id="duetime",
            app_port=server.port,
            scheduler_address=self.scheduler,
            ports=ports,
        )
        replica = Replica(server, daprd, log)
        self.replicas.append(replica)  # stopped at the end even when a start fails
        daprd.start()
        server.start(timeout=60)
        return replica

    def stop(self) -> None:
        for r in self.replicas:
            r.server.stop()
            r.daprd.stop()
        self.scheduler.stop()


def wait_connected(daprd: Daprd, timeout: float = 30.0) -> None:
    """Until daprd is healthy (its app port answers) and shows a connected scheduler."""
    daprd.wait_healthy(daprd.http_url + "/v1.0/healthz", 204, timeout)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        meta = httpx.get(daprd.http_url + "/v1.0/metadata", timeout=5).json()
        if (meta.get("scheduler") or {}).get("connected_addresses"):
            return
        time.sleep(0.1)
    raise AssertionError(f"daprd not connected to the scheduler: {meta}")


@pytest.fixture
def cluster(tmp_path: Path, postgres_url: str) -> Iterator[Cluster]:
    c = Cluster(tmp_path, postgres_url)
    try:
        yield c.start()
    finally:
        c.stop()


def create_reminders(cluster: Cluster) -> dict[str, tuple[str, datetime]]:
    """TOTAL reminders, due from LEAD to LEAD + SPREAD seconds from now, each user's tasks
    split over both replicas in batches. Returns reminder id -> (user, fire time)."""
    start = datetime.now(UTC)
    dues = [start + timedelta(seconds=LEAD + SPREAD * i / TOTAL) for i in range(TOTAL)]
    expected: dict[str, tuple[str, datetime]] = {}
    per_user = TOTAL // len(USERS)
    for u, user in enumerate(USERS):
        mine = dues[u :: len(USERS)]
        assert len(mine) == per_user
        for half, replica in enumerate(cluster.replicas):
            part = mine[half::2]
            body = {"tasks": [{"title": f"{user} {iso(d)}", "due_at": iso(d)} for d in part]}
            r = httpx.post(
                replica.server.url + "/api/tasks/batch", json=body, headers=auth(user), timeout=60
            )
            assert r.status_code == 201, r.text
            assert r.json()["scheduled_reminders"] == len(part)
            for task in r.json()["tasks"]:
                [reminder] = task["reminders"]
                assert reminder["state"] == "scheduled", task
                expected[reminder["id"]] = (user, parse(reminder["fire_at"]))
    assert len(expected) == TOTAL
    assert datetime.now(UTC) < dues[0], "creation took longer than the lead time"
    return expected


def inboxes(url: str) -> dict[str, list[dict]]:
    found = {}
    for user in USERS:
        r = httpx.get(
            url + "/api/notifications", params={"limit": 500}, headers=auth(user), timeout=30
        )
        assert r.status_code == 200, r.text
        found[user] = r.json()["notifications"]
    return found


def wait_delivered(url: str, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while (got := sum(len(n) for n in inboxes(url).values())) < count:
        assert time.monotonic() < deadline, f"{got} of {count} notifications in {timeout} s"
        time.sleep(0.5)


def check_exactly_once(url: str, expected: dict[str, tuple[str, datetime]]) -> None:
    time.sleep(3)  # a late duplicate would land now
    seen: dict[str, int] = {}
    for user, notes in inboxes(url).items():
        for note in notes:
            rid = note["reminder_id"]
            seen[rid] = seen.get(rid, 0) + 1
            assert rid in expected, f"unknown reminder {rid}"
            owner, fire_at = expected[rid]
            assert owner == user, f"reminder {rid} of {owner} in the inbox of {user}"
            assert parse(note["scheduled_for"]) == fire_at
            assert parse(note["fired_at"]) >= fire_at, f"early: {note}"
    duplicates = {rid: n for rid, n in seen.items() if n > 1}
    missing = set(expected) - set(seen)
    assert not duplicates, f"{len(duplicates)} reminders delivered more than once: {duplicates}"
    assert not missing, f"{len(missing)} reminders never delivered"
    assert len(seen) == TOTAL


def test_two_replicas_deliver_each_reminder_once(cluster: Cluster) -> None:
    expected = create_reminders(cluster)
    one, two = cluster.replicas
    wait_delivered(one.server.url, TOTAL, timeout=LEAD + SPREAD + 45)
    check_exactly_once(two.server.url, expected)
    counts = [len(set(r.triggers()) & {f"reminder-{rid}" for rid in expected}) for r in (one, two)]
    assert counts[0] > 0 and counts[1] > 0, f"triggers per replica: {counts}"
    assert counts[0] + counts[1] >= TOTAL, f"triggers per replica: {counts}"


def test_kill_9_of_one_replica_and_its_daprd_mid_delivery_loses_nothing(
    cluster: Cluster,
) -> None:
    expected = create_reminders(cluster)
    one, two = cluster.replicas
    wait_delivered(one.server.url, TOTAL // 3, timeout=LEAD + SPREAD + 30)
    assert two.triggers(), "replica 2 received no trigger before the kill"
    one_before = len(one.triggers())
    two.kill()
    wait_delivered(one.server.url, TOTAL, timeout=SPREAD + 60)
    check_exactly_once(one.server.url, expected)
    assert len(one.triggers()) > one_before, "replica 1 took over no trigger"
