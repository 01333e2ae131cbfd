"""The report pages over HTTP: who may open them, what a manager sees and where each number leads, the
CSV exports and the manager's time zone."""

from __future__ import annotations

import csv
import io
import json
import re
from html import unescape
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from chatdesk.accounts.models import Profile
from chatdesk.conversations.models import Conversation
from chatdesk.reports import export
from tests.reports.conftest import RANGE, History

pytestmark = pytest.mark.django_db

REPORT_URLS = (
    "/reports/",
    "/reports/conversations/",
    "/reports/export/conversations.csv",
    "/reports/export/drafts.csv",
)


def signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def drill_ids(client: Client, url: str) -> set[str]:
    """The conversations a drill-down list shows, every page."""
    found: set[str] = set()
    page = 1
    while True:
        body = client.get(f"{url}&page={page}").content.decode()
        found |= set(re.findall(r'data-testid="drill-row" data-conversation="([0-9a-f-]+)"', body))
        if 'rel="next"' not in body:
            return found
        page += 1


def public_ids(history: History, *names: str) -> set[str]:
    return {str(history.c[n].public_id) for n in names}


def rows(response: Any) -> list[dict[str, str]]:
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


@pytest.mark.parametrize("url", [*REPORT_URLS, "/reports/conversations/00000000-0000-0000-0000-000000000000/"])
def test_agents_are_refused_and_anonymous_visitors_sent_to_sign_in(url: str, agent: User) -> None:
    assert signed_in(agent).get(url).status_code == 403
    response = Client().get(url)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_the_time_zone_form_is_for_managers_only(agent: User) -> None:
    assert signed_in(agent).post("/reports/time-zone/", {"time_zone": "UTC"}).status_code == 403
    assert Client().post("/reports/time-zone/", {"time_zone": "UTC"}).status_code == 302
    assert not Profile.objects.exists()


def test_a_manager_sees_headline_numbers_with_the_change_and_links_to_the_conversations(history: History) -> None:
    client = signed_in(history.manager)
    page = client.get("/reports/", RANGE).content.decode()
    assert (
        "2026-11-10 to 2026-11-11" in page
        and "America/New_York" in page
        and "compared with 2026-11-08 to 2026-11-09" in page
    )
    cards = re.findall(
        r'<span class="stat-label">([^<]+)</span>\s*<a class="stat-value" href="([^"]+)"[^>]*>([^<]+)</a>', page
    )
    shown = {label: (unescape(href), value) for label, href, value in cards}
    assert shown["Conversations"][1] == "6"
    assert shown["Customer messages"][1] == "7"
    assert shown["Drafts sent as is"][1] == "28.6%"
    assert shown["Handed to a person"][1] == "50.0%"
    assert shown["First response (median)"][1] == "2.0 min"
    assert shown["CSAT (1–5)"][1] == "3.00"
    assert "+200%" in page  # 6 conversations against 2
    assert drill_ids(client, shown["Conversations"][0]) == public_ids(history, "c1", "c2", "c3", "c4", "c5", "c8")
    assert drill_ids(client, shown["Resolved by drafts alone"][0]) == public_ids(history, "c1", "c5")
    assert drill_ids(client, shown["Conversations taken over"][0]) == public_ids(history, "c3", "c8")


def test_charts_get_their_numbers_and_links_by_json_script_and_have_data_tables(history: History) -> None:
    client = signed_in(history.manager)
    page = client.get("/reports/", RANGE).content.decode()
    found = re.search(r'<script id="report-charts" type="application/json">(.*?)</script>', page, re.S)
    assert found
    charts = json.loads(found.group(1))
    assert set(charts) == {"volume", "hours", "outcomes_per_day", "outcomes", "reasons", "first_response"}
    assert "<script>" not in page  # nothing inline: the CSP forbids it
    assert 'src="/static/vendor/chartjs/4.4.9/chart.umd.min.js"' in page
    reasons = charts["reasons"]
    index = reasons["labels"].index("Customer asked for a person")
    assert reasons["datasets"][0]["data"][index] == 2
    assert drill_ids(client, reasons["datasets"][0]["links"][index]) == public_ids(history, "c3", "c8")
    volume = charts["volume"]
    assert volume["labels"] == ["2026-11-10", "2026-11-11"]
    assert drill_ids(client, volume["datasets"][0]["links"][0]) == public_ids(history, "c1", "c2", "c3")
    # Each chart's text alternative: the same numbers in a table, every one linked.
    table = page.split('data-testid="chart-table-reasons"')[1].split("</table>")[0]
    assert re.search(r"Customer asked for a person</th>\s*<td class=\"num\"><a href=\"[^\"]+\">2</a>", table)


