"""The schema. Times are BIGINT microseconds since the Unix epoch (UTC)."""

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

metadata = MetaData()

jobs = Table(
    "jobs",
    metadata,
    Column("name", String(400), primary_key=True),
    Column("schedule", Text),
    Column("due_time", Text),
    Column("repeats", Integer),
    Column("ttl", Text),
    Column("data", Text),  # JSON text; NULL when the job has no data
    Column("failure_policy", Text),  # JSON text; NULL means the default policy
    Column("created_us", BigInteger, nullable=False),
    Column("anchor_us", BigInteger, nullable=False),
    Column("next_fire_us", BigInteger, nullable=False),
    Column("tick_us", BigInteger, nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("fired", Integer, nullable=False),
    Column("expires_us", BigInteger),
    Column("generation", BigInteger, nullable=False),
    # triggers the app answered 404 under DUETIME_APP_404=success (migration 0008)
    Column("app_not_found", Integer, nullable=False, server_default="0"),
    Column("app_not_found_us", BigInteger),
    # the W3C trace context the job was scheduled in (duetime.tracing; migration 0010)
    Column("trace_context", Text),
    Index("ix_jobs_next_fire", "next_fire_us", "name"),
)

dead_letters = Table(
    "job_dead_letters",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("name", String(400), nullable=False, index=True),
    Column("data", Text),
    Column("scheduled_us", BigInteger, nullable=False),
    Column("failed_us", BigInteger, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("error", Text, nullable=False),
)

tasks = Table(
    "tasks",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("user_id", String(200), nullable=False),
    Column("title", String(500), nullable=False),
    Column("description", Text, nullable=False),
    Column("priority", String(8), nullable=False),
    Column("tags", Text, nullable=False),  # JSON list
    Column("due_us", BigInteger),
    Column("due_sort_us", BigInteger, nullable=False),  # due_us, or a far future when none
    Column("timezone", String(64)),
    Column("status", String(8), nullable=False),
    Column("version", Integer, nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("updated_us", BigInteger, nullable=False),
    Column("completed_us", BigInteger),
    Column("due_local", String(32)),  # naive ISO wall time, when stated in local time
    Column("series_id", String(32)),
    Column("occurrence", Integer),
    Column("occurrence_local", String(32)),
    Index("ix_tasks_series", "series_id"),
    Index("ix_tasks_user_local", "user_id", "status", "timezone"),
    Index("ix_tasks_user_due", "user_id", "due_sort_us", "id"),
    Index("ix_tasks_user_created", "user_id", "created_us", "id"),
    Index("ix_tasks_done", "status", "completed_us"),
)

reminders = Table(
    "reminders",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("task_id", String(32), nullable=False, index=True),
    Column("position", Integer, nullable=False),
    Column("before", String(64)),
    Column("offset_us", BigInteger),
    Column("at_us", BigInteger),
    Column("fire_us", BigInteger, nullable=False),
    Column("state", String(12), nullable=False),
    Column("delivered_us", BigInteger),
    Column("lateness_ms", Float),
    Column("urgent", Boolean, nullable=False, server_default=false()),
    Column("snooze", Boolean, nullable=False, server_default=false()),
    Column("held_us", BigInteger),
)

notifications = Table(
    "notifications",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("user_id", String(200), nullable=False),
    Column("task_id", String(32), nullable=False),
    Column("reminder_id", String(32), nullable=False),
    Column("title", String(500), nullable=False),
    Column("message", Text, nullable=False),
    Column("scheduled_us", BigInteger, nullable=False),
    Column("fired_us", BigInteger, nullable=False),
    Column("lateness_ms", Float, nullable=False),
    Column("read", Boolean, nullable=False),
    Column("late", Boolean, nullable=False, server_default=false()),
    UniqueConstraint("reminder_id", "scheduled_us", name="uq_notifications_occurrence"),
    Index("ix_notifications_user", "user_id", "fired_us", "id"),
)

schedule_outbox = Table(
    "schedule_outbox",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("job_name", String(400), nullable=False),
    Column("job", Text),  # JSON job to schedule with overwrite; NULL: delete the job
    Column("created_us", BigInteger),  # NULL: written before 0009
)

series = Table(
    "series",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("user_id", String(200), nullable=False),
    Column("rule", Text),
    Column("repeat_after", String(64)),
    Column("timezone", String(64)),
    Column("start_local", String(32), nullable=False),
    Column("title", String(500), nullable=False),
    Column("description", Text, nullable=False),
    Column("priority", String(8), nullable=False),
    Column("tags", Text, nullable=False),  # JSON list
    Column("reminders", Text),  # JSON list of specs; NULL: the default reminder
    Column("active", Boolean, nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("updated_us", BigInteger, nullable=False),
    Index("ix_series_user", "user_id"),
)

user_profiles = Table(
    "user_profiles",
    metadata,
    Column("user_id", String(200), primary_key=True),
    Column("timezone", String(64)),
    Column("quiet_start", String(5)),  # "HH:MM"
    Column("quiet_end", String(5)),
    Column("updated_us", BigInteger, nullable=False),
)

# -- delivery and events (migration 0003) -------------------------------------------------

channel_settings = Table(
    "channel_settings",
    metadata,
    Column("user_id", String(200), primary_key=True),
    Column("webhook_url", Text),
    Column("webhook_enabled", Boolean, nullable=False),
    Column("webhook_secret", String(100), nullable=False),
    Column("email", String(254)),
    Column("email_enabled", Boolean, nullable=False),
    Column("updated_us", BigInteger, nullable=False),
    Column("push_enabled", Boolean, nullable=False, server_default=false()),  # 0013
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("notification_id", String(32), nullable=False),
    Column("user_id", String(200), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("target", Text, nullable=False),  # the URL or address when the reminder fired
    Column("event_id", String(64), nullable=False),
    Column("payload", Text, nullable=False),  # the reminder.due CloudEvent, JSON
    Column("state", String(12), nullable=False),  # pending, delivered, dead
    Column("attempts", Integer, nullable=False),
    Column("attempt_limit", Integer, nullable=False),
    Column("next_attempt_us", BigInteger, nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("updated_us", BigInteger, nullable=False),
    Column("delivered_us", BigInteger),
    Column("last_error", Text),
    Column("replays", Integer, nullable=False),
    Column("trace_context", Text),  # the fire's W3C trace context (duetime.tracing; 0011)
    # the push subscription of a `push` delivery (one per device), "" for the others (0013)
    Column("device", String(32), nullable=False, server_default=""),
    UniqueConstraint(
        "notification_id", "channel", "device", name="uq_deliveries_notification_device"
    ),
    Index("ix_deliveries_due", "state", "next_attempt_us"),
    Index("ix_deliveries_user", "user_id", "created_us", "id"),
)

push_subscriptions = Table(  # a browser's PushSubscription, one per device (0013)
    "push_subscriptions",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("user_id", String(200), nullable=False),
    Column("endpoint", Text, nullable=False),
    Column("endpoint_hash", String(64), nullable=False),  # sha256 hex of the endpoint
    Column("p256dh", String(100), nullable=False),  # base64url, as the browser gave it
    Column("auth", String(40), nullable=False),
    Column("label", String(200)),  # the device's name (its User-Agent unless given)
    Column("created_us", BigInteger, nullable=False),
    Column("updated_us", BigInteger, nullable=False),
    Column("last_success_us", BigInteger),
    Column("last_failure_us", BigInteger),
    Column("last_error", Text),
    UniqueConstraint("endpoint_hash", name="uq_push_subscriptions_endpoint_hash"),
    Index("ix_push_subscriptions_user", "user_id", "created_us"),
)

delivery_attempts = Table(
    "delivery_attempts",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("delivery_id", String(32), nullable=False, index=True),
    Column("user_id", String(200), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("status", String(12), nullable=False),  # delivered, failed
    Column("error", Text),
    Column("http_status", Integer),
    Column("started_us", BigInteger, nullable=False),
    Column("finished_us", BigInteger, nullable=False),
)

events = Table(
    "events",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("event_id", String(64), nullable=False, unique=True),
    Column("user_id", String(200), nullable=False),
    Column("topic", String(64), nullable=False),
    Column("type", String(64), nullable=False),
    Column("body", Text, nullable=False),  # the CloudEvent, JSON
    Column("created_us", BigInteger, nullable=False),
    Column("seq", BigInteger, unique=True),  # its place in the log (see events/store.py)
    Column("published_us", BigInteger),
    Index("ix_events_user_seq", "user_id", "seq"),
    Index("ix_events_unpublished", "published_us", "id"),
)

event_dead_letters = Table(
    "event_dead_letters",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("event_id", String(200), nullable=False, unique=True),
    Column("pubsub", String(200), nullable=False),
    Column("topic", String(200), nullable=False),  # where the event was published
    Column("type", String(200)),
    Column("body", Text, nullable=False),  # the event as it reached the dead-letter topic
    Column("first_us", BigInteger, nullable=False),
    Column("last_us", BigInteger, nullable=False),
    Column("times", Integer, nullable=False),  # dead-lettered this often (replays fail again)
    Column("replays", Integer, nullable=False),
    Column("replayed_us", BigInteger),  # None: waiting for an operator
    Index("ix_event_dead_letters_last", "last_us", "id"),
)

# -- the embedded pub/sub broker (migration 0006, duetime.sidecar.pubsub) -----------------

pubsub_messages = Table(
    "pubsub_messages",
    metadata,
    Column(
        "seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("pubsub", String(200), nullable=False),
    Column("topic", String(400), nullable=False),
    Column("data", LargeBinary, nullable=False),  # the CloudEvent JSON, or the raw payload
    Column("metadata", Text, nullable=False),  # JSON object: the publish request's metadata
    Column("created_us", BigInteger, nullable=False),
    Index("ix_pubsub_messages_topic", "pubsub", "topic", "seq"),
    Index("ix_pubsub_messages_created", "created_us"),
)

pubsub_groups = Table(  # an app's subscription to a topic, as a Redis consumer group
    "pubsub_groups",
    metadata,
    Column("app_id", String(200), primary_key=True),
    Column("pubsub", String(200), primary_key=True),
    Column("topic", String(400), primary_key=True),
    Column("created_us", BigInteger, nullable=False),
)

pubsub_deliveries = Table(
    "pubsub_deliveries",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("message_seq", BigInteger, nullable=False),
    Column("app_id", String(200), nullable=False),
    Column("pubsub", String(200), nullable=False),
    Column("topic", String(400), nullable=False),
    Column("state", String(8), nullable=False),  # pending, done, dead, dropped
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_us", BigInteger, nullable=False),
    Column("updated_us", BigInteger, nullable=False),
    Column("last_error", Text),
    UniqueConstraint("message_seq", "app_id", name="uq_pubsub_deliveries_message_app"),
    Index("ix_pubsub_deliveries_due", "state", "next_attempt_us"),
)

# -- accounts for people using a browser (migration 0012, duetime.accounts) ---------------

accounts = Table(
    "accounts",
    metadata,
    Column("user_id", String(200), primary_key=True),  # the owner id: a bearer token's `sub`
    Column("email", String(254), nullable=False, unique=True),  # normalised (lower-cased)
    Column("password_hash", Text, nullable=False),  # argon2id, with its parameters
    Column("is_admin", Boolean, nullable=False, server_default=false()),
    Column("disabled", Boolean, nullable=False, server_default=false()),
    Column("created_us", BigInteger, nullable=False),
    Column("updated_us", BigInteger, nullable=False),
)

sessions = Table(
    "sessions",
    metadata,
    Column("id", String(64), primary_key=True),  # SHA-256 hex of the cookie's token
    Column("user_id", String(200), nullable=False),
    Column("csrf_secret", String(64), nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("last_seen_us", BigInteger, nullable=False),
    Column("expires_us", BigInteger, nullable=False),
    Column("user_agent", String(400)),
    Index("ix_sessions_user", "user_id"),
    Index("ix_sessions_expires", "expires_us"),
)

signin_failures = Table(
    "signin_failures",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("key", String(64), nullable=False),  # SHA-256 hex of "email:…" or "ip:…"
    Column("at_us", BigInteger, nullable=False),
    Index("ix_signin_failures_key", "key", "at_us"),
    Index("ix_signin_failures_at", "at_us"),
)

account_invites = Table(
    "account_invites",
    metadata,
    Column("code_hash", String(64), primary_key=True),  # SHA-256 hex of the code
    Column("created_us", BigInteger, nullable=False),
    Column("expires_us", BigInteger, nullable=False),
    Column("used_us", BigInteger),
    Column("used_by", String(200)),
)
