"""job keys carry their scope: duetime's own jobs `duetime||…`, an app's `app||ns||id||…`

Reminder jobs (named after a reminder that exists, or shaped as duetime names them:
`reminder-<32 hex>`) and the maintenance job move into duetime's scope; every other job, and
its dead letters, into the scope of the app configured when this runs (`DUETIME_NAMESPACE`,
`DUETIME_APP_ID`; defaults `default`, `app`). Rows keep their times and counters, so nothing
pending is lost or fires again.

Revision ID: 0007
Revises: 0006
"""

import os
import re

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

INTERNAL = "duetime||"
MAINTENANCE = "duetime-maintenance-retention"


def _app_scope() -> str:
    namespace = os.environ.get("DUETIME_NAMESPACE") or "default"
    app_id = os.environ.get("DUETIME_APP_ID") or "app"
    return f"app||{namespace}||{app_id}||"


_REMINDER_KEY = re.compile(r"reminder-[0-9a-f]{32}")
"""What duetime names a reminder's job: also those whose reminder is gone (a dead letter of
a deleted task, say), which are duetime's as much as the others."""


def _move(table: str, column: str, app_scope: str) -> None:
    bind = op.get_bind()
    # case-sensitive on SQLite too (LIKE is not): substr
    reminder = f"substr({column}, 1, 9) = 'reminder-'"
    bind.execute(
        sa.text(
            f"UPDATE {table} SET {column} = :scope || {column} WHERE {column} = :maintenance "
            f"OR ({reminder} AND substr({column}, 10) IN (SELECT id FROM reminders))"
        ),
        {"scope": INTERNAL, "maintenance": MAINTENANCE},
    )
    rest = bind.execute(sa.text(f"SELECT {column} FROM {table} WHERE {reminder}")).scalars()
    for name in [n for n in rest if _REMINDER_KEY.fullmatch(n)]:
        bind.execute(
            sa.text(f"UPDATE {table} SET {column} = :key WHERE {column} = :name"),
            {"key": INTERNAL + name, "name": name},
        )
    bind.execute(
        sa.text(
            f"UPDATE {table} SET {column} = :scope || {column} "
            f"WHERE substr({column}, 1, 9) <> 'duetime||' AND substr({column}, 1, 5) <> 'app||'"
        ),
        {"scope": app_scope},
    )


def upgrade() -> None:
    scope = _app_scope()
    _move("jobs", "name", scope)
    _move("job_dead_letters", "name", scope)
    # scheduling intents come only from tasks: all of them are reminder jobs
    op.get_bind().execute(
        sa.text(
            "UPDATE schedule_outbox SET job_name = :scope || job_name "
            "WHERE job_name NOT LIKE 'duetime||%'"
        ),
        {"scope": INTERNAL},
    )


def _unscope(table: str, column: str) -> None:
    bind = op.get_bind()
    bind.execute(
        sa.text(
            f"UPDATE {table} SET {column} = substr({column}, 10) WHERE {column} LIKE 'duetime||%'"
        )
    )
    # app||ns||id||name → name: the text after the third "||"
    rows = bind.execute(sa.text(f"SELECT {column} FROM {table} WHERE {column} LIKE 'app||%'"))
    for (key,) in rows.fetchall():
        bind.execute(
            sa.text(f"UPDATE {table} SET {column} = :name WHERE {column} = :key"),
            {"name": key.split("||", 3)[-1], "key": key},
        )


def downgrade() -> None:
    _unscope("jobs", "name")
    _unscope("job_dead_letters", "name")
    _unscope("schedule_outbox", "job_name")
