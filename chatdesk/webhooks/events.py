"""The events the desk tells webhook endpoints about: what the conversation services call at each point.

Each function stores, inside the caller's transaction, one Delivery per active endpoint subscribed to
the event, and queues them after commit (a rolled-back change sends nothing; a broker that is down
leaves them pending for the retry sweep). With no endpoint subscribed it costs one small query and
builds nothing. Payloads carry ids, states, times and reasons; the only customer-facing text is what
the desk itself sent (message.sent). docs/webhooks.md documents every payload.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from chatdesk.conversations import jobs
from chatdesk.conversations.models import Conversation, Draft, Message, Rating
from chatdesk.webhooks.models import Delivery, Endpoint

DELIVER = "chatdesk.webhooks.tasks.webhook_deliver"

CONVERSATION_CREATED = "conversation.created"
CONVERSATION_ESCALATED = "conversation.escalated"
CONVERSATION_ASSIGNED = "conversation.assigned"
CONVERSATION_CLOSED = "conversation.closed"
DRAFT_READY = "draft.ready"
DRAFT_APPROVED = "draft.approved"
DRAFT_EDITED = "draft.edited"
DRAFT_REJECTED = "draft.rejected"
DRAFT_AUTO_SENT = "draft.auto_sent"
MESSAGE_SENT = "message.sent"
CSAT_RECEIVED = "csat.received"

# Event type → what a manager reads when choosing events.
EVENTS: dict[str, str | Promise] = {
    CONVERSATION_CREATED: _("A customer started a conversation"),
    CONVERSATION_ESCALATED: _("A conversation was escalated to a person (with the reasons)"),
    CONVERSATION_ASSIGNED: _(
        "A conversation was assigned to an agent (automatically, claimed, transferred, taken over)"
    ),
    CONVERSATION_CLOSED: _("A conversation was closed (by an agent or the customer)"),
    DRAFT_READY: _("A draft awaits an agent's review"),
    DRAFT_APPROVED: _("An agent sent a draft as written"),
    DRAFT_EDITED: _("An agent sent a draft after editing it"),
    DRAFT_REJECTED: _("An agent rejected a draft"),
    DRAFT_AUTO_SENT: _("Autopilot sent a draft without review"),
    MESSAGE_SENT: _("The desk sent a message to a customer (an agent or autopilot)"),
    CSAT_RECEIVED: _("A customer rated a closed conversation"),
}

_DRAFT_EVENTS = {
    Draft.Status.READY: DRAFT_READY,
    Draft.Status.APPROVED: DRAFT_APPROVED,
    Draft.Status.EDITED: DRAFT_EDITED,
    Draft.Status.REJECTED: DRAFT_REJECTED,
    Draft.Status.AUTO_SENT: DRAFT_AUTO_SENT,
}


def publish(event_type: str, data: Callable[[], dict[str, Any]]) -> int:
    """Store a delivery of event `event_type` for each active endpoint subscribed to it, and queue them
    after commit. `data()` builds the event's `data` object; it is called only when some endpoint wants
    the event. The body is `{"id", "type", "created_at", "data"}`, the same bytes on every attempt.
    Returns how many deliveries were stored."""
    endpoint_ids = [
        pk for pk, events in Endpoint.objects.filter(active=True).values_list("pk", "events") if event_type in events
    ]
    if not endpoint_ids:
        return 0
    event_id, now = uuid.uuid4(), timezone.now()
    body = json.dumps(
        {"id": str(event_id), "type": event_type, "created_at": now.isoformat(), "data": data()},
        separators=(",", ":"),
        sort_keys=True,
    )
    deliveries = Delivery.objects.bulk_create(
        Delivery(endpoint_id=pk, event_id=event_id, event_type=event_type, body=body, next_attempt_at=now)
        for pk in endpoint_ids
    )
    ids = [delivery.pk for delivery in deliveries]
    transaction.on_commit(lambda: [jobs.enqueue(DELIVER, pk) for pk in ids])
    return len(ids)


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _person(user: User | None) -> dict[str, str] | None:
    return {"username": user.get_username(), "name": user.get_full_name() or user.get_username()} if user else None


def conversation_data(conversation: Conversation) -> dict[str, Any]:
    """What every event says about its conversation (no customer text, no contact details)."""
    return {
        "id": str(conversation.public_id),
        "status": conversation.status,
        "escalation_reason": conversation.escalation_reason or None,
        "team": conversation.team.name if conversation.team_id and conversation.team else None,
        "topic": conversation.topic.name if conversation.topic_id and conversation.topic else None,
        "assigned_agent": _person(conversation.assigned_agent) if conversation.assigned_agent_id else None,
        "language": conversation.language or None,
        "created_at": _time(conversation.created_at),
    }


def conversation_created(conversation: Conversation) -> None:
    publish(CONVERSATION_CREATED, lambda: {"conversation": conversation_data(conversation)})


def conversation_escalated(conversation: Conversation, reason: str) -> None:
    """`reason`: the rule that escalated it now; `reasons`: every active flag's reason, this one included."""

    def data() -> dict[str, Any]:
        active = sorted(set(conversation.flags.filter(active=True).values_list("reason", flat=True)) | {reason})
        return {"conversation": conversation_data(conversation), "reason": reason, "reasons": active}

    publish(CONVERSATION_ESCALATED, data)


