"""Reads for managers' reports: the drill-down rows, a transcript, the filters' choices."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib.auth.models import User
from django.db.models import Count, Q, QuerySet

from chatdesk.conversations import notes, selectors
from chatdesk.conversations.models import AgentAction, Conversation, Draft, EscalationFlag, Message
from chatdesk.drafting.registry import engine_paths
from chatdesk.knowledge.models import Topic


def conversation_outcomes(conversations: QuerySet[Conversation] | None = None) -> QuerySet[Conversation]:
    """`conversations` (default: every one), most recently active first, with how its drafts were used
    and whether a person took over. Annotates with joins: use it on a page of rows, not on thousands."""
    base = Conversation.objects.all() if conversations is None else conversations
    return (
        base.select_related("assigned_agent", "topic")
        .annotate(
            message_count=Count("messages", distinct=True),
            drafts_approved=Count("drafts", filter=Q(drafts__status=Draft.Status.APPROVED), distinct=True),
            drafts_edited=Count("drafts", filter=Q(drafts__status=Draft.Status.EDITED), distinct=True),
            drafts_rejected=Count("drafts", filter=Q(drafts__status=Draft.Status.REJECTED), distinct=True),
            drafts_auto_sent=Count("drafts", filter=Q(drafts__status=Draft.Status.AUTO_SENT), distinct=True),
            drafts_failed=Count("drafts", filter=Q(drafts__status=Draft.Status.FAILED), distinct=True),
            take_overs=Count("actions", filter=Q(actions__kind=AgentAction.Kind.TAKE_OVER), distinct=True),
        )
        .order_by("-updated_at")
    )


def escalation_reasons(conversation_ids: list[int]) -> dict[int, list[str]]:
    """{conversation id: the labels of every reason flagged in it, handled or not}, in one query."""
    labels = dict(EscalationFlag.Reason.choices)
    found: dict[int, list[str]] = {}
    pairs = EscalationFlag.objects.filter(conversation__in=conversation_ids).values_list("conversation_id", "reason")
    for conversation_id, reason in pairs.distinct().order_by("conversation_id", "reason"):
        found.setdefault(conversation_id, []).append(str(labels.get(reason, reason)))
    return found


def filter_choices(engine_rows: Iterable[tuple[str, Any]] = ()) -> dict[str, list[tuple[str, str]]]:
    """The report form's choices as (value, label): topics, agents (and "none"), engines (the registry's
    and any named in `engine_rows`, the report's engine table)."""
    topics = [(str(t.pk), t.name) for t in Topic.objects.order_by("name")]
    people: QuerySet[User] = selectors.agents_to_transfer_to(exclude=None)
    agents = [(str(u.pk), u.get_full_name() or u.get_username()) for u in people]
    engines = sorted(set(engine_paths()) | {name for name, _ in engine_rows if name and not name.startswith("(")})
    return {
        "topics": [("none", "(no topic)"), *topics],
        "agents": [("none", "(nobody)"), *agents],
        "engines": [(e, e) for e in engines],
    }


def transcript(conversation: Conversation) -> dict[str, Any]:
    """What the read-only transcript shows: messages in order; drafts oldest first, each with the text
    the customer got (`sent`, a Message or None) and the actions on it; flags; ratings; all actions."""
    messages = list(conversation.messages.select_related("author").order_by("seq"))
    sent_by_draft = {m.draft_id: m for m in messages if m.draft_id}
    drafts = list(conversation.drafts.select_related("topic", "decided_by", "reply_to").order_by("created_at", "pk"))
    actions = list(conversation.actions.select_related("agent", "to_agent", "draft").order_by("created_at", "pk"))
    for draft in drafts:
        draft.sent_message = sent_by_draft.get(draft.pk)  # type: ignore[attr-defined]
        draft.taken_over_by = next(  # type: ignore[attr-defined]
            (a for a in actions if a.draft_id == draft.pk and a.kind == AgentAction.Kind.TAKE_OVER), None
        )
    return {
        "conversation": conversation,
        "messages": messages,
        "drafts": drafts,
        "actions": actions,
        "flags": list(conversation.flags.select_related("message").order_by("created_at", "pk")),
        "ratings": list(conversation.ratings.order_by("after_seq")),
        "notes": notes.conversation_notes(conversation),
        "tags": notes.conversation_tags(conversation),
        "customer_sender": Message.Sender.CUSTOMER,
    }
