"""Writes: everything that changes a conversation goes through here.

Each public function checks its input, takes the conversation's row lock
(`_lock`) and changes state inside one transaction; concurrent requests are
settled by that lock and by conditional updates, never in Python memory.
Clients are told after commit (realtime.conversation_changed).
"""

from __future__ import annotations

import concurrent.futures
import logging
import re
import threading
import time
import uuid
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Exists, F, Max, OuterRef, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext
from rapidfuzz.distance import Levenshtein

from chatdesk.conversations import (
    assignment,
    escalation,
    facts,
    frames,
    handoff,
    jobs,
    notices,
    realtime,
    selectors,
    throttle,
)
from chatdesk.conversations.errors import ServiceError
from chatdesk.conversations.identity import ANONYMOUS, CustomerIdentity, customer_identity
from chatdesk.conversations.inbound import normalise_text, refuse_too_long
from chatdesk.conversations.injection import conversation_has_injection
from chatdesk.conversations.models import AgentAction, Conversation, Draft, EscalationFlag, Message, Rating, Team
from chatdesk.drafting import registry
from chatdesk.drafting.base import DraftCancelled, DraftContext, DraftResult, EngineError
from chatdesk.knowledge.models import ApprovedReply, Topic
from chatdesk.knowledge.services import (
    approved_reply_remember,
    escalation_threshold,
    knowledge_index_current,
    knowledge_source_penalize,
    out_of_scope_detail,
)
from chatdesk.monitoring import receivers as metrics_receivers
from chatdesk.webhooks import events as webhook_events

log = logging.getLogger(__name__)

Status = Conversation.Status
Reason = Conversation.EscalationReason
ErrorCode = Draft.ErrorCode

CLIENT_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


# -- checks ------------------------------------------------------------------


def check_text(text: object) -> str:
    """The text to store: NFC, trimmed, non-empty, at most CHAT_MAX_MESSAGE_CHARS code points."""
    if not isinstance(text, str):
        raise ServiceError("invalid_request", gettext("text must be a string."), field="text")
    text = normalise_text(text).strip()
    if not text:
        raise ServiceError("empty_message", gettext("Please type a message before sending."))
    refuse_too_long(text, gettext("Messages can be at most %(limit)s characters; this one has %(length)s."))
    return text


def check_client_id(client_id: object) -> str:
    if not isinstance(client_id, str) or not CLIENT_ID.match(client_id):
        raise ServiceError(
            "invalid_client_id", gettext("client_id must be 1 to 64 characters: letters, digits and . _ : -")
        )
    return client_id


# -- shared steps (call inside a transaction holding the conversation lock) ----


def _lock(public_id: uuid.UUID) -> Conversation:
    conversation = Conversation.objects.select_for_update().filter(public_id=public_id).first()
    if conversation is None:
        raise ServiceError("not_found", gettext("This conversation does not exist."))
    return conversation


def _lock_or_start(public_id: uuid.UUID, client_address: str, identity: CustomerIdentity = ANONYMOUS) -> Conversation:
    """The locked conversation, stored now if this is its first message (hello alone stores nothing), with
    what its hello said about the customer (`identity`). New conversations are limited per client address
    (CHAT_CONVERSATIONS_PER_HOUR_PER_ADDRESS)."""
    conversation = Conversation.objects.select_for_update().filter(public_id=public_id).first()
    if conversation is not None:
        return conversation
    throttle.check(
        "conversation", client_address, limit=settings.CHAT_CONVERSATIONS_PER_HOUR_PER_ADDRESS, window_s=3600
    )
    _, created = Conversation.objects.get_or_create(public_id=public_id)  # two first messages at once: one row
    conversation = _lock(public_id)
    if created:
        if _identify(conversation, identity):
            conversation.save(update_fields=IDENTITY_FIELDS)
        webhook_events.conversation_created(conversation)
    return conversation


IDENTITY_FIELDS = [
    "site",
    "customer_account_id",
    "customer_name",
    "customer_email",
    "customer_verified",
    "page_url",
    "page_seen_at",
]


def _identify(conversation: Conversation, identity: CustomerIdentity) -> bool:
    """Record what a hello said about the customer (lock held; the caller saves). Whether anything changed.

    A verified identity replaces whatever was recorded. An unverified claim is recorded only while the
    conversation has no verified identity: nobody talks a verified customer's conversation into another
    name. The page is the latest hello's.
    """
    before = [getattr(conversation, name) for name in IDENTITY_FIELDS if name != "page_seen_at"]
    if identity.verified or not conversation.customer_verified:
        if identity.site_id is not None:
            conversation.site_id = identity.site_id
        if identity.verified or identity.claimed:
            conversation.customer_account_id = identity.account_id
            conversation.customer_name = identity.name
            conversation.customer_email = identity.email
            conversation.customer_verified = identity.verified
    if identity.page_url:
        conversation.page_url = identity.page_url
        conversation.page_seen_at = timezone.now()
    return before != [getattr(conversation, name) for name in IDENTITY_FIELDS if name != "page_seen_at"]


def _name(user: User) -> str:
    return user.get_full_name() or user.get_username()


def _lock_for_agent(public_id: uuid.UUID, agent: User) -> Conversation:
    """The locked conversation, refused when another agent has taken it over or it is closed."""
    conversation = _lock(public_id)
    if conversation.status == Status.CLOSED:
        raise ServiceError("closed", gettext("This conversation is closed."))
    if conversation.status == Status.TAKEN_OVER and conversation.assigned_agent_id != agent.pk:
        owner = conversation.assigned_agent
        name = _name(owner) if owner else "Another agent"
        raise ServiceError(
            "taken_over_by_other", gettext("%(name)s has taken over this conversation.") % {"name": name}, by=name
        )
    return conversation


def _append_message(conversation: Conversation, *, sender: str, text: str, **fields: object) -> Message:
    """Store a message with the next gap-free sequence number (the caller holds the lock)."""
    conversation.last_seq += 1
    message = Message.objects.create(
        conversation=conversation, seq=conversation.last_seq, sender=sender, text=text, **fields
    )
    webhook_events.message_sent(message)
    if sender == Message.Sender.CUSTOMER:
        conversation.awaiting_reply_since = conversation.awaiting_reply_since or message.created_at
        conversation.first_customer_at = conversation.first_customer_at or message.created_at
    else:
        conversation.awaiting_reply_since = None
        facts.note_reply(conversation, sender=sender, draft=message.draft if message.draft_id else None)
        # First response answers the first customer message: a greeting sent before it does not count.
        if conversation.first_customer_at is not None and conversation.first_response_at is None:
            conversation.first_response_at = message.created_at
    return message


def _reopen_if_closed(conversation: Conversation) -> None:
    """The customer came back to a closed conversation (the caller holds the lock and saves it)."""
    if conversation.status == Status.CLOSED:
        conversation.status = Status.OPEN
        conversation.reopened_count = min(conversation.reopened_count + 1, 32767)  # a small integer column


