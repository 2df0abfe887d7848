"""Delivery of reminders to the channels users listen on: in-app stream, webhook, email."""
