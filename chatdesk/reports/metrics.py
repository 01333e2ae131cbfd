"""The handoff reports' numbers: plain functions over a date range and filters, aggregated in SQL.

Every function takes a `ReportFilters` (a [start, end) range of aware datetimes, the manager's time zone,
optional topic / agent / engine) and runs a fixed number of queries, whatever the range's length. The
definitions (numerators, denominators, which conversations count) are in docs/reports.md; the
conversations behind each number are `conversations_behind` (the drill-down).

Percentiles use the nearest-rank definition on every database: of n values sorted ascending, the p-th
percentile is the value at rank ceil(p·n/100), computed in integers as (p·n + 99) // 100 (the order of
ties does not change the value). Either the database numbers the rows with ROW_NUMBER() and counts them
with COUNT() OVER, window functions that SQLite (3.25+) and PostgreSQL evaluate identically, and returns
only the wanted ranks (`percentiles`, `percentiles_many`); or, with n known, it reads the value at
OFFSET rank − 1 in value order (`percentiles_by_offset`).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any
from zoneinfo import ZoneInfo

from django.db import connection, transaction
from django.db.models import (
    Case,
    Count,
    DurationField,
    Exists,
    Expression,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    QuerySet,
    Sum,
    When,
    Window,
)
from django.db.models.expressions import CombinedExpression
from django.db.models.functions import ExtractHour, RowNumber, TruncDate, TruncHour
from django.utils.functional import Promise
from django.utils.translation import gettext, gettext_lazy

from chatdesk.conversations.models import AgentAction, Conversation, Draft, EscalationFlag, Message, Rating

DraftStatus = Draft.Status
ConversationStatus = Conversation.Status

# Drafts whose outcome is known; pending, generating and ready ones are still waiting.
FINISHED_STATUSES = (
    DraftStatus.APPROVED,
    DraftStatus.EDITED,
    DraftStatus.REJECTED,
    DraftStatus.AUTO_SENT,
    DraftStatus.SUPERSEDED,
    DraftStatus.TAKEN_OVER,
    DraftStatus.DISCARDED,
    DraftStatus.FAILED,
)
SENT_STATUSES = (DraftStatus.APPROVED, DraftStatus.EDITED, DraftStatus.AUTO_SENT)

# Who answered a conversation (docs/reports.md, "Who answered"), as the conversation keeps it.
AnsweredBy = Conversation.AnsweredBy
ANSWERED_LABELS = {
    str(key): AnsweredBy(key).label for key in (AnsweredBy.AS_IS, AnsweredBy.EDITED, AnsweredBy.PERSON, AnsweredBy.NONE)
}

# Edit size buckets over edited drafts' normalised edit distance: (key, label, lower bound exclusive
# except for the first, upper bound inclusive).
EDIT_BUCKETS: tuple[tuple[str, str | Promise, float, float], ...] = (
    ("0", gettext_lazy("0 (same text)"), 0.0, 0.0),
    ("0-10", gettext_lazy("up to 10%"), 0.0, 0.1),
    ("10-25", gettext_lazy("10–25%"), 0.1, 0.25),
    ("25-50", gettext_lazy("25–50%"), 0.25, 0.5),
    ("50-100", gettext_lazy("over 50%"), 0.5, 1.0),
)

# Time to first response buckets: (key, label, upper bound exclusive; None: no bound).
FIRST_RESPONSE_BUCKETS: tuple[tuple[str, str | Promise, dt.timedelta | None], ...] = (
    ("lt1m", gettext_lazy("under 1 min"), dt.timedelta(minutes=1)),
    ("1-5m", gettext_lazy("1–5 min"), dt.timedelta(minutes=5)),
    ("5-15m", gettext_lazy("5–15 min"), dt.timedelta(minutes=15)),
    ("15-60m", gettext_lazy("15–60 min"), dt.timedelta(hours=1)),
    ("1-4h", gettext_lazy("1–4 h"), dt.timedelta(hours=4)),
    ("gt4h", gettext_lazy("over 4 h"), None),
)

PERCENTILES = (50, 90)
REPORT_WORK_MEM = "64MB"  # PostgreSQL memory per sort or hash of a report query (default 4MB)

# topic_id / agent_id meaning "none": no topic, nobody (undecided drafts, conversations no agent acted in).
NO_ONE = 0
# A drill-down outcome that stands for drafts that reached the customer unchanged (approved or auto-sent).
AS_IS = "as_is"


class ReportInputError(ValueError):
    """A report parameter that cannot be used; the message says which and why, for the manager."""


@dataclass(frozen=True)
class ReportFilters:
    """What a report covers: [start, end) in `tz`, optionally one topic, agent (user id) and engine;
    NO_ONE as topic or agent asks for rows with none.

    Conversations count when their first customer message is in the range, drafts when they were
    created in it, messages when they were sent in it (docs/reports.md, "Which rows count").
    """

    start: dt.datetime
    end: dt.datetime
    tz: ZoneInfo
    topic_id: int | None = None
    agent_id: int | None = None
    engine: str = ""

    def previous(self) -> ReportFilters:
        """The period of the same length just before this one, with the same filters."""
        return replace(self, start=self.start - (self.end - self.start), end=self.start)

    @property
    def first_day(self) -> dt.date:
        return self.start.astimezone(self.tz).date()

    @property
    def last_day(self) -> dt.date:
        """The last local day in the range (end is exclusive)."""
        return (self.end.astimezone(self.tz) - dt.timedelta(microseconds=1)).date()

    def days(self) -> list[dt.date]:
        first, last = self.first_day, self.last_day
        return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


def local_day_range(first: dt.date, last: dt.date, tz: ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
    """[midnight of `first`, midnight after `last`) in `tz`, as aware datetimes. Raises ReportInputError
    when `last` is before `first`."""
    if last < first:
        raise ReportInputError(gettext("The range's last day is before its first day."))
    start = dt.datetime.combine(first, dt.time(), tzinfo=tz)
    end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), tzinfo=tz)
    return start, end


@contextmanager
def report_queries() -> Iterator[None]:
    """One transaction for a report's queries, on PostgreSQL with settings for them (SET LOCAL: this
    transaction only): no JIT compilation, which took hundreds of milliseconds per aggregate query,
    several times what running it costs at 100,000 conversations (bench/reports.py); and REPORT_WORK_MEM
    for sorts and hashes, so that ranking a range's drafts for percentiles is not sorted on disk."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL jit = off; SET LOCAL work_mem = %s", [REPORT_WORK_MEM])
        yield