def _close(conversation: Conversation) -> None:
    """Close it: nothing is awaited or drafted any more (the caller holds the lock and saves it)."""
    conversation.status = Status.CLOSED
    conversation.closed_at = timezone.now()
    conversation.awaiting_reply_since = None
    _clear_flags(conversation)
    _discard_unfinished_drafts(conversation)


def flag(
    conversation: Conversation,
    reason: str,
    *,
    message: Message | None = None,
    detail: str = "",
    score: float | None = None,
    escalate: bool = True,
) -> EscalationFlag:
    """Record that an escalation rule fired and raise the conversation's priority (the caller holds the
    lock and saves the conversation). With `escalate`, an open conversation is escalated for `reason`;
    without, it only moves up the queue (e.g. sentiment on a conversation still being drafted).
    """
    record = EscalationFlag.objects.create(
        conversation=conversation, reason=reason, message=message, detail=detail[:200], score=score
    )
    facts.note_handoff(conversation, record.created_at)
    if escalate and conversation.status in (Status.OPEN, Status.CLOSED):
        conversation.status = Status.ESCALATED
        conversation.escalation_reason = reason
        conversation.escalated_at = timezone.now()
        _handoff_summary_write(conversation)
        assignment.route(conversation)
        webhook_events.conversation_escalated(conversation, reason)
    conversation.priority = _priority(conversation)
    return record


def _priority(conversation: Conversation) -> int:
    reasons = set(conversation.flags.filter(active=True).values_list("reason", flat=True))
    return min(sum(settings.ESCALATION_WEIGHTS.get(reason, 0) for reason in reasons), 32767)


def _clear_flags(conversation: Conversation) -> None:
    """A person has dealt with it (closed, handed back): its flags stop counting toward priority."""
    conversation.flags.filter(active=True).update(active=False)
    conversation.priority = 0


def _supersede_ready_drafts(conversation: Conversation) -> None:
    """A newer customer message arrived: drafts awaiting review answer an older question now."""
    Draft.objects.filter(conversation=conversation, status=Draft.Status.READY).update(status=Draft.Status.SUPERSEDED)


def _discard_unfinished_drafts(conversation: Conversation) -> None:
    Draft.objects.filter(conversation=conversation, status__in=Draft.UNFINISHED).update(status=Draft.Status.DISCARDED)


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    """end - start in seconds (never below 0: clocks of two hosts may disagree), None if either is unknown."""
    if start is None or end is None:
        return None
    return max((end - start).total_seconds(), 0.0)


def _edit_size(draft_text: str, sent_text: str) -> tuple[float, int]:
    """(normalised Levenshtein distance 0..1, characters changed) from the draft to the text sent."""
    return Levenshtein.normalized_distance(draft_text, sent_text), Levenshtein.distance(draft_text, sent_text)


def _request_draft(conversation: Conversation, reply_to: Message, *, options: dict[str, object] | None = None) -> None:
    """Make sure one draft will answer `reply_to`.

    A burst of customer messages yields one draft: a draft still queued is
    pointed at the newest message instead of queuing another task.
    """
    if options is None and Draft.objects.filter(conversation=conversation, status=Draft.Status.PENDING).update(
        reply_to=reply_to
    ):
        return
    Draft.objects.filter(conversation=conversation, status__in=Draft.UNFINISHED).update(status=Draft.Status.SUPERSEDED)
    # DRAFTS_SOURCE=external: the draft waits for an integration's (external_drafts), no worker writes it.
    external = settings.DRAFTS_SOURCE == "external"
    draft = Draft.objects.create(
        conversation=conversation,
        reply_to=reply_to,
        engine="external" if external else settings.DRAFT_ENGINE,
        options=options or {},
        queued_at=timezone.now(),
    )
    if not external:
        transaction.on_commit(lambda: jobs.enqueue(jobs.DRAFT_REPLY, draft.pk))


def _handoff_summary_write(conversation: Conversation) -> None:
    """The conversation reaches a person now (lock held): store the extractive summary at once and, with
    an engine whose model summarises, ask a worker for a generated one after the commit."""
    conversation.handoff_summary = handoff.handoff_summary(conversation)
    conversation.handoff_summary_by = handoff.EXTRACTIVE
    if registry.engine_summarises():
        conversation_id, seq = conversation.pk, conversation.last_seq
        transaction.on_commit(lambda: jobs.enqueue(jobs.HANDOFF_SUMMARY_GENERATE, conversation_id, seq))


def handoff_summary_generate(*, conversation_id: int, seq: int) -> bool:
    """Replace a conversation's extractive handoff summary with one the engine's model writes from its
    messages up to `seq` (the last one when it reached a person). Skipped (False) when the conversation
    no longer needs a person, or a newer handoff wrote a summary since; an engine error keeps the
    extractive one (logged). The model runs outside any lock or transaction."""
    conversation = Conversation.objects.filter(pk=conversation_id).first()
    if conversation is None:
        return False
    turns = selectors.conversation_turns_until(conversation, seq=seq, limit=settings.DRAFT_HISTORY_TURNS)
    engine = registry.get_engine()
    try:
        text = engine.summarise(turns)
    except EngineError as exc:
        log.warning("conversation %s keeps its extractive handoff summary: %s", conversation_id, exc)
        return False
    if not text:
        return False
    with transaction.atomic():
        conversation = _lock(conversation.public_id)
        if conversation.status not in (Status.ESCALATED, Status.TAKEN_OVER) or conversation.last_seq != seq:
            return False
        conversation.handoff_summary = text[: handoff.GENERATED_CHARS]
        conversation.handoff_summary_by = engine.name or settings.DRAFT_ENGINE
        conversation.save(update_fields=["handoff_summary", "handoff_summary_by", "updated_at"])
        realtime.conversation_changed(conversation.pk)
    return True


def _record(
    conversation: Conversation, agent: User, kind: str, *, draft: Draft | None = None, sent_text: str = ""
) -> AgentAction:
    return AgentAction.objects.create(
        conversation=conversation,
        agent=agent,
        kind=kind,
        draft=draft,
        draft_text=draft.text if draft else "",
        sent_text=sent_text,
    )


# -- customers -----------------------------------------------------------------


def customer_hello(
    *, token_public_id: uuid.UUID | None, site: str | None, customer: dict[str, Any] | None, page: str | None
) -> tuple[uuid.UUID, CustomerIdentity]:
    """Which conversation a customer's hello opens, and who the customer is (identity.customer_identity
    checks `site`, `customer` and `page`: ServiceError `invalid_request` or `unknown_site`). Returns the
    conversation's public id and the identity, recorded on the conversation when it exists (nothing is stored
    for a new one: its first message stores it, with the identity the caller passes on).

    With a token, that conversation, unless it belongs to another verified customer than a verified
    `identity` (someone else signed in on this browser): then as without a token. Without a token, a
    verified customer resumes their most recent conversation changed within CHAT_TOKEN_MAX_AGE_DAYS (on
    any device); anyone else gets a new conversation. Unverified data never resumes anything.
    """
    identity = customer_identity(site=site, customer=customer, page=page)
    return _conversation_for_hello(token_public_id, identity), identity


