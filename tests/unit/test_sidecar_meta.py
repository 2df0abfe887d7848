"""`/v1.0/healthz`, `/v1.0/healthz/outbound` and `/v1.0/metadata` (duetime.api.sidecar_meta):
the cases a real daprd cannot be brought into in the differential test (not ready, several
apps, limits), on a bare app with no sockets. The shapes themselves are compared with daprd
in tests/integration/test_sidecar_meta.py."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from duetime import __version__
from duetime.api.deps import MAX_BODY_BYTES
from duetime.api.errors import install_error_handlers
from duetime.api.sidecar_meta import (
    MAX_EXTENDED_BYTES,
    RUNTIME_VERSION,
    StaticInventory,
    sidecar_meta_router,
)
from duetime.jobs.scope import app_scope
from duetime.sidecar.apps import App, AppDirectory

APPS = [
    App("web", app_scope("default", "web"), "http://127.0.0.1:9000"),
    App("tls", app_scope("default", "tls"), "https://app.example:8443/base", api_token="t-tls"),
    App("rpc", app_scope("default", "rpc"), "10.0.0.7:50051", "grpc", api_token="t-rpc"),
    App("plain", app_scope("default", "plain"), "http://app.internal", api_token="t-plain"),
    App("none", app_scope("default", "none"), None, api_token="t-none"),
]


class _Inventory:
    def __init__(self) -> None:
        self.asked: list[str | None] = []

    def components(self, app: App | None = None) -> Sequence[Mapping[str, Any]]:
        self.asked.append(None if app is None else app.app_id)
        return [{"name": "orders", "type": "pubsub.duetime", "version": "v1"}]

    def subscriptions(self, app: App) -> Sequence[Mapping[str, Any]]:
        if app.app_id != "web":
            return []
        return [
            {
                "pubsubname": "orders",
                "topic": "new",
                "rules": [{"path": "/new"}],
                "deadLetterTopic": "",
                "type": "DECLARATIVE",
            }
        ]


class _Ready:
    def __init__(self) -> None:
        self.value = True

    async def __call__(self) -> bool:
        return self.value


@pytest.fixture
def ready() -> _Ready:
    return _Ready()


@pytest.fixture
def inventory() -> _Inventory:
    return _Inventory()


def _app(inventory: Any, ready: _Ready, api_token: str | None) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(sidecar_meta_router(inventory, ready))
    app.state.apps = AppDirectory(APPS, default="web")
    app.state.settings = SimpleNamespace(api_token=api_token, app_api_token=None)
    return app


@pytest.fixture
async def api(inventory: _Inventory, ready: _Ready) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(_app(inventory, ready, None))
    async with httpx.AsyncClient(transport=transport, base_url="http://duetime:8000") as client:
        yield client


async def _metadata(api: httpx.AsyncClient, token: str | None = None) -> dict[str, Any]:
    headers = {"dapr-api-token": token} if token else {}
    answer = await api.get("/v1.0/metadata", headers=headers)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = json.loads(answer.content)
    return body


async def test_the_metadata_of_the_default_app(
    api: httpx.AsyncClient, inventory: _Inventory
) -> None:
    answer = await api.get("/v1.0/metadata")
    assert answer.headers["content-type"] == "application/json"
    assert answer.content.endswith(b"}\n") and b": " not in answer.content  # Go's encoder
    assert json.loads(answer.content) == {
        "id": "web",
        "runtimeVersion": f"duetime-{__version__}",
        "components": [{"name": "orders", "type": "pubsub.duetime", "version": "v1"}],
        "extended": {"daprRuntimeVersion": RUNTIME_VERSION},
        "subscriptions": [
            {
                "pubsubname": "orders",
                "topic": "new",
                "rules": [{"path": "/new"}],
                "deadLetterTopic": "",
                "type": "DECLARATIVE",
            }
        ],
        "appConnectionProperties": {
            "port": 9000,
            "protocol": "http",
            "channelAddress": "127.0.0.1",
        },
        "actorRuntime": {"runtimeStatus": "DISABLED", "hostReady": False},
        "scheduler": {"connected_addresses": ["duetime:8000"]},
        "workflows": {},
    }
    assert inventory.asked == ["web"]  # components the calling app may use


@pytest.mark.parametrize(
    ("token", "app_id", "connection"),
    [
        ("t-tls", "tls", {"port": 8443, "protocol": "https", "channelAddress": "app.example"}),
        ("t-rpc", "rpc", {"port": 50051, "protocol": "grpc", "channelAddress": "10.0.0.7"}),
        ("t-plain", "plain", {"port": 80, "protocol": "http", "channelAddress": "app.internal"}),
        ("t-none", "none", {"protocol": "http"}),
    ],
)
async def test_each_app_sees_its_own_id_and_connection(
    api: httpx.AsyncClient, token: str, app_id: str, connection: dict[str, Any]
) -> None:
    body = await _metadata(api, token)
    assert body["id"] == app_id
    assert body["appConnectionProperties"] == connection
    assert "subscriptions" not in body  # none: left out, as daprd leaves empty fields out


async def test_no_components_leaves_the_key_out(ready: _Ready) -> None:
    transport = httpx.ASGITransport(_app(StaticInventory(), ready, None))
    async with httpx.AsyncClient(transport=transport, base_url="http://d") as client:
        body = await _metadata(client)
    assert "components" not in body and "subscriptions" not in body


def test_the_default_inventory_is_one_pubsub() -> None:
    inventory = StaticInventory.pubsub("pubsub")
    assert list(inventory.components()) == [
        {"name": "pubsub", "type": "pubsub.duetime", "version": "v1"}
    ]
    assert list(inventory.subscriptions(APPS[0])) == []


async def test_extended_metadata_is_per_app_and_sorted(api: httpx.AsyncClient) -> None:
    assert (await api.put("/v1.0/metadata/zeta", content=b"last")).status_code == 204
    assert (await api.put("/v1.0/metadata/alpha", content="é".encode())).status_code == 204
    put = await api.put("/v1.0/metadata/k", content=b"rpc", headers={"dapr-api-token": "t-rpc"})
    assert put.status_code == 204 and put.content == b""
    web = (await _metadata(api))["extended"]
    assert list(web) == ["alpha", "daprRuntimeVersion", "zeta"]
    assert web["alpha"] == "é"
    assert (await _metadata(api, "t-rpc"))["extended"] == {
        "daprRuntimeVersion": RUNTIME_VERSION,
        "k": "rpc",
    }


async def test_the_runtime_version_cannot_be_overwritten(api: httpx.AsyncClient) -> None:
    # daprd sets it after copying the app's entries
    assert (await api.put("/v1.0/metadata/daprRuntimeVersion", content=b"9")).status_code == 204
    assert (await _metadata(api))["extended"]["daprRuntimeVersion"] == RUNTIME_VERSION


async def test_extended_metadata_is_bounded(api: httpx.AsyncClient) -> None:
    half = b"x" * (MAX_EXTENDED_BYTES // 2)
    assert (await api.put("/v1.0/metadata/a", content=half)).status_code == 204
    over = await api.put("/v1.0/metadata/b", content=half)
    assert over.status_code == 413 and over.json()["errorCode"] == "DUETIME_METADATA_TOO_LARGE"
    assert "b" not in (await _metadata(api))["extended"]  # nothing kept
    # replacing an entry counts the new value, not both
    assert (await api.put("/v1.0/metadata/a", content=half)).status_code == 204
    huge = await api.put("/v1.0/metadata/c", content=b"x" * (MAX_BODY_BYTES + 1))
    assert huge.status_code == 413 and huge.json()["errorCode"] == "ERR_BODY_READ"


@pytest.mark.parametrize("path", ["/v1.0/healthz", "/v1.0/healthz/outbound"])
async def test_health_is_204_when_ready(api: httpx.AsyncClient, path: str) -> None:
    answer = await api.get(path)
    assert answer.status_code == 204 and answer.content == b""


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("/v1.0/healthz", "ERR_HEALTH_NOT_READY"),
        ("/v1.0/healthz/outbound", "ERR_OUTBOUND_HEALTH_NOT_READY"),
    ],
)
async def test_health_is_500_while_not_ready(
    api: httpx.AsyncClient, ready: _Ready, path: str, code: str
) -> None:
    ready.value = False
    answer = await api.get(path)
    assert answer.status_code == 500 and answer.json()["errorCode"] == code


@pytest.mark.parametrize(("appid", "status"), [("web", 204), ("rpc", 204), ("other", 500)])
async def test_healthz_appid_matches_any_app_served(
    api: httpx.AsyncClient, appid: str, status: int
) -> None:
    answer = await api.get("/v1.0/healthz", params={"appid": appid})
    assert answer.status_code == status
    if status == 500:
        assert answer.json()["errorCode"] == "ERR_HEALTH_APPID_NOT_MATCH"


async def test_health_needs_no_token_but_metadata_does(
    inventory: _Inventory, ready: _Ready
) -> None:
    transport = httpx.ASGITransport(_app(inventory, ready, "operator"))
    async with httpx.AsyncClient(transport=transport, base_url="http://d") as client:
        for path in ("/v1.0/healthz", "/v1.0/healthz/outbound"):
            assert (await client.get(path)).status_code == 204
            assert (await client.get(path, headers={"dapr-api-token": "bad"})).status_code == 204
        assert (await client.get("/v1.0/metadata")).status_code == 401
        assert (await client.put("/v1.0/metadata/k", content=b"v")).status_code == 401
        assert (
            await client.get("/v1.0/metadata", headers={"dapr-api-token": "bad"})
        ).status_code == 401
        assert (await _metadata(client, "operator"))["id"] == "web"
        assert (await _metadata(client, "t-rpc"))["id"] == "rpc"
        named = await client.get(
            "/v1.0/metadata", headers={"dapr-api-token": "operator", "dapr-app-id": "rpc"}
        )
        assert named.json()["id"] == "rpc"
