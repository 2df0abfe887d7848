"""uvicorn's server, told to end the live streams (SSE) when it is asked to stop: they never
end by themselves, and uvicorn waits for open requests before it shuts down."""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import Callable
from types import FrameType

import uvicorn


class StoppableServer(uvicorn.Server):
    """`banner` is announced (printed to stdout by default) once the port accepts
    connections."""

    def __init__(
        self,
        config: uvicorn.Config,
        on_exit: Callable[[], None],
        banner: str = "",
        announce: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(config)
        self._on_exit = on_exit
        self._banner = banner
        self._announce = announce or (lambda text: print(text, file=sys.stdout, flush=True))

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and not self.should_exit and self._banner:
            self._announce(self._banner)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        try:
            asyncio.get_running_loop().call_soon_threadsafe(self._on_exit)
        except RuntimeError:  # no loop running in this thread
            pass
        super().handle_exit(sig, frame)
