"""A local Dapr stack for the Dapr backend: one `scheduler` (embedded etcd) and one `daprd`.

Everything listens on 127.0.0.1 only and nothing leaves the machine: the scheduler is built
with scripts/build-dapr.sh's listen-address patch (its healthz and metrics ports honour
`--*-listen-address`), and daprd gets a Configuration whose name resolver is `kubernetes`
templated to loopback, so it never multicasts mDNS.

Binaries come from `DUETIME_DAPR_BIN_DIR`, else the newest build in duetime's cache
(`~/.cache/duetime/dapr/`), else `PATH`.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

T = TypeVar("T")

DAPR_VERSION = "v1.16.5"
SCHEDULER_ID = "dapr-scheduler-server-0"

_CONFIG = """\
apiVersion: dapr.io/v1alpha1
kind: Configuration
metadata:
  name: duetime
spec:
  nameResolution:
    component: kubernetes
    configuration:
      template: "127.0.0.1:{{.Port}}"
"""


class DaprNotFound(RuntimeError):
    """daprd or scheduler is not built: run scripts/build-dapr.sh."""


def binary(name: str) -> str:
    """Path of the `daprd` or `scheduler` binary."""
    explicit = os.environ.get("DUETIME_DAPR_BIN_DIR")
    if explicit:
        path = Path(explicit) / name
        if not path.is_file():
            raise DaprNotFound(f"{path} does not exist")
        return str(path)
    cache = os.environ.get("DUETIME_CACHE_DIR") or str(
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "duetime"
    )
    built = sorted(glob.glob(f"{cache}/dapr/{DAPR_VERSION}-*/{name}"), key=os.path.getmtime)
    if built:
        return built[-1]
    found = shutil.which(name)
    if found is None:
        raise DaprNotFound(f"{name} not found: run ./scripts/build-dapr.sh")
    return found


_band_lock = threading.Lock()
_band: range | None = None
_band_next = 0


def use_port_band(first: int, last: int) -> None:
    """From now on `free_port` hands out this process's ports from `first`..`last`.

    The test suite gives each parallel worker a band of its own below the kernel's ephemeral
    range: a port the kernel picks for port 0 may go to another worker, or to an outgoing
    connection, between the pick and the child's bind; a port of the worker's own band
    cannot. Each is handed out once, in turn (after `last` the band starts again), and only
    when a bind shows it free at that moment."""
    global _band, _band_next
    with _band_lock:
        _band, _band_next = range(first, last + 1), 0


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now, for a child process to bind: the next free one of
    the band set by `use_port_band`, else (`duetime dapr up`, a serial test run) the
    kernel's pick."""
    global _band_next
    with _band_lock:
        band = _band
        if band is None:
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                return int(s.getsockname()[1])
        for _ in band:
            port = band[_band_next % len(band)]
            _band_next += 1
            if _bindable(port):
                return port
    raise RuntimeError(f"no free port in {band.start}-{band.stop - 1}")


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@dataclass
class SchedulerPorts:
    grpc: int = field(default_factory=free_port)
    healthz: int = field(default_factory=free_port)
    metrics: int = field(default_factory=free_port)
    etcd_client: int = field(default_factory=free_port)
    etcd_peer: int = field(default_factory=free_port)


@dataclass
class DaprdPorts:
    http: int = field(default_factory=free_port)
    grpc: int = field(default_factory=free_port)
    internal_grpc: int = field(default_factory=free_port)
    public: int = field(default_factory=free_port)
    metrics: int = field(default_factory=free_port)


