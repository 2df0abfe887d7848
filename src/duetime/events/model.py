"""CloudEvents 1.0 (JSON format) for duetime's topics. Pure: no I/O.

Topic `task-events`: `task.created`, `task.updated`, `task.completed`, `task.deleted`.
Topic `reminders`: `reminder.due`, `reminder.delivered`, `reminder.failed`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from duetime.tasks.model import Task, new_id
from duetime.timefmt import format_rfc3339

TASK_TOPIC = "task-events"
REMINDER_TOPIC = "reminders"
TOPICS = (TASK_TOPIC, REMINDER_TOPIC)
TYPE_PREFIX = "io.duetime."

TaskEventKind = Literal["created", "updated", "completed", "deleted"]
ReminderEventKind = Literal["due", "delivered", "failed"]


@dataclass(frozen=True)
class OutgoingEvent:
    """An event to write to the outbox in the caller's transaction. `body` is the CloudEvent;
    `user_id` scopes who may read it from the log."""

    user_id: str
    topic: str
    body: dict[str, Any]

    @property
    def id(self) -> str:
        return str(self.body["id"])

    @property
    def type(self) -> str:
        return str(self.body["type"])


@dataclass(frozen=True)
class PublishedEvent:
    """An event with its place in the log (`seq`, increasing in publication order)."""

    seq: int
    user_id: str
    topic: str
    body: dict[str, Any]

    @property
    def type(self) -> str:
        return str(self.body["type"])


def cloud_event(
    *,
    topic: str,
    type_: str,
    subject: str,
    time: datetime,
    data: dict[str, Any],
    event_id: str | None = None,
) -> dict[str, Any]:
    """A CloudEvent 1.0 in its JSON format. `type_` is the short name (`task.created`); the
    attribute carries it under the reverse-DNS prefix (`io.duetime.task.created`)."""
    return {
        "specversion": "1.0",
        "id": event_id or new_id(),
        "source": f"/duetime/{topic}",
        "type": TYPE_PREFIX + type_,
        "time": format_rfc3339(time),
        "datacontenttype": "application/json",
        "subject": subject,
        "data": data,
    }


def short_type(full: str) -> str:
    return full.removeprefix(TYPE_PREFIX)


def task_data(task: Task) -> dict[str, Any]:
    return {
        "task_id": task.id,
        "user_id": task.user_id,
        "title": task.title,
        "status": task.status,
        "priority": task.priority,
        "tags": list(task.tags),
        "due_at": None if task.due_at is None else format_rfc3339(task.due_at),
        "version": task.version,
        "reminders": [
            {"id": r.id, "fire_at": format_rfc3339(r.fire_at), "state": r.state}
            for r in task.reminders
        ],
    }


def task_event(kind: TaskEventKind, task: Task, now: datetime) -> OutgoingEvent:
    if kind == "deleted":
        data: dict[str, Any] = {"task_id": task.id, "user_id": task.user_id}
    else:
        data = task_data(task)
    body = cloud_event(
        topic=TASK_TOPIC,
        type_=f"task.{kind}",
        subject=f"tasks/{task.id}",
        time=now,
        data=data,
    )
    return OutgoingEvent(task.user_id, TASK_TOPIC, body)


def reminder_event(
    kind: ReminderEventKind,
    *,
    user_id: str,
    task_id: str,
    time: datetime,
    data: dict[str, Any],
    event_id: str | None = None,
) -> OutgoingEvent:
    body = cloud_event(
        topic=REMINDER_TOPIC,
        type_=f"reminder.{kind}",
        subject=f"tasks/{task_id}",
        time=time,
        data=data,
        event_id=event_id,
    )
    return OutgoingEvent(user_id, REMINDER_TOPIC, body)
