"""duetime on the real Dapr stack: `scheduler` + `daprd` + `duetime serve`, all real processes.

Reminders go through the outbox relay to daprd's Jobs API and come back as `POST /job/{name}`
triggers; the tests count what reaches the inbox, per reminder.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from duetime.localdapr import Daprd, DaprdPorts, Scheduler, free_port, pid_alive
from tests.e2e.conftest import Server
from tests.e2e.test_tasks_e2e import SECRET, User, iso, parse


class Stack:
    """A scheduler, a daprd for app-id `duetime` and a duetime on Dapr, in `root`.

    The daprd's ports are chosen up front, so duetime can start before its sidecar."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.scheduler = Scheduler(root / "scheduler")
        ports = DaprdPorts()
        env = {
            "DUETIME_DATA_DIR": str(root / "data"),
            "DUETIME_LOG_LEVEL": "info",
            "DUETIME_JWT_SECRET": SECRET,
            "DUETIME_SCHEDULER": "dapr",
            "DUETIME_DAPR_HTTP_ENDPOINT": f"http://127.0.0.1:{ports.http}",
        }
        root.mkdir(parents=True, exist_ok=True)
        self.server = Server(env, root / "server.log")
        self.daprd = Daprd(
            root / "daprd",
            app_id="duetime",
            app_port=self.server.port,
            scheduler_address=self.scheduler,
            ports=ports,
        )
        self.users: list[User] = []

    def user(self, name: str) -> User:
        user = User(self.server, name)
        self.users.append(user)
        return user

    def job(self, reminder_id: str) -> httpx.Response:
        """The reminder's job as daprd shows it (200), or daprd's 500 for a missing job."""
        url = f"{self.daprd.http_url}/v1.0-alpha1/jobs/reminder-{reminder_id}"
        return httpx.get(url, timeout=10)

    def logs(self) -> str:
        return "\n".join(
            f"--- {name}\n{text[-2000:]}"
            for name, text in (
                ("server", _read(self.root / "server.log")),
                ("daprd", self.daprd.tail()),
                ("scheduler", self.scheduler.tail()),
            )
        )

    def close(self) -> None:
        for user in self.users:
            user.http.close()
        self.server.stop()
        self.daprd.stop()
        self.scheduler.stop()


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    """`check()` once it is truthy; fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, f"{what}: not in {timeout:.0f} s"
        time.sleep(0.1)
    return found


def counts(user: User) -> Counter[str]:
    return Counter(n["reminder_id"] for n in user.inbox())


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One running stack for the task tests (each test has a user of its own)."""
    s = Stack(tmp_path_factory.mktemp("dapr-stack"))
    try:
        s.scheduler.start()
        s.server.start()
        s.daprd.app_port = s.server.port  # picked again if it was taken
        s.daprd.start(wait_for_app=True)
        yield s
    finally:
        s.close()


@pytest.fixture
def fresh_stack(tmp_path: Path) -> Iterator[Stack]:
    """A stack nothing is started in yet; the test starts its parts."""
    s = Stack(tmp_path / "stack")
    try:
        yield s
    finally:
        s.close()


# -- the task API on Dapr ------------------------------------------------------------------


def test_reminder_goes_through_dapr_and_is_delivered_once_not_early(stack: Stack) -> None:
    alice = stack.user("alice")
    due = datetime.now(UTC) + timedelta(seconds=3)
    task = alice.create(title="Pay rent", due_at=iso(due))
    [reminder] = task["reminders"]
    # the job is in the Dapr Scheduler (not in an embedded engine), due at the reminder's time
    wait_for(lambda: stack.job(reminder["id"]).status_code == 200, 10, "job reaches daprd")
    assert parse(stack.job(reminder["id"]).json()["dueTime"]) == due
    [note] = alice.wait_inbox(1, timeout=20)
    assert note["task_id"] == task["id"] and note["reminder_id"] == reminder["id"]
    assert parse(note["fired_at"]) >= due and parse(note["scheduled_for"]) == due
    assert 0 <= note["lateness_ms"] < 10_000
    time.sleep(1.5)
    assert counts(alice) == {reminder["id"]: 1}
    fired = alice.http.get(f"/api/tasks/{task['id']}").json()["reminders"][0]
    assert fired["state"] == "delivered"
    # a one-shot job is gone from the Scheduler once delivered
    wait_for(lambda: stack.job(reminder["id"]).status_code != 200, 10, "job leaves daprd")


