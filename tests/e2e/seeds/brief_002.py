"""Brief 002 (`../shared/seeds/002_02def8f40396cf19.txt`, "Dapr Jobs API Reference", the
dapr-scheduler skill's `references/dapr-jobs-api.md`).

Its calls, all under `http://localhost:3500/v1.0/jobs` (line 28):
- lines 113-134, "One-Time Jobs": `requests.post(.../v1.0/jobs/{job_name}, json=payload)`,
  the brief's Python, in `schedule_one_time()`;
- the endpoints it documents without Python, written here in the same `requests` style:
  lines 140-149 "Recurring Jobs" (that JSON body, its `//` comments dropped since JSON has
  none, POSTed to `/v1.0/jobs/{job-name}` of line 72 under the name `daily-standup`, which
  the brief does not give), lines 164-171 "List Jobs" `GET /v1.0/jobs`, lines 192-198
  "Get Job" `GET /v1.0/jobs/{job-name}`, lines 220-227 "Delete Job"
  `DELETE /v1.0/jobs/{job-name}`.

Changed: `localhost:3500` is `localhost:{DAPR_HTTP_PORT}` (`DAPR_PORT` below); `requests`
is `httpx` under that name (the same `post`/`get`/`delete` calls; `requests` is not one of
duetime's dependencies). `main()` runs the calls in an order that does not race the job
firing: the one-time job is due 2025-01-15, in the past, so it fires as soon as it is
scheduled (if it is accepted); GET and DELETE are of that name before it is scheduled,
GET again after.

Not runnable: `scheduler.list_jobs()` / `delete_job()` / `schedule_job()` (lines 389-398,
427-435): the `DaprJobScheduler` class is not in the brief. The callbacks at
`POST /api/jobs/trigger` (lines 284-361) are never called by Dapr (see the test).
"""

import os  # glue

import httpx as requests  # changed: `import requests` (same calls, see above)

DAPR_PORT = os.environ.get("DAPR_HTTP_PORT", "3500")  # changed: the brief's 3500

# --- brief 002, lines 113-134 (at module level in the brief) -----------------------------
from datetime import datetime  # noqa: E402


def schedule_one_time():  # glue: the brief runs these lines at module level
    job_name = "task-reminder-123-user-xyz"
    due_date = datetime(2025, 1, 15, 14, 30, 0)

    payload = {
        "schedule": "",  # Empty for one-time
        "repeats": 1,  # Fire once
        "dueTime": due_date.isoformat() + "Z",
        "data": {"task_id": 123, "user_id": "user-xyz"},
    }

    response = requests.post(f"http://localhost:{DAPR_PORT}/v1.0/jobs/{job_name}", json=payload)
    return response  # glue


# --- the endpoints of lines 140-149, 164-171, 192-198, 220-227, as calls -----------------
def schedule_recurring(job_name: str):
    payload = {  # lines 140-149
        "schedule": "0 9 * * MON-FRI",  # Every weekday at 9 AM
        "repeats": 0,  # Infinite repeats
        "dueTime": "2025-01-15T09:00:00Z",
        "data": {"reminder_type": "daily_standup"},
    }
    return requests.post(f"http://localhost:{DAPR_PORT}/v1.0/jobs/{job_name}", json=payload)


def list_jobs():
    return requests.get(f"http://localhost:{DAPR_PORT}/v1.0/jobs")


def get_job(job_name: str):
    return requests.get(f"http://localhost:{DAPR_PORT}/v1.0/jobs/{job_name}")


def delete_job(job_name: str):
    return requests.delete(f"http://localhost:{DAPR_PORT}/v1.0/jobs/{job_name}")


# --- end of the brief's code ----------------------------------------------------------------


def main() -> None:
    from tests.e2e.seeds._glue import steps

    name = "task-reminder-123-user-xyz"
    with steps() as run:
        run.run("get before it exists", get_job, name)
        run.run("delete before it exists", delete_job, name)
        run.run("schedule one-time (due 2025-01-15)", schedule_one_time)
        run.run("get after scheduling", get_job, name)
        run.run("list", list_jobs)
        run.run("schedule recurring (5-field cron, repeats 0)", schedule_recurring, "daily-standup")
        run.run("get the recurring job", get_job, "daily-standup")


if __name__ == "__main__":
    main()
