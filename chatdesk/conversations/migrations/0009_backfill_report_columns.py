"""Fill the report columns of 0008 for conversations and drafts stored before the desk recorded them.

Derived from what was stored (docs/architecture.md, "Recorded for reports"):
- conversations: first_customer_at (first customer message), first_response_at (first agent or
  autopilot message after it), closed_at (the latest close action), reopened_count (close actions
  followed by a customer message);
- drafts: draft_seconds (customer message → ready), review_seconds (ready → decided) of decided drafts,
  edit_distance and chars_changed of sent drafts (approved, edited, auto_sent) against the message that
  carried them (else the action's sent_text);
- drafts discarded because an agent took over (the first take_over or close after the draft was made
  is a take_over) become taken_over, decided by that agent then, and the take_over action points at
  the latest of them.

Only empty values are filled (rows written live are left as they are). Rows are read in primary-key
windows of BATCH and written with bulk_update, so memory stays flat and no cursor is held open while
writing (SQLite gives no isolation between the two within one connection). model_name and
prompt_tokens cannot be known afterwards: they stay empty for older drafts.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from django.db import migrations
from django.db.models import Max, OuterRef, Q, Subquery
from rapidfuzz.distance import Levenshtein

BATCH = 1000
CUSTOMER = "customer"
SENT = ("approved", "edited", "auto_sent")
DECIDED = ("approved", "edited", "rejected", "auto_sent")


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return max((end - start).total_seconds(), 0.0)


def _windows(queryset: Any) -> Any:
    """Lists of at most BATCH rows of `queryset`, in primary-key order."""
    last = 0
    while True:
        rows = list(queryset.filter(pk__gt=last).order_by("pk")[:BATCH])
        if not rows:
            return
        yield rows
        last = rows[-1].pk


def backfill_conversations(apps: Any, schema_editor: Any) -> None:
    Conversation = apps.get_model("conversations", "Conversation")
    Message = apps.get_model("conversations", "Message")
    AgentAction = apps.get_model("conversations", "AgentAction")
    first_customer = Message.objects.filter(conversation=OuterRef("pk"), sender=CUSTOMER).order_by("seq")
    conversations = Conversation.objects.annotate(
        first_customer_seq=Subquery(first_customer.values("seq")[:1]),
        first_customer_time=Subquery(first_customer.values("created_at")[:1]),
    ).annotate(
        first_response_time=Subquery(
            Message.objects.filter(conversation=OuterRef("pk"), seq__gt=OuterRef("first_customer_seq"))
            .exclude(sender=CUSTOMER)
            .order_by("seq")
            .values("created_at")[:1]
        ),
    )
    fields = ["first_customer_at", "first_response_at", "closed_at", "reopened_count"]
    for rows in _windows(conversations):
        ids = [c.pk for c in rows]
        closes: dict[int, list[datetime]] = defaultdict(list)
        for conversation_id, at in AgentAction.objects.filter(conversation_id__in=ids, kind="close").values_list(
            "conversation_id", "created_at"
        ):
            closes[conversation_id].append(at)
        last_customer = dict(
            Message.objects.filter(conversation_id__in=ids, sender=CUSTOMER)
            .order_by()
            .values("conversation_id")
            .annotate(at=Max("created_at"))
            .values_list("conversation_id", "at")
        )
        for conversation in rows:
            conversation.first_customer_at = conversation.first_customer_at or conversation.first_customer_time
            conversation.first_response_at = conversation.first_response_at or conversation.first_response_time
            closed = closes.get(conversation.pk, [])
            if conversation.closed_at is None and closed:
                conversation.closed_at = max(closed)
            latest = last_customer.get(conversation.pk)
            if not conversation.reopened_count and latest is not None:
                conversation.reopened_count = min(sum(at < latest for at in closed), 32767)
        Conversation.objects.bulk_update(rows, fields)


def backfill_drafts(apps: Any, schema_editor: Any) -> None:
    Draft = apps.get_model("conversations", "Draft")
    Message = apps.get_model("conversations", "Message")
    AgentAction = apps.get_model("conversations", "AgentAction")
    drafts = Draft.objects.select_related("reply_to")
    fields = ["draft_seconds", "review_seconds", "edit_distance", "chars_changed"]
    for rows in _windows(drafts):
        ids = [d.pk for d in rows]
        sent = dict(
            AgentAction.objects.filter(draft_id__in=ids, kind__in=("approve", "edit")).values_list(
                "draft_id", "sent_text"
            )
        )
        sent.update(Message.objects.filter(draft_id__in=ids).values_list("draft_id", "text"))
        for draft in rows:
            if draft.draft_seconds is None and draft.ready_at is not None:
                draft.draft_seconds = _seconds(draft.reply_to.created_at, draft.ready_at)
            if draft.review_seconds is None and draft.status in DECIDED:
                draft.review_seconds = _seconds(draft.ready_at, draft.decided_at)
            if draft.edit_distance is None and draft.status in SENT and draft.pk in sent:
                draft.edit_distance = Levenshtein.normalized_distance(draft.text, sent[draft.pk])
                draft.chars_changed = Levenshtein.distance(draft.text, sent[draft.pk])
        Draft.objects.bulk_update(rows, fields)


def backfill_taken_over(apps: Any, schema_editor: Any) -> None:
    Draft = apps.get_model("conversations", "Draft")
    AgentAction = apps.get_model("conversations", "AgentAction")
    fields = ["status", "decided_by", "decided_at", "review_seconds"]
    for rows in _windows(Draft.objects.filter(status="discarded")):
        conversation_ids = {d.conversation_id for d in rows}
        ends: dict[int, list[Any]] = defaultdict(list)  # take_over and close actions, oldest first
        for action in AgentAction.objects.filter(
            conversation_id__in=conversation_ids, kind__in=("take_over", "close")
        ).order_by("created_at", "pk"):
            ends[action.conversation_id].append(action)
        changed: list[Any] = []
        latest_for: dict[int, Any] = {}  # take_over action id -> its latest draft
        for draft in rows:
            ending = next((a for a in ends.get(draft.conversation_id, []) if a.created_at >= draft.created_at), None)
            if ending is None or ending.kind != "take_over":
                continue  # discarded by a close (or by nothing we know of)
            draft.status = "taken_over"
            draft.decided_by_id, draft.decided_at = ending.agent_id, ending.created_at
            draft.review_seconds = _seconds(draft.ready_at, ending.created_at)
            changed.append(draft)
            if ending.pk not in latest_for or latest_for[ending.pk].pk < draft.pk:
                latest_for[ending.pk] = draft
        Draft.objects.bulk_update(changed, fields)
        for action_id, draft in latest_for.items():
            # A take-over's drafts may span two windows: the later window's (newer) draft wins.
            AgentAction.objects.filter(pk=action_id).filter(Q(draft__isnull=True) | Q(draft__pk__lt=draft.pk)).update(
                draft=draft, draft_text=draft.text
            )


def backfill(apps: Any, schema_editor: Any) -> None:
    backfill_conversations(apps, schema_editor)
    backfill_drafts(apps, schema_editor)
    backfill_taken_over(apps, schema_editor)


def undo(apps: Any, schema_editor: Any) -> None:
    """Before 0009 a draft dropped by a take-over was stored as discarded; the other columns go with 0008."""
    apps.get_model("conversations", "Draft").objects.filter(status="taken_over").update(status="discarded")


class Migration(migrations.Migration):
    dependencies = [("conversations", "0008_reports_recording_notices_language")]

    operations = [migrations.RunPython(backfill, undo)]
