"""Logging for `duetime serve` and `duetime worker`: lines for people, or one JSON object per
line (`DUETIME_LOG_FORMAT=json`) for a log pipeline.

A JSON line has `time` (RFC3339 UTC, milliseconds), `level`, `logger`, `message`; the
`trace_id` and `span_id` of the current OpenTelemetry span when there is one; the `job`,
`task_id` or `delivery_id` the code was working on (`bind`); and `exc` with the traceback of
an error. Either way, secrets never reach the output: the values of the secret settings, bearer
tokens, JWTs and webhook secrets are replaced by `[redacted]` before a line is written.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from duetime.settings import Settings

_context: contextvars.ContextVar[Mapping[str, str]] = contextvars.ContextVar(
    "duetime_log_context", default=MappingProxyType({})
)
_PATTERNS = re.compile(
    r"(?i)(?<=bearer )[\w\-.~+/]+=*"  # an Authorization header's token
    r"|eyJ[\w-]{6,}\.[\w-]{6,}\.[\w-]+"  # a JWT
    r"|whsec_[\w-]+"  # a webhook signing secret
)
REDACTED = "[redacted]"


class bind:
    """Add `fields` (job, task_id, delivery_id) to every line logged in this block. A class,
    not a generator: it is entered once per trigger (≈ 1 µs against ≈ 4 µs)."""

    __slots__ = ("_fields", "_token")

    def __init__(self, **fields: str) -> None:
        self._fields = fields

    def __enter__(self) -> None:
        self._token = _context.set({**_context.get(), **self._fields})

    def __exit__(self, *_exc: object) -> None:
        _context.reset(self._token)


def note(**fields: str) -> None:
    """Add `fields` to every line logged from here to the end of the current task (each
    trigger and delivery attempt runs in an asyncio task of its own)."""
    _context.set({**_context.get(), **fields})


class Redactor(logging.Filter):
    """Replaces secrets in a record's text (message and traceback) before any handler."""

    def __init__(self, secrets: Iterable[str | None]) -> None:
        super().__init__()
        # short values would redact ordinary words; settings refuse them as secrets anyway
        self._secrets = sorted({s for s in secrets if s and len(s) >= 8}, key=len, reverse=True)

    def add(self, secret: str) -> None:
        self._secrets = sorted({*self._secrets, secret}, key=len, reverse=True)

    def scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return _PATTERNS.sub(REDACTED, text)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        scrubbed = self.scrub(message)
        if scrubbed != message:
            record.msg, record.args = scrubbed, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.scrub(record.exc_text)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }  # fmt: skip
        line.update(_trace_ids())
        line.update(_context.get())
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exc"] = record.exc_text
        return json.dumps(line, ensure_ascii=False, default=str)


def _trace_ids() -> dict[str, str]:
    try:
        from opentelemetry import trace
    except ImportError:
        return {}
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return {}
    return {"trace_id": f"{context.trace_id:032x}", "span_id": f"{context.span_id:016x}"}


def secret_values(settings: Settings) -> list[str | None]:
    """The settings whose values must never be logged."""
    values = [
        settings.api_token,
        settings.app_api_token,
        settings.dapr_api_token,
        settings.jwt_secret,
        settings.metrics_token,
        settings.smtp_password,
    ]
    values += [app.api_token for app in settings.apps.values()]
    values += [app.app_api_token for app in settings.apps.values()]
    return values


def configure(settings: Settings) -> Redactor:
    """Set up the root logger (uvicorn's loggers propagate to it); returns its redactor, to
    which secrets found later (the token key in the data dir) are added."""
    handler = logging.StreamHandler()
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    redactor = Redactor(secret_values(settings))
    handler.addFilter(redactor)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    logging.captureWarnings(True)  # a library's warning is a line like the others
    root.setLevel(settings.log_level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per trigger is noise
    logging.getLogger("aiokafka").setLevel(logging.ERROR)  # retries while a broker starts
    return redactor
