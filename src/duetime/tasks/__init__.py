"""Tasks with exact-time reminders: the domain, its storage port and its services."""