# --- the rows each metric counts -------------------------------------------------------------------


def conversations_in(f: ReportFilters) -> QuerySet[Conversation]:
    """Conversations whose first customer message is in the range; topic: the conversation's topic,
    agent: an agent who acted in it, engine: one of its drafts was written by it."""
    qs = Conversation.objects.filter(first_customer_at__gte=f.start, first_customer_at__lt=f.end)
    if f.topic_id is not None:
        qs = qs.filter(topic__isnull=True) if f.topic_id == NO_ONE else qs.filter(topic_id=f.topic_id)
    if f.agent_id is not None:
        acted = Exists(AgentAction.objects.filter(conversation=OuterRef("pk"), agent_id=f.agent_id))
        qs = qs.filter(acted if f.agent_id else ~Exists(AgentAction.objects.filter(conversation=OuterRef("pk"))))
    if f.engine:
        qs = qs.filter(Exists(Draft.objects.filter(conversation=OuterRef("pk"), engine=f.engine)))
    return qs


def drafts_in(f: ReportFilters) -> QuerySet[Draft]:
    """Drafts created in the range; topic: the draft's topic, agent: who decided it, engine: its engine."""
    qs = Draft.objects.filter(created_at__gte=f.start, created_at__lt=f.end)
    if f.topic_id is not None:
        qs = qs.filter(topic__isnull=True) if f.topic_id == NO_ONE else qs.filter(topic_id=f.topic_id)
    if f.agent_id is not None:
        qs = qs.filter(decided_by__isnull=True) if f.agent_id == NO_ONE else qs.filter(decided_by_id=f.agent_id)
    if f.engine:
        qs = qs.filter(engine=f.engine)
    return qs


def messages_in(f: ReportFilters, *senders: str) -> QuerySet[Message]:
    """Messages from `senders` sent in the range, in conversations matching the conversation filters
    (whenever those conversations started)."""
    qs = Message.objects.filter(created_at__gte=f.start, created_at__lt=f.end, sender__in=senders)
    if f.topic_id is not None:
        qs = (
            qs.filter(conversation__topic__isnull=True)
            if f.topic_id == NO_ONE
            else qs.filter(conversation__topic_id=f.topic_id)
        )
    if f.agent_id is not None:
        actions = AgentAction.objects.filter(conversation=OuterRef("conversation_id"))
        qs = qs.filter(Exists(actions.filter(agent_id=f.agent_id)) if f.agent_id else ~Exists(actions))
    if f.engine:
        qs = qs.filter(Exists(Draft.objects.filter(conversation=OuterRef("conversation_id"), engine=f.engine)))
    return qs


