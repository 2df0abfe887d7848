"""The jobs engine: a port (`JobScheduler`) and its backends."""

from duetime.jobs.model import (
    Answer,
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
    "Answer",
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
