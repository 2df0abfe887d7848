"""Browser accounts against a running duetime: sign-up, the session cookie on the task API
with CSRF, fixation, sign-in limits, sign-out, password changes, sign-up modes, disabled
accounts, bad input, bearer tokens beside it all, and `duetime users`."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import httpx
import pytest

from duetime.auth import issue_token
from tests.e2e.conftest import Server

SECRET = "test-secret-for-accounts-0123456789abcdef"
PASSWORD = "correct horse battery"


class Browser:
    """An HTTP client that keeps the `duetime_session` cookie as a browser would, and shows
    the cookie's attributes."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.http = httpx.Client(base_url=server.url, timeout=30)
        self.token: str | None = None
        self.attributes: dict[str, Any] = {}
        self.csrf: str | None = None

    def request(
        self, method: str, path: str, *, csrf: bool = True, **kwargs: Any
    ) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}))
        if self.token is not None:
            headers["cookie"] = f"duetime_session={self.token}"
        if csrf and self.csrf is not None and method != "GET":
            headers.setdefault("x-csrf-token", self.csrf)
        response = self.http.request(method, path, headers=headers, **kwargs)
        for value in response.headers.get_list("set-cookie"):
            cookie = SimpleCookie()
            cookie.load(value)
            if "duetime_session" in cookie:
                morsel = cookie["duetime_session"]
                self.attributes = {k: morsel[k] for k in morsel if morsel[k]}
                self.attributes["raw"] = value
                if morsel["max-age"] == "0":
                    self.token = None
                else:
                    self.token = morsel.value
        if path in ("/api/auth/signup", "/api/auth/signin") and response.status_code < 300:
            self.csrf = response.json()["csrf_token"]
        return response

    def sign_up(
        self,
        email: str,
        password: str = PASSWORD,
        *,
        headers: dict[str, str] | None = None,
        **more: Any,
    ) -> httpx.Response:
        body = {"email": email, "password": password, **more}
        return self.request("POST", "/api/auth/signup", json=body, headers=headers or {})

    def sign_in(self, email: str, password: str = PASSWORD, **kwargs: Any) -> httpx.Response:
        return self.request(
            "POST", "/api/auth/signin", json={"email": email, "password": password}, **kwargs
        )

    def close(self) -> None:
        self.http.close()