REPLY_SENDERS = (Message.Sender.AGENT, Message.Sender.BOT)


# Kept on the conversation as it happens (chatdesk/conversations/facts.py), so that counting them reads
# the conversation's row only.
TAKEN_OVER = Q(taken_over_at__isnull=False)
HANDED_OFF = Q(handed_off_at__isnull=False)
BOT_RESOLVED = Q(status=ConversationStatus.CLOSED, answered_by=AnsweredBy.AS_IS)


def _first_response_time() -> ExpressionWrapper[CombinedExpression]:
    return ExpressionWrapper(F("first_response_at") - F("first_customer_at"), output_field=DurationField())


def _resolution_time() -> ExpressionWrapper[CombinedExpression]:
    return ExpressionWrapper(F("closed_at") - F("first_customer_at"), output_field=DurationField())


def _first_response_bucket(key: str) -> Q:
    bounds = {b[0]: i for i, b in enumerate(FIRST_RESPONSE_BUCKETS)}
    if key not in bounds:
        raise ReportInputError(gettext("Unknown first-response bucket %(key)r.") % {"key": key})
    index = bounds[key]
    q = Q(first_response_at__isnull=False, first_customer_at__isnull=False)
    upper = FIRST_RESPONSE_BUCKETS[index][2]
    if upper is not None:
        q &= Q(first_response_at__lt=F("first_customer_at") + upper)
    if index > 0:
        lower = FIRST_RESPONSE_BUCKETS[index - 1][2]
        assert lower is not None
        q &= Q(first_response_at__gte=F("first_customer_at") + lower)
    return q


def _edit_bucket(key: str, prefix: str = "") -> Q:
    for bucket_key, _, low, high in EDIT_BUCKETS:
        if bucket_key == key:
            field = f"{prefix}edit_distance"
            if low == high:
                return Q(**{f"{prefix}status": DraftStatus.EDITED, field: low})
            return Q(**{f"{prefix}status": DraftStatus.EDITED, f"{field}__gt": low, f"{field}__lte": high})
    raise ReportInputError(gettext("Unknown edit-size bucket %(key)r.") % {"key": key})


# --- percentiles -----------------------------------------------------------------------------------


def nearest_rank(p: int, n: int) -> int:
    """The 1-based rank of the p-th percentile among n sorted values: ceil(p·n/100), in integers."""
    return (p * n + 99) // 100


def percentiles(
    qs: QuerySet[Any],
    value: Expression | F,
    *,
    group: str | None = None,
    ps: Iterable[int] = PERCENTILES,
) -> dict[Any, dict[int, Any]]:
    """{group value (None without `group`): {p: the p-th nearest-rank percentile of `value`}} over the
    rows of `qs` where `value` is not null, in one query. Groups with no values are absent."""
    ps = tuple(ps)
    partition = [F(group)] if group else []
    ranked = qs.annotate(_value=value).filter(_value__isnull=False)
    ranked = ranked.annotate(
        _rank=Window(RowNumber(), partition_by=partition or None, order_by=[F("_value").asc(), F("pk").asc()]),
        _n=Window(Count("pk"), partition_by=partition or None),
    )
    wanted = Q()
    for p in ps:
        wanted |= Q(_rank=(F("_n") * p + 99) / 100)
    fields = ("_n", "_rank", "_value")
    rows = ranked.filter(wanted).values_list(*((group, *fields) if group else fields))
    by_group: dict[Any, dict[int, Any]] = defaultdict(dict)
    for row in rows:
        key, (n, rank, found) = (row[0], row[1:]) if group else (None, row)
        by_group[key][rank] = (n, found)
    result: dict[Any, dict[int, Any]] = {}
    for key, ranks in by_group.items():
        n = next(iter(ranks.values()))[0]
        result[key] = {p: ranks[nearest_rank(p, n)][1] for p in ps}
    return result


