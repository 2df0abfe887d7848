"""Which job names the public Jobs API takes: daprd 1.16.5's rule, checked before a job
reaches the engine.

daprd 1.16.5 refuses a name containing `|` itself (400 `DAPR_SCHEDULER_JOB_NAME_EMPTY`: `|`
is the separator of the Scheduler's keys, `app||<namespace>||<app-id>||<name>`), and its
Scheduler (go-etcd-cron v0.9.1, `internal/api/validator`) refuses a name that, once `_`, `:`,
`-` and spaces are removed and it is lower-cased, is not an RFC 1123 subdomain of at most 253
characters (500 `DAPR_SCHEDULER_SCHEDULE_JOB`). duetime applies the same rule, so a name it
takes is one every Dapr version from 1.16 on takes too, and answers 400: the name is the
caller's mistake.

One deliberate difference: a name must be ASCII. Go lower-cases rune by rune, so the Kelvin
sign `K` (U+212A) and `İ` (U+0130) pass daprd's check as `k` and `i`; duetime refuses them
with every other non-ASCII name.

The engine's own rule (`duetime.jobs.schedule.validate_name`) is looser on purpose: its keys
carry scopes joined by `||` (`duetime.jobs.scope`).
"""

from __future__ import annotations

import json
import re

from duetime.jobs.schedule import ScheduleError

__all__ = ["MAX_NAME_LENGTH", "JobNameError", "JobNameSeparatorError", "check_job_name"]

MAX_NAME_LENGTH = 253
"""At most this many characters once `_`, `:`, `-` and spaces are removed."""

_IGNORED = re.compile(r"[_:\- ]")
_LABEL = r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?"
_SUBDOMAIN = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_ALLOWED = re.compile(r"[A-Za-z0-9._:\- ]")


class JobNameError(ScheduleError):
    """daprd 1.16.5 refuses this job name (`DAPR_SCHEDULER_SCHEDULE_JOB`). `dapr_code` is
    the error code daprd answers with."""

    dapr_code = "DAPR_SCHEDULER_SCHEDULE_JOB"

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"job name {_quote(name)}: {reason}", field="name")
        self.name = name


class JobNameSeparatorError(JobNameError):
    """The name contains `|`, the separator of job keys; daprd itself refuses it, before
    any other check of the job, with `DAPR_SCHEDULER_JOB_NAME_EMPTY`."""

    dapr_code = "DAPR_SCHEDULER_JOB_NAME_EMPTY"


def check_job_name(name: str) -> None:
    """Raise `JobNameError` unless a public job may be called `name` (as the URL gives it,
    after trimming surrounding spaces as daprd does).

    Allowed: ASCII letters (either case), digits, `.`, `-`, `_`, `:` and spaces, such that
    without `_`, `:`, `-` and spaces the lower-cased name is non-empty, at most 253
    characters, and made of dot-separated labels that begin and end with a letter or digit.
    So `reminder-7`, `My Job`, `a.b.c`, `tenant:42` and `x_y` pass; `a..b`, `.lead`, `a.`,
    `---`, `jöb`, `a@b`, `a#b`, `a/b` and 254 letters do not. A `|` raises the subclass
    `JobNameSeparatorError`.
    """
    if "|" in name:
        raise JobNameSeparatorError(name, "must not contain '|' (it separates job scopes)")
    if not name:
        raise JobNameError(name, "must not be empty")
    bad = sorted({c for c in name if not _ALLOWED.fullmatch(c)})
    if bad:
        shown = " ".join(_show(c) for c in bad[:5])
        raise JobNameError(
            name,
            "may contain only ASCII letters, digits, '.', '-', '_', ':' and spaces"
            f" (found {shown})",
        )
    core = _IGNORED.sub("", name).lower()
    if not core:
        raise JobNameError(name, "needs a letter or digit besides '-', '_', ':' and spaces")
    if len(core) > MAX_NAME_LENGTH:
        raise JobNameError(
            name,
            f"must be at most {MAX_NAME_LENGTH} characters not counting '-', '_', ':' and"
            f" spaces, got {len(core)}",
        )
    if not _SUBDOMAIN.fullmatch(core):
        raise JobNameError(
            name,
            "each '.'-separated part must start and end with a letter or digit"
            " (no leading, trailing or double dots)",
        )


def _show(char: str) -> str:
    if char.isascii() and char.isprintable():
        return repr(char)
    if char.isprintable():
        return f"{char!r} (U+{ord(char):04X})"
    return f"U+{ord(char):04X}, a control character"


def _quote(text: str, limit: int = 80) -> str:
    return json.dumps(text if len(text) <= limit else text[:limit] + "…", ensure_ascii=False)
