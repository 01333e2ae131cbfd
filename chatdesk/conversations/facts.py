"""What the handoff reports read off a conversation, kept on the conversation as it happens.

Who answered the customer (`answered_by`), when an agent first took it over (`taken_over_at`) and when
it first needed a person (`handed_off_at`) are facts about its messages, drafts, actions and flags. The
services note them in the same transaction as the write that makes them true (the `note_*` functions:
the caller holds the lock and saves), so a report counts them from the conversation's own columns
instead of probing four other tables per conversation (bench/reports.py). `recompute` derives them from
those rows: the definition the noted values must equal (tests/conversations/test_facts.py), used for
rows written without the services (tests' hand-made histories).
"""

from __future__ import annotations

from datetime import datetime

from django.db.models import Case, CharField, Exists, F, Min, OuterRef, QuerySet, Subquery, Value, When
from django.db.models.functions import Coalesce, Least

from chatdesk.conversations.models import AgentAction, Conversation, Draft, EscalationFlag, Message

AnsweredBy = Conversation.AnsweredBy
# Weakest first: the stored value only ever moves right.
ANSWER_ORDER = (AnsweredBy.NONE, AnsweredBy.AS_IS, AnsweredBy.EDITED, AnsweredBy.PERSON)
SENT = (Draft.Status.APPROVED, Draft.Status.EDITED, Draft.Status.AUTO_SENT)


def _answered(conversation: Conversation, answer: str) -> None:
    if ANSWER_ORDER.index(AnsweredBy(answer)) > ANSWER_ORDER.index(AnsweredBy(conversation.answered_by)):
        conversation.answered_by = answer


def note_reply(conversation: Conversation, *, sender: str, draft: Draft | None) -> None:
    """A reply reached the customer: an agent's own words (no draft) make it a person's answer; a sent
    draft counts as edited when its text was changed (edit distance above 0), else as is."""
    if draft is None:
        if sender == Message.Sender.AGENT:
            _answered(conversation, AnsweredBy.PERSON)
    elif draft.status == Draft.Status.EDITED and draft.edit_distance != 0:
        _answered(conversation, AnsweredBy.EDITED)
    elif draft.status in SENT:
        _answered(conversation, AnsweredBy.AS_IS)


def note_take_over(conversation: Conversation, at: datetime) -> None:
    """An agent took it over at `at`: a person answers, and it was handed off."""
    _answered(conversation, AnsweredBy.PERSON)
    conversation.taken_over_at = conversation.taken_over_at or at
    note_handoff(conversation, at)


def note_handoff(conversation: Conversation, at: datetime) -> None:
    """An escalation rule fired (or an agent took over) at `at`."""
    conversation.handed_off_at = conversation.handed_off_at or at


def answered_by_from_rows(ref: str = "pk") -> Case:
    """`answered_by` derived from the rows of the conversation whose id `ref` names: a take-over or an
    agent message without a draft is a person; a draft edited to another text is edited; a sent draft
    is as is."""
    person = Exists(AgentAction.objects.filter(conversation=OuterRef(ref), kind=AgentAction.Kind.TAKE_OVER)) | Exists(
        Message.objects.filter(conversation=OuterRef(ref), sender=Message.Sender.AGENT, draft__isnull=True)
    )
    edited = Exists(
        Draft.objects.filter(conversation=OuterRef(ref), status=Draft.Status.EDITED).exclude(edit_distance=0)
    )
    sent = Exists(Draft.objects.filter(conversation=OuterRef(ref), status__in=SENT))
    return Case(
        When(person, then=Value(AnsweredBy.PERSON)),
        When(edited, then=Value(AnsweredBy.EDITED)),
        When(sent, then=Value(AnsweredBy.AS_IS)),
        default=Value(AnsweredBy.NONE),
        output_field=CharField(),
    )


def recompute(conversations: QuerySet[Conversation]) -> int:
    """Derive the facts of `conversations` from their rows (one UPDATE); returns how many were updated."""
    first_take_over = Subquery(
        AgentAction.objects.filter(conversation=OuterRef("pk"), kind=AgentAction.Kind.TAKE_OVER)
        .values("conversation")
        .annotate(at=Min("created_at"))
        .values("at")
    )
    first_flag = Subquery(
        EscalationFlag.objects.filter(conversation=OuterRef("pk"))
        .values("conversation")
        .annotate(at=Min("created_at"))
        .values("at")
    )
    conversations.update(answered_by=answered_by_from_rows(), taken_over_at=first_take_over)
    # LEAST is NULL on SQLite when either side is: each side falls back to the other.
    return conversations.update(
        handed_off_at=Least(Coalesce(F("taken_over_at"), first_flag), Coalesce(first_flag, F("taken_over_at")))
    )