def percentiles_many(
    qs: QuerySet[Any], values: Mapping[str, Expression | F], *, ps: Iterable[int] = PERCENTILES
) -> dict[str, dict[int, Any] | None]:
    """{name: {p: the p-th nearest-rank percentile of that value} (None where every value is null)} over
    the rows of `qs`: several values in one query (one scan, one sort per value). Each value is ranked
    with its nulls last and counted without them, so its nulls never take a rank that is asked for."""
    ps = tuple(ps)
    names = list(values)
    ranked = qs.annotate(**{f"_v{i}": values[name] for i, name in enumerate(names)})
    windows: dict[str, Window] = {}
    wanted = Q()
    for i in range(len(names)):
        order = [F(f"_v{i}").asc(nulls_last=True), F("pk").asc()]
        windows[f"_r{i}"] = Window(RowNumber(), order_by=order)
        windows[f"_n{i}"] = Window(Count(f"_v{i}"))
        for p in ps:
            wanted |= Q(**{f"_r{i}": (F(f"_n{i}") * p + 99) / 100})
    fields = [f"_{kind}{i}" for i in range(len(names)) for kind in "rnv"]
    found: dict[str, dict[int, Any] | None] = dict.fromkeys(names)
    for row in ranked.annotate(**windows).filter(wanted).values_list(*fields):
        for i, name in enumerate(names):
            rank, n, value = row[3 * i : 3 * i + 3]
            for p in ps:
                if n and rank == nearest_rank(p, n):
                    found[name] = {**(found[name] or {}), p: value}
    return found


