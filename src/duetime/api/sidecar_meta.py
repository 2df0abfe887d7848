"""The sidecar's self-description, as daprd 1.16.5 serves it over HTTP.

- `GET /v1.0/healthz` and `GET /v1.0/healthz/outbound`: 204 once duetime can serve calls
  (the official SDKs poll `/v1.0/healthz/outbound` before their first call); 500
  `ERR_HEALTH_NOT_READY` / `ERR_OUTBOUND_HEALTH_NOT_READY` while it cannot. No token needed,
  as on daprd.
- `GET /v1.0/metadata`: daprd's body (dapr `pkg/api/http/metadata.go`: encoding/json of
  `metadataResponse`, empty fields left out, a trailing newline) for the calling app.
- `PUT /v1.0/metadata/{key}`: daprd's SetMetadata, an extended-metadata entry of the
  calling app, kept in this process's memory as daprd keeps it in its own.

What is true of duetime is shown, not what a daprd would show: no actors or workflows, one
pub/sub component unless the broker says otherwise (`SidecarInventory`), and the jobs
engine as the one connected scheduler.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Protocol
from urllib.parse import urlsplit

from fastapi import APIRouter, Query, Request, Response

from duetime import __version__
from duetime.api.auth import CallerApp
from duetime.api.deps import BodyDep
from duetime.api.errors import ApiError, error_response, responses
from duetime.sidecar.apps import App, AppDirectory

RUNTIME_VERSION = f"duetime-{__version__}"
"""`runtimeVersion` (and `extended.daprRuntimeVersion`): daprd shows its release, `1.16.5`
(or `edge` for a build of no release), so a client can tell which runtime it talks to."""

MAX_EXTENDED_BYTES = 1 << 20
"""Bound on an app's extended metadata (keys and values, UTF-8); daprd has none."""

HEALTH_NOT_READY = "ERR_HEALTH_NOT_READY"
OUTBOUND_NOT_READY = "ERR_OUTBOUND_HEALTH_NOT_READY"
HEALTH_APPID_NOT_MATCH = "ERR_HEALTH_APPID_NOT_MATCH"
METADATA_TOO_LARGE = "DUETIME_METADATA_TOO_LARGE"


class SidecarInventory(Protocol):
    """What the metadata shows of the building blocks behind duetime, in daprd's shapes:
    components as `{"name", "type", "version", "capabilities"?}` (those `app` may use, or
    all for None) and an app's subscriptions as `{"pubsubname", "topic", "metadata"?,
    "rules", "deadLetterTopic", "type"}`. The embedded broker
    (`duetime.sidecar.pubsub.EmbeddedPubSub`) is one."""

    def components(self, app: App | None = None) -> Sequence[Mapping[str, Any]]: ...

    def subscriptions(self, app: App) -> Sequence[Mapping[str, Any]]: ...


@dataclass(frozen=True)
class StaticInventory:
    """Fixed components and no subscriptions; `pubsub(name)` is duetime's pub/sub
    component alone, as a process without the embedded broker shows it."""

    listed: tuple[Mapping[str, Any], ...] = ()

    @classmethod
    def pubsub(cls, pubsub_name: str) -> StaticInventory:
        return cls(({"name": pubsub_name, "type": "pubsub.duetime", "version": "v1"},))

    def components(self, app: App | None = None) -> Sequence[Mapping[str, Any]]:
        return self.listed

    def subscriptions(self, app: App) -> Sequence[Mapping[str, Any]]:
        return ()


class _Extended:
    """Each app's extended metadata (`PUT /v1.0/metadata/{key}`), in memory."""

    def __init__(self, max_bytes: int) -> None:
        self._by_app: dict[str, dict[str, str]] = {}
        self._max_bytes = max_bytes

    def get(self, app_id: str) -> dict[str, str]:
        return dict(self._by_app.get(app_id, {}))

    def set(self, app_id: str, key: str, value: str) -> None:
        entries = {**self._by_app.get(app_id, {}), key: value}
        size = sum(len(k.encode()) + len(v.encode()) for k, v in entries.items())
        if size > self._max_bytes:
            raise ApiError(
                413,
                METADATA_TOO_LARGE,
                f"the extended metadata of app {app_id!r} would take {size} bytes;"
                f" at most {self._max_bytes} are kept",
            )
        self._by_app[app_id] = entries


