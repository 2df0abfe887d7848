"""uvicorn's server, told to end the live streams (SSE) when it is asked to stop: they never
end by themselves, and uvicorn waits for open requests before it shuts down."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from types import FrameType

import uvicorn


class StoppableServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, on_exit: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_exit = on_exit

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        try:
            asyncio.get_running_loop().call_soon_threadsafe(self._on_exit)
        except RuntimeError:  # no loop running in this thread
            pass
        super().handle_exit(sig, frame)