def _conversation_for_hello(token_public_id: uuid.UUID | None, identity: CustomerIdentity) -> uuid.UUID:
    public_id = token_public_id
    if public_id is not None and identity.verified:
        owner = (
            Conversation.objects.filter(public_id=public_id, customer_verified=True)
            .values_list("site_id", "customer_account_id")
            .first()
        )
        if owner is not None and owner != (identity.site_id, identity.account_id):
            public_id = None
    if public_id is None and identity.verified:
        assert identity.site_id is not None
        public_id = selectors.verified_customer_conversation_to_resume(
            site_id=identity.site_id, account_id=identity.account_id
        )
    if public_id is None:
        return uuid.uuid4()
    if identity.site_id is not None or identity.claimed or identity.page_url:
        with transaction.atomic():
            conversation = Conversation.objects.select_for_update().filter(public_id=public_id).first()
            if conversation is not None and _identify(conversation, identity):
                conversation.save(update_fields=IDENTITY_FIELDS)  # not updated_at: the queue's order stays
                realtime.conversation_changed(conversation.pk)
            elif conversation is not None and identity.page_url:
                conversation.save(update_fields=["page_seen_at"])
    return public_id


def conversation_start() -> Conversation:
    """Store a new, empty conversation (the websocket stores one only with its first message)."""
    conversation = Conversation.objects.create()
    webhook_events.conversation_created(conversation)
    return conversation


def customer_message_post(
    *,
    public_id: uuid.UUID,
    text: object,
    client_id: object,
    client_address: str = "",
    language: str = "",
    identity: CustomerIdentity = ANONYMOUS,
) -> tuple[Message, bool]:
    """Store a customer message and ask for its draft (or a person). Returns (message, created).

    Idempotent per client_id: a resend of the same text returns the stored message and created=False;
    the same client_id with another text is refused (`client_id_conflict`, with the stored `seq`).
    The conversation is stored with its first message. Every new message supersedes the drafts still
    awaiting review: a draft always answers the latest customer message. The escalation rules read its
    words (docs/escalation.md): its sentiment is stored, each rule that fires is flagged. `language`: what
    the customer's widget said (notices.language_code), used until their words say otherwise. `identity`:
    what the hello said about the customer, recorded when this message stores the conversation.
    """
    client_id = check_client_id(client_id)
    text = check_text(text)
    throttle.check("message", client_address, limit=settings.CHAT_MESSAGES_PER_MINUTE_PER_ADDRESS, window_s=60)
    with transaction.atomic():
        conversation = _lock_or_start(public_id, client_address, identity)
        existing = conversation.messages.filter(client_id=client_id).first()
        if existing is not None:
            return _resent(existing, text), False
        window_start = timezone.now() - timedelta(seconds=settings.CHAT_RATE_LIMIT_WINDOW_S)
        recent = conversation.messages.filter(sender=Message.Sender.CUSTOMER, created_at__gte=window_start).count()
        if recent >= settings.CHAT_RATE_LIMIT_MESSAGES:
            raise ServiceError(
                "rate_limited",
                gettext("You are sending messages too fast. Please wait a few seconds and try again."),
                retry_after=settings.CHAT_RATE_LIMIT_WINDOW_S,
            )
        _reopen_if_closed(conversation)
        message = _append_message(conversation, sender=Message.Sender.CUSTOMER, text=text, client_id=client_id)
        _note_language(conversation, widget_language=language, text=text)
        _supersede_ready_drafts(conversation)
        asked_for_person = _flag_customer_message(conversation, message)
        # Escalated conversations are drafted too: the agent who picks one up gets a suggestion. A customer
        # who asked for a person in words gets one, not a draft.
        if not asked_for_person and conversation.status in (Status.OPEN, Status.ESCALATED):
            _request_draft(conversation, message)
        conversation.save()
        realtime.conversation_changed(conversation.pk, message_id=message.pk)
    return message, True


def _flag_customer_message(conversation: Conversation, message: Message) -> bool:
    """Run the escalation rules on a new customer message (lock held): store its sentiment and flag each
    rule that fired. True when the customer asked for a person in words."""
    assessment = escalation.customer_message_assess(conversation, message)
    conversation.sentiment = assessment.sentiment
    for hit in assessment.hits:
        flag(conversation, hit.reason, message=message, detail=hit.detail, score=hit.score, escalate=hit.escalate)
    return assessment.asked_for_person


def _resent(existing: Message, text: str) -> Message:
    if existing.text != text:
        raise ServiceError(
            "client_id_conflict",
            gettext(
                "client_id %(client_id)r was already used for another message (seq %(seq)s); "
                "use a new client_id for a new message."
            )
            % {"client_id": existing.client_id, "seq": existing.seq},
            seq=existing.seq,
        )
    return existing


def _note_language(conversation: Conversation, *, widget_language: str, text: str = "") -> None:
    """The customer's language: what their words clearly are, else what was known, else what the widget said."""
    conversation.language = notices.language_of_text(text) or conversation.language or widget_language


def conversation_request_human(
    *, public_id: uuid.UUID, client_address: str = "", language: str = "", identity: CustomerIdentity = ANONYMOUS
) -> Conversation:
    """The customer pressed "talk to a person" (also before any message). Does nothing when a person
    is already on it. `language` and `identity` as for customer_message_post."""
    with transaction.atomic():
        conversation = _lock_or_start(public_id, client_address, identity)
        _note_language(conversation, widget_language=language)
        if conversation.status in (Status.OPEN, Status.CLOSED):
            _reopen_if_closed(conversation)
            flag(conversation, Reason.CUSTOMER_REQUEST, detail="pressed the button")
            conversation.save()
            realtime.conversation_changed(conversation.pk)
    return conversation


def conversation_leave_email(
    *, public_id: uuid.UUID, email: object, client_address: str = "", identity: CustomerIdentity = ANONYMOUS
) -> Conversation:
    """The customer left an email address to be answered at (offered when no agent is at the desk).
    The conversation stays in the agents' queue, escalated for a person, with the address on it.

    Raises ServiceError `invalid_email` for anything that is not one email address.
    """
    if not isinstance(email, str) or len(email) > 254:
        raise ServiceError("invalid_email", gettext("Please enter an email address such as name@example.com."))
    email = email.strip()
    try:
        validate_email(email)
    except ValidationError:
        raise ServiceError(
            "invalid_email", gettext("Please enter an email address such as name@example.com.")
        ) from None
    with transaction.atomic():
        conversation = _lock_or_start(public_id, client_address, identity)
        conversation.contact_email = email
        conversation.contact_email_at = timezone.now()
        if conversation.status in (Status.OPEN, Status.CLOSED):
            _reopen_if_closed(conversation)
            flag(conversation, Reason.CUSTOMER_REQUEST, detail="left an email address")
        conversation.save()
        realtime.conversation_changed(conversation.pk)
    return conversation


