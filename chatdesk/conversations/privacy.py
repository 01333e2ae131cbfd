"""One customer's data on request: find their conversations, export everything stored about them, erase it.

Erasing redacts texts in place and deletes nothing the reports count: conversations, messages, drafts and
agent actions keep their rows, statuses and times, so report totals stay the same. What was learned from
the texts (approved replies drafts are selected from, cached encoder vectors of the customer's words) is
deleted.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from chatdesk.conversations.models import (
    AgentAction,
    Conversation,
    ConversationTag,
    Draft,
    EscalationFlag,
    Message,
    Note,
    Rating,
)
from chatdesk.conversations.tokens import public_id_from_token
from chatdesk.knowledge.models import ApprovedReply, Embedding
from chatdesk.knowledge.services import embedding_key
from chatdesk.webhooks.models import Delivery

ERASED = "[erased]"


class UnknownConversation(Exception):
    """A reference named no conversation (a bad id, a forged or expired token, or it does not exist)."""


ACCOUNT_PREFIX = "account:"


def conversations_find(refs: list[str]) -> list[Conversation]:
    """The conversations named by `refs`: public ids (UUIDs), customers' conversation tokens, or
    "account:<site key>:<account id>" for every conversation of that verified customer (docs/identity.md;
    an unverified claim of the id is not theirs for sure), in order, without repeats. UnknownConversation
    names every reference that matched nothing."""
    found: dict[uuid.UUID, Conversation] = {}
    unknown: list[str] = []
    for ref in refs:
        if ref.startswith(ACCOUNT_PREFIX):
            site_key, _, account_id = ref.removeprefix(ACCOUNT_PREFIX).partition(":")
            theirs = Conversation.objects.filter(
                site__public_key=site_key, customer_account_id=account_id, customer_verified=True
            ).order_by("created_at", "pk")
            if not account_id or not theirs:
                unknown.append(ref)
            for theirs_one in theirs:
                found.setdefault(theirs_one.public_id, theirs_one)
            continue
        try:
            public_id: uuid.UUID | None = uuid.UUID(ref)
        except ValueError:
            public_id = public_id_from_token(ref)
        conversation = Conversation.objects.filter(public_id=public_id).first() if public_id else None
        if conversation is None:
            unknown.append(ref)
        else:
            found.setdefault(conversation.public_id, conversation)
    if unknown:
        raise UnknownConversation(f"no conversation for: {', '.join(unknown)}")
    return list(found.values())


def _person(user: Any) -> str | None:
    return (user.get_full_name() or user.get_username()) if user is not None else None


def _time(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def conversation_export(conversation: Conversation) -> dict[str, Any]:
    """Everything stored about one conversation, as JSON-ready data."""
    messages = conversation.messages.select_related("author").order_by("seq")
    drafts = conversation.drafts.select_related("reply_to", "topic", "decided_by").order_by("created_at", "pk")
    actions = conversation.actions.select_related("agent").order_by("created_at", "pk")
    return {
        "id": str(conversation.public_id),
        "status": conversation.status,
        "escalation_reason": conversation.escalation_reason,
        "contact_email": conversation.contact_email or None,
        "customer": {
            "site": conversation.site.name if conversation.site else None,
            "account_id": conversation.customer_account_id or None,
            "name": conversation.customer_name or None,
            "email": conversation.customer_email or None,
            "verified": conversation.customer_verified,
            "page_url": conversation.page_url or None,
            "page_seen_at": _time(conversation.page_seen_at),
        },
        "handoff_summary": conversation.handoff_summary or None,
        "topic": conversation.topic.name if conversation.topic else None,
        "created_at": _time(conversation.created_at),
        "updated_at": _time(conversation.updated_at),
        "messages": [
            {
                "seq": m.seq,
                "sender": m.sender,
                "author": _person(m.author),
                "text": m.text,
                "sent_at": _time(m.created_at),
            }
            for m in messages
        ],
        "drafts": [
            {
                "id": d.pk,
                "reply_to_seq": d.reply_to.seq,
                "status": d.status,
                "engine": d.engine,
                "text": d.text,
                "alternatives": d.alternatives,
                "sources": d.sources,
                "confidence": d.confidence,
                "topic": d.topic.name if d.topic else None,
                "error": d.error,
                "created_at": _time(d.created_at),
                "decided_at": _time(d.decided_at),
                "decided_by": _person(d.decided_by),
            }
            for d in drafts
        ],
        "agent_actions": [
            {
                "kind": a.kind,
                "agent": _person(a.agent),
                "draft_id": a.draft_id,
                "draft_text": a.draft_text,
                "sent_text": a.sent_text,
                "created_at": _time(a.created_at),
            }
            for a in actions
        ],
        "ratings": [
            {
                "after_seq": r.after_seq,
                "score": r.score,
                "comment": r.comment,
                "created_at": _time(r.created_at),
                "updated_at": _time(r.updated_at),
            }
            for r in conversation.ratings.order_by("after_seq")
        ],
        # Agents' internal notes and tags are about this customer: personal data a request for it covers.
        "internal_notes": [
            {"author": _person(n.author), "text": n.text, "created_at": _time(n.created_at)}
            for n in conversation.notes.select_related("author").order_by("created_at", "pk")
        ],
        "tags": sorted(conversation.tags.values_list("name", flat=True)),
    }


def customer_data_export(conversations: list[Conversation]) -> dict[str, Any]:
    return {"conversations": [conversation_export(c) for c in conversations]}


@dataclass
class Erased:
    """How many rows had texts redacted, and how many learned entries were deleted."""

    messages: int = 0
    drafts: int = 0
    agent_actions: int = 0
    approved_replies: int = 0
    embeddings: int = 0
    webhook_deliveries: int = 0
    notes: int = 0
    tags: int = 0


@transaction.atomic
def customer_data_erase(conversations: list[Conversation]) -> Erased:
    """Redact every stored text of `conversations` and forget what the desk learned from them. Idempotent.

    Messages and drafts keep their rows with the text "[erased]"; agent actions keep their kind with empty
    texts (so fine-tuning exports skip them, as they skip actions that sent nothing); escalation flags lose their
    details, ratings their comments (scores stay), the conversation its contact email, handoff summary, the
    customer's account id, name, email and page (docs/identity.md); agents' internal notes are redacted and
    tags deleted;
    approved replies made from these conversations, cached vectors of their texts, and webhook deliveries
    about them (their bodies hold what the desk sent; pending ones are never sent) are deleted. Report
    counts do not change.
    """
    ids = [c.pk for c in Conversation.objects.select_for_update().filter(pk__in=[c.pk for c in conversations])]
    learned = set(
        AgentAction.objects.filter(conversation__in=ids, draft__isnull=False)
        .exclude(sent_text="")
        .values_list("draft__reply_to__text", "sent_text")
    )
    texts = set(Message.objects.filter(conversation__in=ids).values_list("text", flat=True))
    result = Erased()
    for customer_text, reply_text in learned:
        deleted, _ = ApprovedReply.objects.filter(customer_text=customer_text, reply_text=reply_text).delete()
        result.approved_replies += deleted
    texts.discard(ERASED)
    result.embeddings, _ = Embedding.objects.filter(key__in=[embedding_key(t) for t in texts]).delete()
    result.messages = Message.objects.filter(conversation__in=ids).update(text=ERASED)
    drafts = Draft.objects.filter(conversation__in=ids)
    result.drafts = drafts.update(text=ERASED, alternatives=[])
    drafts.exclude(error="").update(error=ERASED)
    result.agent_actions = AgentAction.objects.filter(conversation__in=ids).update(draft_text="", sent_text="")
    # Flags may quote the customer's words; the address is theirs.
    EscalationFlag.objects.filter(conversation__in=ids).update(detail="")
    Rating.objects.filter(conversation__in=ids).update(comment="")
    # Agents' notes and tags may name or quote the customer: notes keep their rows (and times), tags go.
    result.notes = Note.objects.filter(conversation__in=ids).update(text=ERASED)
    result.tags, _ = ConversationTag.objects.filter(conversation__in=ids).delete()
    # Who the site said the customer is, and where they browsed, is theirs too; the site stays (it is the desk's).
    Conversation.objects.filter(pk__in=ids).update(
        contact_email="",
        handoff_summary="",
        customer_account_id="",
        customer_name="",
        customer_email="",
        customer_verified=False,
        page_url="",
        page_seen_at=None,
    )
    public_ids = Conversation.objects.filter(pk__in=ids).values_list("public_id", flat=True)
    for public_id in public_ids:  # every body names its conversation by public id (docs/webhooks.md)
        _, per_model = Delivery.objects.filter(body__contains=f'"id":"{public_id}"').delete()
        result.webhook_deliveries += per_model.get("webhooks.Delivery", 0)
    return result
