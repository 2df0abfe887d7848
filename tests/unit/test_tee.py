"""The tee: local subscribers get each event once and before the broker, even when the
broker fails and the relay retries the batch."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from duetime.events.embedded import EmbeddedEventPublisher
from duetime.events.model import PublishedEvent
from duetime.events.tee import TeePublisher


class FlakyBroker:
    def __init__(self) -> None:
        self.fail = True
        self.got: list[int] = []

    async def publish(self, events: Sequence[PublishedEvent]) -> None:
        if self.fail:
            raise ConnectionError("broker away")
        self.got += [e.seq for e in events]

    async def aclose(self) -> None:
        pass


def event(seq: int) -> PublishedEvent:
    return PublishedEvent(seq, "alice", "reminders", {"id": str(seq), "type": "t"})


async def test_local_gets_each_event_once_and_first_while_the_broker_fails() -> None:
    local = EmbeddedEventPublisher()
    seen: list[int] = []
    local.subscribe(lambda e: seen.append(e.seq))
    broker = FlakyBroker()
    tee = TeePublisher(broker, local)
    batch = [event(1), event(2)]
    with pytest.raises(ConnectionError):
        await tee.publish(batch)
    assert seen == [1, 2] and broker.got == []
    with pytest.raises(ConnectionError):
        await tee.publish([*batch, event(3)])  # retried, with one more
    assert seen == [1, 2, 3]
    broker.fail = False
    await tee.publish([*batch, event(3)])
    assert seen == [1, 2, 3] and broker.got == [1, 2, 3]
    await tee.publish([event(4)])
    assert seen == [1, 2, 3, 4] and broker.got == [1, 2, 3, 4]