def conversation_end(*, public_id: uuid.UUID) -> Conversation:
    """The customer ended the chat: it is closed as an agent's close would (closed_at, flags cleared,
    unfinished drafts discarded) and the widget offers a rating. Ending a closed conversation changes
    nothing. Raises ServiceError `not_found` for a conversation nothing was stored for.
    """
    with transaction.atomic():
        conversation = _lock(public_id)
        if conversation.status != Status.CLOSED:
            _close(conversation)
            conversation.save()
            webhook_events.conversation_closed(conversation, by=None)
            realtime.conversation_changed(conversation.pk)
    return conversation


def check_rating(score: object, comment: object) -> tuple[int, str]:
    """(score, comment) to store: a whole number 1-5, and a trimmed NFC comment of at most
    CHAT_MAX_MESSAGE_CHARS code points (None: no comment). ServiceError `invalid_request` (field
    `score` or `comment`), `invalid_text` or `message_too_long` otherwise."""
    if not isinstance(score, int) or isinstance(score, bool) or not 1 <= score <= 5:
        raise ServiceError("invalid_request", gettext("score must be a whole number from 1 to 5."), field="score")
    if comment is None:
        return score, ""
    if not isinstance(comment, str):
        raise ServiceError("invalid_request", gettext("comment must be a string."), field="comment")
    comment = normalise_text(comment, name="comment").strip()
    refuse_too_long(
        comment, gettext("Comments can be at most %(limit)s characters; this one has %(length)s."), field="comment"
    )
    return score, comment


def conversation_rate(*, public_id: uuid.UUID, score: object, comment: object = None) -> Rating:
    """The customer's CSAT rating of the conversation's latest closing: stored, or changed when they
    rate again (one Rating per closing, keyed by after_seq = last_seq, which nothing changes while the
    conversation is closed). Ratings are taken while the conversation is closed: once the customer
    writes again (or asks for a person) it is open and rating it is refused with `rating_closed`.
    Invalid input: see check_rating.
    """
    score, comment = check_rating(score, comment)
    with transaction.atomic():
        conversation = Conversation.objects.select_for_update().filter(public_id=public_id).first()
        if conversation is None or conversation.status != Status.CLOSED:
            raise ServiceError(
                "rating_closed", gettext("You can rate a conversation once it is closed, until you write again.")
            )
        rating, _ = Rating.objects.update_or_create(
            conversation=conversation, after_seq=conversation.last_seq, defaults={"score": score, "comment": comment}
        )
        webhook_events.csat_received(rating)
        realtime.conversation_changed(conversation.pk)
    return rating


# -- drafting (called by the Celery task) ----------------------------------------


def draft_generate(*, draft_id: int, task_id: str = "") -> Draft | None:
    """Write the draft if it is still wanted. Idempotent: a duplicate task finds nothing to claim.

    The claim is a conditional update that counts the attempt in the database. A pending draft is
    claimed by any task; a generating one only by a redelivery of the task that claimed it (`task_id`,
    Celery's id, the same on every delivery): Celery redelivers a late-acknowledged task only when the
    worker running it died, or after the broker's visibility timeout, which outlasts the hard time limit.
    A draft already started DRAFT_MAX_ATTEMPTS times is failed instead (a poison draft that kills its
    worker each time stops there).
    """
    mine = Q(status=Draft.Status.PENDING)
    if task_id:
        mine |= Q(status=Draft.Status.GENERATING, task_id=task_id)
    claimed = Draft.objects.filter(mine, pk=draft_id, attempts__lt=settings.DRAFT_MAX_ATTEMPTS).update(
        status=Draft.Status.GENERATING, started_at=timezone.now(), attempts=F("attempts") + 1, task_id=task_id
    )
    if not claimed:
        if Draft.objects.filter(mine, pk=draft_id, attempts__gte=settings.DRAFT_MAX_ATTEMPTS).exists():
            _draft_fail_attempts(draft_id)
        return None
    draft = Draft.objects.select_related("conversation", "reply_to").get(pk=draft_id)
    conversation = draft.conversation
    if conversation.status in (Status.TAKEN_OVER, Status.CLOSED):
        Draft.objects.filter(pk=draft_id, status=Draft.Status.GENERATING).update(status=Draft.Status.DISCARDED)
        return None
    turns = selectors.conversation_turns_until(conversation, seq=draft.reply_to.seq, limit=settings.DRAFT_HISTORY_TURNS)
    stream = DraftStream(
        draft_id=draft_id,
        public_id=conversation.public_id,
        time_limit_s=settings.CELERY_TASK_SOFT_TIME_LIMIT,
        task_id=task_id,
    )
    timed_out = f"Drafting timed out after {settings.CELERY_TASK_SOFT_TIME_LIMIT} s."
    started = time.perf_counter()
    try:
        engine = registry.get_engine(draft.engine or None)
        context = DraftContext(
            turns=turns,
            knowledge=knowledge_index_current(),
            company_name=settings.COMPANY_NAME,
            options=draft.options,
            on_text=stream.add,
            cancelled=stream.cancelled,
            language=conversation.language,
        )
        result = engine.draft(context)
    except DraftCancelled:
        if stream.timed_out:
            draft_fail(draft_id=draft_id, reason=timed_out, error_code=ErrorCode.TIMED_OUT, task_id=task_id)
        return None  # otherwise superseded or discarded while the engine worked; its status says which
    except Exception as exc:
        from celery.exceptions import SoftTimeLimitExceeded

        if isinstance(exc, SoftTimeLimitExceeded):
            draft_fail(draft_id=draft_id, reason=timed_out, error_code=ErrorCode.TIMED_OUT, task_id=task_id)
        else:
            log.exception("draft %s failed", draft_id)
            reason = f"Drafting failed: {exc}"
            draft_fail(draft_id=draft_id, reason=reason, error_code=ErrorCode.ENGINE_ERROR, task_id=task_id)
        return None
    finally:
        stream.flush(final=True)
    result.timings["total_s"] = time.perf_counter() - started
    return draft_complete(draft_id=draft_id, result=result, task_id=task_id)


def _draft_fail_attempts(draft_id: int) -> None:
    draft_fail(
        draft_id=draft_id,
        reason=f"Drafting was started {settings.DRAFT_MAX_ATTEMPTS} times and never finished.",
        error_code=ErrorCode.TOO_MANY_ATTEMPTS,
    )


