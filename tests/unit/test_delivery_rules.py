"""Pure delivery rules: backoff with full jitter, signatures, SSRF address classes, email
addresses, what an attempt's outcome does to a delivery, CloudEvents."""

from __future__ import annotations

import ipaddress
import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from duetime.delivery.hub import NotificationHub
from duetime.delivery.model import (
    ChannelSettings,
    Claimed,
    Delivery,
    Outcome,
    RetryPolicy,
    backoff,
    check_email,
)
from duetime.delivery.signing import new_secret, signature, verify
from duetime.delivery.ssrf import (
    UnsafeTarget,
    forbidden_reason,
    parse_webhook_url,
    split_webhook_url,
)
from duetime.delivery.store import SqlDeliveryStore
from duetime.delivery.worker import DeliveryWorker
from duetime.events.model import TASK_TOPIC, PublishedEvent, task_event
from duetime.tasks.model import Task

POLICY = RetryPolicy(max_attempts=5, base_delay=1.0, max_delay=60.0, attempt_timeout=5.0)


@given(
    failed=st.integers(min_value=1, max_value=200),
    r=st.floats(min_value=0.0, max_value=1.0, exclude_max=True),
)
def test_backoff_is_within_zero_and_the_capped_exponential(failed: int, r: float) -> None:
    delay = backoff(POLICY, failed, lambda: r)
    ceiling = min(POLICY.max_delay, POLICY.base_delay * 2 ** (failed - 1))
    assert 0.0 <= delay <= ceiling <= POLICY.max_delay


def test_backoff_ceiling_doubles_then_caps() -> None:
    almost_one = 1.0 - 1e-12
    ceilings = [backoff(POLICY, n, lambda: almost_one) for n in range(1, 9)]
    assert [round(c) for c in ceilings] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert backoff(POLICY, 3, lambda: 0.0) == 0.0  # full jitter reaches down to zero


def test_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    import hashlib
    import hmac

    body = b'{"id":"e1"}'
    expected = hmac.new(b"whsec_k", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert signature("whsec_k", 1700000000, body) == "v1=" + expected


def test_verify_accepts_the_signed_request_only() -> None:
    secret, body, ts = new_secret(), b'{"a":1}', 1_700_000_000
    header = signature(secret, ts, body)
    assert verify(secret, header, str(ts), body, now=ts + 10)
    assert verify(secret, "v1=deadbeef, " + header, str(ts), body, now=ts)  # rotation list
    assert not verify(secret, header, str(ts), body + b" ", now=ts)
    assert not verify(new_secret(), header, str(ts), body, now=ts)
    assert not verify(secret, header, str(ts + 1), body, now=ts)
    assert not verify(secret, header, str(ts), body, now=ts + 301)  # too old: replayed
    assert not verify(secret, header, "soon", body, now=ts)
    assert new_secret() != new_secret() and new_secret().startswith("whsec_")


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.0.9", "loopback"),
        ("::1", "loopback"),
        ("10.0.0.1", "private"),
        ("172.31.255.255", "private"),
        ("192.168.1.1", "private"),
        ("fd00::1", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("224.0.0.251", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("240.0.0.1", "reserved"),
        ("100.64.0.1", "not a public address"),  # carrier-grade NAT
        ("::ffff:10.0.0.1", "private"),  # IPv4-mapped
        ("::ffff:127.0.0.1", "loopback"),
        ("192.0.2.1", "private"),  # documentation range
    ],
)
def test_forbidden_addresses(address: str, reason: str) -> None:
    found = forbidden_reason(ipaddress.ip_address(address))
    assert found is not None and reason in found


@pytest.mark.parametrize("address", ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert forbidden_reason(ipaddress.ip_address(address)) is None


def test_webhook_url_syntax() -> None:
    assert parse_webhook_url("https://Example.com/hook?a=1") == ("https", "example.com", 443)
    assert parse_webhook_url("http://example.com:8080/") == ("http", "example.com", 8080)
    for bad in ("ftp://x.com", "//x.com", "http:///path", "http://u@x.com", "https://x.com/#f"):
        with pytest.raises(UnsafeTarget):
            parse_webhook_url(bad)


@pytest.mark.parametrize("good", ["a@example.com", "first.last+tag@mail.example.co.uk"])
def test_valid_emails(good: str) -> None:
    check_email(good)


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "a",
        "a@b",
        "@example.com",
        "a@@b.com",
        "a b@c.com",
        "a@b.com\nBcc: x@y.z",
        "a..b@c.com",
        "A <a@b.com>",
        "a@-b.com",
        "x" * 65 + "@b.com",
    ],
)
def test_invalid_emails(bad: str) -> None:
    with pytest.raises(ValueError, match="not a valid address"):
        check_email(bad)


def test_targets_are_the_enabled_configured_channels() -> None:
    s = ChannelSettings("u", "whsec_x", "https://e.com", True, "a@b.com", False)
    assert s.targets() == {"webhook": "https://e.com"}
    assert ChannelSettings("u", "k", None, True).targets() == {}


