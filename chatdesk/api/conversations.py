"""/api/v1/conversations: list, read, post an agent's reply, post an external draft."""

from __future__ import annotations

import uuid
from typing import Any

from django.db.models import Exists, OuterRef, QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import Query, Router, Status

from chatdesk.api.auth import READ, WRITE
from chatdesk.api.common import CONFLICT, NOT_FOUND, page, token_user
from chatdesk.api.schemas import (
    ConversationDetail,
    ConversationFilters,
    ConversationPage,
    DraftIn,
    DraftOut,
    MessageOut,
    ReplyIn,
)
from chatdesk.conversations import external_drafts, notes, selectors, services
from chatdesk.conversations.errors import ServiceError
from chatdesk.conversations.models import Conversation, Draft, EscalationFlag, Message
from chatdesk.drafting.base import Source

router = Router(tags=["conversations"])


def _public_id(raw: str) -> uuid.UUID:
    """A malformed id is a conversation that does not exist (as on the websockets)."""
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise ServiceError("not_found", _("This conversation does not exist.")) from None


def _conversation(request: HttpRequest, public_id: str) -> Conversation:
    conversation = selectors.conversation_for_agent(user=token_user(request), public_id=_public_id(public_id))
    if conversation is None:
        raise ServiceError("not_found", _("This conversation does not exist."))
    return conversation


def conversation_out(c: Conversation) -> dict[str, Any]:
    return {
        "id": c.public_id,
        "status": c.status,
        "escalation_reason": c.escalation_reason or None,
        "priority": c.priority,
        "topic": c.topic.name if c.topic else None,
        "team": c.team.name if c.team else None,
        "assigned_agent": c.assigned_agent.get_username() if c.assigned_agent else None,
        "language": c.language,
        "last_seq": c.last_seq,
        "created_at": c.created_at,
        "updated_at": c.updated_at,
        "closed_at": c.closed_at,
    }


def message_out(m: Message) -> dict[str, Any]:
    return {
        "seq": m.seq,
        "sender": m.sender,
        "text": m.text,
        "author": m.author.get_username() if m.author else None,
        "draft_id": m.draft_id,
        "created_at": m.created_at,
    }


def draft_out(d: Draft) -> dict[str, Any]:
    return {
        "id": d.pk,
        "status": d.status,
        "engine": d.engine,
        "text": d.text,
        "confidence": d.confidence,
        "sources": d.sources,
        "topic": d.topic.name if d.topic else None,
        "reply_to_seq": d.reply_to.seq,
        "error_code": d.error_code or None,
        "created_at": d.created_at,
        "ready_at": d.ready_at,
        "decided_at": d.decided_at,
        "decided_by": d.decided_by.get_username() if d.decided_by else None,
    }


def conversations_filtered(f: ConversationFilters) -> QuerySet[Conversation]:
    found = Conversation.objects.select_related("assigned_agent", "topic", "team")
    if f.status:
        found = found.filter(status=f.status)
    if f.reason:
        found = found.filter(Exists(EscalationFlag.objects.filter(conversation=OuterRef("pk"), reason=f.reason)))
    if f.topic:
        found = found.filter(topic__name=f.topic)
    if f.team:
        found = found.filter(team__name=f.team)
    if f.agent:
        found = found.filter(assigned_agent__username=f.agent)
    if f.since:
        found = found.filter(created_at__date__gte=f.since)
    if f.until:
        found = found.filter(created_at__date__lte=f.until)
    return found.order_by(f.ordering, "pk")


@router.get("", auth=READ, response={200: ConversationPage, **NOT_FOUND}, summary="List conversations")
def conversation_list(request: HttpRequest, filters: Query[ConversationFilters]) -> dict[str, Any]:
    count, rows = page(conversations_filtered(filters), filters)
    return {"count": count, "items": [conversation_out(c) for c in rows]}


@router.get("/{public_id}", auth=READ, response={200: ConversationDetail, **NOT_FOUND}, summary="Read a conversation")
def conversation_read(request: HttpRequest, public_id: str) -> dict[str, Any]:
    """The conversation with all its messages (oldest first), drafts (newest first), escalation flags, and
    agents' tags and internal notes (oldest first)."""
    c = _conversation(request, public_id)
    return {
        **conversation_out(c),
        "customer": {
            "account_id": c.customer_account_id or None,
            "name": c.customer_name or None,
            "email": c.customer_email or None,
            "verified": c.customer_verified,
            "site": c.site.name if c.site else None,
            "page_url": c.page_url or None,
        },
        "messages": [message_out(m) for m in c.messages.select_related("author").order_by("seq")],
        "drafts": [draft_out(d) for d in c.drafts.select_related("reply_to", "topic", "decided_by")],
        "flags": [
            {"reason": f.reason, "detail": f.detail, "active": f.active, "created_at": f.created_at}
            for f in c.flags.all()
        ],
        "tags": notes.conversation_tags(c),
        "notes": [
            {"author": n.author.get_username() if n.author else None, "text": n.text, "created_at": n.created_at}
            for n in notes.conversation_notes(c)
        ],
    }


@router.post("/{public_id}/messages", auth=WRITE, response={201: MessageOut, **CONFLICT}, summary="Reply as an agent")
def message_post(request: HttpRequest, public_id: str, body: ReplyIn) -> Status[dict[str, Any]]:
    """Send a reply to the customer as the token's owner, exactly as an agent replying on the dashboard:
    the conversation is taken over by them (drafting stops until it is handed back)."""
    c = _conversation(request, public_id)
    message = services.agent_reply(
        public_id=c.public_id, agent=token_user(request), text=body.text, client_id=body.client_id or ""
    )
    return Status(201, message_out(message))


@router.post("/{public_id}/drafts", auth=WRITE, response={201: DraftOut, **CONFLICT}, summary="Post an external draft")
def draft_post(request: HttpRequest, public_id: str, body: DraftIn) -> Status[dict[str, Any]]:
    """A draft for the conversation's latest customer message, written by your own engine. It is then
    handled like a desk draft: agents review it live (or autopilot sends it), reports count it under
    engine "external:<engine>". It replaces a draft the desk is still writing or showing."""
    c = _conversation(request, public_id)
    sources = [Source(id=s.id or f"external:{i}", title=s.title, score=s.score) for i, s in enumerate(body.sources, 1)]
    draft = external_drafts.draft_submit(
        public_id=c.public_id,
        text=body.text,
        confidence=body.confidence,
        engine=body.engine,
        sources=sources,
        topic=body.topic,
        reply_to_seq=body.reply_to_seq,
    )
    draft = Draft.objects.select_related("reply_to", "topic", "decided_by").get(pk=draft.pk)
    return Status(201, draft_out(draft))
