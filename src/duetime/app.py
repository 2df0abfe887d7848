"""The HTTP service: the jobs API (Dapr's surface and duetime's additions), the trigger
endpoint, health and OpenAPI, around one `Runtime`."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from prometheus_client import start_http_server

from duetime import __version__
from duetime.api.accounts import accounts_router
from duetime.api.admin import admin_router
from duetime.api.delivery import delivery_router
from duetime.api.errors import install_error_handlers
from duetime.api.events import events_router
from duetime.api.jobs import jobs_router
from duetime.api.limits import BodyLimit, JsonBodies, RejectNul
from duetime.api.metrics import HttpMetrics, metrics_router
from duetime.api.publish import publish_router
from duetime.api.pubsub import dead_events_router, subscriber_router
from duetime.api.push import push_router
from duetime.api.recurrence import recurrence_router
from duetime.api.series import me_router, series_router
from duetime.api.sidecar_meta import RUNTIME_VERSION, StaticInventory, sidecar_meta_router
from duetime.api.tasks import task_router
from duetime.api.tracing import HttpTracing
from duetime.api.triggers import trigger_router
from duetime.bootstrap import Runtime, bootstrap
from duetime.db.engine import safe_url
from duetime.settings import Settings
from duetime.sidecar.grpc_server import grpc_server
from duetime.web.pages import web_router

log = logging.getLogger(__name__)

MAX_API_BODY = 8 * 1024 * 1024  # a batch of 10,000 tasks fits


def create_app(
    settings: Settings, runtime: Runtime | None = None, *, serve_grpc: bool = False
) -> FastAPI:
    """The app around `runtime`; with `serve_grpc` its lifespan also serves Dapr's gRPC API
    on `settings.grpc_port` (API roles; `duetime serve` asks for it, in-process tests not)."""
    runtime = runtime or bootstrap(settings)
    dapr_grpc = (
        grpc_server(
            settings, runtime.apps, runtime.jobs, pubsub=runtime.pubsub, version=RUNTIME_VERSION
        )
        if serve_grpc
        else None
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            if dapr_grpc is not None:
                await dapr_grpc.start()
        except BaseException:
            await runtime.close()
            raise
        log.info("duetime ready: database %s", safe_url(settings.resolved_database_url()))
        exporter = None
        if settings.metrics_port is not None:
            exporter, _ = start_http_server(settings.metrics_port, addr=settings.metrics_host)
        try:
            yield
        finally:
            if exporter is not None:
                exporter.shutdown()
                exporter.server_close()
            if dapr_grpc is not None:
                await dapr_grpc.stop()
            await runtime.close()

    # Swagger UI and ReDoc served from the package, not a CDN: /docs works offline.
    app = FastAPIOffline(title="duetime", version=__version__, lifespan=lifespan)
    app.state.settings = settings
    app.state.runtime = runtime
    app.state.scheduler = runtime.scheduler
    app.state.trigger_sink = runtime.trigger_sink
    app.state.apps = runtime.apps
    app.state.jobs = runtime.jobs
    app.state.tasks = runtime.tasks
    app.state.delivery = runtime.delivery
    app.state.push = runtime.push
    app.state.jwt_secret = runtime.jwt_secret
    app.state.accounts = runtime.accounts
    install_error_handlers(app)
    app.add_middleware(JsonBodies, prefix="/api/")
    app.add_middleware(BodyLimit, prefix="/api/", max_bytes=MAX_API_BODY)
    app.add_middleware(RejectNul)
    if runtime.tracing is not None:
        app.add_middleware(HttpTracing, tracing=runtime.tracing)
    app.add_middleware(HttpMetrics)  # outermost: it times and counts every answer
    if settings.runs_api:
        app.include_router(publish_router())  # first: the hottest path, matched soonest
        app.include_router(jobs_router())
        app.include_router(trigger_router())
        app.include_router(events_router())  # before /api/notifications/{id}/...
        app.include_router(task_router())
        app.include_router(series_router())
        app.include_router(recurrence_router())
        app.include_router(me_router())
        app.include_router(delivery_router())
        app.include_router(push_router())
        app.include_router(accounts_router())
        app.include_router(admin_router())
        app.include_router(web_router())  # the web app's pages (duetime.web)
        inventory = runtime.pubsub or StaticInventory.pubsub(settings.pubsub_name)
        app.include_router(sidecar_meta_router(inventory, runtime.ready))
    app.include_router(metrics_router(settings))
    app.include_router(subscriber_router())
    app.include_router(dead_events_router())

    @app.get("/healthz", tags=["health"], status_code=204)
    async def healthz() -> Response:
        """The process is up."""
        return Response(status_code=204)

    @app.get("/readyz", tags=["health"])
    async def readyz(request: Request) -> Response:
        """204 when this process can do its work (the jobs engine runs, the database
        answers and has room to write); else 503 `{"ready": false, "reason": "…"}`."""
        reason = await runtime.unready()
        if reason is None:
            return Response(status_code=204)
        return JSONResponse({"ready": False, "reason": reason}, status_code=503)

    return app