def conversation_assigned(conversation: Conversation, agent: User, *, how: str) -> None:
    """`how`: automatic, claimed, transferred or taken_over."""
    publish(
        CONVERSATION_ASSIGNED,
        lambda: {"conversation": conversation_data(conversation), "agent": _person(agent), "how": how},
    )


def conversation_closed(conversation: Conversation, *, by: User | None) -> None:
    """`by`: the agent who closed it; None when the customer ended the chat."""
    publish(
        CONVERSATION_CLOSED,
        lambda: {
            "conversation": conversation_data(conversation),
            "closed_by": "agent" if by else "customer",
            "agent": _person(by),
            "closed_at": _time(conversation.closed_at),
        },
    )


def draft_changed(draft: Draft) -> None:
    """draft.ready, .approved, .edited, .rejected or .auto_sent, after the draft's status; other statuses
    send nothing. The draft's text is not sent (message.sent carries what the customer received)."""
    event_type = _DRAFT_EVENTS.get(Draft.Status(draft.status))
    if event_type is None:
        return

    def data() -> dict[str, Any]:
        return {
            "conversation": conversation_data(draft.conversation),
            "draft": {
                "id": draft.pk,
                "status": draft.status,
                "engine": draft.engine,
                "confidence": draft.confidence,
                "topic": draft.topic.name if draft.topic_id and draft.topic else None,
                "reply_to_seq": draft.reply_to.seq,
                "ready_at": _time(draft.ready_at),
                "decided_at": _time(draft.decided_at),
                "decided_by": _person(draft.decided_by) if draft.decided_by_id else None,
            },
        }

    publish(event_type, data)


def message_sent(message: Message) -> None:
    """A message the desk sent to the customer (agent or autopilot); customers' own messages send nothing."""
    if message.sender == Message.Sender.CUSTOMER:
        return
    publish(
        MESSAGE_SENT,
        lambda: {
            "conversation": conversation_data(message.conversation),
            "message": {
                "seq": message.seq,
                "sender": message.sender,
                "text": message.text,
                "author": _person(message.author) if message.author_id else None,
                "draft_id": message.draft_id,
                "created_at": _time(message.created_at),
            },
        },
    )


def csat_received(rating: Rating) -> None:
    """The score (1-5) and whether there is a comment; the comment's words stay in the desk."""
    publish(
        CSAT_RECEIVED,
        lambda: {
            "conversation": conversation_data(rating.conversation),
            "rating": {
                "score": rating.score,
                "has_comment": bool(rating.comment),
                "after_seq": rating.after_seq,
                "rated_at": _time(rating.updated_at),
            },
        },
    )
