"""A manager in real Chromium: opens the report, changes the date range, clicks a chart bar, lands on exactly
the conversations behind it and opens one transcript. The page keeps to its content security policy."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Browser, expect

from tests.conftest import PASSWORD
from tests.reports.conftest import History

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WAIT_MS = 15_000


def test_a_manager_changes_the_range_clicks_a_chart_bar_and_reads_a_transcript(
    live_server: Any, history: History, browser: Browser
) -> None:
    page = browser.new_context().new_page()
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    page.goto(f"{live_server.url}/reports/")
    page.locator('input[name="username"]').fill(history.manager.username)
    page.locator('input[name="password"]').fill(PASSWORD)
    page.locator('input[name="password"]').press("Enter")
    page.wait_for_url(f"{live_server.url}/reports/")

    page.locator("#id_from").fill("2026-11-10")
    page.locator("#id_to").fill("2026-11-11")
    page.locator('[data-testid="report-show"]').click()
    expect(page.locator('[data-testid="period"]')).to_contain_text(
        "2026-11-10 to 2026-11-11 · days and hours in America/New_York"
    )
    headline = page.locator('[data-testid="headline-value"]').first
    expect(headline).to_have_text("6")

    # The reasons chart: click the "Customer asked for a person" bar where Chart.js drew it.
    canvas = page.locator('#chart-reasons[data-ready="true"]')
    expect(canvas).to_be_visible(timeout=WAIT_MS)
    canvas.scroll_into_view_if_needed()
    x, y = page.evaluate(
        """() => {
            const chart = document.getElementById("chart-reasons").chart;
            const index = chart.data.labels.indexOf("Customer asked for a person");
            const bar = chart.getDatasetMeta(0).data[index];
            return [(bar.x + bar.base) / 2, bar.y];
        }"""
    )
    canvas.click(position={"x": x, "y": y})
    page.wait_for_url("**/reports/conversations/**", timeout=WAIT_MS)
    assert "metric=reason" in page.url and "reason=customer_request" in page.url
    expect(page.locator('[data-testid="drill-description"]')).to_contain_text("reason: Customer asked for a person")
    rows = page.locator('[data-testid="drill-row"]')
    expect(rows).to_have_count(2)
    listed = {rows.nth(i).get_attribute("data-conversation") for i in range(2)}
    assert listed == {str(history.c["c3"].public_id), str(history.c["c8"].public_id)}

    c8 = history.c["c8"]
    page.locator(f'[data-conversation="{c8.public_id}"] a').click()
    expect(page.locator('[data-testid="transcript-title"]')).to_have_text(c8.customer_label)
    draft = page.locator('[data-testid="transcript-draft"]')
    expect(draft).to_have_count(1)
    expect(draft).to_contain_text("dropped when Bob Agent took over")
    expect(page.locator('[data-testid="transcript-flags"]')).to_contain_text("Angry or distressed customer")
    page.get_by_role("link", name="Back to the list").click()
    expect(page.locator('[data-testid="drill-row"]')).to_have_count(2)
    assert violations == []
