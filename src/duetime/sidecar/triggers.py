"""Triggers of app jobs, to the app whose scope the job is in, under its public name."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace

from duetime.jobs.model import Answer, Trigger
from duetime.jobs.port import TriggerHandler
from duetime.jobs.scope import split_app_key

log = logging.getLogger(__name__)


class AppTriggers:
    """The engine's handler for every `app||…` key: strips the scope and calls the channel
    of the job's app (`channels` by app id: HTTP or gRPC). A job of an app with no channel
    (no URL configured, or an app no longer configured) counts as delivered and is logged,
    as daprd does with no app to call."""

    def __init__(self, channels: Mapping[str, TriggerHandler]) -> None:
        self._channels = dict(channels)

    async def __call__(self, trigger: Trigger) -> Answer | None:
        parts = split_app_key(trigger.name)
        if parts is None:
            log.warning("job %r is not an app job; trigger dropped", trigger.name)
            return None
        _, app_id, name = parts
        channel = self._channels.get(app_id)
        if channel is None:
            log.warning("job %r of app %r: no app URL to send it to; dropped", name, app_id)
            return None
        return await channel(replace(trigger, name=name))