def _seconds(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    return float(value)


# --- the metrics -----------------------------------------------------------------------------------


def _share(part: int | float, whole: int | float) -> float | None:
    return part / whole if whole else None


def conversation_counts(f: ReportFilters) -> dict[str, int]:
    """Counts over the conversations in range, in one query: total, closed, open, reopened, taken_over,
    handed_off, bot_resolved (closed and answered by drafts as is), responded, unanswered, and one
    `frt_<bucket>` per first-response bucket."""
    qs = conversations_in(f)
    aggregates: dict[str, Any] = {
        "total": Count("pk"),
        "closed": Count("pk", filter=Q(status=ConversationStatus.CLOSED)),
        "reopened": Count("pk", filter=Q(reopened_count__gt=0)),
        "taken_over": Count("pk", filter=TAKEN_OVER),
        "handed_off": Count("pk", filter=HANDED_OFF),
        "bot_resolved": Count("pk", filter=BOT_RESOLVED),
        "responded": Count("pk", filter=Q(first_response_at__isnull=False)),
    }
    for key, _, _ in FIRST_RESPONSE_BUCKETS:
        aggregates[f"frt_{key}"] = Count("pk", filter=_first_response_bucket(key))
    counts = {k: int(v) for k, v in qs.aggregate(**aggregates).items()}
    counts["open"] = counts["total"] - counts["closed"]
    counts["unanswered"] = counts["total"] - counts["responded"]
    return counts


def volume(f: ReportFilters) -> dict[str, Any]:
    """Conversations started, customer messages and replies sent: totals, per local day (every day of
    the range, zeros included) and per local hour of day (0–23). Three queries."""
    days = {d: {"conversations": 0, "customer_messages": 0, "replies": 0} for d in f.days()}
    hours = {h: {"conversations": 0, "customer_messages": 0, "replies": 0} for h in range(24)}
    # Grouped by the local hour (one time-zone conversion per row); days and hours of day are summed here.
    started = (
        conversations_in(f)
        .annotate(at=TruncHour("first_customer_at", tzinfo=f.tz))
        .values("at")
        .annotate(n=Count("pk"))
        .order_by()
    )
    for row in started:
        local = row["at"].astimezone(f.tz)
        days[local.date()]["conversations"] += row["n"]
        hours[local.hour]["conversations"] += row["n"]
    messages = (
        messages_in(f, Message.Sender.CUSTOMER, *REPLY_SENDERS)
        .annotate(at=TruncHour("created_at", tzinfo=f.tz))
        .values("at", "sender")
        .annotate(n=Count("pk"))
        .order_by()
    )
    for row in messages:
        local = row["at"].astimezone(f.tz)
        key = "customer_messages" if row["sender"] == Message.Sender.CUSTOMER else "replies"
        days[local.date()][key] += row["n"]
        hours[local.hour][key] += row["n"]
    totals = {k: sum(d[k] for d in days.values()) for k in ("conversations", "customer_messages", "replies")}
    return {
        "totals": totals,
        "by_day": [{"day": d, **v} for d, v in days.items()],
        "by_hour": [{"hour": h, **v} for h, v in hours.items()],
    }


def _outcome_table(rows: Iterable[Mapping[str, Any]], key: str) -> dict[Any, dict[str, int]]:
    table: dict[Any, dict[str, int]] = defaultdict(lambda: {s: 0 for s in DraftStatus.values})
    for row in rows:
        table[row[key]][row["status"]] += row["n"]
    return dict(table)


def draft_facts(f: ReportFilters) -> list[dict[str, Any]]:
    """Drafts in range grouped by local day, engine and status: n, tokens_sum, prompt_tokens_sum,
    seconds_sum (draft_seconds), timed (drafts with draft_seconds) and reviewed (with review_seconds).
    One query: the one scan of the range's drafts that outcomes per day and engine, cost, the headline's
    share and the time percentiles' counts all read."""
    rows = (
        drafts_in(f)
        .order_by()
        .annotate(day=TruncDate("created_at", tzinfo=f.tz))
        .values("day", "engine", "status")
        .annotate(
            n=Count("pk"),
            tokens_sum=Sum("tokens"),
            prompt_tokens_sum=Sum("prompt_tokens"),
            seconds_sum=Sum("draft_seconds"),
            timed=Count("draft_seconds"),
            reviewed=Count("review_seconds"),
        )
    )
    return [dict(row) for row in rows]


def draft_outcomes(f: ReportFilters, facts: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Drafts in range by status: overall, per topic id, per deciding agent id (None: nobody decided),
    per engine and per local day. `finished` excludes drafts still waiting; shares are of finished
    drafts. Two queries, and draft_facts' without `facts`."""
    facts = draft_facts(f) if facts is None else facts
    qs = drafts_in(f).order_by()
    overall = {s: 0 for s in DraftStatus.values}
    for row in facts:
        overall[row["status"]] += row["n"]
    finished = sum(overall[s] for s in FINISHED_STATUSES)
    by_day = _outcome_table(facts, "day")
    return {
        "counts": overall,
        "finished": finished,
        "unfinished": sum(overall.values()) - finished,
        "shares": {s: _share(overall[s], finished) for s in FINISHED_STATUSES},
        "by_topic": _outcome_table(qs.values("topic_id", "status").annotate(n=Count("pk")), "topic_id"),
        "by_agent": _outcome_table(qs.values("decided_by_id", "status").annotate(n=Count("pk")), "decided_by_id"),
        "by_engine": _outcome_table(facts, "engine"),
        "by_day": [{"day": d, **by_day.get(d, {s: 0 for s in DraftStatus.values})} for d in f.days()],
    }


def edit_size(f: ReportFilters) -> dict[str, Any]:
    """Edited drafts' edit distance (0–1) and characters changed: count, median and p90, and the count
    per EDIT_BUCKETS bucket, overall, per topic id and per deciding agent id. Five queries."""
    edited = drafts_in(f).filter(status=DraftStatus.EDITED, edit_distance__isnull=False).order_by()
    buckets = {key: Count("pk", filter=_edit_bucket(key)) for key, _, _, _ in EDIT_BUCKETS}

    def grouped(field: str) -> dict[Any, dict[str, Any]]:
        found: dict[Any, dict[str, Any]] = {}
        for row in edited.values(field).annotate(n=Count("pk"), chars=Sum("chars_changed"), **buckets):
            found[row[field]] = {
                "n": row["n"],
                "chars_changed": row["chars"] or 0,
                "buckets": {key: row[key] for key, _, _, _ in EDIT_BUCKETS},
            }
        for key, values in percentiles(edited, F("edit_distance"), group=field).items():
            found[key].update(median=values[50], p90=values[90])
        return found

    overall: dict[str, Any] = {"n": 0, "chars_changed": 0, "buckets": {key: 0 for key, _, _, _ in EDIT_BUCKETS}}
    by_topic = grouped("topic_id")
    for row in by_topic.values():
        overall["n"] += row["n"]
        overall["chars_changed"] += row["chars_changed"]
        for key in overall["buckets"]:
            overall["buckets"][key] += row["buckets"][key]
    whole = percentiles(edited, F("edit_distance")).get(None, {50: None, 90: None})
    overall.update(median=whole[50], p90=whole[90])
    return {"overall": overall, "by_topic": by_topic, "by_agent": grouped("decided_by_id")}


def escalation_reasons(f: ReportFilters) -> dict[str, int]:
    """{reason: conversations in range flagged with it}, every reason listed (a conversation with several
    reasons counts under each). One query."""
    found = {reason: 0 for reason in EscalationFlag.Reason.values}
    rows = (
        EscalationFlag.objects.filter(conversation__in=conversations_in(f))
        .values("reason")
        .annotate(n=Count("conversation_id", distinct=True))
        .order_by()
    )
    for row in rows:
        found[row["reason"]] = row["n"]
    return found


def percentiles_by_offset(qs: QuerySet[Any], field: str, n: int, *, ps: Iterable[int] = PERCENTILES) -> dict[int, Any]:
    """{p: the p-th nearest-rank percentile of `field`} over the rows of `qs` that have it, `n` of them
    (counted by the caller): the value at OFFSET rank − 1 in `field` order, one query per percentile,
    run even when n is 0 so that the number of queries never depends on the data. With an index on
    (`field`, created_at) PostgreSQL walks the index in order and stops at the rank, instead of sorting
    the range's rows (bench/reports.py: 50 ms instead of 650 ms for 500,000 drafts)."""
    found: dict[int, Any] = {}
    ordered = qs.filter(**{f"{field}__isnull": False}).order_by(field).values_list(field, flat=True)
    for p in ps:
        rank = max(nearest_rank(p, n), 1)
        found[p] = next(iter(ordered[rank - 1 : rank]), None)
    return found


def times(f: ReportFilters, facts: list[dict[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
    """Median and p90 in seconds (None without values): time to draft and review time over drafts in
    range, first response over answered conversations in range, resolution over closed conversations in
    range. Five queries, and draft_facts' without `facts`."""
    facts = draft_facts(f) if facts is None else facts
    drafts = drafts_in(f)
    closed = Q(status=ConversationStatus.CLOSED)
    found: dict[str, dict[int, Any] | None] = {
        "time_to_draft": percentiles_by_offset(drafts, "draft_seconds", sum(r["timed"] for r in facts)),
        "review": percentiles_by_offset(drafts, "review_seconds", sum(r["reviewed"] for r in facts)),
        **percentiles_many(
            conversations_in(f).order_by(),
            {
                "first_response": _first_response_time(),
                "resolution": Case(When(closed, then=_resolution_time()), output_field=DurationField()),
            },
        ),
    }
    return {
        name: {
            "median": _seconds(values[50]) if values else None,
            "p90": _seconds(values[90]) if values else None,
        }
        for name, values in found.items()
    }


def csat(f: ReportFilters) -> dict[str, Any]:
    """Ratings of conversations in range: count, average and count per score 1–5, overall and per who
    answered (ANSWERED_LABELS keys). One query; averages are exact (sum of scores / count)."""
    rows = (
        Rating.objects.filter(conversation__in=conversations_in(f))
        .values("score", answered=F("conversation__answered_by"))
        .annotate(n=Count("pk"))
        .order_by()
    )
    groups = {key: {"scores": {s: 0 for s in range(1, 6)}} for key in ANSWERED_LABELS}
    for row in rows:
        groups[row["answered"]]["scores"][row["score"]] += row["n"]
    overall: dict[str, Any] = {"scores": {s: sum(g["scores"][s] for g in groups.values()) for s in range(1, 6)}}
    for group in (*groups.values(), overall):
        n = sum(group["scores"].values())
        group["n"] = n
        group["average"] = sum(s * c for s, c in group["scores"].items()) / n if n else None
    return {"overall": overall, "by_answered": groups}


def cost(f: ReportFilters, facts: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Per engine: drafts, tokens generated and read, drafting seconds (customer message → draft ready),
    and their averages per draft; per local day and engine: drafts, tokens and drafting seconds. No query
    of its own: draft_facts' (run here without `facts`)."""
    facts = draft_facts(f) if facts is None else facts
    keys = ("n", "tokens_sum", "prompt_tokens_sum", "seconds_sum", "timed")
    engines: dict[str, dict[str, Any]] = defaultdict(lambda: dict.fromkeys(keys, 0))
    days: dict[dt.date, dict[str, dict[str, Any]]] = {d: {} for d in f.days()}
    for row in facts:
        for group in (engines[row["engine"]], days[row["day"]].setdefault(row["engine"], dict.fromkeys(keys, 0))):
            for key in keys:
                group[key] += row[key] or 0
    by_engine = {
        engine: {
            "drafts": row["n"],
            "tokens": row["tokens_sum"],
            "prompt_tokens": row["prompt_tokens_sum"],
            "draft_seconds": float(row["seconds_sum"]),
            "tokens_per_draft": row["tokens_sum"] / row["n"],
            "prompt_tokens_per_draft": row["prompt_tokens_sum"] / row["n"],
            "seconds_per_draft": row["seconds_sum"] / row["timed"] if row["timed"] else None,
        }
        for engine, row in engines.items()
    }
    by_day = [
        {
            "day": day,
            "engines": {
                engine: {"drafts": row["n"], "tokens": row["tokens_sum"], "draft_seconds": float(row["seconds_sum"])}
                for engine, row in spent.items()
            },
        }
        for day, spent in days.items()
    ]
    return {"by_engine": by_engine, "by_day": by_day}


UNKNOWN = object()  # a value the caller has not computed


def headline(
    f: ReportFilters,
    *,
    counts: dict[str, int] | None = None,
    facts: list[dict[str, Any]] | None = None,
    volume_totals: dict[str, int] | None = None,
    first_response_median: object = UNKNOWN,  # float or None once known
) -> dict[str, float | int | None]:
    """The few numbers at the top of the report. What is already known for `f` (conversation_counts,
    draft_facts, volume's totals, times' first-response median) is reused; the rest takes one query
    each, five at most."""
    counts = counts if counts is not None else conversation_counts(f)
    if facts is None:
        outcomes = drafts_in(f).aggregate(
            finished=Count("pk", filter=Q(status__in=FINISHED_STATUSES)),
            as_is=Count("pk", filter=Q(status__in=(DraftStatus.APPROVED, DraftStatus.AUTO_SENT))),
            tokens=Sum("tokens"),
            drafts=Count("pk"),
        )
    else:
        outcomes = {
            "finished": sum(r["n"] for r in facts if r["status"] in FINISHED_STATUSES),
            "as_is": sum(r["n"] for r in facts if r["status"] in (DraftStatus.APPROVED, DraftStatus.AUTO_SENT)),
            "tokens": sum(r["tokens_sum"] or 0 for r in facts),
            "drafts": sum(r["n"] for r in facts),
        }
    if volume_totals is None:
        messages = messages_in(f, Message.Sender.CUSTOMER, *REPLY_SENDERS).aggregate(
            customer=Count("pk", filter=Q(sender=Message.Sender.CUSTOMER)),
            replies=Count("pk", filter=Q(sender__in=REPLY_SENDERS)),
        )
    else:
        messages = {"customer": volume_totals["customer_messages"], "replies": volume_totals["replies"]}
    median: Any = first_response_median
    if median is UNKNOWN:
        found = percentiles(conversations_in(f).order_by(), _first_response_time(), ps=(50,)).get(None)
        median = _seconds(found[50]) if found else None
    ratings = Rating.objects.filter(conversation__in=conversations_in(f)).aggregate(n=Count("pk"), total=Sum("score"))
    return {
        "conversations": counts["total"],
        "customer_messages": messages["customer"],
        "replies": messages["replies"],
        "as_is_share": _share(outcomes["as_is"], outcomes["finished"]),
        "taken_over": counts["taken_over"],
        "bot_resolved_rate": _share(counts["bot_resolved"], counts["closed"]),
        "handoff_rate": _share(counts["handed_off"], counts["total"]),
        "first_response_median": median,
        "csat_average": ratings["total"] / ratings["n"] if ratings["n"] else None,
        "tokens_per_draft": (outcomes["tokens"] or 0) / outcomes["drafts"] if outcomes["drafts"] else None,
    }


def report(f: ReportFilters) -> dict[str, Any]:
    """Every metric of the handoff report for `f`, with the headline numbers of the previous period of
    the same length (`previous`). A fixed number of queries (22 with the SET on PostgreSQL), whatever the range."""
    with report_queries():
        counts, facts, volumes = conversation_counts(f), draft_facts(f), volume(f)
        waits = times(f, facts)
        now = headline(
            f,
            counts=counts,
            facts=facts,
            volume_totals=volumes["totals"],
            first_response_median=waits["first_response"]["median"],
        )
        return {
            "headline": now,
            "previous": headline(f.previous()),
            "counts": counts,
            "volume": volumes,
            "outcomes": draft_outcomes(f, facts),
            "edit_size": edit_size(f),
            "reasons": escalation_reasons(f),
            "times": waits,
            "csat": csat(f),
            "cost": cost(f, facts),
        }


# --- drill-down --------------------------------------------------------------------------------------

CONVERSATION_METRICS = {
    "conversations": Q(),
    "closed": Q(status=ConversationStatus.CLOSED),
    "open": ~Q(status=ConversationStatus.CLOSED),
    "reopened": Q(reopened_count__gt=0),
    "responded": Q(first_response_at__isnull=False),
    "unanswered": Q(first_response_at__isnull=True),
}
METRICS = (
    *CONVERSATION_METRICS,
    "taken_over",
    "handed_off",
    "bot_resolved",
    "first_response",
    "reason",
    "csat",
    "customer_messages",
    "replies",
    "drafts",
)


@dataclass(frozen=True)
class Drill:
    """Which conversations a number stands for: a metric (METRICS) and its refinements."""

    metric: str = "conversations"
    day: dt.date | None = None
    hour: int | None = None
    status: str = ""  # drafts: the outcome
    bucket: str = ""  # drafts: edit-size bucket; first_response: its bucket
    reason: str = ""
    answered: str = ""
    score: int | None = None

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ReportInputError(
                gettext("Unknown metric %(metric)r; choose one of %(metrics)s.")
                % {"metric": self.metric, "metrics": ", ".join(METRICS)}
            )
        if self.status and self.status not in (*DraftStatus.values, AS_IS):
            raise ReportInputError(gettext("Unknown draft outcome %(status)r.") % {"status": self.status})
        if self.reason and self.reason not in EscalationFlag.Reason.values:
            raise ReportInputError(gettext("Unknown escalation reason %(reason)r.") % {"reason": self.reason})
        if self.answered and self.answered not in ANSWERED_LABELS:
            raise ReportInputError(gettext("Unknown answer group %(group)r.") % {"group": self.answered})
        if self.hour is not None and not 0 <= self.hour <= 23:
            raise ReportInputError(gettext("An hour of day is 0 to 23."))
        if self.score is not None and not 1 <= self.score <= 5:
            raise ReportInputError(gettext("A rating is 1 to 5."))
        if self.bucket:
            if self.metric == "first_response":
                _first_response_bucket(self.bucket)
            else:
                _edit_bucket(self.bucket)


def _at_local(qs: QuerySet[Any], field: str, f: ReportFilters, drill: Drill) -> QuerySet[Any]:
    """`qs` narrowed to the drill's local day and hour of `field` in f.tz."""
    if drill.day is not None:
        qs = qs.annotate(_day=TruncDate(field, tzinfo=f.tz)).filter(_day=drill.day)
    if drill.hour is not None:
        qs = qs.annotate(_hour=ExtractHour(field, tzinfo=f.tz)).filter(_hour=drill.hour)
    return qs


def conversations_behind(f: ReportFilters, drill: Drill) -> QuerySet[Conversation]:
    """Exactly the conversations a number of the report counts (docs/reports.md, "Drill-down"); day and
    hour are local to f.tz."""
    metric = drill.metric
    if metric in ("customer_messages", "replies"):
        senders = (Message.Sender.CUSTOMER,) if metric == "customer_messages" else REPLY_SENDERS
        messages = _at_local(messages_in(f, *senders), "created_at", f, drill)
        return Conversation.objects.filter(pk__in=messages.values("conversation_id"))
    if metric == "drafts":
        return Conversation.objects.filter(pk__in=drafts_behind(f, drill).values("conversation_id"))
    qs = _at_local(conversations_in(f), "first_customer_at", f, drill)
    if metric in CONVERSATION_METRICS:
        return qs.filter(CONVERSATION_METRICS[metric])
    if metric == "taken_over":
        return qs.filter(TAKEN_OVER)
    if metric == "handed_off":
        return qs.filter(HANDED_OFF)
    if metric == "bot_resolved":
        return qs.filter(BOT_RESOLVED)
    if metric == "first_response":
        return qs.filter(_first_response_bucket(drill.bucket) if drill.bucket else CONVERSATION_METRICS["responded"])
    if metric == "reason":
        flags = EscalationFlag.objects.filter(conversation=OuterRef("pk"))
        return qs.filter(Exists(flags.filter(reason=drill.reason) if drill.reason else flags))
    # csat
    ratings = Rating.objects.filter(conversation=OuterRef("pk"))
    if drill.score is not None:
        ratings = ratings.filter(score=drill.score)
    qs = qs.filter(Exists(ratings))
    if drill.answered:
        qs = qs.filter(answered_by=drill.answered)
    return qs


def drafts_behind(f: ReportFilters, drill: Drill) -> QuerySet[Draft]:
    """The drafts in range under `f`; for a drafts drill-down, only those the number counts (outcome,
    edit-size bucket, local day and hour)."""
    drafts = drafts_in(f)
    if drill.metric != "drafts":
        return drafts
    drafts = _at_local(drafts, "created_at", f, drill)
    if drill.status:
        as_is = (DraftStatus.APPROVED, DraftStatus.AUTO_SENT)
        drafts = drafts.filter(status__in=as_is if drill.status == AS_IS else (drill.status,))
    if drill.bucket:
        drafts = drafts.filter(_edit_bucket(drill.bucket))
    return drafts
