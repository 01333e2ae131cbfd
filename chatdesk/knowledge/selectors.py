"""Reads for the knowledge pages (the learned topic classifier lives in classification.py)."""

from __future__ import annotations

from django.db.models import QuerySet

from chatdesk.knowledge.models import ApprovedReply


def reply_memory(*, topic: str = "", status: str = "") -> QuerySet[ApprovedReply]:
    """Remembered replies, newest first, with who taught and reviewed them. `topic`: a topic name;
    `status`: one of ApprovedReply.Status (anything else: every status)."""
    entries = ApprovedReply.objects.select_related("topic", "agent", "reviewed_by").order_by("-created_at")
    if topic:
        entries = entries.filter(topic__name=topic)
    if status in ApprovedReply.Status.values:
        entries = entries.filter(status=status)
    return entries


def reply_memory_pending() -> int:
    """How many agents' replies wait for a manager's approval."""
    return ApprovedReply.objects.filter(status=ApprovedReply.Status.PENDING).count()