def run_cli(
    server: Server, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **{k: v for k, v in server._env.items() if k.startswith("DUETIME_")}}
    return subprocess.run(
        [sys.executable, "-m", "duetime", "users", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def bearer(user: str) -> dict[str, str]:
    token = issue_token(SECRET, user, ttl=timedelta(hours=1), now=datetime.now(UTC))
    return {"authorization": f"Bearer {token}"}


@pytest.fixture
def start(make_server: Callable[..., Server]) -> Callable[..., Server]:
    def started(**env: str) -> Server:
        return make_server(DUETIME_JWT_SECRET=SECRET, **env).start()

    return started


@pytest.fixture
def browsers() -> Any:
    made: list[Browser] = []

    def make(server: Server) -> Browser:
        browser = Browser(server)
        made.append(browser)
        return browser

    yield make
    for browser in made:
        browser.close()


def test_sign_up_then_tasks_with_the_cookie_and_the_csrf_token(
    start: Callable[..., Server], browsers: Callable[[Server], Browser]
) -> None:
    server = start()
    alice = browsers(server)
    r = alice.sign_up("Alice@Example.com")
    assert r.status_code == 201, r.text
    me = r.json()
    assert me["email"] == "alice@example.com" and me["is_admin"] is False
    assert r.headers["cache-control"] == "no-store"
    attrs = alice.attributes
    assert attrs["httponly"] and attrs["path"] == "/" and attrs["samesite"].lower() == "lax"
    assert "secure" not in attrs  # plain http on loopback
    assert alice.token is not None and len(alice.token) >= 43
    assert alice.token not in r.text  # the token is only in the cookie

    session = alice.request("GET", "/api/auth/session")
    assert session.status_code == 200 and session.json()["csrf_token"] == me["csrf_token"]
    assert session.json()["user_id"] == me["user_id"]

    created = alice.request("POST", "/api/tasks", json={"title": "Pay rent"})
    assert created.status_code == 201, created.text
    listed = alice.request("GET", "/api/tasks")
    assert [t["title"] for t in listed.json()["tasks"]] == ["Pay rent"]
    task_id = created.json()["id"]
    patched = alice.request("PATCH", f"/api/tasks/{task_id}", json={"title": "Pay the rent"})
    assert patched.status_code == 200 and patched.json()["title"] == "Pay the rent"

    missing = alice.request("POST", "/api/tasks", json={"title": "x"}, csrf=False)
    assert missing.status_code == 403 and "X-CSRF-Token" in missing.json()["detail"]
    wrong = alice.request(
        "DELETE", f"/api/tasks/{task_id}", csrf=False, headers={"x-csrf-token": "nope"}
    )
    assert wrong.status_code == 403 and "wrong X-CSRF-Token" in wrong.json()["detail"]
    evil = alice.request(
        "POST", "/api/tasks", json={"title": "x"}, headers={"origin": "https://evil.example"}
    )
    assert evil.status_code == 403 and "cross-site" in evil.json()["detail"]
    fetch = alice.request(
        "POST", "/api/tasks", json={"title": "x"}, headers={"sec-fetch-site": "cross-site"}
    )
    assert fetch.status_code == 403 and "Sec-Fetch-Site" in fetch.json()["detail"]
    null = alice.request("POST", "/api/tasks", json={"title": "x"}, headers={"origin": "null"})
    assert null.status_code == 403
    own = alice.request(
        "POST",
        "/api/tasks",
        json={"title": "From the page"},
        headers={"origin": server.url, "sec-fetch-site": "same-origin"},
    )
    assert own.status_code == 201, own.text
    # a cross-site form post (text/plain or urlencoded, no custom header) is refused too
    form = alice.request(
        "POST",
        "/api/tasks",
        csrf=False,
        content=b'{"title": "forged"}',
        headers={"content-type": "text/plain", "origin": "https://evil.example"},
    )
    assert form.status_code == 403
    titles = sorted(t["title"] for t in alice.request("GET", "/api/tasks").json()["tasks"])
    assert titles == ["From the page", "Pay the rent"]


def test_sign_in_gives_a_new_session_and_ends_the_old_one(
    start: Callable[..., Server], browsers: Callable[[Server], Browser]
) -> None:
    server = start()
    browser = browsers(server)
    assert browser.sign_up("alice@example.com").status_code == 201
    planted = browser.token
    old_csrf = browser.csrf
    r = browser.sign_in("alice@example.com")
    assert r.status_code == 200, r.text
    assert browser.token != planted and browser.csrf != old_csrf
    stale = httpx.get(f"{server.url}/api/auth/session", cookies={"duetime_session": planted or ""})
    assert stale.status_code == 401
    assert (
        'duetime_session=""' in stale.headers["set-cookie"]
        or "duetime_session=;" in (stale.headers["set-cookie"])
    )
    assert browser.request("GET", "/api/auth/session").status_code == 200
    # a session id an attacker made up is never adopted: sign-in ignores it
    attacker = browsers(server)
    attacker.token = "chosen-by-the-attacker"
    assert attacker.sign_in("alice@example.com").status_code == 200
    assert attacker.token != "chosen-by-the-attacker"


def test_wrong_password_and_unknown_email_get_the_same_answer_in_similar_time(
    start: Callable[..., Server], browsers: Callable[[Server], Browser]
) -> None:
    server = start(DUETIME_SIGNIN_MAX_FAILURES="50", DUETIME_SIGNIN_MAX_FAILURES_PER_IP="100")
    browser = browsers(server)
    assert browser.sign_up("alice@example.com").status_code == 201
    wrong_times, unknown_times, answers = [], [], set()
    for n in range(5):
        started = time.perf_counter()
        wrong = browser.sign_in("alice@example.com", "not the password")
        wrong_times.append(time.perf_counter() - started)
        started = time.perf_counter()
        unknown = browser.sign_in(f"nobody{n}@example.com", "not the password")
        unknown_times.append(time.perf_counter() - started)
        for r in (wrong, unknown):
            answers.add((r.status_code, r.text, "set-cookie" in r.headers))
    assert answers == {(401, '{"detail":"wrong email or password"}', False)}
    ratio = statistics.median(unknown_times) / statistics.median(wrong_times)
    assert 0.33 < ratio < 3.0, (wrong_times, unknown_times)


def test_failed_sign_ins_are_limited_with_retry_after(
    start: Callable[..., Server], browsers: Callable[[Server], Browser]
) -> None:
    server = start(DUETIME_SIGNIN_MAX_FAILURES="3")
    browser = browsers(server)
    assert browser.sign_up("alice@example.com").status_code == 201
    for _ in range(3):
        assert browser.sign_in("alice@example.com", "not the password").status_code == 401
    limited = browser.sign_in("alice@example.com")  # the right password, not even tried
    assert limited.status_code == 429, limited.text
    assert 0 < int(limited.headers["retry-after"]) <= 15 * 60
    assert "too many failed sign-ins" in limited.json()["detail"]
    assert browser.sign_in("ALICE@example.com").status_code == 429  # the same email
    assert browser.sign_in("bob@example.com", "whatever pw").status_code == 401  # another


def test_the_ip_limit_counts_failures_for_every_email(
    start: Callable[..., Server], browsers: Callable[[Server], Browser]
) -> None:
    server = start(DUETIME_SIGNIN_MAX_FAILURES_PER_IP="4")
    browser = browsers(server)
    for n in range(4):
        assert browser.sign_in(f"user{n}@example.com", "guess guess").status_code == 401
    assert browser.sign_in("user9@example.com", "guess guess").status_code == 429


def test_sign_out_ends_the_session(
    start: Callable[..., Server], browsers: Callable[[Server], Browser]
) -> None:
    server = start()
    browser = browsers(server)
    assert browser.sign_up("alice@example.com").status_code == 201
    token = browser.token
    no_csrf = browser.request("POST", "/api/auth/signout", csrf=False)
    assert no_csrf.status_code == 403  # a forged sign-out is refused like any change
    out = browser.request("POST", "/api/auth/signout")
    assert out.status_code == 204 and browser.token is None
    assert "Max-Age=0" in out.headers["set-cookie"]
    replay = httpx.get(f"{server.url}/api/tasks", cookies={"duetime_session": token or ""})
    assert replay.status_code == 401 and "sign in again" in replay.json()["detail"]
    assert replay.headers["www-authenticate"] == "Bearer"
    again = browser.request("POST", "/api/auth/signout")  # nothing to end: still 204
    assert again.status_code == 204


def test_changing_the_password_ends_the_other_sessions(
    start: Callable[..., Server], browsers: Callable[[Server], Browser]
) -> None:
    server = start()
    laptop, phone = browsers(server), browsers(server)
    assert laptop.sign_up("alice@example.com").status_code == 201
    assert phone.sign_in("alice@example.com").status_code == 200
    body = {"current_password": PASSWORD, "new_password": "a brand new secret"}
    forged = laptop.request("POST", "/api/auth/password", json=body, csrf=False)
    assert forged.status_code == 403
    wrong = laptop.request(
        "POST", "/api/auth/password", json={**body, "current_password": "not it at all"}
    )
    assert wrong.status_code == 422 and "current_password" in wrong.json()["detail"]
    changed = laptop.request("POST", "/api/auth/password", json=body)
    assert changed.status_code == 200 and changed.json() == {"ended_sessions": 1}
    assert laptop.request("GET", "/api/tasks").status_code == 200
    assert phone.request("GET", "/api/tasks").status_code == 401
    assert phone.sign_in("alice@example.com").status_code == 401
    assert phone.sign_in("alice@example.com", "a brand new secret").status_code == 200


def test_bearer_tokens_work_as_before_beside_sessions(
    start: Callable[..., Server], browsers: Callable[[Server], Browser]
) -> None:
    server = start()
    with httpx.Client(base_url=server.url, headers=bearer("tokenuser"), timeout=30) as api:
        created = api.post(
            "/api/tasks", json={"title": "via token"}, headers={"origin": "https://elsewhere"}
        )
        assert created.status_code == 201, created.text  # no CSRF for a bearer token
        assert [t["title"] for t in api.get("/api/tasks").json()["tasks"]] == ["via token"]
        bad = api.get("/api/tasks", headers={"authorization": "Bearer nope"})
        assert bad.status_code == 401 and bad.json()["detail"] == "malformed token"
    none = httpx.get(f"{server.url}/api/tasks")
    assert none.status_code == 401 and "missing Authorization header" in none.json()["detail"]
    # an existing token user given an account keeps their tasks
    made = run_cli(
        server,
        "create",
        "token@example.com",
        "--password-stdin",
        "--user-id",
        "tokenuser",
        stdin=PASSWORD + "\n",
    )
    assert made.returncode == 0, made.stderr
    browser = browsers(server)
    assert browser.sign_in("token@example.com").status_code == 200
    assert [t["title"] for t in browser.request("GET", "/api/tasks").json()["tasks"]] == [
        "via token"
    ]
    # a bearer header wins over a cookie, and needs no CSRF token with one
    both = browser.request(
        "POST", "/api/tasks", json={"title": "both"}, csrf=False, headers=bearer("someone")
    )
    assert both.status_code == 201
    with httpx.Client(base_url=server.url, headers=bearer("someone"), timeout=30) as api:
        assert [t["title"] for t in api.get("/api/tasks").json()["tasks"]] == ["both"]


def test_a_second_user_sees_none_of_the_first_users_tasks(
    start: Callable[..., Server], browsers: Callable[[Server], Browser]
) -> None:
    server = start()
    alice, bob = browsers(server), browsers(server)
    assert alice.sign_up("alice@example.com").status_code == 201
    assert bob.sign_up("bob@example.com").status_code == 201
    task = alice.request("POST", "/api/tasks", json={"title": "Alice's secret"}).json()
    assert bob.request("GET", "/api/tasks").json()["tasks"] == []
    assert bob.request("GET", f"/api/tasks/{task['id']}").status_code == 404
    assert bob.request("DELETE", f"/api/tasks/{task['id']}").status_code == 404
    # bob's CSRF token is no good on alice's session
    stolen = alice.request(
        "POST", "/api/tasks", json={"title": "x"}, csrf=False, headers={"x-csrf-token": bob.csrf}
    )
    assert stolen.status_code == 403
    assert len(alice.request("GET", "/api/tasks").json()["tasks"]) == 1


def test_sign_up_closed(
    start: Callable[..., Server], browsers: Callable[[Server], Browser]
) -> None:
    server = start(DUETIME_SIGNUP="closed")
    browser = browsers(server)
    r = browser.sign_up("alice@example.com")
    assert r.status_code == 403 and "closed" in r.json()["detail"]
    made = run_cli(server, "create", "alice@example.com", "--password-stdin", stdin=PASSWORD)
    assert made.returncode == 0, made.stderr
    assert browser.sign_in("alice@example.com").status_code == 200


def test_sign_up_by_invite(
    start: Callable[..., Server], browsers: Callable[[Server], Browser]
) -> None:
    server = start(DUETIME_SIGNUP="invite")
    browser = browsers(server)
    missing = browser.sign_up("alice@example.com")
    assert missing.status_code == 422 and missing.json()["detail"].startswith("invite:")
    made = run_cli(server, "invite", "--ttl", "1h")
    assert made.returncode == 0, made.stderr
    code = made.stdout.strip()
    assert len(code) >= 20 and "\n" not in code
    assert browser.sign_up("alice@example.com", invite=code).status_code == 201
    other = browsers(server)
    reused = other.sign_up("bob@example.com", invite=code)
    assert reused.status_code == 422 and "used or expired" in reused.json()["detail"]
    bogus = other.sign_up("bob@example.com", invite="made-up")
    assert bogus.status_code == 422 and bogus.json()["errors"][0]["loc"] == ["body", "invite"]


def test_a_disabled_account_cannot_sign_in_and_its_sessions_stop(
    start: Callable[..., Server], browsers: Callable[[Server], Browser]
) -> None:
    server = start()
    browser = browsers(server)
    assert browser.sign_up("alice@example.com").status_code == 201
    assert browser.request("GET", "/api/tasks").status_code == 200
    off = run_cli(server, "disable", "ALICE@example.com")
    assert off.returncode == 0 and off.stdout.strip() == "disabled alice@example.com"
    assert browser.request("GET", "/api/tasks").status_code == 401
    refused = browsers(server).sign_in("alice@example.com")
    assert refused.status_code == 403 and "disabled" in refused.json()["detail"]
    wrong = browsers(server).sign_in("alice@example.com", "not the password")
    assert wrong.status_code == 401 and wrong.json()["detail"] == "wrong email or password"
    assert run_cli(server, "enable", "alice@example.com").returncode == 0
    assert browsers(server).sign_in("alice@example.com").status_code == 200


def test_login_csrf_a_cross_site_sign_in_is_refused(
    start: Callable[..., Server], browsers: Callable[[Server], Browser]
) -> None:
    server = start()
    browser = browsers(server)
    assert browser.sign_up("mallory@example.com").status_code == 201
    victim = browsers(server)
    r = victim.sign_in("mallory@example.com", headers={"origin": "https://evil.example"})
    assert r.status_code == 403 and victim.token is None
    r = victim.sign_up("x@example.com", headers={"sec-fetch-site": "same-site"})
    assert r.status_code == 403


BAD_INPUT = [
    ("/api/auth/signup", {}, "email"),
    ("/api/auth/signup", {"email": "alice@example.com"}, "password"),
    ("/api/auth/signup", {"email": 5, "password": PASSWORD}, "email"),
    ("/api/auth/signup", {"email": None, "password": PASSWORD}, "email"),
    ("/api/auth/signup", {"email": "not-an-email", "password": PASSWORD}, "email"),
    ("/api/auth/signup", {"email": "a b@example.com", "password": PASSWORD}, "email"),
    ("/api/auth/signup", {"email": "x" * 2000 + "@e.com", "password": PASSWORD}, "email"),
    ("/api/auth/signup", {"email": "a@example.com", "password": "short"}, "password"),
    ("/api/auth/signup", {"email": "a@example.com", "password": "p" * 1025}, "password"),
    ("/api/auth/signup", {"email": "a@example.com", "password": "a@example.com"}, "password"),
    ("/api/auth/signup", {"email": "a@example.com", "password": ["list"]}, "password"),
    ("/api/auth/signup", {"email": "a@example.com", "password": PASSWORD, "admin": True}, "admin"),
    ("/api/auth/signup", {"email": "a@example.com", "password": PASSWORD, "invite": 3}, "invite"),
    ("/api/auth/signin", {"password": PASSWORD}, "email"),
    ("/api/auth/signin", {"email": "@@", "password": PASSWORD}, "email"),
    ("/api/auth/signin", {"email": "a@example.com", "password": "p" * 5000}, "password"),
    ("/api/auth/signin", {"email": "a@example.com", "password": 12345678901}, "password"),
    ("/api/auth/signin", {"email": "a\u0000b@example.com", "password": PASSWORD}, "email"),
]


def test_every_bad_input_is_a_4xx_naming_the_field(
    start: Callable[..., Server], browsers: Callable[[Server], Browser]
) -> None:
    server = start()
    browser = browsers(server)
    for path, body, field in BAD_INPUT:
        r = browser.request("POST", path, json=body)
        assert r.status_code == 422, (path, body, r.status_code, r.text)
        assert field in r.json()["detail"], (body, r.text)
    for raw in (
        b"",
        b"{",
        b"[]",
        b'"text"',
        b"\xff\xfe",
        b'{"email": "a@example.com", "email": 1}',
    ):
        r = browser.request("POST", "/api/auth/signin", content=raw)
        assert 400 <= r.status_code < 500, (raw, r.text)
    r = browser.request(
        "POST",
        "/api/auth/signin",
        content=b"email=a&password=b",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 422
    assert browser.sign_up("alice@example.com").status_code == 201
    for body, field in [
        ({"current_password": PASSWORD}, "new_password"),
        ({"current_password": PASSWORD, "new_password": "tiny"}, "new_password"),
        ({"current_password": PASSWORD, "new_password": PASSWORD}, "new_password"),
        ({"current_password": "x" * 2000, "new_password": "long enough pw"}, "current_password"),
        ({"current_password": 1, "new_password": "long enough pw"}, "current_password"),
    ]:
        r = browser.request("POST", "/api/auth/password", json=body)
        assert r.status_code == 422 and field in r.json()["detail"], (body, r.text)
    taken = browsers(server).sign_up("ALICE@example.com")
    assert taken.status_code == 409 and "exists already" in taken.json()["detail"]
    long_cookie = httpx.get(f"{server.url}/api/tasks", cookies={"duetime_session": "x" * 5000})
    assert long_cookie.status_code == 401
    not_signed = httpx.get(f"{server.url}/api/auth/session")
    assert not_signed.status_code == 401 and not_signed.json()["detail"] == "not signed in"
    with httpx.Client(base_url=server.url, headers=bearer("nobody"), timeout=30) as api:
        r = api.post(
            "/api/auth/password",
            json={"current_password": PASSWORD, "new_password": "long enough pw"},
        )
        assert r.status_code == 404 and "no account" in r.json()["detail"]
    log = Path(server._log).read_text()
    assert "Traceback" not in log and " 500 " not in log


def test_the_cookie_is_secure_over_https_or_when_forced(
    start: Callable[..., Server], browsers: Callable[[Server], Browser]
) -> None:
    server = start()
    browser = browsers(server)
    # uvicorn trusts X-Forwarded-Proto from a proxy on 127.0.0.1 (its default)
    r = browser.sign_up("alice@example.com", headers={"x-forwarded-proto": "https"})
    assert r.status_code == 201 and browser.attributes.get("secure") is True
    server.stop()
    forced = start(DUETIME_SESSION_COOKIE_SECURE="true")
    browser = browsers(forced)
    assert browser.sign_in("alice@example.com").status_code == 200
    assert browser.attributes.get("secure") is True


def test_users_create_list_disable_from_the_cli(start: Callable[..., Server]) -> None:
    server = start()
    made = run_cli(
        server, "create", "Root@Example.com", "--admin", "--password-stdin", stdin=PASSWORD
    )
    assert made.returncode == 0, made.stderr
    assert made.stdout.startswith("created root@example.com (admin), user id u")
    assert (
        run_cli(server, "create", "bob@example.com", "--password-stdin", stdin=PASSWORD).returncode
        == 0
    )
    dup = run_cli(server, "create", "BOB@example.com", "--password-stdin", stdin=PASSWORD)
    assert dup.returncode == 1 and "exists already" in dup.stderr
    weak = run_cli(server, "create", "carol@example.com", "--password-stdin", stdin="short\n")
    assert weak.returncode == 2 and "password" in weak.stderr and "Traceback" not in weak.stderr
    bad = run_cli(server, "create", "not-an-email", "--password-stdin", stdin=PASSWORD)
    assert bad.returncode == 2 and "EMAIL" in bad.stderr
    no_tty = run_cli(server, "create", "carol@example.com", stdin="")
    assert no_tty.returncode == 2 and "--password-stdin" in no_tty.stderr
    listed = run_cli(server, "list", "--json")
    accounts = json.loads(listed.stdout)
    assert [(a["email"], a["is_admin"], a["disabled"]) for a in accounts] == [
        ("root@example.com", True, False),
        ("bob@example.com", False, False),
    ]
    assert run_cli(server, "disable", "bob@example.com").returncode == 0
    table = run_cli(server, "list").stdout.splitlines()
    assert table[0].split()[:2] == ["EMAIL", "USER"] and "disabled" in table[2]
    gone = run_cli(server, "disable", "nobody@example.com")
    assert gone.returncode == 1 and "no account" in gone.stderr
    not_invite = run_cli(server, "invite")
    assert not_invite.returncode == 1 and "DUETIME_SIGNUP=invite" in not_invite.stderr
    with httpx.Client(base_url=server.url, timeout=30) as http:
        root = http.post(
            "/api/auth/signin", json={"email": "root@example.com", "password": PASSWORD}
        )
        assert root.status_code == 200 and root.json()["is_admin"] is True
