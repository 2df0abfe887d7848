"""Brief 000 (`../shared/seeds/000_892c335480b25650.txt`, the "dapr-scheduler" skill).

Its only runnable Dapr call: lines 414-429, "Event Publishing", `DaprClient().publish_event`
to pub/sub `kafka-pubsub`, topic `task-reminders`.

Changed: nothing in the code. The sidecar's address is the `dapr` SDK's, from
`DAPR_HTTP_PORT` / `DAPR_GRPC_PORT`, which the brief sets to 3500 / 50001 (lines 253-256);
the test sets them to the sidecar under test. Added: `import json`, which the snippet
uses but does not import, and `main()`, which calls it with the brief's example values
(`task_id=123`, `user_id="user-xyz"`, lines 53-56).

Not runnable: the scheduling calls (`job_manager.schedule_task_reminder(...)`, lines
45-117) go through `scripts/job_manager.py` and `scripts/schedule_job.py`, which the brief
names (lines 146-156) but does not contain; their HTTP calls are described in brief 002
(the same skill's `references/dapr-jobs-api.md`), whose module runs them.
"""

import json  # glue: used by the snippet, not imported by it

# --- brief 000, lines 417-428 -----------------------------------------------------------
from dapr.clients import DaprClient


async def process_task_reminder(task_id: int, user_id: str):
    with DaprClient() as client:
        client.publish_event(
            pubsub_name="kafka-pubsub",
            topic_name="task-reminders",
            data=json.dumps({"task_id": task_id, "user_id": user_id}),
        )


# --- end of the brief's code ----------------------------------------------------------------


def main() -> None:
    from tests.e2e.seeds._glue import steps

    with steps() as run:
        run.run("publish task-reminders", process_task_reminder, task_id=123, user_id="user-xyz")


if __name__ == "__main__":
    main()
