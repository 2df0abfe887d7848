"""Brief 003 (`../shared/seeds/003_d22b5d7feddc4943.txt`, "Task Scheduling and Reminders
Skill").

Its calls: lines 20-49, "Dapr Jobs API Pattern": `schedule_reminder()` POSTs to
`http://localhost:3500/v1.0-alpha1/jobs/reminder-task-{task_id}`, and
`handle_job_trigger()` is what "Dapr calls ... at the exact scheduled time".

Changed: `localhost:3500` is `localhost:{DAPR_HTTP_PORT}` (`DAPR_PORT` below). Added (glue):
the imports the snippet uses without them (`Request`), and `main()`, which schedules the
reminder of task 7 of "user-42" due in 3 seconds (the brief gives no values).

Not runnable: `publish_event("reminders", "reminder.due", ...)` (line 46) is not defined in
the brief (its arguments fit neither the SDK's `publish_event(pubsub_name, topic_name,
data)` with certainty nor Dapr's HTTP API); it is left undefined. The test runs
`handle_job_trigger` on the trigger body each sidecar really delivered: it fails before it
gets there.
"""

import os  # glue
from datetime import UTC, timedelta  # glue

from fastapi import Request  # glue: used by the snippet, not imported by it

DAPR_PORT = os.environ.get("DAPR_HTTP_PORT", "3500")  # changed: the brief's 3500

# --- brief 003, lines 21-48 -----------------------------------------------------------
from datetime import datetime  # noqa: E402

import httpx  # noqa: E402


async def schedule_reminder(task_id: int, remind_at: datetime, user_id: str):
    """Schedule reminder using Dapr Jobs API."""
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"http://localhost:{DAPR_PORT}/v1.0-alpha1/jobs/reminder-task-{task_id}",
            json={
                "dueTime": remind_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "data": {"task_id": task_id, "user_id": user_id, "type": "reminder"},
            },
        )
        return response.status_code == 200


async def handle_job_trigger(request: Request):
    """Dapr calls this endpoint at the exact scheduled time."""
    job_data = await request.json()

    if job_data["data"]["type"] == "reminder":
        # Publish to notification service via Dapr PubSub
        await publish_event("reminders", "reminder.due", job_data["data"])  # noqa: F821

    return {"status": "SUCCESS"}


# --- end of the brief's code ----------------------------------------------------------------

REMIND_IN = timedelta(seconds=3)  # glue


def main() -> None:
    from tests.e2e.seeds._glue import steps

    with steps() as run:
        remind_at = datetime.now(UTC) + REMIND_IN
        run.run("schedule reminder-task-7", schedule_reminder, 7, remind_at, "user-42")


if __name__ == "__main__":
    main()
