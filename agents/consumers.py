"""Agents' websockets (docs/protocol.md): the live queue, and one conversation's actions.

Every agent socket is tied to the session it was opened with: it is checked when the socket opens,
before every action, and whenever realtime announces that the session or its user changed (logout,
deactivation, removal from the agents' groups, password change), and closed with 4401 once the
session no longer names an active agent.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, ClassVar

from channels.db import database_sync_to_async
from django.contrib.auth.models import User
from django.utils import translation
from django.utils.translation import gettext

from chatdesk.accounts.services import user_preferences
from chatdesk.conversations import assignment, frames, notes, presence, realtime, selectors, services
from chatdesk.conversations.consumers import CLOSE_NOT_FOUND, FrameConsumer
from chatdesk.conversations.errors import ServiceError
from chatdesk.conversations.inbound import Field, FrameSpec
from chatdesk.knowledge import services as knowledge_services

CLOSE_SESSION_ENDED = 4401
CLOSE_NOT_AGENT = 4403


# Every agent socket says whether its tab is visible; it counts toward the agent's presence.
PRESENCE: dict[str, FrameSpec] = {"presence": {"away": Field("boolean", required=True)}}
# A socket's presence row is refreshed at most this often by the frames (pings) it sends.
SEEN_EVERY_S = 20


class AgentConsumer(FrameConsumer):
    """Accepts only signed-in agents; anyone else gets an error frame and close code 4403. While open,
    the socket counts toward its agent's presence (chatdesk.conversations.presence)."""

    SOCKET_KIND = "agent"
    agent: User | None = None
    session_key: str | None = None
    seen_at: float | None = None
    language: str = ""  # the agent's own choice (accounts.Profile), "" for their browser's

    def answer_language(self) -> str:
        return self.language or super().answer_language()

    async def connect(self) -> None:
        await self.accept()
        session = self.scope.get("session")
        self.session_key = session.session_key if session is not None else None
        self.agent = await database_sync_to_async(selectors.agent_for_session)(self.session_key)
        if self.agent is None:
            with translation.override(self.answer_language()):
                message = gettext("Sign in as an agent to use this connection.")
            await self.send_error(ServiceError("not_agent", message))
            await self.close(code=CLOSE_NOT_AGENT)
            return
        self.language = (await database_sync_to_async(user_preferences)(self.agent)).language
        await self.join(realtime.user_group(self.agent.pk))
        await self.join(realtime.session_group(self.session_key or ""))
        await database_sync_to_async(presence.socket_opened)(self.agent, self.channel_name)
        self.seen_at = time.monotonic()
        with translation.override(self.answer_language()):
            await self.start()

    async def start(self) -> None:
        raise NotImplementedError

    async def act(self, kind: str, fields: dict[str, Any]) -> None:
        """Handle one of the endpoint's own frames (all but ping and presence)."""
        raise NotImplementedError

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if await self.session_ended():
            return
        if self.seen_at is not None and time.monotonic() - self.seen_at > SEEN_EVERY_S:
            self.seen_at = time.monotonic()
            await database_sync_to_async(presence.socket_seen)(self.channel_name)
        await super().receive(text_data, bytes_data)

    async def handle(self, kind: str, fields: dict[str, Any]) -> None:
        if kind == "presence":
            # No answer: the page sends it on its own (tab shown or hidden), nobody waits for it.
            await database_sync_to_async(presence.socket_seen)(self.channel_name, away=fields["away"])
            return
        await self.act(kind, fields)

    async def disconnect(self, code: int) -> None:
        if self.seen_at is not None:
            await database_sync_to_async(presence.socket_closed)(self.channel_name)
        await super().disconnect(code)

    async def access_changed(self, event: dict[str, Any]) -> None:
        """Channel-layer event from realtime: this socket's session or user changed; check again."""
        await self.session_ended()

    async def session_ended(self) -> bool:
        """Close the socket (4401, after a `session_ended` error frame) unless its session is still live."""
        if self.agent is None:
            return True
        current = await database_sync_to_async(selectors.agent_for_session)(self.session_key)
        if current is not None and current.pk == self.agent.pk:
            self.agent = current
            return False
        self.agent = None
        with translation.override(self.answer_language()):
            message = gettext("You were signed out. Sign in again to continue.")
        await self.send_error(ServiceError("session_ended", message))
        await self.close(code=CLOSE_SESSION_ENDED)
        return True


class QueueConsumer(AgentConsumer):
    """The queue of conversations that need a person: the top of it, then one update per change."""

    FRAMES: ClassVar[dict[str, FrameSpec]] = {
        "filter": {"reason": Field("string"), "topic": Field("string"), "mine": Field("boolean")},
        "ping": {},
        **PRESENCE,
    }

    queue_filter = selectors.QueueFilter()

    async def start(self) -> None:
        await self.join(realtime.QUEUE_GROUP)
        await self.send_json(await database_sync_to_async(frames.queue_snapshot_frame)())
        # An agent arrived at the desk: conversations waiting for someone online may go to them.
        await database_sync_to_async(assignment.assign_waiting)()

    async def act(self, kind: str, fields: dict[str, Any]) -> None:
        """`filter`: from now on this socket shows only the matching part of the queue, starting with a
        new `queue` snapshot of it."""
        assert self.agent is not None
        self.queue_filter = selectors.queue_filter(
            reason=fields["reason"], topic=fields["topic"], mine=bool(fields["mine"]), agent=self.agent
        )
        await self.send_json(await database_sync_to_async(frames.queue_snapshot_frame)(self.queue_filter))

    async def deliver(self, event: dict[str, Any]) -> None:
        for frame in event["frames"]:
            await self.send_json(frames.queue_frame_for(frame, self.queue_filter))