def test_moved_due_time_moves_the_reminder_on_dapr(stack: Stack) -> None:
    bob = stack.user("bob")
    first = datetime.now(UTC) + timedelta(seconds=2)
    task = bob.create(title="Call", due_at=iso(first))
    moved = first + timedelta(seconds=3)
    r = bob.http.patch(f"/api/tasks/{task['id']}", json={"due_at": iso(moved)})
    assert r.status_code == 200, r.text
    rid = r.json()["reminders"][0]["id"]
    [note] = bob.wait_inbox(1, timeout=20)
    assert note["reminder_id"] == rid
    assert parse(note["fired_at"]) >= moved and parse(note["scheduled_for"]) == moved
    time.sleep(1.5)  # the old time passed long ago: nothing more
    assert counts(bob) == {rid: 1}


def test_deleted_and_completed_tasks_fire_nothing_on_dapr(stack: Stack) -> None:
    carol = stack.user("carol")
    due = datetime.now(UTC) + timedelta(seconds=3)
    deleted = carol.create(title="Deleted", due_at=iso(due))
    done = carol.create(title="Done", due_at=iso(due))
    kept = carol.create(title="Kept", due_at=iso(due + timedelta(seconds=0.5)))
    for t in (deleted, done, kept):
        rid = t["reminders"][0]["id"]
        wait_for(lambda rid=rid: stack.job(rid).status_code == 200, 10, "job reaches daprd")
    assert carol.http.delete(f"/api/tasks/{deleted['id']}").status_code == 204
    completed = carol.http.post(f"/api/tasks/{done['id']}/complete").json()
    assert completed["status"] == "done" and completed["reminders"][0]["state"] == "skipped"
    for t in (deleted, done):  # cancelled in the Scheduler too
        rid = t["reminders"][0]["id"]
        wait_for(lambda rid=rid: stack.job(rid).status_code != 200, 10, "job leaves daprd")
    [note] = carol.wait_inbox(1, timeout=20)
    assert note["task_id"] == kept["id"]
    time.sleep(2)
    assert [n["task_id"] for n in carol.inbox()] == [kept["id"]]
    assert carol.http.get(f"/api/tasks/{done['id']}").json()["reminders"][0]["state"] == "skipped"


def test_recurring_task_delivers_successive_occurrences_on_dapr(stack: Stack) -> None:
    dave = stack.user("dave")
    due = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
    # Daily; a reminder a day minus 6 s early fires 6 s after the previous occurrence's due
    # time, one two days minus 12 s early 12 s after it: occurrences 1, 2, 3 remind at
    # due, due + 6 s and due + 12 s.
    reminders = [{"before": "PT0S"}, {"before": "PT23H59M54S"}, {"before": "P1DT23H59M48S"}]
    task = dave.create(title="Stretch", due_at=iso(due), recurrence="daily", reminders=reminders)
    assert task["occurrence"] == 1
    assert [r["state"] for r in task["reminders"]] == ["scheduled", "skipped", "skipped"]
    expected = [task["reminders"][0]["id"]]
    fire_times = [due, due + timedelta(seconds=6), due + timedelta(seconds=12)]
    for n, fire_at in enumerate(fire_times, start=1):
        notes = dave.wait_inbox(n, timeout=20)
        note = next(x for x in notes if x["reminder_id"] == expected[-1])
        assert note["task_id"] == task["id"]
        assert parse(note["fired_at"]) >= fire_at and parse(note["scheduled_for"]) == fire_at
        r = dave.http.post(f"/api/tasks/{task['id']}/complete")
        assert r.status_code == 200, r.text
        series = dave.http.get(f"/api/series/{task['series_id']}").json()
        task = series["occurrences"][-1]
        assert task["occurrence"] == n + 1 and task["status"] == "open"
        if n < len(fire_times):
            reminder = next(x for x in task["reminders"] if parse(x["fire_at"]) == fire_times[n])
            assert reminder["state"] == "scheduled"
            expected.append(reminder["id"])
    time.sleep(1.5)
    assert counts(dave) == {rid: 1 for rid in expected}


