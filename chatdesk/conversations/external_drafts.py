"""Drafts written outside the desk: an integration posts a draft for a conversation's latest customer
message over the REST API (docs/api.md). Such a draft then goes through exactly what a desk-made one
does (services.draft_complete: autopilot, flags, agents' review, the realtime broadcast, reports and
the reply memory); its engine is recorded as "external:<name>".

With DRAFTS_SOURCE=external the desk drafts nothing itself: each customer message gets a pending draft
with engine "external" that waits for the integration's; the beat sweep fails it (`timed_out`,
escalating with `draft_failed`) when none arrived within EXTERNAL_DRAFT_TIMEOUT_S.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from chatdesk.conversations import services
from chatdesk.conversations.errors import ServiceError
from chatdesk.conversations.models import Conversation, Draft, Message
from chatdesk.drafting.base import DraftResult, Source
from chatdesk.knowledge.models import Topic

EXTERNAL = "external"  # the engine of a draft waiting for an integration's
ENGINE_NAME = re.compile(r"^[A-Za-z0-9._-]{1,23}$")  # "external:" + name fits Draft.engine (32)

Status = Conversation.Status


def external_engine(name: str) -> str:
    """The Draft.engine recorded for drafts posted by integration `name` (what reports group by)."""
    return f"{EXTERNAL}:{name}"


def draft_submit(
    *,
    public_id: uuid.UUID,
    text: object,
    confidence: float,
    engine: str,
    sources: list[Source],
    topic: str | None = None,
    reply_to_seq: int | None = None,
) -> Draft:
    """Store an integration's draft for the conversation's latest customer message, and decide like a
    desk draft who sees it (ready for review, auto-sent, flagged). Returns the stored draft.

    It replaces any unfinished draft of the conversation (a desk draft being written, or the one
    waiting for an integration's in external mode). Raises ServiceError: `not_found` (conversation or
    topic; `field` says which), `invalid_request` (engine name), the text checks of agents' replies
    (`empty_message`, `message_too_long`), `closed`, `taken_over_by_other` (an agent answers it
    directly: nothing is drafted), `no_customer_message`, and `superseded` when `reply_to_seq` is given
    and is not the latest customer message (`seq` says which is).
    """
    text = services.check_text(text)
    if not ENGINE_NAME.match(engine):
        raise ServiceError("invalid_request", "engine must be 1 to 23 letters, digits and . _ -", field="engine")
    if topic is not None and not Topic.objects.filter(name=topic).exists():
        raise ServiceError("not_found", f"There is no topic {topic!r}.", field="topic")
    with transaction.atomic():
        conversation = services._lock(public_id)
        if conversation.status == Status.CLOSED:
            raise ServiceError("closed", "This conversation is closed.")
        if conversation.status == Status.TAKEN_OVER:
            owner = conversation.assigned_agent
            name = (owner.get_full_name() or owner.get_username()) if owner else "Another agent"
            raise ServiceError("taken_over_by_other", f"{name} has taken over this conversation.", by=name)
        latest = conversation.messages.filter(sender=Message.Sender.CUSTOMER).order_by("-seq").first()
        if latest is None:
            raise ServiceError("no_customer_message", "The customer has not written anything to answer yet.")
        if reply_to_seq is not None and reply_to_seq != latest.seq:
            raise ServiceError("superseded", f"The customer wrote again: answer message {latest.seq}.", seq=latest.seq)
        now = timezone.now()
        waiting = Draft.objects.filter(
            conversation=conversation, status=Draft.Status.PENDING, engine=EXTERNAL, reply_to=latest
        ).first()
        others = Draft.objects.filter(conversation=conversation, status__in=Draft.UNFINISHED)
        if waiting is not None:
            others = others.exclude(pk=waiting.pk)
        others.update(status=Draft.Status.SUPERSEDED)
        if waiting is None:
            waiting = Draft(conversation=conversation, reply_to=latest, queued_at=now)
        waiting.status, waiting.engine, waiting.started_at = Draft.Status.GENERATING, external_engine(engine), now
        waiting.attempts += 1
        waiting.save()
        result = DraftResult(text=text, confidence=confidence, sources=sources, topic=topic, model_name=engine)
        draft = services.draft_complete(draft_id=waiting.pk, result=result)
    assert draft is not None  # generating under the lock held since: draft_complete stores it
    return draft


def external_drafts_time_out(now: datetime) -> int:
    """The beat sweep (external mode): fail drafts that waited for an integration's longer than
    EXTERNAL_DRAFT_TIMEOUT_S; their conversations escalate with `draft_failed`. Returns how many."""
    late = Draft.objects.filter(
        status=Draft.Status.PENDING,
        engine=EXTERNAL,
        created_at__lt=now - timedelta(seconds=settings.EXTERNAL_DRAFT_TIMEOUT_S),
    )
    reason = f"No external draft arrived within {settings.EXTERNAL_DRAFT_TIMEOUT_S} s."
    ids = list(late.values_list("pk", flat=True))
    for draft_id in ids:
        services.draft_fail(draft_id=draft_id, reason=reason, error_code=Draft.ErrorCode.TIMED_OUT)
    return len(ids)
