"""Brief 004 (`../shared/seeds/004_5bc2dbd43a3ed89e.txt`, "Jobs API: Scheduled Tasks").

Its calls, all under `JOBS_URL = http://localhost:{DAPR_HTTP_PORT}/v1.0-alpha1/jobs`:
- lines 194-225 `schedule_cleanup_job()` (`@daily`, 204 expected);
- lines 236-253 `schedule_reminder()` (one-time, due 2025-01-15T09:00:00Z);
- lines 257-273 `schedule_hourly_sync()` (`@hourly`, 24 repeats);
- lines 364-388 the "Complete Example"'s own `schedule_cleanup_job()` (run at startup,
  400 taken as "already scheduled");
- lines 443-486 `get_job()`, `delete_job()`, `update_job_schedule()` (`overwrite: True`).

Changed: nothing. The brief already reads the port from `DAPR_HTTP_PORT` (line 199) and
uses `localhost`; the test sets `DAPR_HTTP_PORT` to the sidecar under test. Added (glue):
`main()`, and `schedule_cleanup_job_at_startup`, a second name for the Complete Example's
`schedule_cleanup_job`, which the brief defines twice under one name; the arguments of
`update_job_schedule` (the brief gives none): `daily-todo-cleanup` to `@weekly`.
"""

# --- brief 004, lines 195-225 -----------------------------------------------------------
import json  # noqa: F401  (imported by the brief, unused)
import os

import httpx

DAPR_HTTP_PORT = os.getenv("DAPR_HTTP_PORT", "3500")
JOBS_URL = f"http://localhost:{DAPR_HTTP_PORT}/v1.0-alpha1/jobs"


async def schedule_cleanup_job():
    """Schedule a daily cleanup job for completed todos."""
    job_name = "daily-todo-cleanup"
    job_data = {
        "schedule": "@daily",  # Human-readable: every day at midnight
        "data": {"action": "cleanup-completed-todos", "retention_days": 30},
    }

    async with httpx.AsyncClient() as client:
        response = await client.post(f"{JOBS_URL}/{job_name}", json=job_data)

        if response.status_code == 204:
            print(f"Job '{job_name}' scheduled successfully")
        else:
            print(f"Failed to schedule job: {response.status_code}")
            print(response.text)


# --- lines 237-253 --------------------------------------------------------------------
async def schedule_reminder():
    """Schedule a one-time reminder for tomorrow at 9 AM."""
    job_data = {
        "dueTime": "2025-01-15T09:00:00Z",  # RFC3339 timestamp
        "data": {
            "action": "send-reminder",
            "user_id": "user-123",
            "message": "Review quarterly report",
        },
    }

    async with httpx.AsyncClient() as client:
        response = await client.post(f"{JOBS_URL}/quarterly-reminder", json=job_data)  # noqa: F841


# --- lines 258-273 --------------------------------------------------------------------
async def schedule_hourly_sync():
    """Sync data every hour, but only 24 times."""
    job_data = {
        "schedule": "@hourly",
        "repeats": 24,  # Stop after 24 executions
        "data": {"action": "sync-external-system"},
    }

    async with httpx.AsyncClient() as client:
        response = await client.post(f"{JOBS_URL}/hourly-sync", json=job_data)  # noqa: F841


schedule_cleanup_job_first = schedule_cleanup_job  # glue: the brief redefines the name


# --- lines 368-388 (the Complete Example) -----------------------------------------------
async def schedule_cleanup_job():
    """Schedule daily cleanup if not already scheduled."""
    job_data = {
        "schedule": "@daily",
        "data": {"action": "cleanup-completed-todos", "retention_days": 30},
    }

    async with httpx.AsyncClient() as client:
        response = await client.post(f"{JOBS_URL}/daily-todo-cleanup", json=job_data)

        if response.status_code == 204:
            print("Cleanup job scheduled")
        elif response.status_code == 400:
            # Job already exists
            print("Cleanup job already scheduled")


schedule_cleanup_job_at_startup = schedule_cleanup_job  # glue


# --- lines 444-486 --------------------------------------------------------------------
async def get_job(job_name: str) -> dict | None:
    """Retrieve job details."""
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{JOBS_URL}/{job_name}")

        if response.status_code == 200:
            return response.json()
        return None


async def delete_job(job_name: str) -> bool:
    """Cancel a scheduled job."""
    async with httpx.AsyncClient() as client:
        response = await client.delete(f"{JOBS_URL}/{job_name}")
        return response.status_code == 204


async def update_job_schedule(job_name: str, new_schedule: str):
    """Update an existing job's schedule."""
    job_data = {
        "schedule": new_schedule,
        "overwrite": True,  # Replace existing job
        "data": {"action": "cleanup-completed-todos", "retention_days": 30},
    }

    async with httpx.AsyncClient() as client:
        response = await client.post(f"{JOBS_URL}/{job_name}", json=job_data)
        return response.status_code == 204


# --- end of the brief's code ----------------------------------------------------------------


def main() -> None:
    from tests.e2e.seeds._glue import steps

    cleanup = "daily-todo-cleanup"
    with steps() as run:
        run.run("schedule_cleanup_job (@daily)", schedule_cleanup_job_first)
        run.run("schedule_reminder (due 2025-01-15)", schedule_reminder)
        run.run("schedule_hourly_sync (@hourly x24)", schedule_hourly_sync)
        run.run("schedule_cleanup_job again, at startup", schedule_cleanup_job_at_startup)
        run.run("get_job", get_job, cleanup)
        run.run("update_job_schedule to @weekly", update_job_schedule, cleanup, "@weekly")
        run.run("get_job after the update", get_job, cleanup)
        run.run("delete_job", delete_job, cleanup)
        run.run("get_job after delete_job", get_job, cleanup)
        run.run("delete_job hourly-sync", delete_job, "hourly-sync")


if __name__ == "__main__":
    main()
