"""In-process fan-out of in-app notifications to live streams (SSE), per user.

Subscribes to the embedded event bus; each connected stream has a bounded queue. A stream
that falls behind is not dropped silently: it is marked `lagged` and catches up from the
event log, where every notification is.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict

from duetime.events.model import PublishedEvent

STREAM_TYPES = ("io.duetime.reminder.due",)


class Subscription:
    def __init__(self, user_id: str, size: int) -> None:
        self.user_id = user_id
        self.queue: asyncio.Queue[PublishedEvent] = asyncio.Queue(size)
        self.lagged = False
        self.closed = False  # the server is stopping: end the stream
        self.changed = asyncio.Event()

    def offer(self, event: PublishedEvent) -> None:
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.lagged = True
        self.changed.set()


class NotificationHub:
    def __init__(self, *, queue_size: int = 1000) -> None:
        self._queue_size = queue_size
        self._by_user: dict[str, set[Subscription]] = defaultdict(set)
        self._closing = False

    def subscribe(self, user_id: str) -> Subscription:
        sub = Subscription(user_id, self._queue_size)
        sub.closed = self._closing
        self._by_user[user_id].add(sub)
        return sub

    @property
    def clients(self) -> int:
        """Streams open now."""
        return sum(len(subs) for subs in self._by_user.values())

    def close_all(self) -> None:
        """End every stream (the server is stopping); later ones end at once."""
        self._closing = True
        for subs in self._by_user.values():
            for sub in subs:
                sub.closed = True
                sub.changed.set()

    def unsubscribe(self, sub: Subscription) -> None:
        subs = self._by_user.get(sub.user_id)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._by_user[sub.user_id]

    def __call__(self, event: PublishedEvent) -> None:
        """The bus subscriber: offer in-app events to their user's streams."""
        if event.type not in STREAM_TYPES:
            return
        for sub in self._by_user.get(event.user_id, ()):
            sub.offer(event)

    @property
    def connected(self) -> int:
        return sum(len(s) for s in self._by_user.values())
