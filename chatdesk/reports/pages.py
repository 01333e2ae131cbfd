"""What the report page shows: the metrics turned into labelled rows, cells and chart series, each
number with the drill-down link to the conversations behind it."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import User
from django.utils import formats
from django.utils.functional import Promise
from django.utils.translation import gettext, gettext_lazy

from chatdesk.conversations.models import Draft, EscalationFlag
from chatdesk.knowledge.models import Topic
from chatdesk.reports import metrics
from chatdesk.reports.metrics import (
    ANSWERED_LABELS,
    AS_IS,
    EDIT_BUCKETS,
    FINISHED_STATUSES,
    FIRST_RESPONSE_BUCKETS,
    Drill,
    ReportFilters,
)
from chatdesk.reports.params import drill_url

STATUS_LABELS = dict(Draft.Status.choices)
REASON_LABELS = dict(EscalationFlag.Reason.choices)


@dataclass
class Cell:
    """A number as shown (`text`) with the list of conversations behind it (`url`, if any)."""

    text: str
    url: str = ""
    value: float | int | None = None


@dataclass
class Card:
    label: str | Promise
    value: Cell
    previous: str
    change: str
    direction: str  # "up", "down" or "same": the arrow beside the change, not a judgement


@dataclass
class Table:
    caption: str
    columns: list[str]
    rows: list[tuple[str, list[Cell]]] = field(default_factory=list)


def localized(value: float | int, digits: int = 0) -> str:
    """`value` rounded to `digits` decimals as Python rounds, written with the page's language's decimal
    and thousands separators (1,234.5 in English; chatdesk/formats)."""
    return formats.number_format(Decimal(f"{value:.{digits}f}"), digits, force_grouping=True)


def fmt_int(value: float | int | None) -> str:
    return "—" if value is None else localized(value)


def fmt_share(value: float | None) -> str:
    return "—" if value is None else f"{localized(value * 100, 1)}%"


def fmt_number(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else localized(value, digits)


def fmt_seconds(value: float | None) -> str:
    """A duration in words: 45 s, 3.5 min, 2.1 h, 1.5 d."""
    if value is None:
        return "—"
    if value < 60:
        return gettext("%(n)s s") % {"n": localized(value)}
    if value < 3600:
        return gettext("%(n)s min") % {"n": localized(value / 60, 1)}
    if value < 86400:
        return gettext("%(n)s h") % {"n": localized(value / 3600, 1)}
    return gettext("%(n)s d") % {"n": localized(value / 86400, 1)}


HEADLINES: tuple[tuple[str, str | Promise, Any, str, dict[str, str]], ...] = (
    # key, label, formatter, drill-down metric, its refinements
    ("conversations", gettext_lazy("Conversations"), fmt_int, "conversations", {}),
    ("customer_messages", gettext_lazy("Customer messages"), fmt_int, "customer_messages", {}),
    ("replies", gettext_lazy("Replies sent"), fmt_int, "replies", {}),
    ("as_is_share", gettext_lazy("Drafts sent as is"), fmt_share, "drafts", {"status": AS_IS}),
    ("taken_over", gettext_lazy("Conversations taken over"), fmt_int, "taken_over", {}),
    ("bot_resolved_rate", gettext_lazy("Resolved by drafts alone"), fmt_share, "bot_resolved", {}),
    ("handoff_rate", gettext_lazy("Handed to a person"), fmt_share, "handed_off", {}),
    ("first_response_median", gettext_lazy("First response (median)"), fmt_seconds, "first_response", {}),
    ("csat_average", gettext_lazy("CSAT (1–5)"), lambda v: fmt_number(v, 2), "csat", {}),
    ("tokens_per_draft", gettext_lazy("Tokens per draft"), lambda v: fmt_number(v, 0), "drafts", {}),
)


def _change(now: float | int | None, before: float | int | None, formatter: Any) -> tuple[str, str]:
    if now is None or before is None:
        return gettext("no earlier figure"), "same"
    if now == before:
        return gettext("no change"), "same"
    delta = now - before
    sign = "+" if delta > 0 else "−"
    if formatter is fmt_share:
        text = gettext("%(sign)s%(n)s points") % {"sign": sign, "n": localized(abs(delta) * 100, 1)}
    elif before:
        text = f"{sign}{localized(abs(delta) / abs(before) * 100)}%"
    else:
        text = f"{sign}{formatter(abs(delta))}"
    return text, "up" if delta > 0 else "down"


def headline_cards(f: ReportFilters, now: dict[str, Any], before: dict[str, Any]) -> list[Card]:
    cards = []
    for key, label, formatter, metric, refine in HEADLINES:
        change, direction = _change(now[key], before[key], formatter)
        cards.append(
            Card(
                label=label,
                value=Cell(formatter(now[key]), drill_url(f, metric, **refine), now[key]),
                previous=formatter(before[key]),
                change=change,
                direction=direction,
            )
        )
    return cards


def _names(topic_ids: set[Any], agent_ids: set[Any]) -> tuple[dict[Any, str], dict[Any, str]]:
    topics: dict[Any, str] = {t.pk: t.name for t in Topic.objects.filter(pk__in=[i for i in topic_ids if i])}
    agents: dict[Any, str] = {
        u.pk: u.get_full_name() or u.get_username() for u in User.objects.filter(pk__in=[i for i in agent_ids if i])
    }
    topics[None] = gettext("(no topic)")
    agents[None] = gettext("(nobody decided)")
    return topics, agents


def _outcome_table(
    f: ReportFilters, caption: str, rows: dict[Any, dict[str, int]], names: dict[Any, str], key: str
) -> Table:
    table = Table(caption, [str(STATUS_LABELS[s]) for s in FINISHED_STATUSES] + [gettext("Drafts")])
    ordered = sorted(rows.items(), key=lambda item: -sum(item[1].values()))
    for group, counts in ordered:
        refine: dict[str, Any] = {key: group} if key != "engine" else {"engine": group}
        linkable = key != "engine" or group  # a blank engine name cannot be asked for
        cells = [
            Cell(fmt_int(counts[s]), drill_url(f, "drafts", status=s, **refine) if linkable and counts[s] else "")
            for s in FINISHED_STATUSES
        ]
        total = sum(counts.values())
        cells.append(Cell(fmt_int(total), drill_url(f, "drafts", **refine) if linkable else ""))
        table.rows.append((names.get(group, str(group) or gettext("(unnamed engine)")), cells))
    return table


def _edit_table(
    f: ReportFilters, caption: str, rows: dict[Any, dict[str, Any]], names: dict[Any, str], key: str
) -> Table:
    table = Table(
        caption,
        [gettext("Edited drafts"), gettext("Median"), gettext("p90")] + [str(label) for _, label, _, _ in EDIT_BUCKETS],
    )
    for group, row in sorted(rows.items(), key=lambda item: -item[1]["n"]):
        refine = {key: group}
        cells = [
            Cell(fmt_int(row["n"]), drill_url(f, "drafts", status=Draft.Status.EDITED, **refine)),
            Cell(fmt_share(row.get("median"))),
            Cell(fmt_share(row.get("p90"))),
        ]
        cells += [
            Cell(fmt_int(row["buckets"][b]), drill_url(f, "drafts", bucket=b, **refine) if row["buckets"][b] else "")
            for b, _, _, _ in EDIT_BUCKETS
        ]
        table.rows.append((names.get(group, str(group)), cells))
    return table


def _series(
    labels: list[str], datasets: list[dict[str, Any]], title: str, kind: str = "bar", **options: Any
) -> dict[str, Any]:
    """A chart for static/js/reports.js: labels, datasets of {label, data, links}, and how to draw it;
    `rows` holds the same numbers per label, [(value, link) per dataset], for its data table."""
    rows = [(label, [(d["data"][i], d["links"][i]) for d in datasets]) for i, label in enumerate(labels)]
    return {"type": kind, "title": title, "labels": labels, "datasets": datasets, "rows": rows, **options}


def page(f: ReportFilters) -> dict[str, Any]:
    """Everything /reports/ shows for `f`: cards, charts (with data tables) and tables, each number
    linked to its conversations."""
    data = metrics.report(f)
    outcomes, edit, volume = data["outcomes"], data["edit_size"], data["volume"]
    topic_ids = set(outcomes["by_topic"]) | set(edit["by_topic"])
    agent_ids = set(outcomes["by_agent"]) | set(edit["by_agent"])
    topics, agents = _names(topic_ids, agent_ids)
    days = [row["day"] for row in volume["by_day"]]
    day_labels = [d.isoformat() for d in days]

    volume_chart = _series(
        day_labels,
        [
            {
                "label": label,
                "data": [row[key] for row in volume["by_day"]],
                "links": [drill_url(f, metric, day=d) for d in days],
            }
            for key, label, metric in (
                ("conversations", gettext("Conversations started"), "conversations"),
                ("customer_messages", gettext("Customer messages"), "customer_messages"),
                ("replies", gettext("Replies sent"), "replies"),
            )
        ],
        gettext("Volume per day"),
    )
    hour_chart = _series(
        [f"{h:02d}:00" for h in range(24)],
        [
            {
                "label": gettext("Conversations started"),
                "data": [row["conversations"] for row in volume["by_hour"]],
                "links": [drill_url(f, "conversations", hour=h) for h in range(24)],
            }
        ],
        gettext("Conversations by hour of day"),
    )
    outcome_day_chart = _series(
        day_labels,
        [
            {
                "label": STATUS_LABELS[s],
                "data": [row[s] for row in outcomes["by_day"]],
                "links": [drill_url(f, "drafts", status=s, day=d) for d in days],
            }
            for s in FINISHED_STATUSES
        ],
        gettext("Draft outcomes per day"),
        stacked=True,
    )
    outcome_chart = _series(
        [str(STATUS_LABELS[s]) for s in FINISHED_STATUSES],
        [
            {
                "label": gettext("Drafts"),
                "data": [outcomes["counts"][s] for s in FINISHED_STATUSES],
                "links": [drill_url(f, "drafts", status=s) for s in FINISHED_STATUSES],
            }
        ],
        gettext("Draft outcomes"),
        horizontal=True,
    )
    reasons = sorted(data["reasons"].items(), key=lambda item: -item[1])
    reason_chart = _series(
        [str(REASON_LABELS[r]) for r, _ in reasons],
        [
            {
                "label": gettext("Conversations"),
                "data": [n for _, n in reasons],
                "links": [drill_url(f, "reason", reason=r) for r, _ in reasons],
            }
        ],
        gettext("Why conversations were handed to a person"),
        horizontal=True,
    )
    counts = data["counts"]
    frt_chart = _series(
        [str(label) for _, label, _ in FIRST_RESPONSE_BUCKETS],
        [
            {
                "label": gettext("Conversations"),
                "data": [counts[f"frt_{key}"] for key, _, _ in FIRST_RESPONSE_BUCKETS],
                "links": [drill_url(f, "first_response", bucket=key) for key, _, _ in FIRST_RESPONSE_BUCKETS],
            }
        ],
        gettext("Time to first response"),
    )
    charts = {
        "volume": volume_chart,
        "hours": hour_chart,
        "outcomes_per_day": outcome_day_chart,
        "outcomes": outcome_chart,
        "reasons": reason_chart,
        "first_response": frt_chart,
    }

    times = data["times"]
    time_table = Table(
        gettext("Times (median and 90th percentile)"), [gettext("Median"), gettext("p90"), gettext("Counted")]
    )
    time_rows: tuple[tuple[str, str, str, dict[str, Any]], ...] = (
        ("time_to_draft", gettext("Time to draft (customer message → draft ready)"), "drafts", {}),
        ("review", gettext("Review time (draft ready → agent's decision)"), "drafts", {}),
        ("first_response", gettext("First response (first customer message → first reply)"), "first_response", {}),
        ("resolution", gettext("Resolution (first customer message → closed)"), "closed", {}),
    )
    for key, label, metric, refine in time_rows:
        value = times[key]
        time_table.rows.append(
            (
                label,
                [
                    Cell(fmt_seconds(value["median"])),
                    Cell(fmt_seconds(value["p90"])),
                    Cell(gettext("list"), drill_url(f, metric, **refine)),
                ],
            )
        )

    csat = data["csat"]
    csat_table = Table(
        gettext("CSAT by who answered"), [gettext("Average"), gettext("Ratings")] + [f"{s} ★" for s in range(1, 6)]
    )
    for key, label in (*((k, str(v)) for k, v in ANSWERED_LABELS.items()), ("", gettext("All"))):
        group = csat["by_answered"][key] if key else csat["overall"]
        refine = {"answered": key} if key else {}
        cells = [Cell(fmt_number(group["average"], 2)), Cell(fmt_int(group["n"]), drill_url(f, "csat", **refine))]
        cells += [
            Cell(fmt_int(group["scores"][s]), drill_url(f, "csat", score=s, **refine) if group["scores"][s] else "")
            for s in range(1, 6)
        ]
        csat_table.rows.append((label, cells))

    cost_table = Table(
        gettext("Cost per engine"),
        [
            gettext("Drafts"),
            gettext("Tokens generated"),
            gettext("Tokens read"),
            gettext("Tokens per draft"),
            gettext("Drafting seconds"),
            gettext("Seconds per draft"),
        ],
    )
    for engine, row in sorted(data["cost"]["by_engine"].items()):
        link = drill_url(f, "drafts", engine=engine) if engine else ""
        cost_table.rows.append(
            (
                engine or gettext("(unnamed engine)"),
                [
                    Cell(fmt_int(row["drafts"]), link),
                    Cell(fmt_int(row["tokens"])),
                    Cell(fmt_int(row["prompt_tokens"])),
                    Cell(fmt_number(row["tokens_per_draft"])),
                    Cell(fmt_number(row["draft_seconds"])),
                    Cell(fmt_number(row["seconds_per_draft"], 2)),
                ],
            )
        )
    engines = sorted(data["cost"]["by_engine"])
    cost_day_table = Table(
        gettext("Cost per day (tokens generated / drafting seconds)"),
        [e or gettext("(unnamed engine)") for e in engines],
    )
    for row in data["cost"]["by_day"]:
        day = row["day"]
        cells = []
        for engine in engines:
            spent = row["engines"].get(engine)
            text = f"{fmt_int(spent['tokens'])} / {fmt_number(spent['draft_seconds'])} s" if spent else "—"
            cells.append(Cell(text, drill_url(f, "drafts", engine=engine, day=day) if spent and engine else ""))
        cost_day_table.rows.append((day.isoformat(), cells))

    handoff_table = Table(gettext("Handoff"), [gettext("Conversations"), gettext("Rate"), gettext("Of")])
    total, closed = counts["total"], counts["closed"]
    for key, label, metric, whole, whole_label in (
        ("bot_resolved", gettext("Resolved by drafts alone (no person wrote)"), "bot_resolved", closed, "closed"),
        ("handed_off", gettext("Handed to a person (escalated or taken over)"), "handed_off", total, "all"),
        ("taken_over", gettext("Taken over by an agent"), "taken_over", total, "all"),
        ("reopened", gettext("Reopened after closing"), "reopened", total, "all"),
        ("open", gettext("Still open"), "open", total, "all"),
        ("unanswered", gettext("No reply yet"), "unanswered", total, "all"),
    ):
        handoff_table.rows.append(
            (
                label,
                [
                    Cell(fmt_int(counts[key]), drill_url(f, metric)),
                    Cell(fmt_share(counts[key] / whole if whole else None)),
                    Cell(
                        (gettext("%(count)s closed") if whole_label == "closed" else gettext("%(count)s all"))
                        % {"count": fmt_int(whole)},
                        drill_url(f, "closed" if whole_label == "closed" else "conversations"),
                    ),
                ],
            )
        )

    return {
        "cards": headline_cards(f, data["headline"], data["previous"]),
        "charts": charts,
        "tables": {
            "handoff": handoff_table,
            "times": time_table,
            "outcomes_by_topic": _outcome_table(
                f, gettext("Draft outcomes per topic"), outcomes["by_topic"], topics, "topic"
            ),
            "outcomes_by_agent": _outcome_table(
                f, gettext("Draft outcomes per agent (who decided)"), outcomes["by_agent"], agents, "agent"
            ),
            "outcomes_by_engine": _outcome_table(
                f, gettext("Draft outcomes per engine"), outcomes["by_engine"], {}, "engine"
            ),
            "edit_by_topic": _edit_table(f, gettext("Edit size per topic"), edit["by_topic"], topics, "topic"),
            "edit_by_agent": _edit_table(f, gettext("Edit size per agent"), edit["by_agent"], agents, "agent"),
            "csat": csat_table,
            "cost": cost_table,
            "cost_by_day": cost_day_table,
        },
        "edit_overall": edit["overall"],
        "unfinished_drafts": outcomes["unfinished"],
        "drafts_link": drill_url(f, "drafts"),
        "edit_link": drill_url(f, "drafts", status=Draft.Status.EDITED),
    }


def period_label(f: ReportFilters) -> str:
    first, last = f.first_day, f.last_day
    if first == last:
        return first.isoformat()
    return gettext("%(first)s to %(last)s") % {"first": first.isoformat(), "last": last.isoformat()}


def previous_label(f: ReportFilters) -> str:
    return period_label(f.previous())


METRIC_LABELS = {
    "conversations": gettext_lazy("Conversations started"),
    "closed": gettext_lazy("Closed conversations"),
    "open": gettext_lazy("Conversations still open"),
    "reopened": gettext_lazy("Conversations reopened after closing"),
    "responded": gettext_lazy("Conversations with a first response"),
    "unanswered": gettext_lazy("Conversations with no reply yet"),
    "taken_over": gettext_lazy("Conversations taken over by an agent"),
    "handed_off": gettext_lazy("Conversations handed to a person"),
    "bot_resolved": gettext_lazy("Closed conversations resolved by drafts alone"),
    "first_response": gettext_lazy("Conversations by time to first response"),
    "reason": gettext_lazy("Conversations flagged for a person"),
    "csat": gettext_lazy("Rated conversations"),
    "customer_messages": gettext_lazy("Conversations with customer messages"),
    "replies": gettext_lazy("Conversations with replies sent"),
    "drafts": gettext_lazy("Conversations with drafts"),
}


def drill_description(f: ReportFilters, drill: Drill) -> list[str]:
    """The drill-down's filters in words, for the list's heading."""
    words = [
        str(METRIC_LABELS[drill.metric]),
        gettext("in %(period)s (%(zone)s)") % {"period": period_label(f), "zone": f.tz},
    ]
    if f.topic_id is not None:
        topic = gettext("none") if not f.topic_id else str(Topic.objects.filter(pk=f.topic_id).first() or f.topic_id)
        words.append(gettext("topic: %(topic)s") % {"topic": topic})
    if f.agent_id is not None:
        agent = User.objects.filter(pk=f.agent_id).first() if f.agent_id else None
        name = (agent.get_full_name() or agent.get_username()) if agent else gettext("nobody")
        words.append(gettext("agent: %(name)s") % {"name": name})
    if f.engine:
        words.append(gettext("engine: %(engine)s") % {"engine": f.engine})
    if drill.day:
        words.append(gettext("on %(day)s") % {"day": drill.day.isoformat()})
    if drill.hour is not None:
        words.append(gettext("at %(hours)s") % {"hours": f"{drill.hour:02d}:00–{drill.hour:02d}:59"})
    if drill.status:
        outcome = (
            gettext("sent as is (approved or autopilot)") if drill.status == AS_IS else STATUS_LABELS[drill.status]
        )
        words.append(gettext("outcome: %(outcome)s") % {"outcome": outcome})
    if drill.bucket:
        buckets = {k: label for k, label, _ in FIRST_RESPONSE_BUCKETS} | {k: label for k, label, _, _ in EDIT_BUCKETS}
        wording = (
            gettext("first response %(bucket)s")
            if drill.metric == "first_response"
            else gettext("edit size %(bucket)s")
        )
        words.append(wording % {"bucket": buckets[drill.bucket]})
    if drill.reason:
        words.append(gettext("reason: %(reason)s") % {"reason": REASON_LABELS[drill.reason]})
    if drill.answered:
        words.append(gettext("answered by: %(group)s") % {"group": ANSWERED_LABELS[drill.answered]})
    if drill.score is not None:
        words.append(gettext("rated %(score)s") % {"score": drill.score})
    return words
