"""The embedded pub/sub's pure parts: routing rules (CEL, by cel-python), daprd's envelope and
its serialisation, subscription parsing. The behaviour against real daprd is in
tests/integration/test_pubsub_differential.py."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from duetime.sidecar.pubsub.delivery import RetryPolicy, _app_status
from duetime.sidecar.pubsub.envelope import (
    BadMetadata,
    MalformedCloudEvent,
    build_envelope,
    go_json,
    has_expired,
    is_raw_payload,
)
from duetime.sidecar.pubsub.rules import RuleError, compile_rule
from duetime.sidecar.pubsub.subscriptions import parse_programmatic

NOW = datetime(2026, 12, 2, 5, 42, 26, 123456, tzinfo=UTC)
EVENT = {"type": "order.created", "source": "svc", "data": {"n": 7, "kind": "x", "ok": True}}


@pytest.mark.parametrize(
    ("match", "expected"),
    [
        ('event.type == "order.created"', True),
        ("event.type == 'order.created'", True),
        ('event.type != "order.created"', False),
        ("event.data.n > 5 && event.source == 'svc'", True),
        ('event.data.n >= 8 || event.data.kind == "x"', True),
        ('!(event.type == "a") && event.data.n < 7.5', True),
        ("event.data.ok", True),
        ("event.data.ok == true", True),
        ("event.data.n == 7", True),
        ("event.data.ok == 1", False),  # a bool is not a number
        ('event.missing == "x"', False),
        ('event.missing != "x"', False),  # a missing attribute matches nothing
        ('event.data.n > "a"', False),
    ],
)
def test_rules(match: str, expected: bool) -> None:
    assert compile_rule(match)(EVENT) is expected


FULL = {**EVENT, "data": {**EVENT["data"], "price": 10.5, "items": [{"qty": 1}, {"qty": 3}]}}


@pytest.mark.parametrize(
    ("match", "expected"),
    [
        ('event.type.startsWith("order.")', True),
        ('event.type.endsWith(".deleted")', False),
        ("event.type.matches('^order\\\\.(created|updated)$')", True),
        ("has(event.data.kind)", True),
        ("has(event.data.colour)", False),
        ("size(event.data) > 1 && size(event.data.items) == 2", True),
        ("event.type in ['a', 'order.created']", True),
        ("event.data.items.exists(i, i.qty > 2)", True),
        ("event.data.items.all(i, i.qty > 2)", False),
        ('event["source"] == "svc"', True),
        ("(event.data.n > 5 ? 'big' : 'small') == 'big'", True),
        # numbers compare across int and double, as cel-go (daprd: every JSON number a double)
        ("event.data.price > 10", True),
        ("event.data.n == 7.0 && event.data.n == 7u", True),
        ("event.data.ok == 1", False),  # other types are unequal, not equal as Python ints
    ],
)
def test_rules_in_full_cel(match: str, expected: bool) -> None:
    assert compile_rule(match)(FULL) is expected


@pytest.mark.parametrize(
    ("match", "expected"),
    [
        ('!(event.missing == "x")', False),  # the error fails the rule, not the comparison
        ('event.missing == "x" || event.type == "order.created"', True),  # || absorbs it
        ('has(event.data.colour) && event.data.colour == "red"', False),
        ("event.data.n", False),  # not a bool
        ("event.data.n / 0 == 1", False),
        ("type == 'x'", False),  # a name other than `event` compiles (as daprd) and fails
        ("other.type == 'x'", False),
        ("true < 2", False),  # no ordering across bool and int
    ],
)
def test_a_rule_that_fails_to_evaluate_does_not_match(match: str, expected: bool) -> None:
    assert compile_rule(match)(EVENT) is expected


def test_a_predicate_never_raises() -> None:
    predicate = compile_rule('event.type == "order.created"')
    assert predicate({"type": "order.created", "data": b"not JSON"}) is False


@pytest.mark.parametrize(
    "match",
    ["", "   ", "event.type ==", "event.type = 'x'", "(event.type == 'x'", "event..type"],
)
def test_rules_that_do_not_parse_are_refused(match: str) -> None:
    with pytest.raises(RuleError):
        compile_rule(match)


def test_a_refused_rule_carries_the_parsers_message() -> None:
    with pytest.raises(RuleError, match=r"cannot parse 'event.type ==': event.type ==\n +\^"):
        compile_rule("event.type ==")


def test_envelope_for_json_text_binary_and_overrides() -> None:
    common = {"source": "app", "pubsub": "ps", "topic": "t", "now": NOW}
    e = build_envelope(
        data=b'{"a":1}', content_type="application/json; charset=utf-8", metadata={}, **common
    )
    assert e["data"] == {"a": 1} and e["time"] == "2026-12-02T05:42:26Z"
    assert e["traceid"] == e["traceparent"] == "" and e["type"] == "com.dapr.event.sent"
    assert (
        build_envelope(data=b"nojson{", content_type="application/json", metadata={}, **common)[
            "data"
        ]
        == "nojson{"
    )
    assert (
        build_envelope(data=b"", content_type=None, metadata={}, **common)["datacontenttype"]
        == "text/plain"
    )
    b = build_envelope(data=b"\x00", content_type="application/octet-stream", metadata={}, **common)
    assert b["data_base64"] == "AA==" and "data" not in b
    o = build_envelope(
        data=b"x",
        content_type="text/plain",
        now=NOW,
        source="app",
        pubsub="ps",
        topic="t",
        metadata={"cloudevent.id": "i", "cloudevent.traceparent": "tp", "ttlInSeconds": "60"},
    )
    assert o["id"] == "i" and o["traceid"] == o["traceparent"] == "tp"
    assert o["expiration"] == "2026-12-02T05:43:26Z"
    assert has_expired(o, datetime(2026, 12, 2, 5, 44, tzinfo=UTC))
    assert not has_expired(o, NOW)


def test_structured_cloud_events_are_kept_and_completed() -> None:
    common = {
        "source": "app",
        "pubsub": "ps",
        "topic": "t",
        "now": NOW,
        "metadata": {},
        "content_type": "application/cloudevents+json",
    }
    e = build_envelope(data=b'{"data":5,"time":"then"}', **common)
    assert e == {
        "data": 5,
        "time": "then",
        "traceid": "",
        "traceparent": "",
        "tracestate": "",
        "topic": "t",
        "pubsubname": "ps",
        "source": "Dapr",
        "type": "com.dapr.event.sent",
        "specversion": "1.0",
    }
    for bad in (b"{bad", b"[1,2]", b"null", b'"x"', b"\xff"):
        with pytest.raises(MalformedCloudEvent):
            build_envelope(data=bad, **common)


def test_go_json_sorts_keys_and_escapes_html() -> None:
    assert go_json({"b": "<&>", "a": "\u2028é"}) == (
        '{"a":"\\u2028é","b":"\\u003c\\u0026\\u003e"}'.encode()
    )


def test_raw_payload_flag_is_go_parse_bool() -> None:
    assert is_raw_payload({"rawPayload": "T"}) and not is_raw_payload({"rawPayload": "0"})
    assert not is_raw_payload({})
    with pytest.raises(BadMetadata):
        is_raw_payload({"rawPayload": "yes"})


def test_app_status_and_backoff() -> None:
    assert _app_status(b"") is None and _app_status(b"not json") is None
    assert _app_status(b'{"status":123}') is None and _app_status(b"[1]") is None
    assert _app_status(b"{}") == "" and _app_status(b'{"status":"DROP"}') == "DROP"
    policy = RetryPolicy(max_attempts=5, base_delay=1.0, max_delay=3.0)
    assert [policy.delay_us(n) for n in (1, 2, 3, 4)] == [1e6, 2e6, 3e6, 3e6]


def test_programmatic_subscriptions_as_daprd_reads_them() -> None:
    subs = parse_programmatic(
        "a",
        [
            {"pubsubname": "p", "topic": "t1", "route": "orders"},
            {
                "pubsubname": "p",
                "topic": "t2",
                "route": "/ignored",
                "routes": {"rules": [{"match": 'event.type == "x"', "path": "/x"}]},
            },
            {"pubsubname": "p", "topic": "t3"},  # no route: ignored, as daprd does
            {"topic": "t4", "route": "/r"},
            "not an object",
        ],
    )
    assert [(s.topic, [r.path for r in s.rules]) for s in subs] == [
        ("t1", ["/orders"]),
        ("t2", ["/x", "/ignored"]),
    ]
    assert subs[1].route({"type": "x"}) == "/x" and subs[1].route({"type": "y"}) == "/ignored"
    assert parse_programmatic("a", {"not": "a list"}) == []
