"""CSV exports of a report's rows, streamed: one row per conversation, or one row per draft.

Rows are read in keyset batches (primary-key order, BATCH rows per query), so memory stays flat however
many rows there are, and the same batches serve a WSGI (sync) and an ASGI (async) response.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from asgiref.sync import sync_to_async
from django.db.models import Avg, Count, IntegerField, Model, OuterRef, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce

from chatdesk.conversations.models import Conversation, Draft, Rating
from chatdesk.reports.metrics import report_queries
from chatdesk.reports.selectors import escalation_reasons

BATCH = 2000

CONVERSATION_COLUMNS = (
    "conversation",
    "status",
    "first_customer_at",
    "first_response_at",
    "closed_at",
    "first_response_seconds",
    "resolution_seconds",
    "reopened_count",
    "answered_by",
    "escalation_reasons",
    "agent",
    "topic",
    "csat_latest",
    "ratings",
    "drafts",
    *(f"drafts_{status}" for status in Draft.Status.values),
    "edit_distance_avg",
    "chars_changed",
)
DRAFT_COLUMNS = (
    "draft",
    "conversation",
    "status",
    "engine",
    "model_name",
    "topic",
    "created_at",
    "ready_at",
    "decided_at",
    "decided_by",
    "edit_distance",
    "chars_changed",
    "draft_seconds",
    "review_seconds",
    "tokens",
    "prompt_tokens",
    "confidence",
    "error_code",
)


def _per_conversation(model: type[Model], aggregate: Any, **where: Any) -> Coalesce:
    rows = model.objects.filter(conversation=OuterRef("pk"), **where).order_by().values("conversation")  # type: ignore[attr-defined]
    return Coalesce(Subquery(rows.annotate(v=aggregate).values("v")), 0, output_field=aggregate.output_field)


def _iso(value: Any) -> str:
    return "" if value is None else value.isoformat()


def _number(value: Any) -> str:
    if value is None:
        return ""
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _inert(cell: str) -> str:
    """A cell a spreadsheet shows as text: names and labels starting like a formula get a leading '."""
    return "'" + cell if cell[:1] in ("=", "+", "-", "@", "\t", "\r") else cell


def _person(user: Any) -> str:
    return "" if user is None else user.get_username()


def conversation_rows(conversations: QuerySet[Conversation]) -> QuerySet[Conversation]:
    """`conversations` with every column of the conversation export, in one query per batch
    (subqueries: no join multiplies rows)."""
    edited = Draft.objects.filter(conversation=OuterRef("pk"), status=Draft.Status.EDITED).order_by()
    latest_rating = Rating.objects.filter(conversation=OuterRef("pk")).order_by("-after_seq").values("score")[:1]
    counts = {
        f"drafts_{status}": _per_conversation(Draft, Count("pk", output_field=IntegerField()), status=status)
        for status in Draft.Status.values
    }
    return conversations.select_related("assigned_agent", "topic").annotate(
        drafts_all=_per_conversation(Draft, Count("pk", output_field=IntegerField())),
        ratings_n=_per_conversation(Rating, Count("pk", output_field=IntegerField())),
        csat_latest=Subquery(latest_rating),
        edit_avg=Subquery(edited.values("conversation").annotate(a=Avg("edit_distance")).values("a")),
        chars=Subquery(edited.values("conversation").annotate(s=Sum("chars_changed")).values("s")),
        **counts,
    )


def _conversation_line(c: Any, reasons: dict[int, list[str]]) -> list[str]:
    first_response = resolution = None
    if c.first_customer_at and c.first_response_at:
        first_response = (c.first_response_at - c.first_customer_at).total_seconds()
    if c.first_customer_at and c.closed_at and c.status == Conversation.Status.CLOSED:
        resolution = (c.closed_at - c.first_customer_at).total_seconds()
    return [
        str(c.public_id),
        c.status,
        _iso(c.first_customer_at),
        _iso(c.first_response_at),
        _iso(c.closed_at),
        _number(first_response),
        _number(resolution),
        str(c.reopened_count),
        c.answered_by,
        "; ".join(reasons.get(c.pk, [])),
        _person(c.assigned_agent),
        c.topic.name if c.topic else "",
        _number(c.csat_latest),
        str(c.ratings_n),
        str(c.drafts_all),
        *(str(getattr(c, f"drafts_{status}")) for status in Draft.Status.values),
        _number(c.edit_avg),
        _number(c.chars),
    ]


def _draft_line(d: Any) -> list[str]:
    return [
        str(d.pk),
        str(d.conversation.public_id),
        d.status,
        d.engine,
        d.model_name,
        d.topic.name if d.topic else "",
        _iso(d.created_at),
        _iso(d.ready_at),
        _iso(d.decided_at),
        _person(d.decided_by),
        _number(d.edit_distance),
        _number(d.chars_changed),
        _number(d.draft_seconds),
        _number(d.review_seconds),
        str(d.tokens),
        str(d.prompt_tokens),
        _number(d.confidence),
        d.error_code,
    ]


class CsvRows:
    """The CSV text of a queryset, header first, one chunk of text per batch of rows.

    `qs` is read in primary-key order, BATCH rows at a time (WHERE pk > last); `lines` turns a batch
    into CSV rows (and may run one more query for it)."""

    def __init__(
        self, qs: QuerySet[Any], header: tuple[str, ...], lines: Callable[[list[Any]], list[list[str]]]
    ) -> None:
        self.qs, self.header, self.lines = qs.order_by("pk"), header, lines
        self.after: int | None = None
        self.done = False

    def _csv(self, rows: list[list[str]]) -> str:
        out = io.StringIO()
        csv.writer(out).writerows([[_inert(cell) for cell in row] for row in rows])
        return out.getvalue()

    def next_chunk(self) -> str | None:
        """The next batch's CSV text (the header before the first), or None at the end."""
        if self.done:
            return None
        if self.after is None:
            self.after = 0
            return self._csv([list(self.header)])
        with report_queries():
            batch = list(self.qs.filter(pk__gt=self.after)[:BATCH])
            lines = self.lines(batch) if batch else []
        if not batch:
            self.done = True
            return None
        self.after = batch[-1].pk
        return self._csv(lines)

    def __iter__(self) -> Iterator[str]:
        while (chunk := self.next_chunk()) is not None:
            yield chunk

    async def chunks(self) -> AsyncIterator[str]:
        """The same chunks for an ASGI response: each batch is read in Django's sync thread."""
        read = sync_to_async(self.next_chunk)
        while (chunk := await read()) is not None:
            yield chunk


def conversations_csv(conversations: QuerySet[Conversation]) -> CsvRows:
    """One row per conversation of `conversations` (CONVERSATION_COLUMNS)."""

    def lines(batch: list[Any]) -> list[list[str]]:
        reasons = escalation_reasons([c.pk for c in batch])
        return [_conversation_line(c, reasons) for c in batch]

    return CsvRows(conversation_rows(conversations), CONVERSATION_COLUMNS, lines)


def drafts_csv(drafts: QuerySet[Draft]) -> CsvRows:
    """One row per draft of `drafts` (DRAFT_COLUMNS)."""
    rows = drafts.select_related("conversation", "topic", "decided_by").only(
        *(
            f.name
            for f in Draft._meta.concrete_fields
            if f.name not in ("text", "alternatives", "sources", "options", "timings", "error")
        ),
        "conversation__public_id",
        "topic__name",
        "decided_by__username",
    )
    return CsvRows(rows, DRAFT_COLUMNS, lambda batch: [_draft_line(d) for d in batch])
