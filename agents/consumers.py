"""Agents' websockets (docs/protocol.md): the live queue, and one conversation's actions."""

from __future__ import annotations

import uuid
from typing import Any

from channels.db import database_sync_to_async
from django.contrib.auth.models import User

from chatdesk.conversations import frames, realtime, selectors, services
from chatdesk.conversations.consumers import FrameConsumer
from chatdesk.conversations.errors import ServiceError

CLOSE_NOT_AGENT = 4403
CLOSE_NOT_FOUND = 4404


def _agent_from_scope(scope: dict[str, Any]) -> User | None:
    user = scope.get("user")
    if user is None or not selectors.user_is_agent(user):
        return None
    return User.objects.get(pk=user.pk)


class AgentConsumer(FrameConsumer):
    """Accepts only signed-in agents; anyone else gets an error frame and close code 4403."""

    agent: User | None = None

    async def connect(self) -> None:
        await self.accept()
        self.agent = await database_sync_to_async(_agent_from_scope)(self.scope)
        if self.agent is None:
            await self.send_error(ServiceError("not_agent", "Sign in as an agent to use this connection."))
            await self.close(code=CLOSE_NOT_AGENT)
            return
        await self.start()

    async def start(self) -> None:
        raise NotImplementedError


class QueueConsumer(AgentConsumer):
    """The queue of conversations that need a person: a snapshot, then one update per change."""

    async def start(self) -> None:
        await self.join(realtime.QUEUE_GROUP)
        await self.send_json(await database_sync_to_async(lambda: frames.queue_frame(list(selectors.agent_queue())))())

    async def receive_json(self, content: dict[str, Any], **kwargs: Any) -> None:
        if content["type"] != "ping":
            raise ServiceError("unknown_type", "The queue connection only receives; send nothing but ping.")
        await self.send_json({"type": "pong"})


class AgentConversationConsumer(AgentConsumer):
    """One conversation: its history and draft live, and the agent's actions on it."""

    public_id: uuid.UUID

    async def start(self) -> None:
        self.public_id = self.scope["url_route"]["kwargs"]["public_id"]
        conversation = await database_sync_to_async(selectors.conversation_for_agent)(
            user=self.agent, public_id=self.public_id
        )
        if conversation is None:
            await self.send_error(ServiceError("not_found", "This conversation does not exist."))
            await self.close(code=CLOSE_NOT_FOUND)
            return
        await self.join(realtime.agent_conversation_group(self.public_id))
        for frame in await database_sync_to_async(frames.agent_snapshot_frames)(conversation):
            await self.send_json(frame)

    async def receive_json(self, content: dict[str, Any], **kwargs: Any) -> None:
        kind = content["type"]
        if kind == "ping":
            await self.send_json({"type": "pong"})
            return
        action = ACTIONS.get(kind)
        if action is None:
            raise ServiceError("unknown_type", f"Unknown frame type {kind!r}; actions are {', '.join(ACTIONS)}.")
        message = await database_sync_to_async(action)(self.public_id, self.agent, content)
        ack: dict[str, Any] = {"type": "ack", "action": kind, "request_id": content.get("request_id")}
        if message is not None and hasattr(message, "seq"):
            ack["seq"] = message.seq
        await self.send_json(ack)


ACTIONS = {
    "approve": lambda pid, agent, c: services.draft_approve(public_id=pid, draft_id=c.get("draft_id"), agent=agent),
    "edit": lambda pid, agent, c: services.draft_edit(
        public_id=pid, draft_id=c.get("draft_id"), agent=agent, text=c.get("text")
    ),
    "reject": lambda pid, agent, c: services.draft_reject(
        public_id=pid,
        draft_id=c.get("draft_id"),
        agent=agent,
        reply_text=c.get("reply_text"),
        redraft=c.get("redraft") is True,
    ),
    "reply": lambda pid, agent, c: services.agent_reply(
        public_id=pid, agent=agent, text=c.get("text"), client_id=c.get("client_id") or ""
    ),
    "take_over": lambda pid, agent, c: services.conversation_take_over(public_id=pid, agent=agent),
    "hand_back": lambda pid, agent, c: services.conversation_hand_back(public_id=pid, agent=agent),
    "close": lambda pid, agent, c: services.conversation_close(public_id=pid, agent=agent),
}
