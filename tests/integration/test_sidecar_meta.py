"""`/v1.0/healthz`, `/v1.0/healthz/outbound` and `/v1.0/metadata` on a real daprd 1.16.5 and
on duetime, side by side.

Both sidecars run with an API token and serve the same app (one HTTP server answering `GET
/dapr/subscribe` with the same subscriptions), so their answers can be compared piece by
piece: status, content type, the metadata's keys in order, and each part of its body. Every
difference is listed in `DIFFERENCES` with the reason (the test fails on one not listed and
on a listed one that no longer occurs); docs/reference/http-api.md has the same table.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from duetime import __version__
from duetime.app import create_app
from duetime.localdapr import Daprd, Scheduler
from duetime.settings import Settings
from tests.conftest import free_port

APP_ID = "meta"
TOKEN = "sidecar-secret"
SUBSCRIPTIONS = [
    {"pubsubname": "pubsub", "topic": "orders", "route": "/orders"},
    {
        "pubsubname": "pubsub",
        "topic": "routed",
        "routes": {"rules": [{"match": 'event.type == "a"', "path": "/a"}], "default": "/d"},
        "deadLetterTopic": "dead",
        "metadata": {"rawPayload": "true"},
    },
]
PUBSUB = """\
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: pubsub
spec:
  type: pubsub.in-memory
  version: v1
"""


class _App(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/dapr/subscribe":
            body = json.dumps(SUBSCRIPTIONS).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_response(404)
        self.send_header("content-length", "0")
        self.end_headers()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def app_port() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _App)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def daprd(tmp_path_factory: pytest.TempPathFactory, app_port: int) -> Iterator[str]:
    root = tmp_path_factory.mktemp("dapr")
    scheduler = Scheduler(root / "scheduler")
    sidecar = Daprd(
        root / "daprd",
        app_id=APP_ID,
        app_port=app_port,
        scheduler_address=scheduler,
        api_token=TOKEN,
        resources={"pubsub.yaml": PUBSUB},
    )
    try:
        scheduler.start()
        sidecar.start(wait_for_app=True)
        yield sidecar.http_url
    finally:
        sidecar.stop()
        scheduler.stop()


@pytest.fixture
async def duetime(tmp_path: Path, app_port: int) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        data_dir=tmp_path / "duetime",
        app_id=APP_ID,
        app_url=f"http://127.0.0.1:{app_port}",
        api_token=TOKEN,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://duetime") as client:
            yield client
    # a database call cancelled at shutdown (the embedded broker's delivery loop) finishes
    # on aiosqlite's thread; let it report back before pytest closes the event loop
    await asyncio.sleep(0.2)


@dataclass(frozen=True)
class Seen:
    status: int
    content_type: str
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def code(self) -> str:
        try:
            return f"{self.status} {self.json().get('errorCode')}"
        except (ValueError, AttributeError):
            return str(self.status)


async def _get(client: httpx.AsyncClient, path: str, token: str | None = TOKEN) -> Seen:
    headers = {"dapr-api-token": token} if token is not None else {}
    answer = await client.get(path, headers=headers)
    return Seen(answer.status_code, answer.headers.get("content-type", ""), answer.content)


async def _put(client: httpx.AsyncClient, path: str, body: bytes, token: str | None = TOKEN) -> int:
    headers = {"dapr-api-token": token} if token is not None else {}
    return (await client.put(path, content=body, headers=headers)).status_code


async def _subscribed(client: httpx.AsyncClient) -> dict[str, Any]:
    """The metadata once the app's subscriptions were discovered (at most 10 s)."""
    deadline = time.monotonic() + 10
    while True:
        seen = await _get(client, "/v1.0/metadata")
        assert seen.status == 200, seen
        body: dict[str, Any] = seen.json()
        if body.get("subscriptions") or time.monotonic() > deadline:
            return body
        await asyncio.sleep(0.1)