def test_table_cells_link_to_their_conversations(history: History) -> None:
    client = signed_in(history.manager)
    page = client.get("/reports/", RANGE).content.decode()
    topic_table = page.split('data-testid="outcomes-by-topic"')[1].split("</table>")[0]
    returns_row = topic_table.split("Returns</th>")[1].split("</tr>")[0]
    links = [unescape(h) for h in re.findall(r'href="([^"]+)"', returns_row)]
    edited = next(link for link in links if "status=edited" in link)
    assert drill_ids(client, edited) == public_ids(history, "c5")
    csat_table = page.split('data-testid="csat"')[1].split("</table>")[0]
    person_row = csat_table.split("A person (took over)</th>")[1].split("</tr>")[0]
    ratings_link = unescape(re.findall(r'href="([^"]+)"', person_row)[0])
    assert drill_ids(client, ratings_link) == public_ids(history, "c8")


def test_the_drill_down_keeps_the_filters_and_explains_itself(history: History) -> None:
    client = signed_in(history.manager)
    url = (
        f"/reports/conversations/?from=2026-11-10&to=2026-11-11&topic={history.returns.pk}&metric=drafts&status=edited"
    )
    page = client.get(url).content.decode()
    assert "Conversations with drafts · in 2026-11-10 to 2026-11-11 (America/New_York) · topic: Returns" in unescape(
        page
    )
    assert drill_ids(client, url) == public_ids(history, "c5")
    assert "1 conversation." in page


def test_bad_parameters_get_a_clear_400(history: History) -> None:
    client = signed_in(history.manager)
    for query, words in (
        ("?from=yesterday", "must be a date like 2026-11-30"),
        ("?from=2026-11-12&to=2026-11-10", "before its first day"),
        ("?topic=abc", "must be an id or"),
        ("?from=2020-01-01&to=2026-01-01", "at most"),
    ):
        response = client.get(f"/reports/{query}")
        assert response.status_code == 400 and words in unescape(response.content.decode())
    response = client.get("/reports/conversations/?metric=drafts&status=lost")
    assert response.status_code == 400 and "Unknown draft outcome" in unescape(response.content.decode())


def test_the_transcript_shows_the_draft_history_read_only(history: History) -> None:
    client = signed_in(history.manager)
    c2 = history.c["c2"]
    page = unescape(client.get(f"/reports/conversations/{c2.public_id}/").content.decode())
    assert c2.customer_label in page
    assert page.count('data-testid="transcript-draft"') == 2
    assert "Sent after edit" in page and "Bob Agent" in page and "40% (12 characters changed)" in page
    assert "edited reply" in page  # what was sent
    assert "Draft confidence too low" in page
    assert "<form" not in page.split("<main")[1].replace('<form method="post" action="/accounts/logout/"', "")
    c1 = unescape(client.get(f"/reports/conversations/{history.c['c1'].public_id}/").content.decode())
    assert "Shipping times" in c1 and "(unchanged)" in c1 and "0.90" in c1


def test_the_conversation_export_has_one_row_per_conversation(history: History) -> None:
    client = signed_in(history.manager)
    response = client.get("/reports/export/conversations.csv", RANGE)
    assert response.streaming and response["Content-Type"].startswith("text/csv")
    assert 'filename="conversations-2026-11-10-2026-11-11.csv"' in response["Content-Disposition"]
    by_id = {row["conversation"]: row for row in rows(response)}
    assert set(by_id) == public_ids(history, "c1", "c2", "c3", "c4", "c5", "c8")
    c5 = by_id[str(history.c["c5"].public_id)]
    assert c5["answered_by"] == "as_is" and c5["reopened_count"] == "1" and c5["csat_latest"] == "2"
    assert (c5["drafts"], c5["drafts_edited"], c5["drafts_superseded"], c5["edit_distance_avg"]) == ("3", "1", "1", "0")
    assert c5["first_response_seconds"] == "5" and c5["resolution_seconds"] == "10800"
    c8 = by_id[str(history.c["c8"].public_id)]
    assert c8["escalation_reasons"] == "Customer asked for a person; Angry or distressed customer"
    assert (c8["answered_by"], c8["agent"], c8["topic"], c8["drafts_taken_over"]) == ("person", "bob", "Returns", "1")
    c4 = by_id[str(history.c["c4"].public_id)]
    assert (c4["drafts"], c4["first_response_seconds"], c4["answered_by"]) == ("0", "", "none")