class DraftStream:
    """Carries a draft being written to the agents watching its conversation, and tells the engine when to stop.

    Pieces are coalesced and sent at most every FLUSH_EVERY_S (each frame says at which character offset
    its text starts), one send at a time so they arrive in order; the engine waits for a send only when
    the previous one has not finished by the next flush. Engines may call both methods from any thread.
    """

    FLUSH_EVERY_S = 0.1
    CHECK_EVERY_S = 0.2

    def __init__(self, *, draft_id: int, public_id: uuid.UUID, time_limit_s: float, task_id: str = "") -> None:
        self.draft_id, self.public_id, self.task_id = draft_id, public_id, task_id
        # Celery's time limits need the prefork pool; thread-pool GPU workers rely on this deadline.
        self.deadline = time.monotonic() + time_limit_s
        self.timed_out = False
        self._lock = threading.Lock()
        self._sent_chars = 0
        self._buffer: list[str] = []
        self._flushed_at = self._checked_at = time.monotonic()
        self._wanted = True
        self._in_flight: concurrent.futures.Future[None] | None = None

    def add(self, piece: str) -> None:
        with self._lock:
            self._buffer.append(piece)
            due = time.monotonic() - self._flushed_at >= self.FLUSH_EVERY_S
        if due:
            self.flush()

    def flush(self, *, final: bool = False) -> None:
        with self._lock:
            text, self._buffer = "".join(self._buffer), []
            offset, self._sent_chars = self._sent_chars, self._sent_chars + len(text)
            self._flushed_at = time.monotonic()
            try:
                if self._in_flight is not None:
                    self._in_flight.result(timeout=realtime.SEND_TIMEOUT_S)
                if text:
                    self._in_flight = realtime.draft_text_streamed(
                        self.public_id, draft_id=self.draft_id, offset=offset, text=text
                    )
                if final and self._in_flight is not None:
                    self._in_flight.result(timeout=realtime.SEND_TIMEOUT_S)
            except Exception:
                # Streaming is a preview: the final draft is stored and sent whatever happens here.
                log.exception("streaming draft %s failed", self.draft_id)
                self._in_flight = None

    def cancelled(self) -> bool:
        """True once the draft is no longer generating for this task (superseded, discarded, claimed again
        after this run was given up; checked at most every 0.2 s) or its time limit has passed (then
        `timed_out` is set)."""
        now = time.monotonic()
        if now > self.deadline:
            self.timed_out = True
            return True
        if self._wanted and now - self._checked_at >= self.CHECK_EVERY_S:
            self._checked_at = now
            self._wanted = _still_generating(self.draft_id, self.task_id).exists()
        return not self._wanted


def _still_generating(draft_id: int, task_id: str) -> QuerySet[Draft]:
    """The draft, if it is generating for the run of `task_id` (any run when task_id is empty)."""
    drafts = Draft.objects.filter(pk=draft_id, status=Draft.Status.GENERATING)
    return drafts.filter(task_id=task_id) if task_id else drafts


def draft_complete(*, draft_id: int, result: DraftResult, task_id: str = "") -> Draft | None:
    """Store the engine's result and decide who sees it: the agents, or the customer (autopilot).

    Nothing is stored when the draft is no longer generating for this run (`task_id`, if given).
    """
    with transaction.atomic():
        conversation = Conversation.objects.select_for_update().get(drafts__pk=draft_id)
        draft = Draft.objects.select_related("reply_to").get(pk=draft_id)
        if draft.status != Draft.Status.GENERATING or (task_id and draft.task_id != task_id):
            return None  # superseded or discarded while the engine worked, or given up and claimed again
        topic = Topic.objects.filter(name=result.topic).first() if result.topic else None
        draft.text = result.text
        draft.alternatives = result.alternatives[:3]
        draft.tokens = result.tokens
        draft.prompt_tokens = result.prompt_tokens
        draft.model_name = result.model_name[:200]
        draft.confidence = result.confidence
        draft.sources = [s.as_dict() for s in result.sources]
        draft.topic = topic
        draft.timings = {k: round(v, 4) for k, v in result.timings.items()}
        draft.ready_at = timezone.now()
        draft.draft_seconds = _seconds(draft.reply_to.created_at, draft.ready_at)
        latest_customer_seq = conversation.messages.filter(sender=Message.Sender.CUSTOMER).aggregate(m=Max("seq"))["m"]
        sent: Message | None = None
        sensitive = escalation.sensitive_topic_rule(topic)
        threshold = escalation_threshold(topic)
        if draft.reply_to.seq != latest_customer_seq:
            draft.status = Draft.Status.SUPERSEDED
        elif conversation.status in (Status.TAKEN_OVER, Status.CLOSED):
            draft.status = Draft.Status.DISCARDED
        elif (
            conversation.status == Status.OPEN
            and topic is not None
            and topic.autopilot
            # The manager's minimum, and never below what calibration says drafts on this topic need.
            and result.confidence >= max(topic.autopilot_min_confidence, threshold)
            and result.out_of_scope is None
            and sensitive is None
            # Any rule that fired (sentiment, a repeated question, ...) means a person reviews the reply.
            and not conversation.flags.filter(active=True).exists()
            and not conversation_has_injection(conversation)
        ):
            draft.status = Draft.Status.AUTO_SENT
            draft.decided_at = draft.ready_at
            draft.review_seconds = 0.0  # nobody reviewed it
            draft.edit_distance, draft.chars_changed = 0.0, 0  # sent as written
            sent = _append_message(conversation, sender=Message.Sender.BOT, text=draft.text, draft=draft)
        else:
            draft.status = Draft.Status.READY
            if conversation.status == Status.OPEN and result.out_of_scope is not None:
                example = result.out_of_scope
                detail = out_of_scope_detail(example)
                flag(conversation, Reason.OUT_OF_SCOPE, message=draft.reply_to, detail=detail, score=example.score)
            if sensitive is not None and conversation.status in (Status.OPEN, Status.ESCALATED):
                detail = f"topic: {topic}" + (f" ({sensitive.note})" if sensitive.note else "")
                # Every draft of the conversation is on that topic: one active flag says it.
                if not conversation.flags.filter(active=True, reason=Reason.SENSITIVE, detail=detail).exists():
                    flag(conversation, Reason.SENSITIVE, message=draft.reply_to, detail=detail)
            if conversation.status == Status.OPEN and result.confidence < threshold:
                flag(
                    conversation,
                    Reason.LOW_CONFIDENCE,
                    message=draft.reply_to,
                    detail=f"draft confidence {result.confidence:.0%}, below {threshold:.0%}",
                    score=result.confidence,
                )
        draft.save()
        webhook_events.draft_changed(draft)
        if draft.status in (Draft.Status.READY, Draft.Status.AUTO_SENT):
            conversation.topic = topic
        conversation.save()
        realtime.conversation_changed(conversation.pk, message_id=sent.pk if sent else None)
    return draft


def draft_fail(*, draft_id: int, reason: str, error_code: str, task_id: str = "") -> None:
    """Mark an unfinished draft failed and put its conversation in front of the agents with the reason.

    `error_code` is one of Draft.ErrorCode. With `task_id`, only that run's claim is failed.
    """
    with transaction.atomic():
        conversation = Conversation.objects.select_for_update().get(drafts__pk=draft_id)
        unfinished = Draft.objects.filter(pk=draft_id, status__in=[Draft.Status.PENDING, Draft.Status.GENERATING])
        if task_id:
            unfinished = unfinished.filter(task_id=task_id)
        if not unfinished.update(status=Draft.Status.FAILED, error=reason, error_code=error_code):
            return
        metrics_receivers.draft_failed(draft_id=draft_id, error_code=error_code)  # an UPDATE sends no signal
        if conversation.status == Status.OPEN:
            flag(conversation, Reason.DRAFT_FAILED, detail=reason)
            conversation.save()
        realtime.conversation_changed(conversation.pk)


