"""The jobs engine: a port (`JobScheduler`) and its backends."""

from duetime.jobs.model import (
    DeadLetter,
    FailurePolicy,
    Job,
    JobExistsError,
    JobNotFoundError,
    JobState,
    Trigger,
)
from duetime.jobs.port import JobScheduler, TriggerHandler
from duetime.jobs.schedule import ScheduleError

__all__ = [
    "DeadLetter",
    "FailurePolicy",
    "Job",
    "JobExistsError",
    "JobNotFoundError",
    "JobScheduler",
    "JobState",
    "ScheduleError",
    "Trigger",
    "TriggerHandler",
]
