"""The JSON frames clients receive (docs/protocol.md). One function per frame type.

Every frame stays below WS_MAX_FRAME_BYTES: a message is at most CHAT_MAX_MESSAGE_CHARS, and frames
that carry many messages or conversations (welcome, history, queue) are cut to half the limit and
say so (`reset`, `has_more`, `total`), never silently.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from typing import Any

from django.conf import settings

from chatdesk.conversations import presence, selectors
from chatdesk.conversations.models import AgentAction, Conversation, Draft, Message, Rating
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


def rating_fields(rating: Rating | None) -> Frame | None:
    if rating is None:
        return None
    return {"score": rating.score, "comment": rating.comment or None, "at": _time(rating.updated_at)}


def _rating_offer(conversation: Conversation | None) -> Frame:
    """can_rate: the widget offers the 1-5 rating (the conversation is closed); rating: what the
    customer gave for this closing so far, or None."""
    return {
        "can_rate": selectors.customer_can_rate(conversation),
        "rating": rating_fields(selectors.conversation_current_rating(conversation)),
    }


def status_frame(conversation: Conversation) -> Frame:
    code, text = selectors.customer_status(conversation)
    return {"type": "status", "status": code, "text": text, **_rating_offer(conversation)}


def _reasons(conversation: Conversation) -> list[Frame]:
    """The active flags, one per reason (its latest), the heaviest reason first."""
    return [
        {
            "reason": flag.reason,
            "label": flag.get_reason_display(),
            "detail": flag.detail or None,
            "score": flag.score,
            "at": _time(flag.created_at),
        }
        for flag in selectors.conversation_reasons(conversation)
    ]


def _conversation_fields(conversation: Conversation) -> Frame:
    """What both the conversation frame and a queue row say about a conversation."""
    agent = conversation.assigned_agent
    return {
        "id": str(conversation.public_id),
        "customer": conversation.customer_label,
        "status": conversation.status,
        "escalation_reason": conversation.escalation_reason or None,
        "reasons": _reasons(conversation),
        "priority": conversation.priority,
        "sentiment": conversation.sentiment,
        "assigned_agent": _person(agent),
        "assigned_agent_username": agent.username if agent else None,
        "topic": conversation.topic.name if conversation.topic else None,
        "awaiting_reply_since": _time(conversation.awaiting_reply_since),
        "contact_email": conversation.contact_email or None,
        "team": conversation.team.name if conversation.team else None,
    }


def typing_frame(who: str) -> Frame:
    """`who` ("customer" or "agent") is typing: clients show it for a few seconds (never stored)."""
    return {"type": "typing", "who": who}


def viewers_frame(conversation_id: int) -> Frame:
    """Which agents have the conversation open (sent to its agents' group when that changes)."""
    people = presence.viewers(conversation_id)
    return {"type": "viewers", "agents": [{"name": _person(p), "username": p.username} for p in people]}


def _identity(conversation: Conversation) -> Frame | None:
    """Who the host site said the customer is (docs/identity.md), or None when it said nothing."""
    if not (conversation.customer_account_id or conversation.customer_name or conversation.customer_email):
        return None
    return {
        "name": conversation.customer_name or None,
        "email": conversation.customer_email or None,
        "account_id": conversation.customer_account_id or None,
        "site": conversation.site.name if conversation.site else None,
        "verified": conversation.customer_verified,
    }


def conversation_frame(conversation: Conversation) -> Frame:
    transfer = (
        conversation.actions.filter(kind=AgentAction.Kind.TRANSFER)
        .select_related("agent", "to_agent", "to_team")
        .order_by("-created_at", "-pk")
        .first()
    )
    return {
        "type": "conversation",
        **_conversation_fields(conversation),
        "last_seq": conversation.last_seq,
        "created_at": _time(conversation.created_at),
        "handoff_summary": conversation.handoff_summary or None,
        "handoff_summary_by": conversation.handoff_summary_by or None,
        "language": conversation.language or None,
        "page_url": conversation.page_url or None,
        "identity": _identity(conversation),
        "rating": rating_fields(selectors.conversation_latest_rating(conversation)),
        "last_transfer": transfer
        and {
            "by": _person(transfer.agent),
            "to_agent": _person(transfer.to_agent),
            "to_team": transfer.to_team.name if transfer.to_team else None,
            "note": transfer.note or None,
            "at": _time(transfer.created_at),
        },
    }


def draft_frame(draft: Draft | None) -> Frame:
    """The draft agents look at; `risky`/`risk_reasons` (selectors.draft_is_risky) say whether it needs
    care before sending."""
    if draft is None:
        return {"type": "draft", "draft": None}
    risks = selectors.draft_is_risky(draft, draft.conversation)
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
            "risky": bool(risks),
            "risk_reasons": risks,
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


def queue_frame(
    conversations: Iterable[Conversation], *, total: int, queue_filter: selectors.QueueFilter | None = None
) -> Frame:
    """The top of the queue (as many rows as fit in half a frame, at most CHAT_REPLAY_MESSAGES), how
    many conversations the whole (filtered) queue holds, and the filter it was read with."""
    items = _fitting(queue_item(c) for c in conversations)
    return {
        "type": "queue",
        "items": items,
        "total": total,
        "truncated": len(items) < total,
        "filter": (queue_filter or selectors.QueueFilter()).as_frame(),
    }


def queue_snapshot_frame(queue_filter: selectors.QueueFilter | None = None) -> Frame:
    """What an agent's queue socket gets on connect (unfiltered) and after each `filter` request."""
    queue = selectors.agent_queue(queue_filter)
    return queue_frame(queue[: settings.CHAT_REPLAY_MESSAGES], total=queue.count(), queue_filter=queue_filter)


def queue_update_frame(conversation: Conversation, *, in_queue: bool) -> Frame:
    return {
        "type": "queue.update",
        "id": str(conversation.public_id),
        "in_queue": in_queue,
        "item": queue_item(conversation) if in_queue else None,
    }


def queue_frame_for(frame: Frame, queue_filter: selectors.QueueFilter) -> Frame:
    """A frame bound for a queue socket, as that socket's filter shows it: a `queue.update` whose row no
    longer matches says the row left (`in_queue: false`); every other frame passes unchanged."""
    if frame.get("type") != "queue.update" or not frame.get("in_queue"):
        return frame
    if selectors.queue_item_matches(frame["item"], queue_filter):
        return frame
    return {**frame, "in_queue": False, "item": None}


def alert_frame(kind: str, conversation: Conversation, text: str) -> Frame:
    """A notice for every agent on the queue page, e.g. kind `sla_breach`."""
    return {"type": "alert", "kind": kind, "conversation": str(conversation.public_id), "text": text}


def welcome_frame(public_id: uuid.UUID, *, after_seq: int) -> Frame:
    """The customer's answer to hello: the token to keep, the status, and the messages after after_seq.

    A conversation that nothing stored yet (hello without a token, no message sent) is empty and idle.
    When more messages came after after_seq than one frame carries, `messages` holds the newest of them
    and `reset` is true: the client must drop what it shows and page older ones with `history`.
    """
    conversation = selectors.conversation_by_public_id(public_id)
    code, text = selectors.customer_status(conversation) if conversation else ("idle", "")
    newest = selectors.conversation_messages_newest_first(conversation, after_seq=after_seq) if conversation else []
    messages, complete = _newest_fitting(newest)
    return {
        "type": "welcome",
        "token": conversation_token(public_id),
        "conversation_id": str(public_id),
        "last_seq": conversation.last_seq if conversation else 0,
        "status": code,
        "status_text": text,
        **_rating_offer(conversation),
        "max_message_chars": settings.CHAT_MAX_MESSAGE_CHARS,
        "reset": not complete,
        "messages": messages,
    }


def history_frame(public_id: uuid.UUID, *, before_seq: int) -> Frame:
    """Older messages, for paging back: the newest ones before before_seq that fit, oldest first;
    `has_more` says whether even older ones exist."""
    conversation = selectors.conversation_by_public_id(public_id)
    newest = selectors.conversation_messages_newest_first(conversation, before_seq=before_seq) if conversation else []
    messages, complete = _newest_fitting(newest)
    return {"type": "history", "messages": messages, "has_more": not complete}


def agent_snapshot_frames(conversation: Conversation) -> list[Frame]:
    """What an agent's conversation socket gets on connect: conversation, history (the newest messages
    that fit; `has_more` when older ones exist), draft."""
    return [
        conversation_frame(conversation),
        history_frame(conversation.public_id, before_seq=conversation.last_seq + 1),
        draft_frame(selectors.conversation_latest_draft(conversation)),
    ]


def _size(frame: Frame) -> int:
    return len(json.dumps(frame))  # what send_json writes (ASCII-escaped), so bytes on the wire


def _fitting(frames: Iterable[Frame]) -> list[Frame]:
    """Leading frames of `frames` while they fit in half a websocket frame and the replay count."""
    budget, kept = settings.WS_MAX_FRAME_BYTES // 2, list[Frame]()
    for frame in frames:
        budget -= _size(frame) + 2
        if budget < 0 or len(kept) >= settings.CHAT_REPLAY_MESSAGES:
            break
        kept.append(frame)
    return kept


def _newest_fitting(newest_first: list[Message]) -> tuple[list[Frame], bool]:
    """(message frames oldest first, whether all of `newest_first` fitted)."""
    kept = _fitting(message_frame(m) for m in newest_first)
    return kept[::-1], len(kept) == len(newest_first)
