"""`duetime dapr up|status|down`: a local Dapr stack (scheduler + daprd) for duetime."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import click
import httpx

from duetime.localdapr import Daprd, DaprdPorts, DaprNotFound, Scheduler, SchedulerPorts, pid_alive
from duetime.settings import Settings


def _state_file(settings: Settings) -> Path:
    return settings.data_dir / "dapr" / "stack.json"


@click.group()
def dapr() -> None:
    """A local Dapr stack for DUETIME_SCHEDULER=dapr: scheduler and daprd on 127.0.0.1."""


@dapr.command()
@click.option("--app-id", default="duetime", show_default=True)
@click.option("--app-port", type=int, help="duetime's port (default DUETIME_PORT, 8000).")
@click.option("--http-port", type=int, default=3500, show_default=True, help="daprd's HTTP API.")
@click.option("--grpc-port", type=int, default=50001, show_default=True, help="daprd's gRPC API.")
@click.option("--scheduler-port", type=int, default=50006, show_default=True)
@click.option(
    "--resources",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="A directory of Dapr resources (*.yaml: a pub/sub Component, a Resiliency) for daprd.",
)
def up(
    app_id: str,
    app_port: int | None,
    http_port: int,
    grpc_port: int,
    scheduler_port: int,
    resources: Path | None,
) -> None:
    """Start a scheduler (jobs in <data dir>/dapr/scheduler) and a daprd for duetime, wait
    until both serve, and run until Ctrl-C or SIGTERM, then stop both."""
    from duetime.cli import _settings

    settings = _settings()
    root = settings.data_dir / "dapr"
    state = _state_file(settings)
    if state.exists() and pid_alive(json.loads(state.read_text())["pid"]):
        raise click.ClickException(f"a stack is already running (see {state}); `duetime dapr down`")
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    scheduler = Scheduler(root / "scheduler", SchedulerPorts(grpc=scheduler_port))
    daprd = Daprd(
        root / "daprd",
        app_id=app_id,
        app_port=app_port or settings.port,
        scheduler_address=scheduler,
        ports=DaprdPorts(http=http_port, grpc=grpc_port),
        app_api_token=settings.app_api_token,
        api_token=settings.dapr_api_token,
        app_health_path="/healthz",
        resources={f.name: f.read_text() for f in sorted(resources.glob("*.y*ml"))}
        if resources
        else None,
    )
    try:
        scheduler.start()
        daprd.start()
        info: dict[str, Any] = {
            "pid": os.getpid(),
            "scheduler_pid": scheduler.pid,
            "daprd_pid": daprd.pid,
            "scheduler": scheduler.address,
            "scheduler_healthz": scheduler.healthz_url,
            "daprd_http": daprd.http_url,
            "daprd_grpc": f"127.0.0.1:{daprd.ports.grpc}",
            "app_id": app_id,
            "app_port": daprd.app_port,
        }
        state.write_text(json.dumps(info, indent=2))
        click.echo(f"scheduler  {scheduler.address} (jobs in {scheduler.data_dir})")
        click.echo(f"daprd      HTTP {daprd.http_url}  gRPC {info['daprd_grpc']}  app-id {app_id}")
        click.echo(f"app        triggers go to http://127.0.0.1:{daprd.app_port}/job/{{name}}")
        if daprd.resources:
            click.echo(f"resources  {', '.join(daprd.resources)} from {resources}")
        click.echo(f"logs       {scheduler.log}, {daprd.log}")
        click.echo("ready: run duetime with DUETIME_SCHEDULER=dapr; Ctrl-C stops the stack")
        while not stopping:
            for proc in (scheduler, daprd):
                if not proc.running():
                    raise click.ClickException(f"{proc.name} exited: {proc.tail(1500)}")
            time.sleep(0.2)
    except (DaprNotFound, RuntimeError) as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        daprd.stop()
        scheduler.stop()
        state.unlink(missing_ok=True)
    click.echo("stopped")


@dapr.command()
def status() -> None:
    """Show whether the local stack runs and is healthy; exit 1 if it is not running."""
    from duetime.cli import _settings

    state = _state_file(_settings())
    if not state.exists():
        click.echo("not running")
        raise SystemExit(1)
    info = json.loads(state.read_text())
    if not pid_alive(info["pid"]):
        click.echo("not running (stale state file removed)")
        state.unlink(missing_ok=True)
        raise SystemExit(1)
    click.echo(f"scheduler  {info['scheduler']}: {_health(info['scheduler_healthz'], 200)}")
    app = _health(info["daprd_http"] + "/v1.0/healthz", 204)
    outbound = _health(info["daprd_http"] + "/v1.0/healthz/outbound", 204)
    click.echo(
        f"daprd      {info['daprd_http']}: {outbound}; app on :{info['app_port']}: "
        + ("connected" if app == "healthy" else "not connected yet")
    )


def _health(url: str, ok: int) -> str:
    try:
        code = httpx.get(url, timeout=2).status_code
    except httpx.HTTPError:
        return "not answering"
    return "healthy" if code == ok else f"unhealthy ({code})"


@dapr.command()
def down() -> None:
    """Stop the stack `duetime dapr up` started."""
    from duetime.cli import _settings

    state = _state_file(_settings())
    if not state.exists():
        click.echo("not running")
        return
    pid = json.loads(state.read_text())["pid"]
    if pid_alive(pid):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
    state.unlink(missing_ok=True)
    click.echo("stopped")
