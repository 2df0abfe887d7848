"""duetime: exact-time reminders and scheduled jobs."""

__version__ = "0.1.0"
