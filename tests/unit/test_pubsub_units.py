"""Pub/sub without sockets: what the notifier takes from a `reminder.due` the sidecar delivers
(`parse_due`), the subscriptions duetime asks daprd for, the settings of the roles and
publishers, and `duetime worker` on the command line."""

from __future__ import annotations

import copy
import os
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from duetime.api.pubsub import DEAD_ROUTE, DUE_ROUTE, OTHER_ROUTE, subscriptions
from duetime.cli import main
from duetime.delivery.outbox import CLOUD_EVENT_KEYS, due_event
from duetime.delivery.subscriber import DUE_TYPE, PoisonEvent, parse_due
from duetime.settings import Settings
from duetime.timefmt import to_micros

SCHEDULED = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
FIRED = SCHEDULED + timedelta(milliseconds=3, microseconds=250)
SIDECAR = {
    "topic": "reminders",
    "pubsubname": "pubsub",
    "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    "traceid": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    "tracestate": "",
}


def _note(**overrides: Any) -> dict[str, Any]:
    note = {
        "id": "note-1",
        "user_id": "alice",
        "task_id": "task-1",
        "reminder_id": "rem-1",
        "title": "Pay rent",
        "message": "due now",
        "scheduled_us": to_micros(SCHEDULED),
        "fired_us": to_micros(FIRED),
        "lateness_ms": 3,
        "late": False,
    }
    return {**note, **overrides}


def _delivered(**overrides: Any) -> dict[str, Any]:
    """duetime's own `reminder.due` as a Dapr sidecar hands it to the app: the CloudEvent
    with the sidecar's attributes added."""
    return {**due_event(_note(**overrides)).body, **SIDECAR}


# -- parse_due ---------------------------------------------------------------------------


def test_parse_due_takes_duetimes_own_event_and_strips_the_sidecar_attributes() -> None:
    own = due_event(_note()).body
    due = parse_due({**own, **SIDECAR})
    assert due.notification_id == "note-1" and due.user_id == "alice"
    assert due.fired_us == to_micros(FIRED)
    assert dict(due.body) == own  # what the webhook sends: duetime's event, unchanged
    assert set(due.body) == set(CLOUD_EVENT_KEYS)
    assert not set(SIDECAR) & set(due.body)


def test_parse_due_keeps_the_event_as_it_was_without_the_sidecar() -> None:
    own = due_event(_note()).body
    assert dict(parse_due(copy.deepcopy(own)).body) == own


def test_parse_due_reads_fired_at_with_an_offset_and_nanoseconds() -> None:
    event = _delivered()
    event["data"] = {**event["data"], "fired_at": "2026-11-22T10:00:00.003250999+01:00"}
    assert parse_due(event).fired_us == to_micros(FIRED)


@pytest.mark.parametrize("envelope", [None, [], ["type"], "reminder.due", 42, b"{}"])
def test_parse_due_rejects_what_is_not_an_object(envelope: Any) -> None:
    with pytest.raises(PoisonEvent, match="not a JSON object"):
        parse_due(envelope)


@pytest.mark.parametrize(
    "kind", [None, "reminder.due", "io.duetime.reminder.delivered", DUE_TYPE.upper(), 1]
)
def test_parse_due_rejects_another_type(kind: Any) -> None:
    event = _delivered()
    if kind is None:
        del event["type"]
    else:
        event["type"] = kind
    with pytest.raises(PoisonEvent, match="type is") as raised:
        parse_due(event)
    assert DUE_TYPE in str(raised.value)


@pytest.mark.parametrize("data", ["missing", None, "text", [1, 2], 7])
def test_parse_due_rejects_an_event_without_a_data_object(data: Any) -> None:
    event = _delivered()
    if data == "missing":
        del event["data"]
    else:
        event["data"] = data
    with pytest.raises(PoisonEvent, match="no data object"):
        parse_due(event)


@pytest.mark.parametrize("field", ["id", "notification_id", "user_id"])
@pytest.mark.parametrize("value", ["missing", None, "", 5])
def test_parse_due_rejects_a_missing_or_non_string_id(field: str, value: Any) -> None:
    event = _delivered()
    where = event if field == "id" else event["data"]
    if value == "missing":
        del where[field]
    else:
        where[field] = value
    with pytest.raises(PoisonEvent, match=f"{field} is missing or not a string"):
        parse_due(event)


def test_parse_due_rejects_an_id_that_is_not_the_notifications() -> None:
    event = _delivered()
    event["id"] = "another-event"
    with pytest.raises(PoisonEvent, match="not its notification's id"):
        parse_due(event)


@pytest.mark.parametrize(
    "fired",
    [
        "missing",
        None,
        1_763_802_000,
        "",
        "yesterday",
        "2026-11-22T09:00:00",  # no offset
        "2026-11-22 09:00:00Z",
        "2026-13-22T09:00:00Z",
        "2026-11-22T09:00:60Z",
        "2026-11-22t09:00:00z",
    ],
)
def test_parse_due_rejects_a_fired_at_that_is_not_rfc3339(fired: Any) -> None:
    event = _delivered()
    if fired == "missing":
        del event["data"]["fired_at"]
    else:
        event["data"]["fired_at"] = fired
    with pytest.raises(PoisonEvent, match="fired_at is not an RFC 3339 time"):
        parse_due(event)


def test_a_poison_event_is_a_value_error() -> None:
    # routes and the batcher treat it as "retrying will not help"
    assert issubclass(PoisonEvent, ValueError)


# -- subscriptions -------------------------------------------------------------------------