def drafts_requeue_stale() -> int:
    """The beat sweep: queue again the drafts whose task was lost, fail those that cannot finish.

    - unfinished drafts that would be older than DRAFT_FAIL_AFTER_S by the next sweep are failed
      (`worker_lost`), so none waits longer than that;
    - generating drafts started longer ago than the hard time limit lost their worker (the pool kills
      a run at that limit): they are queued again, or failed (`too_many_attempts`) once they were
      started DRAFT_MAX_ATTEMPTS times;
    - pending drafts queued more than DRAFT_REQUEUE_AFTER_S ago (broker down, prefetched by a worker
      that died) are queued again.

    Every step is a conditional update, so sweeps running at once queue a draft once.
    Returns how many drafts were queued again.
    """
    now = timezone.now()
    give_up_before = now - timedelta(seconds=settings.DRAFT_FAIL_AFTER_S - settings.DRAFT_SWEEP_EVERY_S)
    # Drafts waiting for an integration's (engine "external") have their own time-out sweep.
    for draft_id in (
        Draft.objects.filter(status__in=[Draft.Status.PENDING, Draft.Status.GENERATING], created_at__lt=give_up_before)
        .exclude(engine="external")
        .values_list("pk", flat=True)
    ):
        draft_fail(draft_id=draft_id, reason="No worker finished this draft in time.", error_code=ErrorCode.WORKER_LOST)
    lost = Draft.objects.filter(
        status=Draft.Status.GENERATING, started_at__lt=now - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT)
    )
    for draft_id in lost.filter(attempts__gte=settings.DRAFT_MAX_ATTEMPTS).values_list("pk", flat=True):
        _draft_fail_attempts(draft_id)
    # One pending draft per conversation (a constraint): a newer message's draft waits already.
    pending_sibling = Draft.objects.filter(conversation=OuterRef("conversation"), status=Draft.Status.PENDING)
    requeued = 0
    for draft_id, started_at in lost.filter(attempts__lt=settings.DRAFT_MAX_ATTEMPTS).values_list("pk", "started_at"):
        # started_at unchanged: no redelivery of its task claimed it meanwhile.
        if (
            Draft.objects.filter(pk=draft_id, status=Draft.Status.GENERATING, started_at=started_at)
            .exclude(Exists(pending_sibling))
            .update(status=Draft.Status.PENDING, task_id="", queued_at=now)
        ):
            jobs.enqueue(jobs.DRAFT_REPLY, draft_id)
            requeued += 1
    stale = Draft.objects.filter(
        status=Draft.Status.PENDING, queued_at__lt=now - timedelta(seconds=settings.DRAFT_REQUEUE_AFTER_S)
    ).exclude(engine="external")
    for draft_id in list(stale.values_list("pk", flat=True)):
        if stale.filter(pk=draft_id).update(queued_at=now):
            jobs.enqueue(jobs.DRAFT_REPLY, draft_id)
            requeued += 1
    return requeued


# -- service levels (called by the beat task) ------------------------------------


def sla_sweep(now: datetime) -> int:
    """Flag `sla_breach` on conversations waiting too long, once per waiting episode, and alert agents.

    A conversation breaches when its customer has waited for any reply longer than SLA_CUSTOMER_WAIT_S,
    or a draft has been ready and undecided longer than SLA_DRAFT_REVIEW_S, measured at `now` (the
    caller's clock; the beat task passes the current time). A waiting episode starts with the first
    unanswered customer message (`awaiting_reply_since`) and ends with any reply; its breach flag points
    at that message, so a later sweep, or a hand-back that cleared the flag, does not flag it again.
    The flag raises priority without escalating: the conversation is in the queue already. Each breach
    sends an `alert` frame to the agents' queue sockets after commit. Concurrent sweeps flag once (the
    check is repeated under the conversation's lock). Returns how many conversations were flagged.
    """
    late_draft = Draft.objects.filter(
        conversation=OuterRef("pk"),
        status=Draft.Status.READY,
        ready_at__lt=now - timedelta(seconds=settings.SLA_DRAFT_REVIEW_S),
    )
    candidates = (
        Conversation.objects.filter(awaiting_reply_since__isnull=False)
        .exclude(status=Status.CLOSED)
        .filter(Q(awaiting_reply_since__lt=now - timedelta(seconds=settings.SLA_CUSTOMER_WAIT_S)) | Exists(late_draft))
        .exclude(Exists(_sla_flags_this_episode()))
    )
    return sum(_sla_breach(public_id, now) for public_id in list(candidates.values_list("public_id", flat=True)))


def _sla_flags_this_episode() -> QuerySet[EscalationFlag]:
    """sla_breach flags of the conversation (OuterRef "pk") raised in its current waiting episode."""
    return EscalationFlag.objects.filter(
        conversation=OuterRef("pk"),
        reason=Reason.SLA_BREACH,
        message__created_at__gte=OuterRef("awaiting_reply_since"),
    )


def _sla_breach(public_id: uuid.UUID, now: datetime) -> int:
    with transaction.atomic():
        conversation = _lock(public_id)
        since = conversation.awaiting_reply_since
        if since is None or conversation.status == Status.CLOSED:
            return 0  # answered or closed since the sweep looked
        if Conversation.objects.filter(pk=conversation.pk).filter(Exists(_sla_flags_this_episode())).exists():
            return 0  # another sweep got here first
        breaches = []
        ready = conversation.drafts.filter(status=Draft.Status.READY, ready_at__isnull=False).order_by("ready_at")
        draft = ready.first()
        if draft is not None and draft.ready_at is not None:
            in_review = (now - draft.ready_at).total_seconds()
            if in_review > settings.SLA_DRAFT_REVIEW_S:
                breaches.append(
                    f"draft awaiting review {_duration(in_review)} (limit {_duration(settings.SLA_DRAFT_REVIEW_S)})"
                )
        waited = (now - since).total_seconds()
        if waited > settings.SLA_CUSTOMER_WAIT_S:
            breaches.append(
                f"customer waiting {_duration(waited)} for a reply (limit {_duration(settings.SLA_CUSTOMER_WAIT_S)})"
            )
        if not breaches:
            return 0
        first_unanswered = (
            conversation.messages.filter(sender=Message.Sender.CUSTOMER, created_at__gte=since).order_by("seq").first()
        )
        detail = "; ".join(breaches)
        flag(conversation, Reason.SLA_BREACH, message=first_unanswered, detail=detail, score=waited, escalate=False)
        conversation.save()
        realtime.conversation_changed(conversation.pk)
        text = f"{conversation.customer_label}: {detail}."
        realtime.agents_alerted(frames.alert_frame(Reason.SLA_BREACH, conversation, text[:1].upper() + text[1:]))
    return 1


