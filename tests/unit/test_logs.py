"""Log lines as JSON, with their context, and never a secret (duetime.logs)."""

from __future__ import annotations

import asyncio
import json
import logging

from duetime import logs
from duetime.settings import Settings

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLWJ5dGVz"


def line(record: logging.LogRecord, redactor: logs.Redactor | None = None) -> dict:
    if redactor is not None:
        redactor.filter(record)
    return json.loads(logs.JsonFormatter().format(record))


def record(msg: str, *args: object, exc: BaseException | None = None) -> logging.LogRecord:
    info = (type(exc), exc, exc.__traceback__) if exc else None
    return logging.LogRecord("duetime.jobs", logging.WARNING, __file__, 1, msg, args, info)


def test_a_json_line_has_time_level_logger_and_message() -> None:
    got = line(record("job %r failed", "nightly"))
    assert set(got) == {"time", "level", "logger", "message"}
    assert got["level"] == "warning" and got["logger"] == "duetime.jobs"
    assert got["message"] == "job 'nightly' failed"
    assert got["time"].endswith("Z") and len(got["time"]) == len("2026-12-03T10:00:00.000Z")


def test_bound_fields_join_every_line_of_the_block_and_only_there() -> None:
    with logs.bind(job="nightly"), logs.bind(delivery_id="d1"):
        assert line(record("x")).items() >= {"job": "nightly", "delivery_id": "d1"}.items()
    assert "job" not in line(record("x"))


def test_noted_fields_stay_in_their_own_task() -> None:
    async def attempt(name: str) -> dict:
        logs.note(job=name)
        await asyncio.sleep(0)
        return line(record("x"))

    async def both() -> list[dict]:
        return list(await asyncio.gather(attempt("a"), attempt("b")))

    a, b = asyncio.run(both())
    assert (a["job"], b["job"]) == ("a", "b")
    assert "job" not in line(record("x"))


def test_the_trace_and_span_ids_of_the_current_span() -> None:
    from opentelemetry import trace

    context = trace.SpanContext(
        trace_id=0x0AF7651916CD43DD8448EB211C80319C,
        span_id=0xB7AD6B7169203331,
        is_remote=False,
        trace_flags=trace.TraceFlags(1),
    )
    with trace.use_span(trace.NonRecordingSpan(context)):
        got = line(record("x"))
    assert got["trace_id"] == "0af7651916cd43dd8448eb211c80319c"
    assert got["span_id"] == "b7ad6b7169203331"


def test_secrets_are_redacted_from_messages_and_tracebacks() -> None:
    settings = Settings(api_token="api-token-0123456789", smtp_password="hunter2hunter2")
    redactor = logs.Redactor(logs.secret_values(settings))
    redactor.add("jwt-key-from-the-data-dir")
    message = line(
        record(
            "calls with %s, Authorization: Bearer %s, %s, whsec_abcDEF123, key %s, pw %s",
            "api-token-0123456789",
            "opaque.token~value",
            JWT,
            "jwt-key-from-the-data-dir",
            "hunter2hunter2",
        ),
        redactor,
    )["message"]
    for secret in ("api-token-0123456789", "opaque.token~value", JWT, "whsec_abcDEF123",
                   "jwt-key-from-the-data-dir", "hunter2hunter2"):  # fmt: skip
        assert secret not in message
    assert message.count(logs.REDACTED) == 6
    try:
        raise RuntimeError("refused api-token-0123456789")
    except RuntimeError as exc:
        failed = line(record("boom", exc=exc), redactor)
    assert "RuntimeError: refused [redacted]" in failed["exc"]
    assert "api-token-0123456789" not in json.dumps(failed)


def test_short_values_are_not_taken_for_secrets() -> None:
    redactor = logs.Redactor(["abc", None, ""])
    assert redactor.scrub("abc is a word") == "abc is a word"
