"""Report parameters in URLs: reading them (with clear errors) and writing them into drill-down links.

from, to    the first and last local day, YYYY-MM-DD (default: the 30 days ending today)
topic       a topic id, or "none" (no topic)
agent       a user id, or "none" (nobody)
engine      an engine name
metric      what the drill-down lists (metrics.METRICS), refined by day, hour, status, bucket, reason,
            answered and score
tag, q      the conversations list only: those carrying the tag, those whose messages or internal notes
            contain q (docs/notes.md)
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from django.http import QueryDict
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext

from chatdesk.reports.metrics import NO_ONE, Drill, ReportFilters, ReportInputError, local_day_range

DEFAULT_DAYS = 30
MAX_DAYS = 366 * 2
FILTER_KEYS = ("from", "to", "topic", "agent", "engine")
DRILL_KEYS = ("metric", "day", "hour", "status", "bucket", "reason", "answered", "score")
SEARCH_KEYS = ("tag", "q")
MAX_SEARCH_CHARS = 200


def _date(query: QueryDict, key: str, default: dt.date) -> dt.date:
    raw = query.get(key, "").strip()
    if not raw:
        return default
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise ReportInputError(
            gettext("%(key)r must be a date like 2026-11-30, not %(raw)r.") % {"key": key, "raw": raw[:40]}
        ) from None


def _id(query: QueryDict, key: str) -> int | None:
    raw = query.get(key, "").strip()
    if not raw:
        return None
    if raw == "none":
        return NO_ONE
    if not raw.isdigit() or int(raw) == NO_ONE:
        raise ReportInputError(gettext("%(key)r must be an id or 'none', not %(raw)r.") % {"key": key, "raw": raw[:40]})
    return int(raw)


def filters_from(query: QueryDict, tz: ZoneInfo, *, today: dt.date | None = None) -> ReportFilters:
    """The filters a report URL asks for, in the manager's zone `tz`. Raises ReportInputError."""
    today = today or timezone.now().astimezone(tz).date()
    last = _date(query, "to", today)
    first = _date(query, "from", last - dt.timedelta(days=DEFAULT_DAYS - 1))
    if (last - first).days >= MAX_DAYS:
        raise ReportInputError(gettext("A report covers at most %(days)s days.") % {"days": MAX_DAYS})
    start, end = local_day_range(first, last, tz)
    engine = query.get("engine", "").strip()
    if len(engine) > 32:
        raise ReportInputError(gettext("'engine' is an engine's name, at most 32 characters."))
    return ReportFilters(
        start=start, end=end, tz=tz, topic_id=_id(query, "topic"), agent_id=_id(query, "agent"), engine=engine
    )


def drill_from(query: QueryDict) -> Drill:
    """The drill-down a list URL asks for. Raises ReportInputError."""
    hour, score = query.get("hour", "").strip(), query.get("score", "").strip()
    for key, raw in (("hour", hour), ("score", score)):
        if raw and not raw.isdigit():
            raise ReportInputError(gettext("%(key)r must be a number, not %(raw)r.") % {"key": key, "raw": raw[:40]})
    day = query.get("day", "").strip()
    return Drill(
        metric=query.get("metric", "conversations").strip() or "conversations",
        day=_date(query, "day", dt.date.min) if day else None,
        hour=int(hour) if hour else None,
        status=query.get("status", "").strip(),
        bucket=query.get("bucket", "").strip(),
        reason=query.get("reason", "").strip(),
        answered=query.get("answered", "").strip(),
        score=int(score) if score else None,
    )


def search_from(query: QueryDict) -> tuple[str, str]:
    """The tag and the text the conversations list is searched for ("" for none). Raises ReportInputError."""
    tag, text = query.get("tag", "").strip(), query.get("q", "").strip()
    if len(tag) > 40:
        raise ReportInputError(gettext("'tag' is a tag, at most 40 characters."))
    if len(text) > MAX_SEARCH_CHARS:
        raise ReportInputError(gettext("Search for at most %(limit)s characters.") % {"limit": MAX_SEARCH_CHARS})
    return tag, text


def filter_params(f: ReportFilters) -> dict[str, str]:
    """The URL parameters that give back `f` (its zone aside: that is the manager's setting)."""
    params = {"from": f.first_day.isoformat(), "to": f.last_day.isoformat()}
    for key, value in (("topic", f.topic_id), ("agent", f.agent_id)):
        if value is not None:
            params[key] = "none" if value == NO_ONE else str(value)
    if f.engine:
        params["engine"] = f.engine
    return params


def drill_url(f: ReportFilters, metric: str, **refine: Any) -> str:
    """The drill-down list for `metric` under `f`; `refine` sets day, hour, status... or overrides a
    filter (topic, agent, engine; None: "none")."""
    params = filter_params(f)
    params["metric"] = metric
    for key, value in refine.items():
        if key in ("topic", "agent") and value is None:
            params[key] = "none"
        elif value is not None and value != "":
            params[key] = value.isoformat() if isinstance(value, dt.date) else str(value)
    return f"{reverse('reports:conversations')}?{urlencode(params)}"


def query_string(query: QueryDict, *, drop: tuple[str, ...] = ("page",)) -> str:
    """The report parameters of `query`, without `drop`, for links that keep them."""
    kept = {k: query[k] for k in (*FILTER_KEYS, *DRILL_KEYS, *SEARCH_KEYS) if k not in drop and query.get(k)}
    return urlencode(kept)
