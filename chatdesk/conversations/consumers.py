"""The customer's websocket (docs/protocol.md, /ws/chat/). Validates frames and calls one service each."""

from __future__ import annotations

import json
import uuid
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from chatdesk.conversations import frames, realtime, selectors, services
from chatdesk.conversations.errors import ServiceError
from chatdesk.conversations.tokens import public_id_from_token


class FrameConsumer(AsyncJsonWebsocketConsumer):
    """JSON frames in and out, with clear error frames for anything malformed, and group bookkeeping."""

    groups_joined: list[str]

    async def websocket_connect(self, message: dict[str, Any]) -> None:
        self.groups_joined = []
        await super().websocket_connect(message)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data is None:
            await self.send_error(ServiceError("invalid_frame", "Frames must be JSON text, not binary."))
            return
        try:
            content = json.loads(text_data)
        except ValueError:
            await self.send_error(ServiceError("invalid_frame", "Frames must be JSON objects."))
            return
        if not isinstance(content, dict) or not isinstance(content.get("type"), str):
            await self.send_error(ServiceError("invalid_frame", 'Frames must be JSON objects with a "type".'))
            return
        try:
            await self.receive_json(content)
        except ServiceError as error:
            await self.send_error(error, request=content)

    async def send_error(self, error: ServiceError, request: dict[str, Any] | None = None) -> None:
        frame = error.as_frame()
        for echo in ("request_id", "client_id"):  # lets the client match the error to what it sent
            if request and isinstance(request.get(echo), str | int):
                frame[echo] = request[echo]
        await self.send_json(frame)

    async def join(self, group: str) -> None:
        await self.channel_layer.group_add(group, self.channel_name)
        self.groups_joined.append(group)

    async def leave_all(self) -> None:
        for group in self.groups_joined:
            await self.channel_layer.group_discard(group, self.channel_name)
        self.groups_joined = []

    async def disconnect(self, code: int) -> None:
        await self.leave_all()

    async def deliver(self, event: dict[str, Any]) -> None:
        """Channel-layer event from realtime: forward its frames unchanged."""
        for frame in event["frames"]:
            await self.send_json(frame)


class CustomerChatConsumer(FrameConsumer):
    """One customer's chat. The first frame must be `hello`, which starts or resumes a conversation."""

    public_id: uuid.UUID | None = None

    async def receive_json(self, content: dict[str, Any], **kwargs: Any) -> None:
        kind = content["type"]
        if kind == "hello":
            await self.hello(content)
        elif kind == "ping":
            await self.send_json({"type": "pong"})
        elif self.public_id is None:
            raise ServiceError("hello_required", 'Send a "hello" frame first.')
        elif kind == "message":
            await self.post_message(content)
        elif kind == "request_human":
            await database_sync_to_async(services.conversation_request_human)(public_id=self.public_id)
        else:
            raise ServiceError("unknown_type", f"Unknown frame type {kind!r}.")

    async def hello(self, content: dict[str, Any]) -> None:
        token = content.get("token")
        after_seq = content.get("after_seq", 0)
        if not isinstance(after_seq, int) or after_seq < 0:
            raise ServiceError("invalid_request", "after_seq must be a whole number ≥ 0.")
        if token is None:
            conversation = await database_sync_to_async(services.conversation_start)()
        else:
            public_id = public_id_from_token(token) if isinstance(token, str) else None
            conversation = (
                await database_sync_to_async(selectors.conversation_by_public_id)(public_id) if public_id else None
            )
            if conversation is None:
                raise ServiceError(
                    "invalid_token",
                    "This conversation link is not valid any more. Send hello without a token to start anew.",
                )
        await self.leave_all()
        self.public_id = conversation.public_id
        # Subscribe before the snapshot: nothing is missed, and clients drop frames by seq they already have.
        await self.join(realtime.customer_group(conversation.public_id))
        await self.send_json(await database_sync_to_async(frames.welcome_frame)(conversation, after_seq=after_seq))

    async def post_message(self, content: dict[str, Any]) -> None:
        assert self.public_id is not None
        message, _created = await database_sync_to_async(services.customer_message_post)(
            public_id=self.public_id, text=content.get("text"), client_id=content.get("client_id")
        )
        await self.send_json({"type": "ack", "client_id": message.client_id, "seq": message.seq})
