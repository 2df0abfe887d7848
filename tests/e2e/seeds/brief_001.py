"""Brief 001 (`../shared/seeds/001_9a2620a812660d1f.txt`, "Dapr Job Scheduling Patterns",
the dapr-scheduler skill's `references/scheduling-patterns.md`).

Its only runnable Dapr call: lines 254-274, "Pattern 7: Event Publishing",
`DaprClient().publish_event` to pub/sub `kafka-pubsub`, topic `task-reminders`.

Changed: nothing in the code. The sidecar's address is the `dapr` SDK's, from
`DAPR_HTTP_PORT` / `DAPR_GRPC_PORT` (the test sets them). Added (glue): `import json` and
`logger`, which the snippet uses without defining, and a stand-in for its `db` whose
`get_task` returns a task with the brief's example values (`title`, `due_date`);
`main()` calls the snippet for task 123 of "user-xyz" (lines 382-386).

Not runnable: the scheduling, listing and deleting calls (`job_manager.schedule_task_reminder`,
`job_manager.scheduler.list_jobs()` / `delete_job(...)`, lines 28-147 and 419-443) go through
the `JobManager` / `DaprJobScheduler` classes the brief does not contain (brief 002 has their
HTTP calls). The handlers at `POST /api/jobs/trigger` (lines 326-404) are never called by
Dapr, which posts triggers to `/job/{name}` (see the test).
"""

import json  # glue
import logging  # glue
from datetime import datetime  # glue
from types import SimpleNamespace  # glue

logger = logging.getLogger("brief_001")  # glue: the snippet logs through `logger`


class _Db:  # glue: stands in for the brief's database
    async def get_task(self, task_id: int) -> SimpleNamespace:
        return SimpleNamespace(
            id=task_id, title="Test Reminder", due_date=datetime(2025, 1, 15, 14, 30)
        )


db = _Db()  # glue

# --- brief 001, lines 255-273 -----------------------------------------------------------
from dapr.clients import DaprClient  # noqa: E402


async def process_task_reminder(task_id: int, user_id: str):
    task = await db.get_task(task_id)

    # Publish event via Dapr pub/sub
    with DaprClient() as client:
        client.publish_event(
            pubsub_name="kafka-pubsub",
            topic_name="task-reminders",
            data=json.dumps(
                {
                    "task_id": task_id,
                    "user_id": user_id,
                    "task_title": task.title,
                    "due_date": task.due_date.isoformat(),
                }
            ),
        )

    logger.info(f"Published reminder event for task {task_id}")


# --- end of the brief's code ----------------------------------------------------------------


def main() -> None:
    from tests.e2e.seeds._glue import steps

    with steps() as run:
        run.run("publish task-reminders", process_task_reminder, task_id=123, user_id="user-xyz")


if __name__ == "__main__":
    main()