def test_dapr_processes_listen_on_loopback_only_and_have_no_udp(stack: Stack) -> None:
    expected_ports = {
        "scheduler": set(vars(stack.scheduler.ports).values()),
        "daprd": set(vars(stack.daprd.ports).values()),
    }
    for name, proc in (("scheduler", stack.scheduler), ("daprd", stack.daprd)):
        assert proc.pid is not None and proc.running(), name
        inodes = socket_inodes(proc.pid)
        assert inodes, f"{name} has no sockets"
        listening: list[tuple[str, int]] = []
        for table in ("tcp", "tcp6"):
            for inode, address, port, state in read_net(proc.pid, table):
                if inode in inodes and state == "0A":  # TCP_LISTEN
                    listening.append((address, port))
        udp = [
            (table, address, port)
            for table in ("udp", "udp6")
            for inode, address, port, _ in read_net(proc.pid, table)
            if inode in inodes
        ]
        assert udp == [], f"{name} has UDP sockets: {udp}"
        assert expected_ports[name] <= {port for _, port in listening}, (name, listening)
        assert all(address == "127.0.0.1" for address, _ in listening), (name, listening)


def socket_inodes(pid: int) -> set[int]:
    found = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    for fd in fd_dir.iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:["):
            found.add(int(target[len("socket:[") : -1]))
    return found


def read_net(pid: int, table: str) -> list[tuple[int, str, int, str]]:
    """(inode, local address, local port, state) of every row of /proc/<pid>/net/<table>."""
    rows = []
    lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
    for line in lines:
        fields = line.split()
        address, port = fields[1].split(":")
        rows.append((int(fields[9]), decode_address(address), int(port, 16), fields[3]))
    return rows


def decode_address(hex_address: str) -> str:
    """An address of /proc/net/tcp{,6}: 32-bit words in host (little-endian) byte order."""
    raw = b"".join(
        bytes.fromhex(hex_address[i : i + 8])[::-1] for i in range(0, len(hex_address), 8)
    )
    if len(raw) == 16 and raw[:12] == b"\0" * 10 + b"\xff\xff":
        raw = raw[12:]  # v4-mapped
    if len(raw) == 4:
        return ".".join(str(b) for b in raw)
    return ":".join(raw[i : i + 2].hex() for i in range(0, 16, 2))


def test_decode_address() -> None:
    assert decode_address("0100007F") == "127.0.0.1"
    assert decode_address("00000000") == "0.0.0.0"
    assert decode_address("0000000000000000FFFF00000100007F") == "127.0.0.1"
    assert decode_address("00000000000000000000000001000000") == (
        "0000:0000:0000:0000:0000:0000:0000:0001"
    )


# -- outages --------------------------------------------------------------------------------


def test_tasks_created_while_the_sidecar_is_down_are_each_delivered_once(
    fresh_stack: Stack,
) -> None:
    s = fresh_stack
    s.scheduler.start()
    s.server.start()  # its sidecar is not running
    with pytest.raises(httpx.HTTPError):
        httpx.get(s.daprd.http_url + "/v1.0/healthz", timeout=1)
    erin = s.user("erin")
    start = datetime.now(UTC)
    tasks = []
    for i in range(20):
        due = start + timedelta(seconds=8 + i * 0.35)
        r = erin.http.post("/api/tasks", json={"title": f"offline {i}", "due_at": iso(due)})
        assert r.is_success, r.text
        tasks.append(r.json())
    assert datetime.now(UTC) < start + timedelta(seconds=8), "creating took too long"
    reminders = {t["reminders"][0]["id"]: parse(t["due_at"]) for t in tasks}
    assert len(reminders) == 20
    s.daprd.start(wait_for_app=True)
    try:
        erin.wait_inbox(20, timeout=45)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; got {counts(erin)}\n{s.logs()}") from None
    time.sleep(2)
    notes = erin.inbox()
    assert Counter(n["reminder_id"] for n in notes) == {rid: 1 for rid in reminders}
    for note in notes:
        assert parse(note["fired_at"]) >= reminders[note["reminder_id"]]


def test_duetime_killed_while_triggers_arrive_delivers_each_reminder_once(
    fresh_stack: Stack,
) -> None:
    s = fresh_stack
    s.scheduler.start()
    s.server.start()
    s.daprd.start(wait_for_app=True)
    frank = s.user("frank")
    start = datetime.now(UTC) + timedelta(seconds=6)
    body = {
        "tasks": [
            {"title": f"burst {i}", "due_at": iso(start + timedelta(milliseconds=20 * i))}
            for i in range(100)
        ]
    }
    r = frank.http.post("/api/tasks/batch", json=body)
    assert r.status_code == 201, r.text
    reminders = {t["reminders"][0]["id"] for t in r.json()["tasks"]}
    assert len(reminders) == 100
    deadline = time.monotonic() + 30
    while not (seen := len(frank.inbox())):
        assert time.monotonic() < deadline, "no notification in 30 s"
        time.sleep(0.05)
    s.server.kill()  # while the triggers of the burst are being delivered
    assert seen < 100
    s.server.start()  # same data dir, same port: daprd's app comes back
    try:
        frank.wait_inbox(100, timeout=60)  # lost one-shots are re-sent 20–25 s past due
    except AssertionError as exc:
        raise AssertionError(f"{exc}; got {len(counts(frank))}\n{s.logs()}") from None
    time.sleep(2)
    notes = frank.inbox()
    assert Counter(n["reminder_id"] for n in notes) == {rid: 1 for rid in reminders}
    assert all(parse(n["fired_at"]) >= parse(n["scheduled_for"]) for n in notes)


# -- the CLI --------------------------------------------------------------------------------


class Up:
    """`duetime dapr up` in a child process, its output in a file."""

    def __init__(self, data_dir: Path, log: Path) -> None:
        self.data_dir = data_dir
        self.env = {**os.environ, "DUETIME_DATA_DIR": str(data_dir)}
        self.log = log
        self.ports = {
            "http": free_port(),
            "grpc": free_port(),
            "scheduler": free_port(),
            "app": free_port(),
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.children: list[int] = []
        self.extra_args: list[str] = []

    def start(self, timeout: float = 90) -> str:
        p = self.ports
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [
                    *duetime_cmd("dapr", "up"),
                    f"--http-port={p['http']}",
                    f"--grpc-port={p['grpc']}",
                    f"--scheduler-port={p['scheduler']}",
                    f"--app-port={p['app']}",
                    *self.extra_args,
                ],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        state = self.data_dir / "dapr" / "stack.json"
        deadline = time.monotonic() + timeout
        while "ready:" not in (text := _read(self.log)):
            if state.exists() and not self.children:
                info = json.loads(state.read_text())
                self.children = [info["scheduler_pid"], info["daprd_pid"]]
            assert self.proc.poll() is None, f"dapr up exited: {text}"
            assert time.monotonic() < deadline, f"dapr up not ready: {text}"
            time.sleep(0.1)
        info = json.loads(state.read_text())
        self.children = [info["scheduler_pid"], info["daprd_pid"]]
        return text

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            duetime_cmd("dapr", *args), env=self.env, capture_output=True, text=True, timeout=60
        )

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        for pid in self.children:  # in sessions of their own: not killed with `up`
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)


