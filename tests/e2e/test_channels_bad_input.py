"""Channel settings that cannot be used are a 422 saying why, and nothing is written.
This server does not allow private webhook targets (the default)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Server
from tests.e2e.test_delivery_e2e import SECRET, api


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    from tests.e2e.conftest import Server as ServerProcess

    root = tmp_path_factory.mktemp("channels")
    env = {"DUETIME_DATA_DIR": str(root / "data"), "DUETIME_JWT_SECRET": SECRET}
    proc = ServerProcess(env, root / "server.log").start()
    yield proc
    proc.stop()


@pytest.fixture
def alice(server: Server) -> Iterator[httpx.Client]:
    with api(server, "alice") as client:
        yield client


def hook(url: Any, enabled: bool = True) -> dict[str, Any]:
    return {"webhook": {"url": url, "enabled": enabled}}


def mail(address: Any, enabled: bool = True) -> dict[str, Any]:
    return {"email": {"address": address, "enabled": enabled}}


BAD: list[tuple[dict[str, Any], str]] = [
    (hook("not a url"), "whitespace"),
    (hook("example.com/hook"), "http or https"),
    (hook("ftp://example.com/hook"), "http or https"),
    (hook("file:///etc/passwd"), "http or https"),
    (hook("javascript:alert(1)"), "http or https"),
    (hook("http://"), "no host"),
    (hook("http://user:pw@example.com/"), "user name or password"),
    (hook("http://example.com:99999/"), "malformed"),
    (hook("http://127.0.0.1:8000/hook"), "loopback"),
    (hook("http://localhost/hook"), "loopback"),
    (hook("http://[::1]/hook"), "loopback"),
    (hook("http://10.1.2.3/hook"), "private"),
    (hook("http://192.168.0.10/hook"), "private"),
    (hook("http://172.16.5.4/hook"), "private"),
    (hook("http://169.254.169.254/latest/meta-data"), "link-local"),
    (hook("http://[fe80::1]/hook"), "link-local"),
    (hook("http://0.0.0.0/hook"), "unspecified"),
    (hook("http://224.0.0.1/hook"), "multicast"),
    (hook("http://[::ffff:127.0.0.1]/hook"), "loopback"),
    (hook("http://host.invalid/hook"), "does not resolve"),
    (hook("https://example.com/" + "a" * 3000), "2048"),
    (hook(None), "webhook.url is required"),
    (hook(12), "string"),
    (mail("not-an-email"), "not a valid address"),
    (mail("a@b"), "not a valid address"),
    (mail("alice@example.com\r\nBcc: eve@example.com"), "not a valid address"),
    (mail("Alice <alice@example.com>"), "not a valid address"),
    (mail(None), "email.address is required"),
    (mail("alice@example.com"), "no SMTP server"),
    ({"webhook": {"url": "https://example.com", "enabled": "yes"}}, "true or false"),
    ({"sms": {"number": "123"}}, "sms"),
    ({"webhook": "https://example.com"}, "object"),
]


@pytest.mark.parametrize(("body", "reason"), BAD, ids=[str(b) for b, _ in BAD])
def test_bad_channel_settings_are_422_and_change_nothing(
    alice: httpx.Client, body: dict[str, Any], reason: str
) -> None:
    before = alice.get("/api/me/channels").json()
    r = alice.put("/api/me/channels", json=body)
    assert r.status_code == 422, r.text
    assert reason.lower() in r.json()["detail"].lower(), r.json()["detail"]
    assert alice.get("/api/me/channels").json() == before


def test_malformed_bodies_are_422_not_500(alice: httpx.Client) -> None:
    for raw in (b"", b"{", b"[]", b"null", b'{"webhook": {"url": "x\\u0000"}}'):
        r = alice.put("/api/me/channels", content=raw, headers={"content-type": "application/json"})
        assert r.status_code == 422, (raw, r.text)


def test_listings_refuse_bad_parameters(alice: httpx.Client) -> None:
    assert alice.get("/api/deliveries", params={"state": "lost"}).status_code == 422
    assert alice.get("/api/deliveries", params={"cursor": "garbage"}).status_code == 422
    assert alice.get("/api/deliveries", params={"limit": 0}).status_code == 422
    assert alice.get("/api/dead-letters", params={"limit": 501}).status_code == 422
    assert alice.get("/api/events", params={"after": "x"}).status_code == 422


def test_a_public_https_url_and_off_channels_are_accepted(alice: httpx.Client) -> None:
    body = {**hook("https://93.184.215.14/hook"), **mail("alice@example.com", enabled=False)}
    r = alice.put("/api/me/channels", json=body)
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["webhook"]["url"] == "https://93.184.215.14/hook" and got["webhook"]["enabled"]
    assert got["email"] == {"address": "alice@example.com", "enabled": False, "available": False}
    secret = got["webhook"]["secret"]
    rotated = alice.post("/api/me/channels/webhook/secret").json()["webhook"]["secret"]
    assert rotated != secret and rotated.startswith("whsec_")
    cleared = alice.put("/api/me/channels", json={}).json()
    assert cleared["webhook"] == {"url": None, "enabled": False, "secret": rotated}


def test_channels_need_a_user(server: Server) -> None:
    assert httpx.get(f"{server.url}/api/me/channels").status_code == 401
    r = httpx.put(f"{server.url}/api/me/channels", json={})
    assert r.status_code == 401