def test_the_draft_export_has_one_row_per_draft_and_follows_the_drill_down(history: History) -> None:
    client = signed_in(history.manager)
    drafts = rows(client.get("/reports/export/drafts.csv", RANGE))
    assert {row["draft"] for row in drafts} == {
        str(history.d[n].pk) for n in ("d1", "d2f", "d2", "d5a", "d5b", "d5c", "d8")
    }
    d2 = next(row for row in drafts if row["draft"] == str(history.d["d2"].pk))
    assert (d2["status"], d2["decided_by"], d2["edit_distance"], d2["chars_changed"], d2["review_seconds"]) == (
        "edited",
        "bob",
        "0.4",
        "12",
        "90",
    )
    edited = rows(client.get("/reports/export/drafts.csv", {**RANGE, "metric": "drafts", "status": "edited"}))
    assert {row["draft"] for row in edited} == {str(history.d["d2"].pk), str(history.d["d5b"].pk)}


def test_the_export_reads_in_batches_of_fixed_size(history: History, monkeypatch: pytest.MonkeyPatch) -> None:
    """Memory stays flat: each query reads at most BATCH rows, however many there are."""
    monkeypatch.setattr(export, "BATCH", 2)
    client = signed_in(history.manager)
    response = client.get("/reports/export/conversations.csv", RANGE)
    with CaptureQueriesContext(connection) as captured:
        chunks = list(response.streaming_content)
    assert len(chunks) == 1 + 3  # the header, then 6 conversations 2 by 2
    assert sum(1 for q in captured if "LIMIT 2" in q["sql"]) == 4  # the last read finds nothing
    assert len(rows_from(chunks)) == 6


def rows_from(chunks: list[bytes]) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(b"".join(chunks).decode())))


def test_the_manager_sets_a_time_zone_and_days_follow_it(history: History) -> None:
    client = signed_in(history.manager)
    # In UTC, c3 (04:30Z on the 11th) starts on the 11th, and c6 (04:00Z on the 10th) on the 10th.
    response = client.post(
        "/reports/time-zone/", {"time_zone": "UTC", "next": "/reports/?from=2026-11-10&to=2026-11-10"}
    )
    assert response.status_code == 302 and response["Location"] == "/reports/?from=2026-11-10&to=2026-11-10"
    utc_day = drill_ids(client, "/reports/conversations/?from=2026-11-10&to=2026-11-10&metric=conversations")
    assert utc_day == public_ids(history, "c1", "c2", "c6")
    response = client.post("/reports/time-zone/", {"time_zone": "Mars/Olympus_Mons", "next": "/reports/"})
    assert "Unknown time zone" in unescape(client.get("/reports/").content.decode())
    assert client.post("/reports/time-zone/", {"time_zone": "UTC", "next": "https://evil.example/"})["Location"] == (
        "/reports/"
    )


def test_the_default_range_is_the_last_30_days(manager: User) -> None:
    page = signed_in(manager).get("/reports/").content.decode()
    assert re.search(r"\d{4}-\d\d-\d\d to \d{4}-\d\d-\d\d · days and hours in UTC", page)


def test_the_report_page_runs_the_same_number_of_queries_for_30_and_90_days(history: History) -> None:
    client = signed_in(history.manager)

    def queries(first: str) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/reports/", {"from": first, "to": "2026-11-11"}).status_code == 200
        return len(captured)

    assert queries("2026-10-13") == queries("2026-08-14")


def test_a_conversation_without_a_first_customer_message_is_in_no_range(history: History) -> None:
    Conversation.objects.create()  # a chat opened and left without a word
    assert drill_ids(signed_in(history.manager), "/reports/conversations/?from=2026-01-01&to=2026-12-31") == public_ids(
        history, *history.c
    )


def test_exported_names_never_start_like_a_spreadsheet_formula(history: History) -> None:
    history.returns.name = "=HYPERLINK(1)"
    history.returns.save()
    rows_out = rows(signed_in(history.manager).get("/reports/export/conversations.csv", RANGE))
    c5 = next(row for row in rows_out if row["conversation"] == str(history.c["c5"].public_id))
    assert c5["topic"] == "'=HYPERLINK(1)"