DRAFT = {"draft_id": Field("number", required=True, minimum=1)}


class AgentConversationConsumer(AgentConsumer):
    """One conversation: its history and draft live, and the agent's actions on it."""

    FRAMES: ClassVar[dict[str, FrameSpec]] = {
        "approve": DRAFT,
        "edit": {**DRAFT, "text": Field("string", required=True)},
        "reject": {**DRAFT, "reply_text": Field("string"), "redraft": Field("boolean")},
        "reply": {"text": Field("string", required=True), "client_id": Field("string")},
        "take_over": {},
        "hand_back": {},
        "close": {},
        "history": {"before_seq": Field("number", required=True, minimum=1)},
        "mark_out_of_scope": {"seq": Field("number", required=True, minimum=1)},
        "claim": {},
        "release": {},
        "transfer": {"to_agent": Field("string"), "to_team": Field("string"), "note": Field("string")},
        "add_note": {"text": Field("string", required=True)},
        "add_tag": {"tag": Field("string", required=True)},
        "remove_tag": {"tag": Field("string", required=True)},
        "typing": {},
        "ping": {},
        **PRESENCE,
    }

    public_id: uuid.UUID
    conversation_id: int | None = None

    async def start(self) -> None:
        self.public_id = self.scope["url_route"]["kwargs"]["public_id"]
        conversation = await database_sync_to_async(selectors.conversation_for_agent)(
            user=self.agent, public_id=self.public_id
        )
        if conversation is None:
            await self.send_error(ServiceError("not_found", gettext("This conversation does not exist.")))
            await self.close(code=CLOSE_NOT_FOUND)
            return
        self.conversation_id = conversation.pk
        await self.join(realtime.agent_conversation_group(self.public_id))
        for frame in await database_sync_to_async(frames.agent_snapshot_frames)(conversation):
            await self.send_json(frame)
        for frame in await database_sync_to_async(notes.snapshot_frames)(conversation):
            await self.send_json(frame)
        await database_sync_to_async(presence.socket_viewing)(self.channel_name, conversation.pk)
        await self.announce_viewers()

    async def announce_viewers(self) -> None:
        """Tell every agent with this conversation open who else is looking at it."""
        frame = await database_sync_to_async(frames.viewers_frame)(self.conversation_id)
        await self.channel_layer.group_send(
            realtime.agent_conversation_group(self.public_id), realtime.deliver_event([frame])
        )

    async def disconnect(self, code: int) -> None:
        await super().disconnect(code)
        if self.conversation_id is not None:
            await self.announce_viewers()

    async def act(self, kind: str, fields: dict[str, Any]) -> None:
        if kind == "history":
            frame = await database_sync_to_async(frames.history_frame)(self.public_id, before_seq=fields["before_seq"])
            await self.send_json(frame)
            return
        if kind == "typing":
            # No answer, nothing stored: the customer sees "An agent is typing…" for a few seconds.
            await self.relay_typing(realtime.customer_group(self.public_id), "agent")
            return
        message = await database_sync_to_async(ACTIONS[kind])(self.public_id, self.agent, fields)
        ack: dict[str, Any] = {"type": "ack", "action": kind, "request_id": fields["request_id"]}
        if message is not None and hasattr(message, "seq"):
            ack["seq"] = message.seq
        await self.send_json(ack)


ACTIONS = {
    "approve": lambda pid, agent, f: services.draft_approve(public_id=pid, draft_id=f["draft_id"], agent=agent),
    "edit": lambda pid, agent, f: services.draft_edit(
        public_id=pid, draft_id=f["draft_id"], agent=agent, text=f["text"]
    ),
    "reject": lambda pid, agent, f: services.draft_reject(
        public_id=pid, draft_id=f["draft_id"], agent=agent, reply_text=f["reply_text"], redraft=bool(f["redraft"])
    ),
    "reply": lambda pid, agent, f: services.agent_reply(
        public_id=pid, agent=agent, text=f["text"], client_id=f["client_id"] or ""
    ),
    "take_over": lambda pid, agent, f: services.conversation_take_over(public_id=pid, agent=agent),
    "hand_back": lambda pid, agent, f: services.conversation_hand_back(public_id=pid, agent=agent),
    "close": lambda pid, agent, f: services.conversation_close(public_id=pid, agent=agent),
    "mark_out_of_scope": lambda pid, agent, f: knowledge_services.out_of_scope_mark(
        public_id=pid, seq=f["seq"], agent=agent
    ),
    "claim": lambda pid, agent, f: services.conversation_claim(public_id=pid, agent=agent),
    "release": lambda pid, agent, f: services.conversation_release(public_id=pid, agent=agent),
    "transfer": lambda pid, agent, f: services.conversation_transfer(
        public_id=pid, agent=agent, to_agent=f["to_agent"], to_team=f["to_team"], note=f["note"] or ""
    ),
    "add_note": lambda pid, agent, f: notes.note_add(public_id=pid, agent=agent, text=f["text"]),
    "add_tag": lambda pid, agent, f: notes.tag_add(public_id=pid, agent=agent, tag=f["tag"]),
    "remove_tag": lambda pid, agent, f: notes.tag_remove(public_id=pid, agent=agent, tag=f["tag"]),
}
