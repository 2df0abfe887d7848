"""`GET /metrics` scraped from a real server while real work runs: the values move as they
must, the labels stay bounded, and the endpoint is guarded."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from duetime.auth import issue_token, load_or_create_secret
from duetime.settings import Settings
from tests.conftest import free_port
from tests.e2e.conftest import Receiver, Server

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(url: str, **headers: str) -> Samples:
    answer = httpx.get(f"{url}/metrics", headers=headers, timeout=10)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain; version=")
    found: Samples = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def wait_for(check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "the metric never moved"
        time.sleep(0.2)


def bucket(samples: Samples, le: str) -> float:
    return value(samples, "duetime_trigger_lateness_seconds_bucket", backend="embedded", le=le)


def test_triggers_lateness_outcomes_and_http_requests_are_counted(
    make_server: Callable[..., Server], receiver: Receiver
) -> None:
    receiver.respond = lambda name: {"fails": 503, "unknown": 404}.get(name, 200)
    server = make_server(DUETIME_APP_URL=receiver.url)
    server.start()
    before = scrape(server.url)
    with server.client() as api:
        for name, body in (
            ("ontime", {"dueTime": "1s"}),
            ("fails", {"dueTime": "0s", "failurePolicy": {"constant": {"interval": "0.2s",
                                                                        "maxRetries": 1}}}),
            ("unknown", {"schedule": "@every 1s", "repeats": 2}),
            ("secret-customer-name", {"dueTime": "1h"}),
        ):  # fmt: skip
            assert api.post(f"/v1.0/jobs/{name}", json=body).status_code == 204

    def moved() -> bool:
        now = scrape(server.url)
        return (
            value(now, "duetime_triggers_total", backend="embedded", outcome="dead_lettered") >= 1
            and value(now, "duetime_triggers_total", backend="embedded", outcome="app_not_found")
            >= 2
            and value(now, "duetime_triggers_total", backend="embedded", outcome="success") >= 1
        )

    wait_for(moved)
    after = scrape(server.url)
    retries = value(after, "duetime_triggers_total", backend="embedded", outcome="retry")
    assert (
        retries - value(before, "duetime_triggers_total", backend="embedded", outcome="retry") == 1
    )
    # each first attempt lands in the lateness histogram, and on time here: under 1 s
    first_attempts = 1 + 1 + 2
    observed = value(after, "duetime_trigger_lateness_seconds_count", backend="embedded")
    assert (
        observed - value(before, "duetime_trigger_lateness_seconds_count", backend="embedded")
        == first_attempts
    )
    assert bucket(after, "1.0") - bucket(before, "1.0") == first_attempts

    # what is stored, sampled (every 5 s): one dead letter, the far jobs pending and the
    # earliest of them next (the 1 h one, or the daily maintenance job)
    def next_due() -> float:
        return value(scrape(server.url), "duetime_jobs_next_due_timestamp_seconds",
                     backend="embedded")  # fmt: skip

    wait_for(lambda: value(scrape(server.url), "duetime_dead_letters") == 1)
    wait_for(lambda: next_due() > time.time())
    assert next_due() <= time.time() + 86_400
    assert value(scrape(server.url), "duetime_jobs_pending", backend="embedded") >= 2

    # HTTP requests by route template and status, never by job name
    posts = value(after, "duetime_http_requests_total", method="POST", route="/v1.0/jobs/{name}",
                  status="204")  # fmt: skip
    assert posts == 4
    assert value(after, "duetime_http_requests_total", method="GET", route="/metrics",
                 status="200") >= 1  # fmt: skip
    httpx.get(f"{server.url}/no/such/page/secret-customer-name")
    text = httpx.get(f"{server.url}/metrics").text
    assert 'route="unmatched",status="404"' in text
    assert "secret-customer-name" not in text and "ontime" not in text


def test_a_late_trigger_lands_in_the_late_buckets(make_server: Callable[..., Server],
                                                  receiver: Receiver) -> None:  # fmt: skip
    server = make_server(DUETIME_APP_URL=receiver.url).start()
    with server.client() as api:
        due = (datetime.now(UTC) + timedelta(seconds=2)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        assert api.post("/v1.0/jobs/late", json={"dueTime": due}).status_code == 204
    server.stop()  # down while it comes due: it fires ≈ 3 s late, at the restart
    time.sleep(4)
    server.start()
    receiver.wait_for(lambda: bool(receiver.of("late")))
    samples = scrape(server.url)  # a fresh process: only this trigger
    assert value(samples, "duetime_trigger_lateness_seconds_count", backend="embedded") == 1
    assert bucket(samples, "2.5") == 0 and bucket(samples, "30.0") == 1


def test_deliveries_streams_and_the_outbox(make_server: Callable[..., Server],
                                           tmp_path: Path) -> None:  # fmt: skip
    hooks: list[bytes] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            hooks.append(self.rfile.read(int(self.headers["content-length"])))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    hook = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    # events go to a Kafka broker that is not there: they wait in the outbox
    server = make_server(
        DUETIME_WEBHOOK_ALLOW_PRIVATE="true",
        DUETIME_EVENT_PUBLISHER="kafka",
        DUETIME_KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{free_port()}",
    ).start()
    settings = Settings(data_dir=tmp_path / "data")
    token = issue_token(load_or_create_secret(settings), "alice", ttl=timedelta(hours=1),
                        now=datetime.now(UTC))  # fmt: skip
    auth = {"authorization": f"Bearer {token}"}
    try:
        with httpx.Client(base_url=server.url, headers=auth, timeout=30) as api:
            url = f"http://127.0.0.1:{hook.server_address[1]}/hook"
            put = api.put("/api/me/channels", json={"webhook": {"url": url, "enabled": True}})
            assert put.status_code == 200, put.text
            with api.stream("GET", "/api/notifications/stream") as stream:
                wait_for(lambda: value(scrape(server.url), "duetime_sse_clients") == 1)
                due = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
                made = api.post("/api/tasks", json={"title": "Stand-up", "due_at": due})
                assert made.status_code == 201, made.text
                for line in stream.iter_lines():
                    if line.startswith("data:") and "Stand-up" in line:
                        break
            wait_for(lambda: len(hooks) == 1)
        wait_for(lambda: value(scrape(server.url), "duetime_sse_clients") == 0)
        samples = scrape(server.url)
        assert value(samples, "duetime_deliveries_total", channel="inbox", outcome="success") == 1
        created = value(samples, "duetime_http_requests_total", method="POST",
                        route="/api/tasks", status="201")  # fmt: skip
        assert created == 1  # the task API's routes by template too (behind JsonBodies)
        wait_for(lambda: value(scrape(server.url), "duetime_deliveries_total", channel="webhook",
                               outcome="success") == 1)  # fmt: skip
        timed = scrape(server.url)
        assert value(timed, "duetime_delivery_duration_seconds_count", channel="webhook") == 1
        assert json.loads(hooks[0])["type"] == "io.duetime.reminder.due"

        # the events of the task wait for the broker; the oldest one ages
        wait_for(lambda: value(scrape(server.url), "duetime_outbox_depth", outbox="events") >= 2)
        wait_for(lambda: value(scrape(server.url), "duetime_outbox_oldest_age_seconds",
                               outbox="events") >= 2)  # fmt: skip
        assert value(scrape(server.url), "duetime_outbox_depth", outbox="scheduling") == 0
    finally:
        hook.shutdown()
        hook.server_close()


def test_the_endpoint_is_guarded_and_can_have_its_own_port(
    make_server: Callable[..., Server],
) -> None:
    metrics_port = free_port()
    server = make_server(DUETIME_METRICS_TOKEN="s3cret", DUETIME_METRICS_PORT=str(metrics_port))
    server.start()
    refused = httpx.get(f"{server.url}/metrics")
    assert refused.status_code == 401 and "DUETIME_METRICS_TOKEN" in refused.json()["detail"]
    wrong = httpx.get(f"{server.url}/metrics", headers={"authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert scrape(server.url, authorization="Bearer s3cret")
    own = scrape(f"http://127.0.0.1:{metrics_port}")  # loopback only, no token
    assert ("duetime_sse_clients", frozenset()) in own
    server.stop()

    open_host = make_server(DUETIME_HOST="0.0.0.0", DUETIME_API_TOKEN="t")
    open_host.start()
    forbidden = httpx.get(f"{open_host.url}/metrics")
    assert forbidden.status_code == 403 and "DUETIME_METRICS_PORT" in forbidden.json()["detail"]