def _duration(seconds: float) -> str:
    """ "45 s", "2 min", "5 min 07 s", "1 h 02 min": how agents read a wait."""
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, rest = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s" if rest else f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"


# -- agents --------------------------------------------------------------------


def _claim_ready_draft(conversation: Conversation, draft_id: object, agent: User, *, status: str) -> Draft:
    """Move a ready draft to `status` for this agent; exactly one agent can win (conditional update).

    Only a draft that answers the conversation's latest customer message can be claimed; an older
    one is marked superseded (the caller holds the conversation lock, which new messages take too).
    """
    if not isinstance(draft_id, int) or isinstance(draft_id, bool):
        raise ServiceError("invalid_request", gettext("draft_id must be a whole number."), field="draft_id")
    latest_customer_seq = conversation.messages.filter(sender=Message.Sender.CUSTOMER).aggregate(m=Max("seq"))["m"]
    Draft.objects.filter(pk=draft_id, conversation=conversation, status=Draft.Status.READY).exclude(
        reply_to__seq=latest_customer_seq
    ).update(status=Draft.Status.SUPERSEDED)
    decided_at = timezone.now()
    claimed = Draft.objects.filter(pk=draft_id, conversation=conversation, status=Draft.Status.READY).update(
        status=status, decided_by=agent, decided_at=decided_at
    )
    draft = (
        Draft.objects.select_related("decided_by", "reply_to", "topic")
        .filter(pk=draft_id, conversation=conversation)
        .first()
    )
    if draft is None:
        raise ServiceError("not_found", gettext("That draft does not exist in this conversation."))
    if not claimed:
        if draft.decided_by is not None:
            by = _name(draft.decided_by)
            raise ServiceError(
                "already_handled",
                gettext("Already handled by %(name)s (%(status)s).")
                % {"name": by, "status": draft.get_status_display().lower()},
                by=by,
            )
        raise ServiceError(
            "draft_not_ready",
            gettext("This draft can no longer be used: %(status)s.") % {"status": draft.get_status_display().lower()},
        )
    draft.review_seconds = _seconds(draft.ready_at, decided_at)
    draft.save(update_fields=["review_seconds"])
    return draft


def _send_agent_text(
    conversation: Conversation, agent: User, text: str, *, draft: Draft | None = None, client_id: str = ""
) -> Message:
    message = _append_message(
        conversation, sender=Message.Sender.AGENT, text=text, author=agent, draft=draft, client_id=client_id
    )
    if conversation.status == Status.ESCALATED:
        conversation.status = Status.OPEN  # an agent answered: the escalation is handled
    return message


def draft_approve(*, public_id: uuid.UUID, draft_id: object, agent: User) -> Message:
    """Send the draft to the customer as it is."""
    return _draft_send(public_id=public_id, draft_id=draft_id, agent=agent, edited_text=None)


def draft_edit(*, public_id: uuid.UUID, draft_id: object, agent: User, text: object) -> Message:
    """Send the agent's edited version of the draft."""
    return _draft_send(public_id=public_id, draft_id=draft_id, agent=agent, edited_text=check_text(text))


def _draft_send(*, public_id: uuid.UUID, draft_id: object, agent: User, edited_text: str | None) -> Message:
    with transaction.atomic():
        conversation = _lock_for_agent(public_id, agent)
        draft = _claim_ready_draft(conversation, draft_id, agent, status=Draft.Status.APPROVED)
        # An "edit" that sends the draft's own text is sent as drafted (status approved, distance 0).
        edited = edited_text is not None and edited_text != draft.text
        if edited:
            draft.status = Draft.Status.EDITED
        sent_text = edited_text if edited_text is not None else draft.text
        draft.edit_distance, draft.chars_changed = _edit_size(draft.text, sent_text)
        draft.save(update_fields=["status", "edit_distance", "chars_changed"])
        webhook_events.draft_changed(draft)
        message = _send_agent_text(conversation, agent, sent_text, draft=draft)
        _record(
            conversation,
            agent,
            AgentAction.Kind.EDIT if edited else AgentAction.Kind.APPROVE,
            draft=draft,
            sent_text=sent_text,
        )
        approved_reply_remember(customer_text=draft.reply_to.text, reply_text=sent_text, topic=draft.topic, agent=agent)
        conversation.save()
        realtime.conversation_changed(conversation.pk, message_id=message.pk)
    return message


def draft_reject(
    *, public_id: uuid.UUID, draft_id: object, agent: User, reply_text: object = None, redraft: bool = False
) -> Message | None:
    """Refuse a draft. With reply_text the agent's own reply is sent instead; with redraft another
    draft is written that avoids the rejected one's source. Returns the sent message, if any."""
    if reply_text is not None:
        reply_text = check_text(reply_text)
    with transaction.atomic():
        conversation = _lock_for_agent(public_id, agent)
        draft = _claim_ready_draft(conversation, draft_id, agent, status=Draft.Status.REJECTED)
        webhook_events.draft_changed(draft)
        if draft.sources:
            knowledge_source_penalize(draft.sources[0]["id"])
        message = None
        if isinstance(reply_text, str):
            message = _send_agent_text(conversation, agent, reply_text)
            approved_reply_remember(
                customer_text=draft.reply_to.text,
                reply_text=reply_text,
                topic=draft.topic,
                agent=agent,
                source=ApprovedReply.Source.AGENT,
            )
        elif redraft:
            avoid = list(draft.options.get("avoid_sources", []))
            avoid += [draft.sources[0]["id"]] if draft.sources else []
            _request_draft(conversation, draft.reply_to, options={"avoid_sources": avoid})
        _record(conversation, agent, AgentAction.Kind.REJECT, draft=draft, sent_text=message.text if message else "")
        conversation.save()
        realtime.conversation_changed(conversation.pk, message_id=message.pk if message else None)
    return message


def agent_reply(*, public_id: uuid.UUID, agent: User, text: object, client_id: object = "") -> Message:
    """The agent writes to the customer directly. Replying yourself takes the conversation over."""
    text = check_text(text)
    client_id = check_client_id(client_id) if client_id else ""
    with transaction.atomic():
        conversation = _lock_for_agent(public_id, agent)
        existing = conversation.messages.filter(client_id=client_id).first() if client_id else None
        if existing is not None:
            return _resent(existing, text)
        if conversation.status != Status.TAKEN_OVER:
            _take_over(conversation, agent)
        message = _send_agent_text(conversation, agent, text, client_id=client_id)
        _record(conversation, agent, AgentAction.Kind.REPLY, sent_text=text)
        conversation.save()
        realtime.conversation_changed(conversation.pk, message_id=message.pk)
    return message


