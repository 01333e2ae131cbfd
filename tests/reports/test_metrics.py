"""Every metric of the handoff report against numbers worked out by hand on the history of conftest.py.

Runs on PostgreSQL (tests/run's default) and on SQLite (TEST_DATABASE_URL=sqlite:///...; .ci/run runs
this folder both ways): both must give the same answers, percentiles included."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.http import QueryDict
from django.test.utils import CaptureQueriesContext

from chatdesk.reports import metrics
from chatdesk.reports.metrics import Drill, ReportFilters, ReportInputError, conversations_behind, nearest_rank
from chatdesk.reports.params import filters_from
from tests.reports.conftest import NEW_YORK, RANGE, History

pytestmark = pytest.mark.django_db

FINISHED = [str(s) for s in metrics.FINISHED_STATUSES]


def report_filters(**extra: str) -> ReportFilters:
    query = QueryDict(mutable=True)
    query.update({**RANGE, **extra})
    return filters_from(query, NEW_YORK)


def behind(f: ReportFilters, **drill: object) -> set[int]:
    return set(conversations_behind(f, Drill(**drill)).values_list("pk", flat=True))  # type: ignore[arg-type]


def test_the_range_is_local_days_in_the_managers_time_zone() -> None:
    f = report_filters()
    assert f.start == dt.datetime(2026, 11, 10, 5, tzinfo=dt.UTC)
    assert f.end == dt.datetime(2026, 11, 12, 5, tzinfo=dt.UTC)
    assert f.previous().start == dt.datetime(2026, 11, 8, 5, tzinfo=dt.UTC)
    assert f.days() == [dt.date(2026, 11, 10), dt.date(2026, 11, 11)]


def test_nearest_rank_is_ceil_of_p_n_over_100_in_integers() -> None:
    assert [nearest_rank(50, n) for n in (1, 2, 3, 4, 5)] == [1, 1, 2, 2, 3]
    assert [nearest_rank(90, n) for n in (1, 3, 5, 10, 70)] == [1, 3, 5, 9, 63]  # 0.9 * 70 is 63.000...01 in floats


def test_conversation_counts_and_rates(history: History) -> None:
    counts = metrics.conversation_counts(report_filters())
    assert counts == {
        "total": 6,  # c1 c2 c3 c4 c5 c8: c3 and c4 by local time though UTC says otherwise; c6 is Nov 9 locally
        "closed": 4,
        "open": 2,
        "reopened": 1,
        "taken_over": 2,
        "handed_off": 3,
        "bot_resolved": 2,  # c1 (approved) and c5 (auto-sent, then a draft "edited" to its own text)
        "responded": 5,
        "unanswered": 1,
        "frt_lt1m": 2,
        "frt_1-5m": 2,
        "frt_5-15m": 1,  # c3: exactly 5 minutes
        "frt_15-60m": 0,
        "frt_1-4h": 0,
        "frt_gt4h": 0,
    }


def test_headline_and_the_previous_period(history: History) -> None:
    f = report_filters()
    assert metrics.headline(f) == {
        "conversations": 6,
        "customer_messages": 7,
        "replies": 6,
        "as_is_share": 2 / 7,
        "taken_over": 2,
        "bot_resolved_rate": 2 / 4,
        "handoff_rate": 3 / 6,
        "first_response_median": 120.0,
        "csat_average": 3.0,
        "tokens_per_draft": 240 / 7,
    }
    assert metrics.headline(f.previous()) == {
        "conversations": 2,
        "customer_messages": 2,
        "replies": 1,
        "as_is_share": 1 / 2,
        "taken_over": 0,
        "bot_resolved_rate": 1.0,
        "handoff_rate": 1 / 2,
        "first_response_median": 60.0,
        "csat_average": None,
        "tokens_per_draft": 0.0,
    }


def test_volume_by_local_day_and_hour(history: History) -> None:
    volume = metrics.volume(report_filters())
    assert volume["totals"] == {"conversations": 6, "customer_messages": 7, "replies": 6}
    assert volume["by_day"] == [
        {"day": dt.date(2026, 11, 10), "conversations": 3, "customer_messages": 3, "replies": 3},
        {"day": dt.date(2026, 11, 11), "conversations": 3, "customer_messages": 4, "replies": 3},
    ]
    started = {row["hour"]: row["conversations"] for row in volume["by_hour"] if row["conversations"]}
    assert started == {7: 1, 9: 1, 10: 1, 15: 1, 22: 1, 23: 1}
    customers = {row["hour"]: row["customer_messages"] for row in volume["by_hour"] if row["customer_messages"]}
    assert customers == {7: 1, 9: 1, 10: 1, 11: 1, 15: 1, 22: 1, 23: 1}


def test_draft_outcomes_overall_and_per_topic_agent_engine_and_day(history: History) -> None:
    outcomes = metrics.draft_outcomes(report_filters())
    expected = {"approved": 1, "edited": 2, "rejected": 0, "auto_sent": 1, "superseded": 1, "taken_over": 1}
    expected |= {"discarded": 0, "failed": 1, "pending": 0, "generating": 0, "ready": 0}
    assert outcomes["counts"] == expected
    assert (outcomes["finished"], outcomes["unfinished"]) == (7, 0)
    assert outcomes["shares"]["edited"] == 2 / 7

    def nonzero(row: dict[str, int]) -> dict[str, int]:
        return {k: v for k, v in row.items() if v}

    by_topic = {k: nonzero(v) for k, v in outcomes["by_topic"].items()}
    assert by_topic == {
        history.shipping.pk: {"approved": 1, "edited": 1, "failed": 1},
        history.returns.pk: {"auto_sent": 1, "edited": 1, "superseded": 1, "taken_over": 1},
    }
    by_agent = {k: nonzero(v) for k, v in outcomes["by_agent"].items()}
    assert by_agent == {
        history.alice.pk: {"approved": 1},
        history.bob.pk: {"edited": 2},
        None: {"failed": 1, "auto_sent": 1, "superseded": 1, "taken_over": 1},
    }
    by_engine = {k: nonzero(v) for k, v in outcomes["by_engine"].items()}
    assert by_engine == {
        "retrieval": {"approved": 1, "failed": 1, "edited": 1, "auto_sent": 1},
        "transformers": {"edited": 1, "superseded": 1, "taken_over": 1},
    }
    assert [nonzero({s: row[s] for s in FINISHED}) for row in outcomes["by_day"]] == [
        {"approved": 1, "failed": 1, "edited": 1},
        {"auto_sent": 1, "edited": 1, "superseded": 1, "taken_over": 1},
    ]


def test_edit_size_counts_a_draft_edited_to_identical_text_as_zero(history: History) -> None:
    edit = metrics.edit_size(report_filters())
    assert edit["overall"] == {
        "n": 2,
        "chars_changed": 12,
        "median": 0.0,  # sorted 0.0, 0.4: rank ceil(50% of 2) = 1
        "p90": 0.4,  # rank ceil(90% of 2) = 2
        "buckets": {"0": 1, "0-10": 0, "10-25": 0, "25-50": 1, "50-100": 0},
    }
    assert {k: (v["n"], v["median"], v["p90"]) for k, v in edit["by_topic"].items()} == {
        history.shipping.pk: (1, 0.4, 0.4),
        history.returns.pk: (1, 0.0, 0.0),
    }
    assert {k: (v["n"], v["median"], v["p90"]) for k, v in edit["by_agent"].items()} == {history.bob.pk: (2, 0.0, 0.4)}


def test_escalation_reasons_count_conversations_per_reason(history: History) -> None:
    reasons = {k: v for k, v in metrics.escalation_reasons(report_filters()).items() if v}
    assert reasons == {"low_confidence": 1, "customer_request": 2, "negative_sentiment": 1}  # c6's is last period


def test_times_median_and_p90(history: History) -> None:
    assert metrics.times(report_filters()) == {
        "time_to_draft": {"median": 4.0, "p90": 6.0},  # 2 3 4 5 6
        "review": {"median": 30.0, "p90": 90.0},  # 20 30 90
        "first_response": {"median": 120.0, "p90": 300.0},  # 5 40 120 240 300
        "resolution": {"median": 1800.0, "p90": 10800.0},  # closed only: 600 1800 3600 10800
    }


def test_csat_by_who_answered(history: History) -> None:
    csat = metrics.csat(report_filters())
    assert csat["overall"]["n"] == 5 and csat["overall"]["average"] == 3.0
    assert csat["overall"]["scores"] == {1: 1, 2: 1, 3: 1, 4: 1, 5: 1}
    groups = {k: (v["n"], v["average"]) for k, v in csat["by_answered"].items()}
    assert groups == {"as_is": (3, 11 / 3), "edited": (1, 3.0), "person": (1, 1.0), "none": (0, None)}


def test_cost_per_engine_and_day(history: History) -> None:
    cost = metrics.cost(report_filters())
    assert cost["by_engine"] == {
        "retrieval": {
            "drafts": 4,
            "tokens": 120,
            "prompt_tokens": 500,
            "draft_seconds": 12.0,
            "tokens_per_draft": 30.0,
            "prompt_tokens_per_draft": 125.0,
            "seconds_per_draft": 4.0,
        },
        "transformers": {
            "drafts": 3,
            "tokens": 120,
            "prompt_tokens": 250,
            "draft_seconds": 8.0,
            "tokens_per_draft": 40.0,
            "prompt_tokens_per_draft": 250 / 3,
            "seconds_per_draft": 4.0,
        },
    }
    assert cost["by_day"] == [
        {"day": dt.date(2026, 11, 10), "engines": {"retrieval": {"drafts": 3, "tokens": 120, "draft_seconds": 10.0}}},
        {
            "day": dt.date(2026, 11, 11),
            "engines": {
                "retrieval": {"drafts": 1, "tokens": 0, "draft_seconds": 2.0},
                "transformers": {"drafts": 3, "tokens": 120, "draft_seconds": 8.0},
            },
        },
    ]


def test_filters_by_topic_agent_and_engine(history: History) -> None:
    assert metrics.conversation_counts(report_filters(topic=str(history.shipping.pk)))["total"] == 2
    assert metrics.conversation_counts(report_filters(topic="none"))["total"] == 2  # c3, c4
    assert behind(report_filters(agent=str(history.alice.pk))) == history.ids("c1", "c3")
    assert behind(report_filters(agent="none")) == history.ids("c4")
    assert behind(report_filters(engine="transformers")) == history.ids("c5", "c8")
    outcomes = metrics.draft_outcomes(report_filters(agent=str(history.bob.pk)))
    assert outcomes["finished"] == 2 and outcomes["counts"]["edited"] == 2
    assert metrics.draft_outcomes(report_filters(agent="none"))["finished"] == 4


def test_each_number_drills_down_to_exactly_its_conversations(history: History) -> None:
    f = report_filters()
    assert behind(f) == history.ids("c1", "c2", "c3", "c4", "c5", "c8")
    assert behind(f, day=dt.date(2026, 11, 10)) == history.ids("c1", "c2", "c3")  # c3 is 04:30Z on the 11th
    assert behind(f, hour=23) == history.ids("c3")
    assert behind(f, metric="customer_messages", day=dt.date(2026, 11, 11)) == history.ids("c4", "c5", "c8")
    assert behind(f, metric="replies", day=dt.date(2026, 11, 10)) == history.ids("c1", "c2", "c3")
    assert behind(f, metric="drafts") == history.ids("c1", "c2", "c5", "c8")
    assert behind(f, metric="drafts", status="edited") == history.ids("c2", "c5")
    assert behind(f, metric="drafts", status="as_is") == history.ids("c1", "c5")
    assert behind(f, metric="drafts", status="failed", day=dt.date(2026, 11, 10)) == history.ids("c2")
    assert behind(f, metric="drafts", bucket="0") == history.ids("c5")
    assert behind(f, metric="drafts", bucket="25-50") == history.ids("c2")
    assert behind(f, metric="taken_over") == history.ids("c3", "c8")
    assert behind(f, metric="handed_off") == history.ids("c2", "c3", "c8")
    assert behind(f, metric="bot_resolved") == history.ids("c1", "c5")
    assert behind(f, metric="closed") == history.ids("c1", "c2", "c5", "c8")
    assert behind(f, metric="open") == history.ids("c3", "c4")
    assert behind(f, metric="reopened") == history.ids("c5")
    assert behind(f, metric="unanswered") == history.ids("c4")
    assert behind(f, metric="first_response") == history.ids("c1", "c2", "c3", "c5", "c8")
    assert behind(f, metric="first_response", bucket="5-15m") == history.ids("c3")
    assert behind(f, metric="reason", reason="customer_request") == history.ids("c3", "c8")
    assert behind(f, metric="csat") == history.ids("c1", "c2", "c5", "c8")
    assert behind(f, metric="csat", answered="as_is") == history.ids("c1", "c5")
    assert behind(f, metric="csat", score=1) == history.ids("c8")
    assert behind(f, metric="csat", answered="as_is", score=2) == history.ids("c5")
    assert behind(f.previous()) == history.ids("c6", "c7")


def test_bad_drill_downs_say_what_is_wrong() -> None:
    for bad, words in (
        ({"metric": "nope"}, "Unknown metric"),
        ({"metric": "drafts", "status": "nope"}, "Unknown draft outcome"),
        ({"metric": "drafts", "bucket": "7"}, "Unknown edit-size bucket"),
        ({"metric": "first_response", "bucket": "7"}, "Unknown first-response bucket"),
        ({"metric": "reason", "reason": "nope"}, "Unknown escalation reason"),
        ({"hour": 24}, "0 to 23"),
    ):
        with pytest.raises(ReportInputError, match=words):
            Drill(**bad)  # type: ignore[arg-type]


def test_the_report_runs_the_same_number_of_queries_for_any_range(history: History) -> None:
    def queries(**extra: str) -> int:
        with CaptureQueriesContext(connection) as captured:
            metrics.report(report_filters(**extra))
        return len(captured)

    assert queries() == queries(**{"from": "2026-08-13"}) == queries(**{"from": "2025-11-12"})
