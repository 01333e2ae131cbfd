"""`python -m chatdesk.serve [daphne options] [application]`: Daphne with the desk's websocket limits.

Daphne passes its payload limits to autobahn but leaves autobahn's `failByDrop` on, so a frame over
the limit, or a text frame that is not UTF-8, drops the TCP connection and the client sees 1006 with
no reason. Here such a connection is closed with the protocol's close frame instead: 1009 (message
too big) or 1007 (invalid UTF-8). The limit is WS_MAX_FRAME_BYTES, in both directions (autobahn has
one limit for both), so every frame the desk builds is bounded below it (see frames.py).

Daphne also reads a socket as fast as the client writes, queueing every frame for the application
without bound: one client writing tens of thousands of frames a second keeps the process busy
parsing them, and every other customer it serves waits. Here a socket whose frames are not handled
yet pile up past WS_MAX_QUEUED_FRAMES stops being read until the application has caught up
(TCP backpressure on that client alone), and once the application closed it, nothing more it
sends is parsed.

Production runs this module exactly as the embedded default does (docs/operations.md); any Daphne
option may follow, and the ASGI application defaults to chatdesk.asgi:application.
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

from daphne import server as daphne_server
from daphne.cli import CommandLineInterface
from daphne.ws_protocol import WebSocketFactory, WebSocketProtocol

APPLICATION = "chatdesk.asgi:application"


class BackpressureWebSocketProtocol(WebSocketProtocol):
    """Stops reading a socket while its application has WS_MAX_QUEUED_FRAMES frames still to handle."""

    max_queued = 64
    paused = False

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        if self.state == self.STATE_CLOSING:
            return  # the application closed this socket: what the client still sends is not parsed
        super().onMessage(payload, isBinary)
        queue = getattr(self, "application_queue", None)
        if queue is not None and not self.paused and queue.qsize() >= self.max_queued:
            self.paused = True
            self.transport.pauseProducing()
            self._resume_when_drained()

    def _resume_when_drained(self) -> None:
        if self.state == self.STATE_CLOSED:
            return
        if self.application_queue.qsize() > self.max_queued // 2:
            asyncio.get_event_loop().call_later(0.01, self._resume_when_drained)  # Daphne's reactor is asyncio
            return
        self.paused = False
        self.transport.resumeProducing()


class CleanlyClosingWebSocketFactory(WebSocketFactory):
    """Fails a connection with a close frame (1007, 1009) rather than by dropping it, and reads each
    socket only as fast as its application handles frames."""

    protocol = BackpressureWebSocketProtocol

    def setProtocolOptions(self, *args: Any, **options: Any) -> None:
        super().setProtocolOptions(*args, **{**options, "failByDrop": False})


def daphne_arguments(argv: list[str], *, max_frame_bytes: int) -> list[str]:
    """Daphne's command line: the desk's frame limits first (an explicit option later wins), the app last."""
    limits = ["--websocket-max-message-size", str(max_frame_bytes), "--websocket-max-frame-size", str(max_frame_bytes)]
    has_application = any(":" in arg and not arg.startswith("-") and "/" not in arg for arg in argv)
    return [*limits, *argv, *([] if has_application else [APPLICATION])]


def main(argv: list[str]) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatdesk.settings")
    from django.conf import settings

    BackpressureWebSocketProtocol.max_queued = settings.WS_MAX_QUEUED_FRAMES
    daphne_server.WebSocketFactory = CleanlyClosingWebSocketFactory
    CommandLineInterface().run(daphne_arguments(argv, max_frame_bytes=settings.WS_MAX_FRAME_BYTES))


if __name__ == "__main__":
    main(sys.argv[1:])