async def _observe(client: httpx.AsyncClient) -> dict[str, str]:
    """Each compared piece of the answers, in one line."""
    seen: dict[str, str] = {}
    for label, path, token in [
        ("healthz, no token", "/v1.0/healthz", None),
        ("healthz outbound, no token", "/v1.0/healthz/outbound", None),
        ("healthz outbound, wrong token", "/v1.0/healthz/outbound", "wrong"),
        ("healthz outbound, token", "/v1.0/healthz/outbound", TOKEN),
        ("healthz of this app id", f"/v1.0/healthz?appid={APP_ID}", None),
        ("healthz of another app id", "/v1.0/healthz?appid=someone-else", None),
        ("metadata, no token", "/v1.0/metadata", None),
        ("metadata, wrong token", "/v1.0/metadata", "wrong"),
    ]:
        answer = await _get(client, path, token)
        if answer.status == 204:
            seen[label] = f"204 body {answer.body!r}"
        else:
            seen[label] = f"{answer.code()} {answer.content_type}"
    metadata = await _subscribed(client)
    raw = await _get(client, "/v1.0/metadata")
    seen["metadata content-type, trailing newline"] = (
        f"{raw.status} {raw.content_type} {raw.body.endswith(b'}' + bytes([10]))}"
    )
    seen["metadata keys, in order"] = " ".join(metadata)
    for key in ("id", "runtimeVersion", "extended", "appConnectionProperties", "actorRuntime"):
        seen[f"metadata {key}"] = json.dumps(metadata.get(key), sort_keys=True)
    seen["metadata components"] = json.dumps(
        [{**c, "keys": sorted(c)} for c in metadata.get("components", [])], sort_keys=True
    )
    subscriptions = sorted(metadata.get("subscriptions", []), key=lambda s: s["topic"])
    seen["metadata subscriptions"] = json.dumps(subscriptions)  # key order kept: daprd's
    scheduler = metadata.get("scheduler", {})
    seen["metadata scheduler"] = json.dumps(
        {k: f"{len(v)} address(es)" for k, v in scheduler.items()}
    )
    seen["metadata workflows"] = json.dumps(metadata.get("workflows"))
    # PUT /v1.0/metadata/{key}: daprd's SetMetadata
    seen["put metadata"] = str(await _put(client, "/v1.0/metadata/cliPID", b"4242"))
    seen["put metadata, empty body"] = str(await _put(client, "/v1.0/metadata/empty", b""))
    seen["put metadata, no token"] = str(await _put(client, "/v1.0/metadata/x", b"1", None))
    seen["put metadata, not UTF-8"] = str(await _put(client, "/v1.0/metadata/bytes", b"a\xffb"))
    extended = (await _get(client, "/v1.0/metadata")).json()["extended"]
    extended.pop("daprRuntimeVersion")
    seen["metadata extended after puts"] = json.dumps(extended, ensure_ascii=False)
    seen["put metadata again"] = str(await _put(client, "/v1.0/metadata/cliPID", b"7"))
    again = (await _get(client, "/v1.0/metadata")).json()["extended"]
    seen["metadata extended after a second put"] = again["cliPID"]
    return seen


_CT = "application/json"
DIFFERENCES: dict[str, tuple[str, str, str]] = {
    "metadata, no token": (
        "401 text/plain; charset=utf-8",
        f"401 ERR_UNAUTHORIZED {_CT}",
        "duetime sends Dapr's JSON error body, as on every route (daprd: plain text)",
    ),
    "metadata, wrong token": (
        "401 text/plain; charset=utf-8",
        f"401 ERR_UNAUTHORIZED {_CT}",
        "as the previous row",
    ),
    "metadata keys, in order": (
        "id runtimeVersion enabledFeatures components extended subscriptions"
        " appConnectionProperties actorRuntime scheduler workflows",
        "id runtimeVersion components extended subscriptions appConnectionProperties"
        " actorRuntime scheduler workflows",
        "duetime has no preview features to enable (daprd 1.16 lists SchedulerReminders)",
    ),
    "metadata runtimeVersion": (
        '"1.16.5"',
        f'"duetime-{__version__}"',
        "an app can tell it talks to duetime; daprd's own value is not always a version"
        " either (`edge`)",
    ),
    "metadata extended": (
        '{"daprRuntimeVersion": "1.16.5"}',
        f'{{"daprRuntimeVersion": "duetime-{__version__}"}}',
        "as the previous row",
    ),
    "metadata actorRuntime": (
        '{"hostReady": false, "placement": "placement: disconnected", "runtimeStatus": "DISABLED"}',
        '{"hostReady": false, "runtimeStatus": "DISABLED"}',
        "duetime has no actors and no placement service to be disconnected from",
    ),
    "metadata components": (
        '[{"capabilities": ["SUBSCRIBE_WILDCARDS"], "keys": ["capabilities", "name", "type",'
        ' "version"], "name": "pubsub", "type": "pubsub.in-memory", "version": "v1"}]',
        '[{"keys": ["name", "type", "version"], "name": "pubsub", "type": "pubsub.duetime",'
        ' "version": "v1"}]',
        "duetime's embedded broker is its own component type, and claims no optional"
        " capability (wildcard topics, ...)",
    ),
}