def _take_over(conversation: Conversation, agent: User) -> None:
    """The agent answers from now on. Unfinished drafts become taken_over, decided by this agent (with
    review_seconds for those that were ready); the take_over action points at the latest of them."""
    if conversation.status == Status.OPEN:  # straight from drafting: the agent did not get a summary yet
        _handoff_summary_write(conversation)
    conversation.status = Status.TAKEN_OVER
    conversation.assigned_agent = agent
    now = timezone.now()
    dropped = list(conversation.drafts.filter(status__in=Draft.UNFINISHED).order_by("created_at", "pk"))
    for draft in dropped:
        draft.status = Draft.Status.TAKEN_OVER
        draft.decided_by, draft.decided_at = agent, now
        draft.review_seconds = _seconds(draft.ready_at, now)
    Draft.objects.bulk_update(dropped, ["status", "decided_by", "decided_at", "review_seconds"])
    webhook_events.conversation_assigned(conversation, agent, how="taken_over")
    action = _record(conversation, agent, AgentAction.Kind.TAKE_OVER, draft=dropped[-1] if dropped else None)
    facts.note_take_over(conversation, action.created_at)


def conversation_take_over(*, public_id: uuid.UUID, agent: User) -> Conversation:
    """No more drafts; this agent answers. Refused if another agent holds it; a no-op if this one does."""
    with transaction.atomic():
        conversation = _lock_for_agent(public_id, agent)
        if conversation.status != Status.TAKEN_OVER:
            _take_over(conversation, agent)
            conversation.save()
            realtime.conversation_changed(conversation.pk)
    return conversation


def conversation_hand_back(*, public_id: uuid.UUID, agent: User) -> Conversation:
    """Return the conversation to drafting; an unanswered customer message is drafted at once."""
    with transaction.atomic():
        conversation = _lock_for_agent(public_id, agent)
        if conversation.status == Status.OPEN:
            raise ServiceError("not_taken_over", gettext("Drafting is already on for this conversation."))
        conversation.status = Status.OPEN
        conversation.assigned_agent = None
        _clear_flags(conversation)
        latest = conversation.messages.order_by("-seq").first()
        if latest is not None and latest.sender == Message.Sender.CUSTOMER:
            _request_draft(conversation, latest)
        _record(conversation, agent, AgentAction.Kind.HAND_BACK)
        conversation.save()
        realtime.conversation_changed(conversation.pk)
    return conversation


def conversation_claim(*, public_id: uuid.UUID, agent: User) -> Conversation:
    """Make `agent` responsible for an escalated conversation. Of two agents claiming at once one wins
    (the row lock orders them); the other is refused with `already_claimed` naming the winner."""
    with transaction.atomic():
        conversation = _lock_for_agent(public_id, agent)
        if conversation.assigned_agent_id == agent.pk:
            return conversation
        if conversation.assigned_agent is not None and conversation.status == Status.ESCALATED:
            name = _name(conversation.assigned_agent)
            raise ServiceError(
                "already_claimed", gettext("%(name)s is already on this conversation.") % {"name": name}, by=name
            )
        conversation.assigned_agent = agent
        AgentAction.objects.create(conversation=conversation, agent=agent, kind=AgentAction.Kind.CLAIM, to_agent=agent)
        webhook_events.conversation_assigned(conversation, agent, how="claimed")
        conversation.save()
        realtime.conversation_changed(conversation.pk)
    return conversation


def conversation_release(*, public_id: uuid.UUID, agent: User) -> Conversation:
    """Give back a conversation assigned to (or claimed by) `agent` without taking it over: it goes to
    another online agent of its team, or waits unassigned."""
    with transaction.atomic():
        conversation = _lock_for_agent(public_id, agent)
        if conversation.assigned_agent_id != agent.pk or conversation.status != Status.ESCALATED:
            raise ServiceError(
                "not_assigned", gettext("Only an escalated conversation assigned to you can be released.")
            )
        conversation.assigned_agent = None
        _record(conversation, agent, AgentAction.Kind.RELEASE)
        assignment.route(conversation, exclude=agent.pk)
        conversation.save()
        realtime.conversation_changed(conversation.pk)
    return conversation


def conversation_transfer(
    *, public_id: uuid.UUID, agent: User, to_agent: object = None, to_team: object = None, note: object = ""
) -> Conversation:
    """Hand a conversation to another agent (by username) or team (by name), with a note for them.

    To an agent: they become responsible (and answer, if it was taken over). To a team: it waits in
    that team's queue, escalated, and goes to its least-loaded online member. Raises ServiceError
    `invalid_request` (neither or both targets), `not_found` (no such active agent or team).
    """
    if (to_agent is None) == (to_team is None):
        raise ServiceError("invalid_request", gettext("Transfer to one agent (to_agent) or one team (to_team)."))
    note = normalise_text(note).strip() if isinstance(note, str) else ""
    if len(note) > settings.CHAT_MAX_MESSAGE_CHARS:
        raise ServiceError("message_too_long", gettext("The note is too long."), limit=settings.CHAT_MAX_MESSAGE_CHARS)
    with transaction.atomic():
        conversation = _lock_for_agent(public_id, agent)
        if to_agent is not None:
            target = selectors.active_agent(to_agent)
            if target is None:
                raise ServiceError(
                    "not_found",
                    gettext("There is no active agent named %(name)r.") % {"name": to_agent},
                    field="to_agent",
                )
            conversation.assigned_agent = target
            if conversation.status == Status.OPEN:
                flag(conversation, Reason.CUSTOMER_REQUEST, detail=f"transferred by {_name(agent)}")
            else:  # the next person reads what happened until now (flag writes it otherwise)
                _handoff_summary_write(conversation)
            AgentAction.objects.create(
                conversation=conversation, agent=agent, kind=AgentAction.Kind.TRANSFER, to_agent=target, note=note
            )
            webhook_events.conversation_assigned(conversation, target, how="transferred")
        else:
            team = Team.objects.filter(name=to_team).first() if isinstance(to_team, str) else None
            if team is None:
                raise ServiceError(
                    "not_found", gettext("There is no team named %(name)r.") % {"name": to_team}, field="to_team"
                )
            conversation.team = team
            conversation.assigned_agent = None
            if conversation.status in (Status.OPEN, Status.TAKEN_OVER):
                conversation.status = Status.OPEN  # nobody answers it now: the team's queue does
                flag(conversation, Reason.CUSTOMER_REQUEST, detail=f"transferred to {team.name} by {_name(agent)}")
            else:
                _handoff_summary_write(conversation)
                assignment.route(conversation)
            AgentAction.objects.create(
                conversation=conversation, agent=agent, kind=AgentAction.Kind.TRANSFER, to_team=team, note=note
            )
        conversation.save()
        realtime.conversation_changed(conversation.pk)
    return conversation


def conversation_close(*, public_id: uuid.UUID, agent: User) -> Conversation:
    with transaction.atomic():
        conversation = _lock_for_agent(public_id, agent)
        _close(conversation)
        _record(conversation, agent, AgentAction.Kind.CLOSE)
        conversation.save()
        webhook_events.conversation_closed(conversation, by=agent)
        realtime.conversation_changed(conversation.pk)
    return conversation
