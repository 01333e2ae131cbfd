"""The embedded demo's four weeks of history: a manager opening the reports on a fresh demo sees every
kind of number, and the history is written once."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from chatdesk.conversations.demo import HISTORY_DAYS, demo_seed
from chatdesk.conversations.models import Conversation, Draft
from chatdesk.reports.metrics import ReportFilters, local_day_range, report


@pytest.mark.django_db
def test_a_fresh_demo_has_a_month_of_history_for_the_reports() -> None:
    demo_seed()
    written = Conversation.objects.count()
    assert written >= 8 * HISTORY_DAYS
    demo_seed()
    assert Conversation.objects.count() == written  # once only

    utc = ZoneInfo("UTC")
    today = timezone.now().date()
    start, end = local_day_range(today - dt.timedelta(days=HISTORY_DAYS + 1), today, utc)
    found = report(ReportFilters(start=start, end=end, tz=utc))
    headline = found["headline"]
    assert headline["conversations"] == written
    assert headline["replies"] >= headline["conversations"]
    assert 0 < headline["as_is_share"] < 1 and 0 < headline["handoff_rate"] < 1
    assert headline["taken_over"] > 0 and headline["csat_average"] is not None
    counts = found["outcomes"]["counts"]
    for status in (Draft.Status.APPROVED, Draft.Status.EDITED, Draft.Status.REJECTED, Draft.Status.AUTO_SENT):
        assert counts[status] > 0
    assert sum(1 for n in found["reasons"].values() if n) >= 3
    assert all(day["conversations"] for day in found["volume"]["by_day"][2:-1])  # every day of the month has some
    assert not Conversation.objects.exclude(status=Conversation.Status.CLOSED).exists()  # none waits in the queue