def test_subscriptions_route_due_by_type_and_send_failures_to_the_dead_letter_topic() -> None:
    assert subscriptions("pubsub", "reminders-dead") == [
        {
            "pubsubname": "pubsub",
            "topic": "reminders",
            "routes": {
                "rules": [
                    {"match": 'event.type == "io.duetime.reminder.due"', "path": DUE_ROUTE},
                ],
                "default": OTHER_ROUTE,
            },
            "deadLetterTopic": "reminders-dead",
        },
        {"pubsubname": "pubsub", "topic": "reminders-dead", "route": DEAD_ROUTE},
    ]
    assert DUE_ROUTE == "/dapr/pubsub/reminder-due"
    assert OTHER_ROUTE == "/dapr/pubsub/reminders"
    assert DEAD_ROUTE == "/dapr/pubsub/dead-letters"


def test_subscriptions_use_the_configured_component_and_dead_letter_topic() -> None:
    found = subscriptions("kafka-pubsub", "dlq")
    assert {s["pubsubname"] for s in found} == {"kafka-pubsub"}
    assert found[0]["deadLetterTopic"] == "dlq"
    assert found[1]["topic"] == "dlq" and found[1]["route"] == DEAD_ROUTE
    # the dead-letter topic is not itself dead-lettered: a poison event stops there
    assert "deadLetterTopic" not in found[1]


# -- settings ----------------------------------------------------------------------------


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No DUETIME_* (or DAPR_*) variable from the shell that runs the tests."""
    for name in list(os.environ):
        if name.startswith(("DUETIME_", "DAPR_")):
            monkeypatch.delenv(name)
    return monkeypatch


def test_settings_defaults_are_one_process_on_the_embedded_bus(clean_env: Any) -> None:
    s = Settings()
    assert s.role == "all" and s.event_publisher == "embedded"
    assert s.pubsub_name == "pubsub" and s.dead_letter_topic == "reminders-dead"
    assert s.kafka_bootstrap_servers is None and s.kafka_topic_prefix == ""
    assert s.event_relay is True
    assert s.runs_api and s.runs_notifier and s.fans_out_inline


@pytest.mark.parametrize("role", ["worker", "api"])
@pytest.mark.parametrize("publisher", ["embedded", "kafka"])
def test_split_roles_need_the_dapr_publisher(clean_env: Any, role: str, publisher: str) -> None:
    with pytest.raises(ValidationError, match="DUETIME_EVENT_PUBLISHER") as raised:
        Settings(role=role, event_publisher=publisher, kafka_bootstrap_servers="127.0.0.1:9092")
    assert f"DUETIME_ROLE={role}" in str(raised.value)


def test_worker_role_from_the_environment_without_dapr_is_refused(
    clean_env: pytest.MonkeyPatch,
) -> None:
    clean_env.setenv("DUETIME_ROLE", "worker")
    with pytest.raises(ValidationError, match="DUETIME_EVENT_PUBLISHER=dapr"):
        Settings()
    clean_env.setenv("DUETIME_EVENT_PUBLISHER", "dapr")
    s = Settings()
    assert s.role == "worker" and not s.runs_api and s.runs_notifier
    assert not s.fans_out_inline


def test_api_role_with_dapr_runs_the_api_without_the_notifier(clean_env: Any) -> None:
    s = Settings(role="api", event_publisher="dapr")
    assert s.runs_api and not s.runs_notifier and not s.fans_out_inline


@pytest.mark.parametrize("servers", [None, ""])
def test_kafka_needs_bootstrap_servers(clean_env: Any, servers: str | None) -> None:
    with pytest.raises(ValidationError, match="DUETIME_KAFKA_BOOTSTRAP_SERVERS"):
        Settings(event_publisher="kafka", kafka_bootstrap_servers=servers)


def test_kafka_from_the_environment(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("DUETIME_EVENT_PUBLISHER", "kafka")
    clean_env.setenv("DUETIME_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092,127.0.0.1:9093")
    clean_env.setenv("DUETIME_KAFKA_TOPIC_PREFIX", "prod.")
    s = Settings()
    assert s.kafka_bootstrap_servers == "127.0.0.1:9092,127.0.0.1:9093"
    assert s.kafka_topic_prefix == "prod."
    assert s.fans_out_inline  # the notifier stays in-process


@pytest.mark.parametrize(
    "bad",
    [
        {"event_publisher": "redis"},
        {"role": "scheduler"},
        {"pubsub_name": ""},
        {"dead_letter_topic": ""},
    ],
)
def test_unknown_or_empty_pubsub_settings_are_refused(clean_env: Any, bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as raised:
        Settings(**bad)
    assert next(iter(bad)) in str(raised.value)


# -- duetime worker ------------------------------------------------------------------------


def test_duetime_worker_help() -> None:
    result = CliRunner().invoke(main, ["worker", "--help"], prog_name="duetime")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Usage: duetime worker [OPTIONS]")
    assert "notifier" in result.output and "DUETIME_EVENT_PUBLISHER=dapr" in result.output
    assert "--host" in result.output and "--port" in result.output


def test_duetime_help_lists_worker() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0, result.output
    assert "worker" in result.output and "serve" in result.output


def test_duetime_worker_without_dapr_fails_with_one_clear_line(clean_env: Any) -> None:
    result = CliRunner().invoke(main, ["worker"])
    assert result.exit_code == 1, result.output
    assert "bad configuration" in result.output
    assert "DUETIME_ROLE=worker needs DUETIME_EVENT_PUBLISHER=dapr" in result.output
    assert "Traceback" not in result.output
