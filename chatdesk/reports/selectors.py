"""Reads for managers' reports."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet

from chatdesk.conversations.models import AgentAction, Conversation, Draft, EscalationFlag


def conversation_outcomes() -> QuerySet[Conversation]:
    """Every conversation, newest first, with how its drafts were used and whether a person took over."""
    return (
        Conversation.objects.select_related("assigned_agent", "topic")
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
        found.setdefault(conversation_id, []).append(labels.get(reason, reason))
    return found