def _claimed(attempts: int, limit: int = 3) -> Claimed:
    payload = json.dumps({"id": "e1", "data": {"task_id": "t1"}})
    d = Delivery(
        "d1",
        "n1",
        "u",
        "webhook",
        "https://e.com",
        "e1",
        payload,
        "pending",
        attempts,
        limit,
        0,
        0,
        0,
        None,
        None,
        0,
    )
    return Claimed(d, "whsec_x")


class _NoStore(SqlDeliveryStore):
    def __init__(self) -> None:
        pass


def _worker(r: float = 0.5) -> DeliveryWorker:
    return DeliveryWorker(_NoStore(), {}, clock=None, policy=POLICY, rand=lambda: r)  # type: ignore[arg-type]


def test_a_failed_attempt_is_retried_after_backoff_until_the_limit() -> None:
    worker = _worker(0.5)
    retry = worker.judge(_claimed(0), Outcome(False, error="HTTP 503"), 10, 2_000_000)
    assert retry.state == "pending" and retry.attempt.attempt == 1
    assert retry.next_attempt_us == 2_000_000 + 500_000  # 0.5 × min(60, 1 × 2^0) s
    assert retry.event is None
    later = worker.judge(_claimed(1), Outcome(False, error="x"), 10, 2_000_000)
    assert later.next_attempt_us == 2_000_000 + 1_000_000  # 0.5 × 2 s
    dead = worker.judge(_claimed(2), Outcome(False, error="HTTP 503"), 10, 20)
    assert dead.state == "dead" and dead.attempt.attempt == 3
    assert dead.event is not None and dead.event.type == "io.duetime.reminder.failed"


def test_permanent_failures_are_dead_at_once_and_retry_after_is_honoured() -> None:
    worker = _worker(0.0)
    gone = worker.judge(_claimed(0), Outcome(False, error="HTTP 410", permanent=True), 1, 2)
    assert gone.state == "dead"
    slow = worker.judge(_claimed(0), Outcome(False, error="HTTP 429", retry_after=30), 1, 2)
    assert slow.state == "pending" and slow.next_attempt_us == 2 + 30_000_000
    ok = worker.judge(_claimed(1), Outcome(True, http_status=204), 1, 2)
    assert ok.state == "delivered" and ok.attempt.http_status == 204
    assert ok.event is not None and ok.event.body["data"]["attempt"] == 2


def test_task_events_are_cloudevents() -> None:
    now = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
    task = Task(id="t1", user_id="alice", title="Pay", created_at=now, updated_at=now)
    event = task_event("created", task, now)
    assert event.topic == TASK_TOPIC and event.user_id == "alice"
    body = event.body
    assert body["specversion"] == "1.0" and body["type"] == "io.duetime.task.created"
    assert body["source"] == "/duetime/task-events" and body["subject"] == "tasks/t1"
    assert body["time"] == "2026-11-22T10:00:00Z" and body["datacontenttype"] == "application/json"
    assert body["data"]["title"] == "Pay" and len(body["id"]) == 32
    assert task_event("deleted", task, now).body["data"] == {"task_id": "t1", "user_id": "alice"}
    json.dumps(body)  # JSON-ready


def test_webhook_urls_split_for_the_client() -> None:
    t = split_webhook_url("https://Hooks.Example.com/a%20b/ü?x=1&y=ä")
    assert (t.scheme, t.host, t.port, t.host_header) == ("https", "hooks.example.com", 443, t.host)
    assert t.request_target == "/a%20b/%C3%BC?x=1&y=%C3%A4"
    v6 = split_webhook_url("http://[2606:4700::1]:8080")
    assert (v6.host, v6.port, v6.host_header, v6.request_target) == (
        "2606:4700::1",
        8080,
        "[2606:4700::1]:8080",
        "/",
    )
    assert split_webhook_url("http://bücher.example/").host == "xn--bcher-kva.example"


def _event(seq: int, user: str, type_: str = "io.duetime.reminder.due") -> PublishedEvent:
    return PublishedEvent(seq, user, "reminders", {"type": type_, "data": {}})


def test_the_hub_routes_in_app_events_to_their_users_streams_only() -> None:
    hub = NotificationHub(queue_size=2)
    alice, alice2, bob = hub.subscribe("alice"), hub.subscribe("alice"), hub.subscribe("bob")
    hub(_event(1, "alice"))
    hub(_event(2, "alice", "io.duetime.reminder.delivered"))  # not an in-app event
    assert alice.queue.qsize() == alice2.queue.qsize() == 1 and bob.queue.empty()
    hub(_event(3, "alice"))
    hub(_event(4, "alice"))  # the queue holds 2: the stream is marked to catch up
    assert alice.lagged and alice.queue.qsize() == 2
    hub.unsubscribe(alice)
    hub.unsubscribe(alice2)
    hub.unsubscribe(bob)
    assert hub.connected == 0
