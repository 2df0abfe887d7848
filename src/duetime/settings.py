"""duetime's configuration: one typed class, read from `DUETIME_*` environment variables."""

from __future__ import annotations

import ipaddress
import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_APP_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "duetime"


class AppSettings(BaseModel):
    """One more app in `DUETIME_APPS` (the default app is `app_id`/`app_url`)."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = None
    protocol: Literal["http", "grpc"] = "http"
    api_token: str | None = None
    """The token this app sends as `dapr-api-token`; it may act only for this app."""
    app_api_token: str | None = None
    """Sent to this app as `dapr-api-token` on triggers and events."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DUETIME_", extra="ignore", populate_by_name=True)

    data_dir: Path = Field(default_factory=_default_data_dir)
    database_url: str | None = None
    """`sqlite:///path` or `postgresql://user@host/db`; default: `duetime.db` in data_dir."""
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    scheduler: Literal["embedded", "dapr"] = "embedded"
    """`embedded`: jobs in the database, fired in-process. `dapr`: jobs in the Dapr Scheduler
    through the daprd sidecar at `dapr_http_endpoint`, triggers back on `POST /job/{name}`."""
    dapr_http_endpoint: str = Field(
        default="http://127.0.0.1:3500",
        validation_alias=AliasChoices("DUETIME_DAPR_HTTP_ENDPOINT", "DAPR_HTTP_ENDPOINT"),
    )
    """daprd's HTTP API (also read from `DAPR_HTTP_ENDPOINT`, as the Dapr SDKs do)."""
    dapr_api_token: str | None = Field(
        default=None, validation_alias=AliasChoices("DUETIME_DAPR_API_TOKEN", "DAPR_API_TOKEN")
    )
    """Sent as `dapr-api-token` on every call to daprd (also read from `DAPR_API_TOKEN`)."""
    dapr_timeout: float = Field(default=10.0, gt=0)
    """Seconds a call to daprd may take."""

    api_token: str | None = None
    """Required on the jobs API when set (`dapr-api-token` or `Authorization: Bearer`)."""
    app_url: str | None = None
    """External app that receives triggers at `POST {app_url}/job/{name}`."""
    app_api_token: str | None = None
    """Sent to the app as `dapr-api-token`, and required on duetime's own `POST /job/{name}`."""
    app_timeout: float = Field(default=30.0, gt=0)
    """Seconds an app may take to answer a trigger before it counts as failed."""
    app_404: Literal["success", "failure"] = "success"
    """A trigger the app answers 404 (gRPC NOT_FOUND): `success` is Dapr's rule (delivered,
    not retried), `failure` counts it against the job's failure policy. Logged either way."""
    app_id: str = Field(default="app", min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    """The default app's id (Dapr's `--app-id`): the scope of jobs and subscriptions of a
    caller that names no other app."""
    app_protocol: Literal["http", "grpc"] = "http"
    """How triggers and events reach the default app: `http` (`POST {app_url}/job/{name}`)
    or `grpc` (`AppCallbackAlpha.OnJobEventAlpha1` at `app_url`, `host:port`)."""
    namespace: str = Field(default="default", min_length=1)
    """The Dapr namespace in job keys (`app||<namespace>||<app-id>||<name>`)."""
    apps: dict[str, AppSettings] = Field(default_factory=dict)
    """More apps sharing this duetime, as JSON: `{"<app-id>": {"url": …, "protocol":
    "http", "api_token": …, "app_api_token": …}}`. An app's `api_token` identifies it."""
    grpc_port: int = Field(default=50001, ge=0, le=65535)
    """The Dapr gRPC API (Jobs, pub/sub, metadata) on `host`; 0 turns it off. Off by default
    with `scheduler=dapr`: the apps talk to the real daprd, which holds 50001 itself."""
    resources_path: Path | None = None
    """A directory of Dapr resource YAML (declarative `Subscription`s, pub/sub components)."""
    pubsubs: list[str] = Field(default_factory=lambda: ["pubsub"])
    """The embedded broker's pub/subs, as JSON (`["pubsub", "orders"]`); besides these,
    every `pubsub.*` Component in `resources_path`. `pubsub_name` is added when duetime's
    own events go through the broker (`event_publisher=embedded`)."""
    pubsub_max_attempts: int = Field(default=5, ge=1, le=100)
    """Delivery attempts of one message to one subscriber before it goes to the
    subscription's `deadLetterTopic` (or is dropped, logged, when it has none)."""
    pubsub_backoff_base: float = Field(default=1.0, gt=0)
    """Seconds before the 2nd attempt; doubling after each failure."""
    pubsub_backoff_max: float = Field(default=60.0, gt=0)
    """Longest wait between two attempts, in seconds."""
    pubsub_concurrency: int = Field(default=10, ge=1)
    """Deliveries in flight at once (Dapr's Redis component: `concurrency`, 10): no order
    is kept within a topic, as with Redis."""
    pubsub_retention_hours: float = Field(default=24.0, gt=0)
    """Delivered and dead-lettered messages are deleted after this; an app that subscribes
    to a topic for the first time gets the messages still kept (a Redis group from `0`)."""

    jwt_secret: str | None = None
    """HS256 key for `/api` bearer tokens; default: created once in data_dir (`jwt-secret`)."""
    retention_days: int = Field(default=30, ge=1)
    """Completed tasks older than this are deleted by the daily maintenance job."""
    misfire_grace: timedelta = Field(default=timedelta(hours=1), ge=timedelta(0))
    """A reminder firing later than this past its time (after downtime, say) is handled by
    `misfire_policy`. Seconds, or an ISO 8601 duration such as `PT1H`."""
    misfire_policy: Literal["late", "missed"] = "late"
    """`late`: deliver it, marked late; `missed`: do not deliver it, record it as missed."""

    max_concurrency: int = Field(default=100, ge=1)
    """Triggers whose handlers run at once."""
    window_size: int = Field(default=1000, ge=1)
    """Earliest-due jobs held in memory."""
    metrics_token: str | None = None
    """Required as `Authorization: Bearer` on `GET /metrics` when set; without it `/metrics`
    on the main port answers only a loopback `host`."""
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    """Also serve `/metrics` on its own port, on `metrics_host` (no token there)."""
    metrics_host: str = "127.0.0.1"
    """Where `metrics_port` listens; loopback by default."""
    log_level: str = "info"
    log_format: Literal["text", "json"] = "text"
    """`json`: one JSON object per line (time, level, logger, message, trace and span ids,
    job / task_id / delivery_id); secrets are redacted either way."""
    access_log: bool = True
    """One log line per HTTP request (uvicorn's access log)."""

    @field_validator("misfire_grace", mode="before")
    @classmethod
    def _seconds(cls, value: object) -> object:
        if isinstance(value, str) and re.fullmatch(r"\d+(\.\d+)?", value.strip()):
            return float(value)
        return value

    # -- delivery ------------------------------------------------------------------------
    webhook_allow_private: bool = False
    """Allow webhook URLs on private, loopback or link-local addresses (tests, intranets)."""
    webhook_timeout: float = Field(default=10.0, gt=0)
    """Seconds a webhook receiver may take to answer one attempt."""
    webhook_max_connections: int = Field(default=100, ge=1)
    delivery_max_attempts: int = Field(default=8, ge=1, le=100)
    """Attempts per delivery (webhook, email) before it becomes a dead letter."""
    delivery_backoff_base: float = Field(default=1.0, gt=0)
    """Seconds; the wait before attempt n+1 is random in [0, min(max, base × 2^(n−1))]."""
    delivery_backoff_max: float = Field(default=300.0, gt=0)
    delivery_concurrency: int = Field(default=100, ge=1)
    """Delivery attempts in flight at once."""
    smtp_host: str | None = None
    """SMTP server for the email channel; email is unavailable when unset."""
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_security: Literal["starttls", "tls", "none"] = "starttls"
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_from: str = "duetime@localhost"
    smtp_timeout: float = Field(default=30.0, gt=0)
    vapid_subject: str = Field(
        default="mailto:admin@localhost", pattern=r"^(mailto:[^\s@]+@[^\s@]+|https://[^\s/]+\S*)$"
    )
    """The VAPID `sub` claim of Web Push requests: a `mailto:` or `https:` contact the push
    services may use to reach the operator."""
    vapid_private_key: str | None = None
    """The VAPID key (base64url of the raw 32-byte P-256 key, or PEM); default: created once
    in data_dir (`vapid-private-key.pem`)."""
    push_ttl: int = Field(default=86400, ge=0, le=2_419_200)
    """Seconds a push service keeps a reminder for a device that is offline (`TTL`)."""
    push_timeout: float = Field(default=10.0, gt=0)
    """Seconds a push service may take to answer one attempt."""
    sse_heartbeat: float = Field(default=15.0, gt=0)
    """Seconds between heartbeat comments on `/api/notifications/stream`."""
    role: Literal["all", "api", "worker"] = "all"
    """`all`: one process does everything. `api`: the task and jobs APIs and the reminders'
    firing. `worker`: the notifier, which receives `reminder.due` through Dapr pub/sub and
    sends webhooks and email. `api` and `worker` need `event_publisher=dapr` and a database
    both can reach."""
    event_publisher: Literal["embedded", "dapr", "kafka"] = "embedded"
    """Where events go after the outbox, besides the event log and the live streams.
    `embedded`: nowhere else. `dapr`: Dapr pub/sub through the sidecar at
    `dapr_http_endpoint` (component `pubsub_name`); the notifier then subscribes to
    `reminders` through its sidecar. `kafka`: straight to Kafka at `kafka_bootstrap_servers`
    (for consumers of duetime's events; the notifier stays in-process)."""
    pubsub_name: str = Field(default="pubsub", min_length=1)
    """The Dapr pub/sub component duetime publishes to and subscribes through."""
    dead_letter_topic: str = Field(default="reminders-dead", min_length=1)
    """Where Dapr moves a `reminder.due` the worker could not take after the retries of the
    component's resiliency policy; duetime keeps those for an operator to replay."""
    kafka_bootstrap_servers: str | None = None
    """`host:port[,host:port…]` of the Kafka brokers (`event_publisher=kafka`)."""
    kafka_topic_prefix: str = ""
    """Prepended to the topic names (`task-events`, `reminders`) on Kafka."""
    event_relay: bool = True
    """false: events stay in the outbox, unpublished (for tests of crash recovery)."""

    # -- accounts for people using a browser (duetime.accounts) ---------------------------
    signup: Literal["open", "invite", "closed"] | None = None
    """Who may create an account at `POST /api/auth/signup`: `open` (anyone who reaches the
    server), `invite` (a code from `duetime users invite`), `closed` (only `duetime users
    create`). Unset: `open` when `host` is loopback (one person's machine), else `invite`."""
    session_ttl: timedelta = Field(default=timedelta(days=14), gt=timedelta(0))
    """A browser session ends after this long unused (seconds or ISO 8601, `P14D`)."""
    session_max_age: timedelta = Field(default=timedelta(days=90), gt=timedelta(0))
    """…and this long after sign-in, however much it is used."""
    session_cookie_secure: bool | None = None
    """The session cookie's `Secure` flag: unset, set when the request came over HTTPS
    (as uvicorn sees it, `X-Forwarded-Proto` from a trusted proxy included); `true` forces
    it (TLS ends at a proxy that does not say so), `false` never sets it."""
    signin_max_failures: int = Field(default=5, ge=1)
    """Failed sign-ins of one email within `signin_window` before sign-in answers 429."""
    signin_max_failures_per_ip: int = Field(default=20, ge=1)
    """Failed sign-ins from one client address within `signin_window` before 429."""
    signin_window: timedelta = Field(default=timedelta(minutes=15), gt=timedelta(0))
    """The window of the sign-in limits (seconds or ISO 8601, `PT15M`)."""

    @field_validator("session_ttl", "session_max_age", "signin_window", mode="before")
    @classmethod
    def _account_seconds(cls, value: object) -> object:
        if isinstance(value, str) and re.fullmatch(r"\d+(\.\d+)?", value.strip()):
            return float(value)
        return value

    @property
    def signup_mode(self) -> Literal["open", "invite", "closed"]:
        """`signup`, or its default for `host`."""
        if self.signup is not None:
            return self.signup
        return "open" if is_loopback(self.host) else "invite"

    @model_validator(mode="after")
    def _roles_need_a_broker(self) -> Settings:
        if self.role != "all" and self.event_publisher != "dapr":
            raise ValueError(
                f"DUETIME_ROLE={self.role} needs DUETIME_EVENT_PUBLISHER=dapr: the worker "
                "receives reminders from the API through Dapr pub/sub"
            )
        if self.event_publisher == "kafka" and not self.kafka_bootstrap_servers:
            raise ValueError(
                "DUETIME_EVENT_PUBLISHER=kafka needs DUETIME_KAFKA_BOOTSTRAP_SERVERS (host:port)"
            )
        return self

    @model_validator(mode="after")
    def _no_grpc_stand_in_beside_daprd(self) -> Settings:
        if self.scheduler == "dapr" and "grpc_port" not in self.model_fields_set:
            self.grpc_port = 0
        return self

    @property
    def runs_api(self) -> bool:
        return self.role in ("all", "api")

    @property
    def runs_notifier(self) -> bool:
        return self.role in ("all", "worker")

    @property
    def fans_out_inline(self) -> bool:
        """The fan-out to channels happens when the reminder fires, not in a subscriber."""
        return self.event_publisher != "dapr"

    @model_validator(mode="after")
    def _apps_are_distinct(self) -> Settings:
        tokens = [self.api_token] if self.api_token else []
        for app_id, app in self.apps.items():
            if not _APP_ID.fullmatch(app_id) or app_id == self.app_id:
                raise ValueError(
                    f"DUETIME_APPS: {app_id!r} is not a valid app id besides "
                    f"DUETIME_APP_ID={self.app_id!r} (letters, digits, '.', '_', '-')"
                )
            if app.api_token:
                if app.api_token in tokens:
                    raise ValueError(
                        f"DUETIME_APPS: the api_token of {app_id!r} is used twice; "
                        "a token must identify one app"
                    )
                tokens.append(app.api_token)
        return self

    @model_validator(mode="after")
    def _refuse_public_bind_without_token(self) -> Settings:
        if not self.api_token and not is_loopback(self.host):
            raise ValueError(
                f"refusing to listen on {self.host} without DUETIME_API_TOKEN: "
                "set a token, or bind to 127.0.0.1"
            )
        return self

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'duetime.db'}"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
