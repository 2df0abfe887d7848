"""Job scopes: which part of the engine's one key space a job lives in.

A job's key in the engine is its scope followed by its name, as Dapr's Scheduler keys jobs
(`app||<namespace>||<app-id>||<name>`). duetime's own jobs (reminders, maintenance) live in
the reserved scope `duetime||`. Public job names may not contain `|` (daprd refuses it too),
so no public call can name, list or touch a key outside its app's scope.
"""

from __future__ import annotations

SEPARATOR = "||"
INTERNAL = "duetime||"
"""The scope of duetime's own jobs; the public Jobs API never reaches it."""


def internal(name: str) -> str:
    """The key of duetime's own job `name`."""
    return INTERNAL + name


def app_scope(namespace: str, app_id: str) -> str:
    """The key prefix of an app's jobs: `app||<namespace>||<app-id>||`."""
    return f"app{SEPARATOR}{namespace}{SEPARATOR}{app_id}{SEPARATOR}"


APP_SCOPES = "app" + SEPARATOR
"""The prefix every app's keys share (the handler of app jobs is registered on it)."""


def split_app_key(key: str) -> tuple[str, str, str] | None:
    """`(namespace, app_id, name)` of an app job's key; None for any other key."""
    parts = key.split(SEPARATOR, 3)
    if len(parts) != 4 or parts[0] != "app":
        return None
    return parts[1], parts[2], parts[3]


def to_dapr_name(key: str) -> str:
    """The job's name on a Dapr sidecar whose app is duetime: duetime's own jobs keep their
    plain names (as earlier versions named them); an app's job is `app:<app-id>:<name>`
    (`:` passes daprd's name rule, and no own job starts with `app:`)."""
    if key.startswith(INTERNAL):
        return key[len(INTERNAL) :]
    parts = split_app_key(key)
    if parts is not None:
        return f"app:{parts[1]}:{parts[2]}"
    return key


def from_dapr_name(name: str, namespace: str) -> str:
    """The key of a job named `name` on duetime's sidecar (`to_dapr_name` reversed)."""
    if name.startswith("app:"):
        app_id, sep, rest = name[4:].partition(":")
        if sep and app_id:
            return app_scope(namespace, app_id) + rest
    return internal(name)
