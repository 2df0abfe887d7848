"""Job scopes over HTTP against a running duetime: an app's jobs are its own, duetime's own
jobs are out of the public API's reach, and two apps never see each other's jobs."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.e2e.conftest import Receiver, Server
from tests.e2e.test_tasks_e2e import SECRET, User, iso

OPERATOR = "operator-token-0123456789"
BILLING = "billing-token-0123456789"


@pytest.fixture
def billing_app() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def server(make_server: Callable[..., Server], receiver: Receiver, billing_app: Receiver) -> Server:
    apps = {"billing": {"url": billing_app.url, "api_token": BILLING}}
    return make_server(
        DUETIME_JWT_SECRET=SECRET,
        DUETIME_API_TOKEN=OPERATOR,
        DUETIME_APP_URL=receiver.url,
        DUETIME_APP_ID="tasks-app",
        DUETIME_APPS=json.dumps(apps),
    ).start()


def _client(server: Server, token: str, app_id: str | None = None) -> httpx.Client:
    headers = {"dapr-api-token": token}
    if app_id:
        headers["dapr-app-id"] = app_id
    return httpx.Client(base_url=server.url, headers=headers, timeout=30)


def _names(client: httpx.Client) -> list[str]:
    r = client.get("/v1.0/jobs")
    assert r.status_code == 200, r.text
    return [j["name"] for j in r.json()["jobs"]]


def test_public_reminder_named_job_reaches_the_app(server: Server, receiver: Receiver) -> None:
    with _client(server, OPERATOR) as app:
        r = app.post("/v1.0/jobs/reminder-task-7", json={"dueTime": "1s", "data": {"t": 7}})
        assert r.status_code == 204, r.text
        assert app.get("/v1.0/jobs/reminder-task-7").status_code == 200
    receiver.wait_for(lambda: len(receiver.of("reminder-task-7")) == 1)
    assert receiver.of("reminder-task-7")[0].data == {"t": 7}


def test_public_api_cannot_see_or_touch_duetimes_own_jobs(
    server: Server, receiver: Receiver
) -> None:
    user = User(server, "alice")
    due = datetime.now(UTC) + timedelta(seconds=3)
    task = user.create(title="Pay rent", due_at=iso(due))
    reminder = task["reminders"][0]["id"]
    with _client(server, OPERATOR) as app:
        assert _names(app) == []  # no reminder job, no maintenance job
        assert app.get(f"/v1.0/jobs/reminder-{reminder}").status_code == 404
        assert app.delete(f"/v1.0/jobs/reminder-{reminder}").status_code == 204
        assert app.get("/v1.0/jobs/duetime-maintenance-retention").status_code == 404
        # a name that would reach past the app's scope is refused, not resolved
        bad = app.post("/v1.0/jobs/duetime||x", json={"dueTime": "1h", "data": 1})
        assert bad.status_code == 400, bad.text
        assert app.get("/v1.0/jobs", params={"prefix": "|"}).json()["jobs"] == []
    [note] = user.wait_inbox(1)  # the DELETE did not kill the task's reminder
    assert note["task_id"] == task["id"]
    assert receiver.of(f"reminder-{reminder}") == []  # and it never went to the app
    user.http.close()


def test_two_apps_never_see_each_others_jobs(
    server: Server, receiver: Receiver, billing_app: Receiver
) -> None:
    with _client(server, OPERATOR) as default, _client(server, BILLING) as billing:
        for client, data in ((default, "default"), (billing, "billing")):
            r = client.post("/v1.0/jobs/invoice", json={"dueTime": "1s", "data": data})
            assert r.status_code == 204, r.text
        assert _names(default) == ["invoice"] and _names(billing) == ["invoice"]
        again = default.post("/v1.0/jobs/invoice", json={"dueTime": "1h", "data": 0})
        assert again.status_code == 409 and "'invoice'" in again.text
        assert "||" not in again.text  # the public name, never the engine's key
        assert default.get("/v1.0/jobs/invoice").json()["data"]["value"] == "default"
        assert billing.get("/v1.0/jobs/invoice").json()["data"]["value"] == "billing"
        receiver.wait_for(lambda: len(receiver.of("invoice")) == 1)
        billing_app.wait_for(lambda: len(billing_app.of("invoice")) == 1)
        time.sleep(0.5)
        assert [r.data for r in receiver.of("invoice")] == ["default"]
        assert [r.data for r in billing_app.of("invoice")] == ["billing"]


def test_which_token_may_act_for_which_app(server: Server) -> None:
    later = {"dueTime": "1h", "data": 1}
    with _client(server, BILLING) as billing:
        assert billing.post("/v1.0/jobs/mine", json=later).status_code == 204
    # the operator token may act for any app by naming it
    with _client(server, OPERATOR, "billing") as operator:
        assert _names(operator) == ["mine"]
    # an app's token acts for that app only
    with _client(server, BILLING, "tasks-app") as other:
        r = other.get("/v1.0/jobs")
        assert r.status_code == 403 and r.json()["errorCode"] == "DUETIME_APP_FORBIDDEN"
    with _client(server, OPERATOR, "nobody") as unknown:
        r = unknown.get("/v1.0/jobs/mine")
        assert r.status_code == 404 and r.json()["errorCode"] == "DUETIME_APP_NOT_FOUND"
    with _client(server, "wrong-token", "billing") as wrong:
        assert wrong.get("/v1.0/jobs").status_code == 401
    with _client(server, OPERATOR) as default:
        assert _names(default) == []  # billing's job is not the default app's
