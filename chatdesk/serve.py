"""`python -m chatdesk.serve [daphne options] [application]`: Daphne with the desk's websocket limits.

Daphne passes its payload limits to autobahn but leaves autobahn's `failByDrop` on, so a frame over
the limit, or a text frame that is not UTF-8, drops the TCP connection and the client sees 1006 with
no reason. Here such a connection is closed with the protocol's close frame instead: 1009 (message
too big) or 1007 (invalid UTF-8). The limit is WS_MAX_FRAME_BYTES, in both directions (autobahn has
one limit for both), so every frame the desk builds is bounded below it (see frames.py).

Production runs this module exactly as the embedded default does (docs/operations.md); any Daphne
option may follow, and the ASGI application defaults to chatdesk.asgi:application.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from daphne import server as daphne_server
from daphne.cli import CommandLineInterface
from daphne.ws_protocol import WebSocketFactory

APPLICATION = "chatdesk.asgi:application"


class CleanlyClosingWebSocketFactory(WebSocketFactory):
    """Fails a connection with a close frame (1007, 1009) rather than by dropping it."""

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

    daphne_server.WebSocketFactory = CleanlyClosingWebSocketFactory
    CommandLineInterface().run(daphne_arguments(argv, max_frame_bytes=settings.WS_MAX_FRAME_BYTES))


if __name__ == "__main__":
    main(sys.argv[1:])