class _Process:
    """A child process with its output in a log file."""

    name = "process"

    def __init__(self, log: Path) -> None:
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def _spawn(self, args: list[str], env: dict[str, str] | None = None) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                args,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
                start_new_session=True,  # Ctrl-C in a terminal reaches us, not them
            )

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_healthy(self, url: str, ok: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running():
                raise RuntimeError(f"{self.name} exited: {self.tail()}")
            try:
                if httpx.get(url, timeout=1).status_code == ok:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} not healthy in {timeout:.0f} s: {self.tail()}")

    def tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return ""

    def stop(self, timeout: float = 15.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """kill -9: no shutdown."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)


class Scheduler(_Process):
    """The Dapr Scheduler with embedded etcd in `data_dir`; the same id and data dir keep
    its jobs across restarts."""

    name = "scheduler"

    def __init__(self, data_dir: Path, ports: SchedulerPorts | None = None) -> None:
        super().__init__(data_dir / "scheduler.log")
        self.data_dir = data_dir
        self._own_ports = ports is None  # picked here: may be taken again before the bind
        self.ports = ports or SchedulerPorts()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.ports.grpc}"

    @property
    def healthz_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.healthz}/healthz"

    def start(self, timeout: float = 60.0) -> Scheduler:
        return _retry_bind(self, lambda: self._start(timeout), SchedulerPorts)

    def _start(self, timeout: float) -> Scheduler:
        p = self.ports
        self._spawn(
            [
                binary("scheduler"),
                f"--id={SCHEDULER_ID}",
                f"--port={p.grpc}",
                "--listen-address=127.0.0.1",
                f"--healthz-port={p.healthz}",
                "--healthz-listen-address=127.0.0.1",
                f"--metrics-port={p.metrics}",
                "--metrics-listen-address=127.0.0.1",
                f"--etcd-data-dir={self.data_dir / 'etcd'}",
                f"--etcd-client-port={p.etcd_client}",
                "--etcd-client-listen-address=127.0.0.1",
                f"--etcd-initial-cluster={SCHEDULER_ID}=http://127.0.0.1:{p.etcd_peer}",
                "--log-level=warn",
            ]
        )
        self.wait_healthy(self.healthz_url, 200, timeout)
        return self


class Daprd(_Process):
    """A daprd sidecar for the app listening on `app_port`, talking to `scheduler`.

    `app_api_token` is sent to the app on every trigger (`dapr-api-token`); `api_token` is
    required on every call to the sidecar. With `app_health_path`, daprd probes the app
    there every second and holds triggers while it does not answer 2xx."""

    name = "daprd"

    def __init__(
        self,
        work_dir: Path,
        *,
        app_id: str,
        app_port: int,
        scheduler_address: str | Scheduler,
        ports: DaprdPorts | None = None,
        app_api_token: str | None = None,
        api_token: str | None = None,
        resources: dict[str, str] | None = None,
        app_health_path: str | None = None,
    ) -> None:
        super().__init__(work_dir / "daprd.log")
        self.work_dir = work_dir
        self.app_id = app_id
        self.app_port = app_port
        self.scheduler_address = scheduler_address
        self._own_ports = ports is None
        self.ports = ports or DaprdPorts()
        self.app_api_token = app_api_token
        self.api_token = api_token
        self.resources = resources or {}
        self.app_health_path = app_health_path

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.http}"

    def _scheduler_host(self) -> str:
        """Read at start: a Scheduler's ports change when a bind had to be retried."""
        target = self.scheduler_address
        return target.address if isinstance(target, Scheduler) else target

    def start(self, timeout: float = 60.0, *, wait_for_app: bool = False) -> Daprd:
        """Start and wait until the sidecar serves its API (`/v1.0/healthz/outbound`), or,
        with `wait_for_app`, until it is fully healthy (which needs the app port open)."""
        return _retry_bind(self, lambda: self._start(timeout, wait_for_app), DaprdPorts)

    def _start(self, timeout: float, wait_for_app: bool) -> Daprd:
        config = self.work_dir / "config.yaml"
        resources = self.work_dir / "resources"
        resources.mkdir(parents=True, exist_ok=True)
        config.write_text(_CONFIG)
        for file_name, text in self.resources.items():
            (resources / file_name).write_text(text)
        p = self.ports
        env = {}
        if self.app_api_token:
            env["APP_API_TOKEN"] = self.app_api_token
        if self.api_token:
            env["DAPR_API_TOKEN"] = self.api_token
        health = []
        if self.app_health_path:
            # hold triggers while the app is down, rather than spend their retries on it
            health = [
                "--enable-app-health-check",
                f"--app-health-check-path={self.app_health_path}",
                "--app-health-probe-interval=1",
                "--app-health-threshold=1",
            ]
        self._spawn(
            [
                binary("daprd"),
                *health,
                "--mode=standalone",
                f"--app-id={self.app_id}",
                f"--app-port={self.app_port}",
                "--app-protocol=http",
                "--app-channel-address=127.0.0.1",
                f"--dapr-http-port={p.http}",
                f"--dapr-grpc-port={p.grpc}",
                f"--dapr-internal-grpc-port={p.internal_grpc}",
                "--dapr-internal-grpc-listen-address=127.0.0.1",
                "--dapr-listen-addresses=127.0.0.1",
                f"--dapr-public-port={p.public}",
                "--dapr-public-listen-address=127.0.0.1",
                f"--metrics-port={p.metrics}",
                "--metrics-listen-address=127.0.0.1",
                f"--scheduler-host-address={self._scheduler_host()}",
                f"--resources-path={resources}",
                f"--config={config}",
                "--log-level=warn",
            ],
            env,
        )
        path = "/v1.0/healthz" if wait_for_app else "/v1.0/healthz/outbound"
        self.wait_healthy(self.http_url + path, 204, timeout)
        return self


def _retry_bind(proc: Any, start: Callable[[], T], new_ports: Callable[[], object]) -> T:
    """`start`, again with fresh ports when ports picked by `free_port` were taken by
    another process between the pick and the bind (up to 3 tries)."""
    for attempt in range(3):
        try:
            return start()
        except RuntimeError as exc:
            if not proc._own_ports or "address already in use" not in str(exc) or attempt == 2:
                raise
            proc.ports = new_ports()
    raise AssertionError("unreachable")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child still answers kill(0); /proc tells
    try:
        return " Z " not in Path(f"/proc/{pid}/stat").read_text().split(")", 1)[1][:4]
    except OSError:
        return False