async def test_same_answers_as_daprd(daprd: str, duetime: httpx.AsyncClient) -> None:
    async with httpx.AsyncClient(base_url=daprd, timeout=30) as dapr:
        theirs = await _observe(dapr)
    ours = await _observe(duetime)
    assert theirs.keys() == ours.keys()
    problems = []
    for label in theirs:
        listed = DIFFERENCES.get(label)
        pair = (theirs[label], ours[label])
        if pair[0] == pair[1] and listed is not None:
            problems.append(f"{label!r}: listed difference no longer occurs: both {pair[0]}")
        elif pair[0] != pair[1] and (listed is None or listed[:2] != pair):
            problems.append(f"{label!r}: daprd {pair[0]} | duetime {pair[1]}")
    assert not set(DIFFERENCES) - set(theirs)
    assert not problems, "\n".join(problems)


async def test_the_sdk_handshake_needs_no_token(duetime: httpx.AsyncClient) -> None:
    # what dapr.clients.health.DaprHealth.wait_until_ready sends before a DaprClient's
    # first call (dapr 1.19): GET /v1.0/healthz/outbound, 2xx = ready
    answer = await duetime.get(
        "/v1.0/healthz/outbound", headers={"user-agent": "dapr-sdk-python/1.19.0"}
    )
    assert answer.status_code == 204 and answer.content == b""


@contextmanager
def serving(settings: Settings) -> Iterator[str]:
    """duetime on a real HTTP port (uvicorn in a thread), for clients that open sockets."""
    port = free_port()
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "duetime did not start"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(20)


@pytest.mark.parametrize("sdk_token", [TOKEN, None, "not-the-token"])
def test_the_official_sdk_finds_duetime_ready(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    sdk_token: str | None,
) -> None:
    """`DaprClient()` (dapr 1.19) waits in `DaprHealth.wait_for_sidecar` for a 2xx from
    `GET /v1.0/healthz/outbound`, up to DAPR_HEALTH_TIMEOUT (60 s): it must get one at
    once, whatever token the app holds (daprd asks for none there)."""
    from dapr.clients import DaprClient
    from dapr.clients.health import DaprHealth
    from dapr.conf import settings as dapr_settings

    with serving(Settings(data_dir=tmp_path / "duetime", api_token=TOKEN)) as url:
        monkeypatch.setattr(dapr_settings, "DAPR_HTTP_ENDPOINT", url)
        monkeypatch.setattr(dapr_settings, "DAPR_API_TOKEN", sdk_token)
        monkeypatch.setattr(dapr_settings, "DAPR_HEALTH_TIMEOUT", 5)
        DaprHealth.wait_for_sidecar()
        # the SDK prints each probe that failed and sleeps 1 s before the next: none did
        assert "Health check" not in capsys.readouterr().out
        with DaprClient(address="127.0.0.1:1"):  # constructing it is the health wait
            pass
        assert "Health check" not in capsys.readouterr().out


async def test_metadata_is_per_app(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path / "duetime",
        app_id="first",
        apps={"second": {"url": "grpc-app.internal:50051", "protocol": "grpc", "api_token": "t2"}},
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://duetime") as client:
            assert (await client.put("/v1.0/metadata/k", content=b"one")).status_code == 204
            first = (await client.get("/v1.0/metadata")).json()
            second = (await client.get("/v1.0/metadata", headers={"dapr-api-token": "t2"})).json()
    await asyncio.sleep(0.2)  # as in the `duetime` fixture
    assert first["id"] == "first" and first["extended"]["k"] == "one"
    assert first["appConnectionProperties"] == {"protocol": "http"}
    assert second["id"] == "second" and "k" not in second["extended"]
    assert second["appConnectionProperties"] == {
        "port": 50051,
        "protocol": "grpc",
        "channelAddress": "grpc-app.internal",
    }
