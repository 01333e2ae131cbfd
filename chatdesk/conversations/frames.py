"""The JSON frames clients receive (docs/protocol.md). One function per frame type."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from chatdesk.conversations import selectors
from chatdesk.conversations.models import Conversation, Draft, Message
from chatdesk.conversations.tokens import conversation_token

Frame = dict[str, Any]


def _time(value: Any) -> str | None:
    return value.isoformat() if value else None


def _person(user: Any) -> str | None:
    return (user.get_full_name() or user.get_username()) if user else None


def message_frame(message: Message) -> Frame:
    return {
        "type": "message",
        "seq": message.seq,
        "client_id": message.client_id or None,
        "sender": message.sender,
        "author": _person(message.author) if message.sender == Message.Sender.AGENT else None,
        "text": message.text,
        "sent_at": _time(message.created_at),
    }


def status_frame(conversation: Conversation) -> Frame:
    code, text = selectors.customer_status(conversation)
    return {"type": "status", "status": code, "text": text}


def _conversation_fields(conversation: Conversation) -> Frame:
    """What both the conversation frame and a queue row say about a conversation."""
    agent = conversation.assigned_agent
    return {
        "id": str(conversation.public_id),
        "customer": conversation.customer_label,
        "status": conversation.status,
        "escalation_reason": conversation.escalation_reason or None,
        "assigned_agent": _person(agent),
        "assigned_agent_username": agent.username if agent else None,
        "topic": conversation.topic.name if conversation.topic else None,
        "awaiting_reply_since": _time(conversation.awaiting_reply_since),
    }


def conversation_frame(conversation: Conversation) -> Frame:
    return {
        "type": "conversation",
        **_conversation_fields(conversation),
        "last_seq": conversation.last_seq,
        "created_at": _time(conversation.created_at),
    }


def draft_frame(draft: Draft | None) -> Frame:
    if draft is None:
        return {"type": "draft", "draft": None}
    return {
        "type": "draft",
        "draft": {
            "id": draft.pk,
            "status": draft.status,
            "reply_to_seq": draft.reply_to.seq,
            "engine": draft.engine or None,
            "text": draft.text,
            "alternatives": draft.alternatives,
            "sources": draft.sources,
            "confidence": draft.confidence,
            "topic": draft.topic.name if draft.topic else None,
            "error": draft.error or None,
            "error_code": draft.error_code or None,
            "timings": draft.timings,
            "tokens": draft.tokens,
            "created_at": _time(draft.created_at),
            "ready_at": _time(draft.ready_at),
            "decided_by": _person(draft.decided_by),
            "decided_at": _time(draft.decided_at),
        },
    }


def queue_item(conversation: Conversation) -> Frame:
    """A queue row; `conversation` must come from selectors.with_queue_details."""
    return {
        **_conversation_fields(conversation),
        "latest_customer_text": (conversation.latest_customer_text or "")[:200],  # type: ignore[attr-defined]
        "draft_status": conversation.draft_status,  # type: ignore[attr-defined]
        "draft_confidence": conversation.draft_confidence,  # type: ignore[attr-defined]
    }


def queue_frame(conversations: list[Conversation]) -> Frame:
    return {"type": "queue", "items": [queue_item(c) for c in conversations]}


def queue_update_frame(conversation: Conversation, *, in_queue: bool) -> Frame:
    return {
        "type": "queue.update",
        "id": str(conversation.public_id),
        "in_queue": in_queue,
        "item": queue_item(conversation) if in_queue else None,
    }


def welcome_frame(conversation: Conversation, *, after_seq: int) -> Frame:
    """The customer's answer to hello: the token to keep, the status, and every message after after_seq."""
    code, text = selectors.customer_status(conversation)
    return {
        "type": "welcome",
        "token": conversation_token(conversation.public_id),
        "last_seq": conversation.last_seq,
        "status": code,
        "status_text": text,
        "max_message_chars": settings.CHAT_MAX_MESSAGE_CHARS,
        "messages": [message_frame(m) for m in selectors.conversation_messages(conversation, after_seq=after_seq)],
    }


def agent_snapshot_frames(conversation: Conversation) -> list[Frame]:
    """What an agent's conversation socket gets on connect: conversation, history, draft."""
    return [
        conversation_frame(conversation),
        {"type": "history", "messages": [message_frame(m) for m in selectors.conversation_messages(conversation)]},
        draft_frame(selectors.conversation_latest_draft(conversation)),
    ]
