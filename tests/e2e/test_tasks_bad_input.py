"""Bad input on every task endpoint: a 4xx with a clear message, nothing written, no 500."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from duetime.auth import issue_token
from tests.e2e.conftest import Server

SECRET = "bad-input-secret-0123456789abcdef0123"


def token(user: str, *, ttl: timedelta = timedelta(hours=1), secret: str = SECRET) -> str:
    return issue_token(secret, user, ttl=ttl, now=datetime.now(UTC))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp: Path = tmp_path_factory.mktemp("bad-input")
    s = Server(
        {"DUETIME_DATA_DIR": str(tmp / "data"), "DUETIME_JWT_SECRET": SECRET}, tmp / "log"
    ).start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def api(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=server.url, headers={"authorization": f"Bearer {token('bob')}"}, timeout=30
    ) as client:
        yield client


@pytest.fixture(scope="module")
def task(api: httpx.Client) -> dict:
    due = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    r = api.post("/api/tasks", json={"title": "Existing", "due_at": due})
    assert r.status_code == 201
    return r.json()


def count(api: httpx.Client) -> int:
    return len(api.get("/api/tasks", params={"limit": 500}).json()["tasks"])


BAD_TASKS = [
    ({}, "title"),
    ({"title": ""}, "title"),
    ({"title": "   "}, "blank"),
    ({"title": "x" * 501}, "title"),
    ({"title": 42}, "title"),
    ({"title": "t", "due_at": "2030-01-01T09:00:00"}, "UTC offset"),
    ({"title": "t", "due_at": "next tuesday"}, "RFC3339"),
    ({"title": "t", "due_at": "2030-01-01T09:00:00", "timezone": "Mars/Base"}, "time zone"),
    ({"title": "t", "timezone": "Not/AZone"}, "time zone"),
    ({"title": "t", "due_at": "2030-01-01T09:00:00Z", "reminders": [{"before": "10m"}]}, "before"),
    (
        {"title": "t", "due_at": "2030-01-01T09:00:00Z", "reminders": [{"before": "-PT1M"}]},
        "before",
    ),
    ({"title": "t", "reminders": [{"before": "PT10M"}]}, "due_at"),
    ({"title": "t", "reminders": [{"at": "2030-01-01T09:00:00"}]}, "offset"),
    ({"title": "t", "reminders": [{"before": "PT1M", "at": "2030-01-01T09:00:00Z"}]}, "either"),
    ({"title": "t", "reminders": [{}]}, "either"),
    ({"title": "t", "reminders": "PT10M"}, "reminders"),
    ({"title": "t", "reminders": [{"before": "PT1M"}] * 21}, "reminders"),
    ({"title": "t", "priority": "urgent"}, "priority"),
    ({"title": "t", "tags": "home"}, "tags"),
    ({"title": "t", "tags": [1]}, "tags"),
    ({"title": "t", "status": "archived"}, "status"),
    ({"title": "t", "colour": "red"}, "colour"),
    ({"title": "t", "due_at": 1700000000}, "due_at"),
    ([{"title": "t"}], ""),
]


@pytest.mark.parametrize(("body", "mentions"), BAD_TASKS)
def test_bad_task_bodies_are_422_and_store_nothing(
    api: httpx.Client, task: dict, body: object, mentions: str
) -> None:
    before = count(api)
    r = api.post("/api/tasks", json=body)
    assert r.status_code == 422, r.text
    assert mentions.lower() in r.text.lower()
    assert isinstance(r.json()["detail"], str) and r.json()["detail"]
    r = api.put(f"/api/tasks/{task['id']}", json=body)
    assert r.status_code == 422, r.text
    assert count(api) == before
    assert api.get(f"/api/tasks/{task['id']}").json()["version"] == task["version"]


@pytest.mark.parametrize(
    "body",
    [
        {"title": None},
        {"title": ""},
        {"priority": None},
        {"due_at": "soon"},
        {"reminders": [{"before": "P"}]},
        {"unknown": 1},
        {"tags": None},
    ],
)
def test_bad_patches_are_422_and_change_nothing(api: httpx.Client, task: dict, body: dict) -> None:
    r = api.patch(f"/api/tasks/{task['id']}", json=body)
    assert r.status_code == 422, r.text
    assert api.get(f"/api/tasks/{task['id']}").json()["version"] == task["version"]


def test_malformed_json_and_wrong_content(api: httpx.Client) -> None:
    before = count(api)
    for content in (b"{not json", b"", b"null", b'"text"'):
        r = api.post("/api/tasks", content=content, headers={"content-type": "application/json"})
        assert r.status_code == 422, (content, r.text)
    assert count(api) == before


def test_oversized_body_is_413(api: httpx.Client) -> None:
    before = count(api)
    huge = {"title": "big", "description": "x" * (9 * 1024 * 1024)}
    r = api.post("/api/tasks", json=huge)
    assert r.status_code == 413 and "bytes" in r.json()["detail"]
    assert count(api) == before


def test_batch_validates_everything_before_writing_anything(api: httpx.Client) -> None:
    before = count(api)
    body = {"tasks": [{"title": "ok"}, {"title": "ok too"}, {"title": "t", "timezone": "Nope"}]}
    r = api.post("/api/tasks/batch", json=body)
    assert r.status_code == 422 and "tasks" in r.text
    r = api.post(
        "/api/tasks/batch", json={"tasks": [{"title": "a"}, {"title": "b", "due_at": "x"}]}
    )
    assert r.status_code == 422 and "tasks[1]" in r.json()["detail"]
    assert api.post("/api/tasks/batch", json={"tasks": []}).status_code == 422
    assert api.post("/api/tasks/batch", json={"items": []}).status_code == 422
    assert count(api) == before


@pytest.mark.parametrize(
    "params",
    [
        {"status": "archived"},
        {"due_before": "tomorrow"},
        {"due_after": "2030-01-01T00:00:00"},
        {"sort": "title"},
        {"limit": "0"},
        {"limit": "501"},
        {"limit": "many"},
        {"cursor": "not-a-cursor"},
        {"cursor": base64.urlsafe_b64encode(json.dumps(["n", 1, "x"]).encode()).decode()},
    ],
)
def test_bad_list_parameters_are_422(api: httpx.Client, params: dict) -> None:
    r = api.get("/api/tasks", params=params)
    assert r.status_code == 422, r.text
    assert r.json()["detail"]


def test_bad_notification_parameters(api: httpx.Client) -> None:
    assert api.get("/api/notifications", params={"unread": "perhaps"}).status_code == 422
    assert api.get("/api/notifications", params={"cursor": "zzz"}).status_code == 422
    assert api.post("/api/notifications/nope/read").status_code == 404


def test_unknown_ids_are_404(api: httpx.Client) -> None:
    for method, path in [
        ("GET", "/api/tasks/nope"),
        ("PATCH", "/api/tasks/nope"),
        ("DELETE", "/api/tasks/nope"),
        ("POST", "/api/tasks/nope/complete"),
        ("POST", "/api/tasks/nope/reopen"),
    ]:
        r = api.request(method, path, json={} if method == "PATCH" else None)
        assert r.status_code == 404, (method, path, r.text)


def test_stale_version_is_412(api: httpx.Client, task: dict) -> None:
    r = api.patch(f"/api/tasks/{task['id']}", json={"title": "x"}, headers={"if-match": "999"})
    assert r.status_code == 412 and "version" in r.json()["detail"]
    r = api.patch(f"/api/tasks/{task['id']}", json={"title": "x"}, headers={"if-match": "abc"})
    assert r.status_code == 400


def _none_token() -> str:
    def b64(obj: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    exp = int((datetime.now(UTC) + timedelta(hours=1)).timestamp())
    return f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64({'sub': 'bob', 'exp': exp})}."


# The headers are made inside the test, so every pytest-xdist worker collects the same ids.
BAD_AUTHORIZATIONS: dict[str, Callable[[], str | None]] = {
    "none": lambda: None,
    "bearer-alone": lambda: "Bearer",
    "not-a-jwt": lambda: "Bearer not.a.jwt",
    "basic": lambda: "Basic Ym9iOnB3",
    "expired": lambda: f"Bearer {token('bob', ttl=timedelta(seconds=-60))}",
    "other-secret": lambda: f"Bearer {token('bob', secret='another-secret-another-secret-0123')}",
    "alg-none": lambda: f"Bearer {_none_token()}",
}


@pytest.mark.parametrize("kind", BAD_AUTHORIZATIONS)
def test_bad_tokens_are_401_everywhere(server: Server, kind: str) -> None:
    authorization = BAD_AUTHORIZATIONS[kind]()
    headers = {} if authorization is None else {"authorization": authorization}
    for method, path in [
        ("GET", "/api/tasks"),
        ("POST", "/api/tasks"),
        ("POST", "/api/tasks/batch"),
        ("GET", "/api/notifications"),
        ("DELETE", "/api/tasks/x"),
    ]:
        r = httpx.request(method, f"{server.url}{path}", headers=headers, json={"title": "t"})
        assert r.status_code == 401, (authorization, path, r.text)
        assert r.json()["detail"] and "Traceback" not in r.text


def test_nul_characters_are_refused(server: Server, api: httpx.Client) -> None:
    before = count(api)
    assert api.post("/api/tasks", json={"title": "a\x00b"}).status_code == 422
    assert api.get("/api/tasks", params={"q": "a\x00"}).status_code == 400
    assert api.get("/api/tasks/a%00b").status_code == 400
    dapr = httpx.get(f"{server.url}/v1.0/jobs", params={"prefix": "\x00"})
    assert dapr.status_code == 400 and dapr.json()["errorCode"] == "ERR_MALFORMED_REQUEST"
    assert httpx.delete(f"{server.url}/v1.0/jobs/a%00b").status_code == 400
    assert count(api) == before


@pytest.mark.parametrize(
    "body",
    [
        {"title": "t", "due_at": "0001-01-01T00:00:00", "timezone": "Asia/Tokyo"},
        {"title": "t", "due_at": "9999-12-31T23:59:59", "timezone": "America/New_York"},
        {"title": "t", "due_at": "0001-01-01T00:00:00Z", "reminders": [{"before": "PT1H"}]},
        {"title": "t", "due_at": "2030-01-01T00:00:00Z", "reminders": [{"before": "P2000000D"}]},
        {"title": "t", "timezone": "a" * 300},
        {"title": "t", "timezone": "America"},
        {"title": "t", "reminders": [{"at": "0001-01-01T00:00:00+01:00"}]},
    ],
)
def test_calendar_edges_are_422(api: httpx.Client, body: dict) -> None:
    before = count(api)
    r = api.post("/api/tasks", json=body)
    assert r.status_code == 422, r.text
    r = api.post("/api/tasks/batch", json={"tasks": [{"title": "ok"}, body]})
    assert r.status_code == 422, r.text
    assert count(api) == before


def test_out_of_range_cursors_are_422(api: httpx.Client) -> None:
    def cursor(kind: str, value: object) -> str:
        return base64.urlsafe_b64encode(json.dumps([kind, value, "x"]).encode()).decode()

    for kind, value in [("created_at", 2**70), ("created_at", True), ("created_at", 1.5)]:
        assert api.get("/api/tasks", params={"cursor": cursor(kind, value)}).status_code == 422
    r = api.get("/api/notifications", params={"cursor": cursor("n", 2**70)})
    assert r.status_code == 422


def test_batch_rule_errors_name_the_task(api: httpx.Client) -> None:
    body = {"tasks": [{"title": "ok"}, {"title": "t", "reminders": [{"before": "PT1M"}]}]}
    r = api.post("/api/tasks/batch", json=body)
    assert r.status_code == 422 and r.json()["detail"].startswith("tasks[1]:")


# -- issue 15: what a newcomer hit ------------------------------------------------------


@pytest.mark.parametrize(
    "content_type", [None, "application/x-www-form-urlencoded", "text/plain; charset=utf-8"]
)
def test_a_body_is_json_whatever_its_content_type_says(
    server: Server, api: httpx.Client, content_type: str | None
) -> None:
    """Item 6: one rule for every body, the task API's and the Jobs API's (daprd's rule)."""
    headers = {} if content_type is None else {"content-type": content_type}
    r = api.post("/api/tasks", content=b'{"title": "curl -d"}', headers=headers)
    assert r.status_code == 201, r.text
    assert r.json()["title"] == "curl -d"
    name = f"ct-{len(content_type or '')}"
    r = httpx.post(f"{server.url}/v1.0/jobs/{name}", content=b'{"dueTime": "1h"}', headers=headers)
    assert r.status_code == 204, r.text
    assert httpx.delete(f"{server.url}/v1.0/jobs/{name}").status_code == 204
    form = api.post("/api/tasks", content=b"title=form", headers=headers)
    assert form.status_code == 422
    assert form.json()["detail"].startswith("the body is not valid JSON")


def test_batch_errors_all_name_the_task_as_tasks_n(api: httpx.Client) -> None:
    """Item 15: a field rule and a rule checked later both read `tasks[N]…`."""
    before = count(api)
    for bad in (
        {"title": "b", "recurrence": "FREQ=BOGUS"},
        {"title": "b", "reminders": [{"before": "PT1M", "at": "2030-01-01T00:00:00Z"}]},
        {"title": "b", "due_at": "nope"},
        {"title": "b", "timezone": "Mars/Olympus"},
    ):
        r = api.post("/api/tasks/batch", json={"tasks": [{"title": "a"}, bad]})
        assert r.status_code == 422, r.text
        detail = r.json()["detail"]
        assert detail.startswith("tasks[1]"), detail
        assert "Value error" not in r.text and "tasks.1" not in detail
    assert count(api) == before


@pytest.mark.parametrize("body,_", BAD_TASKS)
def test_no_422_carries_pydantics_value_error_prefix(api: httpx.Client, body: dict, _: str) -> None:
    r = api.post("/api/tasks", json=body)
    assert r.status_code == 422 and "Value error, " not in r.text, r.text


SURROGATE = b'"\\ud800"'


def test_a_lone_surrogate_in_a_duration_is_a_422_not_a_500(api: httpx.Client, task: dict) -> None:
    """Item 17: the message echoes the input; it must encode whatever the input was."""
    reminders = b'{"title": "t", "due_at": "2030-01-01T09:00:00Z", "reminders": [{"before": %s}]}'
    body = reminders % SURROGATE
    before = count(api)
    calls = [
        ("POST", "/api/tasks", body),
        ("PUT", f"/api/tasks/{task['id']}", body),
        ("PATCH", f"/api/tasks/{task['id']}", b'{"reminders": [{"before": %s}]}' % SURROGATE),
        ("POST", "/api/tasks/batch", b'{"tasks": [%s]}' % body),
        ("POST", "/api/notifications/n-1/snooze", b'{"for": %s}' % SURROGATE),
        ("POST", "/api/tasks", b'{"title": "t", "due_at": %s}' % SURROGATE),
        ("POST", "/api/tasks", b'{"title": "t", %s: 1}' % SURROGATE),
    ]
    for method, path, content in calls:
        r = api.request(method, path, content=content)
        assert r.status_code == 422, (method, path, r.text)
        assert "detail" in r.json()
    assert "\\ud800" in api.post("/api/tasks", content=body).json()["detail"]
    assert count(api) == before
    assert api.get(f"/api/tasks/{task['id']}").json()["version"] == task["version"]


def test_a_due_time_in_a_dst_gap_shows_the_wall_time_it_comes_at(api: httpx.Client) -> None:
    """Item 16: 02:30 on the night Paris jumps from 02:00 to 03:00 comes at 03:30."""
    r = api.post(
        "/api/tasks",
        json={"title": "gap", "due_at": "2027-03-28T02:30:00", "timezone": "Europe/Paris"},
    )
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["due_at"] == "2027-03-28T01:30:00Z"
    assert created["local_due_at"] == "2027-03-28T03:30:00"
    assert api.get(f"/api/tasks/{created['id']}").json()["local_due_at"] == "2027-03-28T03:30:00"
    # a series keeps the typed 02:30 on ordinary days
    r = api.post(
        "/api/tasks",
        json={
            "title": "daily gap",
            "due_at": "2027-03-28T02:30:00",
            "timezone": "Europe/Paris",
            "recurrence": "FREQ=DAILY",
        },
    )
    assert r.status_code == 201, r.text
    done = api.post(f"/api/tasks/{r.json()['id']}/complete")
    assert done.status_code == 200, done.text
    series = api.get(f"/api/series/{r.json()['series_id']}").json()
    walls = [o["local_due_at"] for o in series["occurrences"]]
    assert walls == ["2027-03-28T03:30:00", "2027-03-29T02:30:00"], walls
