"""Reads for managers' reports."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet

from chatdesk.conversations.models import AgentAction, Conversation, Draft


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
