"""The bare Channels relay bench/live_path.py measures ChatDesk against: the least a desk on this stack
can do per customer message. A socket at /relay/customer/ sends a text frame; the consumer forwards
it through one channel-layer group (the desk's own channels-redis settings, CHANNEL_LAYERS) to every
socket at /relay/agent/, and answers the sender with an ack. No database, no checks.

    python -m chatdesk.serve --bind 127.0.0.1 --port 8100 bench.relay_asgi:application
"""

from __future__ import annotations

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatdesk.settings")
django.setup()

from channels.generic.websocket import AsyncWebsocketConsumer  # noqa: E402  (after django.setup)
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

GROUP = "relay.agents"


class Relay(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        self.role = self.scope["url_route"]["kwargs"]["role"]
        if self.role == "agent":
            await self.channel_layer.group_add(GROUP, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if self.role == "agent":
            await self.channel_layer.group_discard(GROUP, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        await self.channel_layer.group_send(GROUP, {"type": "relay.frame", "text": text_data or ""})
        await self.send(text_data='{"type": "ack"}')

    async def relay_frame(self, event: dict[str, str]) -> None:
        await self.send(text_data=event["text"])


application = ProtocolTypeRouter({"websocket": URLRouter([path("relay/<str:role>/", Relay.as_asgi())])})
