"""Every request example the API docs (/docs, /redoc) offer to "Try it out" is accepted as it
stands, against a real server."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from duetime.auth import issue_token
from tests.e2e.conftest import Server

SECRET = "openapi-examples-secret-0123456789abcdef"


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref:
        name = ref.removeprefix("#/components/schemas/")
        resolved: dict[str, Any] = spec["components"]["schemas"][name]
        return resolved
    return schema


def _examples(spec: dict[str, Any]) -> Iterator[tuple[str, str, str, Any]]:
    """(method, path, label, body) for each example of a JSON request body: the media
    type's named examples, else the schema's first `examples` entry (what Swagger UI fills in)."""
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            media = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if not media:
                continue
            named = media.get("examples") or {}
            for label, example in named.items():
                yield method.upper(), path, label, example["value"]
            if not named:
                schema = _resolve(spec, media.get("schema", {}))
                for body in schema.get("examples", [])[:1]:
                    yield method.upper(), path, "schema", body


@pytest.fixture
def server(make_server: Callable[..., Server]) -> Server:
    return make_server(DUETIME_JWT_SECRET=SECRET).start()


def test_every_request_example_is_accepted(server: Server) -> None:
    spec = httpx.get(f"{server.url}/openapi.json").json()
    token = issue_token(SECRET, "alice", ttl=timedelta(hours=1), now=datetime.now(UTC))
    with httpx.Client(
        base_url=server.url, headers={"authorization": f"Bearer {token}"}, timeout=30
    ) as api:
        tried = _try_every_example(spec, api)
    # every body the task, profile, channel and jobs routes take has an example
    for route in (
        "POST /api/tasks ",
        "POST /api/tasks/batch ",
        "PATCH /api/tasks/{task_id} ",
        "PUT /api/tasks/{task_id} ",
        "PUT /api/me ",
        "PUT /api/me/channels ",
        "POST /api/notifications/{notification_id}/snooze ",
        "POST /v1.0/jobs/{name} once",
        "POST /v1.0/jobs/{name} weekdays",
    ):
        assert any(t.startswith(route) for t in tried), (route, tried)


def _try_every_example(spec: dict[str, Any], api: httpx.Client) -> list[str]:
    due = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    task = api.post("/api/tasks", json={"title": "x", "due_at": due}).json()
    deadline = time.monotonic() + 15
    while not (inbox := api.get("/api/notifications").json()["notifications"]):
        assert time.monotonic() < deadline, "the reminder never reached the inbox"
        time.sleep(0.2)
    params = {
        "name": "example-job",
        "task_id": task["id"],
        "notification_id": inbox[0]["id"],
    }

    tried = []
    for method, path, label, body in _examples(spec):
        url = path.format(**params)
        answer = api.request(method, url, json=body)
        tried.append(f"{method} {path} {label}")
        assert answer.is_success, (method, path, label, body, answer.status_code, answer.text)
        if path.startswith("/v1.0") and method == "POST":
            api.delete(url)  # the next example of the same job starts afresh
    return tried