def _connection(app: App) -> dict[str, Any]:
    """`appConnectionProperties` of `app`: port, protocol, channel address (daprd's
    `--app-port`, `--app-protocol`, `--app-channel-address`), as far as its URL tells."""
    props: dict[str, Any] = {}
    host: str | None = None
    port: int | None = None
    if app.url:
        if app.protocol == "grpc":
            host, _, port_text = app.url.rpartition(":")
            port = int(port_text) if port_text.isdigit() else None
        else:
            parts = urlsplit(app.url)
            host = parts.hostname
            try:
                port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
            except ValueError:
                port = None
    if port:
        props["port"] = port
    props["protocol"] = "https" if app.url and app.url.startswith("https:") else app.protocol
    if host:
        props["channelAddress"] = host
    return props


def _go_json(value: Any, status: int = 200) -> Response:
    """As Go's `json.Encoder` writes it: compact, with a trailing newline."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":")) + "\n"
    return Response(text.encode(), status_code=status, media_type="application/json")


def sidecar_meta_router(
    inventory: SidecarInventory, ready: Callable[[], Awaitable[bool]]
) -> APIRouter:
    """The routes above. `inventory` gives components and subscriptions; `ready` says
    whether duetime can serve calls (the process's `/readyz`). Extended metadata lives in
    the router, so one per app instance."""
    router = APIRouter(tags=["sidecar (Dapr API)"])
    extended = _Extended(MAX_EXTENDED_BYTES)

    @router.get("/v1.0/healthz", status_code=204, response_class=Response, responses=responses(500))
    async def healthz(
        request: Request,
        appid: Annotated[
            str | None, Query(description="500 unless an app of this id is served here.")
        ] = None,
    ) -> Response:
        """daprd's health: 204 when duetime can serve calls, else 500
        `ERR_HEALTH_NOT_READY`; with `?appid=`, 500 `ERR_HEALTH_APPID_NOT_MATCH` unless
        duetime serves that app (daprd: unless it is its own app). No token needed."""
        if not await ready():
            return error_response(500, HEALTH_NOT_READY, "dapr is not ready: [duetime]")
        apps: AppDirectory = request.app.state.apps
        if appid is not None and apps.get(appid) is None:
            return error_response(500, HEALTH_APPID_NOT_MATCH, "dapr app-id does not match")
        return Response(status_code=204)

    @router.get(
        "/v1.0/healthz/outbound",
        status_code=204,
        response_class=Response,
        responses=responses(500),
    )
    async def healthz_outbound() -> Response:
        """daprd's outbound health, which the SDKs wait for before their first call: 204
        when the APIs can be called, else 500 `ERR_OUTBOUND_HEALTH_NOT_READY`. No token
        needed."""
        if not await ready():
            return error_response(500, OUTBOUND_NOT_READY, "dapr outbound is not ready")
        return Response(status_code=204)

    @router.get("/v1.0/metadata", responses={200: {"content": {"application/json": {}}}})
    async def get_metadata(request: Request, app: CallerApp) -> Response:
        """daprd's metadata for the calling app: `id`, `runtimeVersion`, `components`,
        `extended`, `subscriptions`, `appConnectionProperties`, `actorRuntime`,
        `scheduler`, `workflows` (empty ones left out, as daprd does). Behind the API
        token, like the Jobs API."""
        body: dict[str, Any] = {"id": app.app_id, "runtimeVersion": RUNTIME_VERSION}
        components = [dict(c) for c in inventory.components(app)]
        if components:
            body["components"] = components
        entries = extended.get(app.app_id)
        entries["daprRuntimeVersion"] = RUNTIME_VERSION
        body["extended"] = dict(sorted(entries.items()))
        subscriptions = [dict(s) for s in inventory.subscriptions(app)]
        if subscriptions:
            body["subscriptions"] = subscriptions
        body["appConnectionProperties"] = _connection(app)
        body["actorRuntime"] = {"runtimeStatus": "DISABLED", "hostReady": False}
        body["scheduler"] = {"connected_addresses": [request.url.netloc]}
        body["workflows"] = {}
        return _go_json(body)

    @router.put(
        "/v1.0/metadata/{key}",
        status_code=204,
        response_class=Response,
        responses=responses(413),
    )
    async def put_metadata(key: str, app: CallerApp, raw: BodyDep) -> Response:
        """daprd's SetMetadata: keep the raw body as the calling app's extended metadata
        `key` (shown by `GET /v1.0/metadata` until duetime restarts). 204 · 413 body over
        4 MiB, or the app's extended metadata over 1 MiB in all."""
        extended.set(app.app_id, key, raw.decode("utf-8", errors="replace"))
        return Response(status_code=204)

    return router