def duetime_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "duetime", *args]


@pytest.fixture
def make_up(tmp_path: Path) -> Iterator[Callable[[str], Up]]:
    ups: list[Up] = []

    def make(name: str) -> Up:
        up = Up(tmp_path / name, tmp_path / f"{name}.log")
        ups.append(up)
        return up

    yield make
    for up in ups:
        up.close()


def test_cli_up_status_down(make_up: Callable[[str], Up]) -> None:
    up = make_up("cli")
    text = up.start()
    p = up.ports
    assert f"127.0.0.1:{p['scheduler']}" in text
    assert f"HTTP http://127.0.0.1:{p['http']}" in text and f"gRPC 127.0.0.1:{p['grpc']}" in text
    assert f"http://127.0.0.1:{p['app']}/job/" in text
    assert httpx.get(f"http://127.0.0.1:{p['http']}/v1.0/healthz/outbound").status_code == 204
    assert all(pid_alive(pid) for pid in up.children)

    status = up.cli("status")
    assert status.returncode == 0, status.stdout + status.stderr
    assert "scheduler" in status.stdout and "healthy" in status.stdout
    assert "not running" not in status.stdout and "unhealthy" not in status.stdout
    assert "not answering" not in status.stdout

    down = up.cli("down")
    assert down.returncode == 0 and "stopped" in down.stdout, down.stdout + down.stderr
    assert up.proc is not None and up.proc.wait(30) == 0
    assert "stopped" in _read(up.log)
    wait_for(lambda: not any(pid_alive(pid) for pid in up.children), 30, "children exit")
    after = up.cli("status")
    assert after.returncode == 1 and "not running" in after.stdout
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{p['http']}/v1.0/healthz", timeout=2)


def test_sigterm_to_cli_up_stops_both_children(make_up: Callable[[str], Up]) -> None:
    up = make_up("sigterm")
    up.start()
    assert up.proc is not None and len(up.children) == 2
    assert all(pid_alive(pid) for pid in up.children)
    up.proc.send_signal(signal.SIGTERM)
    assert up.proc.wait(30) == 0, _read(up.log)
    wait_for(lambda: not any(pid_alive(pid) for pid in up.children), 30, "children exit")
    assert not (up.data_dir / "dapr" / "stack.json").exists()
    assert up.cli("status").returncode == 1
