"""Accessibility in real Chromium: axe-core (WCAG 2.0 and 2.1, levels A and AA) finds no violation on the pages
customers, agents and managers use, each shown with real data in it.

axe-core is a test tool: it is vendored in static/vendor/axe-core/ and injected here only, never linked from
a page. To check another page, add an AxePage to PAGES: a name and a function that opens the page, with what
it needs in it, and returns it ready to be checked (and, optionally, the part of it to check)."""

from __future__ import annotations

import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.contrib.staticfiles import finders
from playwright.sync_api import Browser, Page, expect

from chatdesk.canned import services as canned_services
from chatdesk.conversations import identity, notes, services
from chatdesk.widget_sites.services import site_create
from tests.conftest import PASSWORD, say
from tests.live import LiveStack
from tests.reports.conftest import RANGE, History, history  # noqa: F401 (the fixture, for the report pages)

pytestmark = [pytest.mark.browser, pytest.mark.live, pytest.mark.django_db(transaction=True)]

WAIT_MS = 30_000
AXE_VERSION = "4.14.1"
AXE = Path(__file__).resolve().parent.parent / "static" / "vendor" / "axe-core" / AXE_VERSION / "axe.min.js"
# The WCAG 2.0 and 2.1 success criteria at levels A and AA (axe's own tags for them).
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


@dataclass
class Desk:
    """What a page's opener may use: the browser, the running desk, and people signed up on it."""

    browser: Browser
    base_url: str
    agent: User
    manager: User
    request: pytest.FixtureRequest

    def page(self, **context: Any) -> Page:
        """A page in a new browser context. The desk's Content-Security-Policy allows no inline script, which
        is how Playwright injects axe: the context bypasses CSP (tests/reports/test_browser.py checks it)."""
        return self.browser.new_context(bypass_csp=True, **context).new_page()

    def signed_in(self, user: User, path: str) -> Page:
        page = self.page()
        page.goto(f"{self.base_url}{path}")
        page.locator('input[name="username"]').fill(user.username)
        page.locator('input[name="password"]').fill(PASSWORD)
        page.locator('input[name="password"]').press("Enter")
        page.wait_for_url(f"{self.base_url}{path}")
        return page

    def history(self) -> History:
        """The report's small history (tests/reports/conftest.py), with its own manager."""
        found: History = self.request.getfixturevalue("history")
        return found


@dataclass(frozen=True)
class AxePage:
    name: str
    open: Callable[[Desk], Page]
    include: str | None = None  # a CSS selector: check only this part of the page; None: all of it
    shadow: bool = False  # the page draws in an open shadow root (the widget): axe must have looked inside


def _login(desk: Desk) -> Page:
    page = desk.page()
    page.goto(f"{desk.base_url}/accounts/login/")
    return page


def _login_failed(desk: Desk) -> Page:
    page = _login(desk)
    page.locator('input[name="username"]').fill("nobody")
    page.locator('input[name="password"]').fill("wrong")
    page.locator('input[name="password"]').press("Enter")
    expect(page.locator(".form-errors")).to_be_visible(timeout=WAIT_MS)
    return page


def _widget(desk: Desk, locale: str | None = None) -> Page:
    page = desk.page(locale=locale)
    page.goto(f"{desk.base_url}/")
    page.locator('[data-chatdesk="open"]').click()
    page.locator('[data-chatdesk="input"]').fill("How do I reset my password?")
    page.locator('[data-chatdesk="send"]').click()
    expect(page.locator('[data-chatdesk="message"][data-sender="customer"]')).to_have_attribute(
        "data-seq", "1", timeout=WAIT_MS
    )
    expect(page.locator('[data-chatdesk="status"]')).not_to_be_empty(timeout=WAIT_MS)
    return page


def _widget_chinese(desk: Desk) -> Page:
    return _widget(desk, locale="zh-CN")


def _conversation_with_draft(desk: Desk) -> str:
    conversation = services.conversation_start()
    say(conversation, "How do I reset my password?")
    return str(conversation.public_id)


def _queue(desk: Desk) -> Page:
    public_id = _conversation_with_draft(desk)
    page = desk.signed_in(desk.agent, "/agents/")
    expect(page.locator(f'[data-id="{public_id}"]')).to_contain_text("draft ready", timeout=WAIT_MS)
    return page


def _agent_conversation(desk: Desk) -> Page:
    public_id = _conversation_with_draft(desk)
    page = desk.signed_in(desk.agent, f"/agents/c/{public_id}/")
    expect(page.locator('[data-testid="draft-text"]')).not_to_have_value("", timeout=WAIT_MS)
    return page


def _agent_conversation_with_notes_and_tags(desk: Desk) -> Page:
    public_id = _conversation_with_draft(desk)
    notes.note_add(public_id=uuid.UUID(public_id), agent=desk.agent, text="Customer asked twice; be patient.")
    notes.tag_add(public_id=uuid.UUID(public_id), agent=desk.agent, tag="password")
    page = desk.signed_in(desk.agent, f"/agents/c/{public_id}/")
    expect(page.get_by_text("Customer asked twice; be patient.")).to_be_visible(timeout=WAIT_MS)
    return page


def _shortcuts_dialog(desk: Desk) -> Page:
    page = _agent_conversation(desk)
    page.locator("#history-title").click()
    page.keyboard.press("?")
    expect(page.locator('[data-testid="shortcuts-dialog"]')).to_be_visible(timeout=WAIT_MS)
    return page


def _canned_search(desk: Desk) -> Page:
    canned_services.canned_reply_create(by=desk.agent, shortcut="thanks", text="Thank you!", shared=False)
    page = _agent_conversation(desk)
    page.locator('[data-testid="reply-input"]').press_sequentially("/th")
    expect(page.locator('[data-testid="canned-option"]').first).to_be_visible(timeout=WAIT_MS)
    return page


def _canned_replies(desk: Desk) -> Page:
    canned_services.canned_reply_create(by=desk.manager, shortcut="hours", text="We answer 9-17.", shared=True)
    return desk.signed_in(desk.agent, "/agents/canned/")


def _site(desk: Desk) -> Page:
    site = site_create(name="Northwind", by=desk.manager)
    return desk.signed_in(desk.manager, f"/sites/{site.pk}/")


def _agent_conversation_verified_customer(desk: Desk) -> Page:
    site = site_create(name="Northwind shop", by=desk.manager)
    ann = identity.CustomerIdentity(
        site_id=site.pk, account_id="c-7", name="Ann Lee", email="ann@example.com", verified=True,
        page_url="https://shop.example.com/help",
    )  # fmt: skip
    for text in ("An earlier question", "How do I reset my password?"):
        public_id = uuid.uuid4()
        services.customer_message_post(public_id=public_id, text=text, client_id="m-1", identity=ann)
    page = desk.signed_in(desk.agent, f"/agents/c/{public_id}/")
    expect(page.locator('[data-testid="draft-text"]')).not_to_have_value("", timeout=WAIT_MS)
    return page


def _forbidden(desk: Desk) -> Page:
    return desk.signed_in(desk.agent, "/reports/")


def _preferences(desk: Desk) -> Page:
    return desk.signed_in(desk.agent, "/accounts/preferences/")


def _preferences_refused(desk: Desk) -> Page:
    page = _preferences(desk)
    page.locator("#id_time_zone").fill("Mars/Olympus_Mons")
    page.locator('[data-testid="preferences"] button[type="submit"]').click()
    expect(page.locator('[data-testid="time-zone-error"]')).to_be_visible(timeout=WAIT_MS)
    return page


def _report(desk: Desk) -> Page:
    past = desk.history()
    page = desk.signed_in(past.manager, f"/reports/?from={RANGE['from']}&to={RANGE['to']}")
    expect(page.locator("canvas[data-ready]").first).to_be_attached(timeout=WAIT_MS)
    return page


def _report_conversations(desk: Desk) -> Page:
    past = desk.history()
    path = f"/reports/conversations/?from={RANGE['from']}&to={RANGE['to']}&metric=conversations"
    page = desk.signed_in(past.manager, path)
    expect(page.locator('[data-testid="drill-row"]').first).to_be_visible()
    return page


def _transcript(desk: Desk) -> Page:
    past = desk.history()
    page = desk.signed_in(past.manager, f"/reports/conversations/{past.c['c2'].public_id}/")
    expect(page.locator('[data-testid="transcript-draft"]').first).to_be_visible()
    return page


def _manager_page(path: str) -> Callable[[Desk], Page]:
    def open_page(desk: Desk) -> Page:
        _conversation_with_draft(desk)
        return desk.signed_in(desk.manager, path)

    return open_page


PAGES = [
    AxePage("login", _login),
    AxePage("login-failed", _login_failed),
    AxePage("widget", _widget, shadow=True),
    AxePage("widget-zh", _widget_chinese, shadow=True),
    AxePage("queue", _queue),
    AxePage("agent-conversation", _agent_conversation),
    AxePage("agent-conversation-notes-tags", _agent_conversation_with_notes_and_tags),
    AxePage("agent-conversation-verified-customer", _agent_conversation_verified_customer),
    AxePage("shortcuts-dialog", _shortcuts_dialog),
    AxePage("canned-search", _canned_search),
    AxePage("canned-replies", _canned_replies),
    AxePage("forbidden", _forbidden),
    AxePage("widget-sites", _manager_page("/sites/")),
    AxePage("widget-site", _site),
    AxePage("preferences", _preferences),
    AxePage("preferences-refused", _preferences_refused),
    AxePage("report", _report),
    AxePage("report-conversations", _report_conversations),
    AxePage("transcript", _transcript),
    AxePage("inbox", _manager_page("/agents/inbox/")),
    AxePage("reply-memory", _manager_page("/knowledge/memory/")),
    AxePage("out-of-scope", _manager_page("/knowledge/out-of-scope/")),
    AxePage("webhooks", _manager_page("/webhooks/")),
    AxePage("api-tokens", _manager_page("/api-tokens/")),
]


def axe_run(page: Page, include: str | None = None) -> dict[str, Any]:
    """axe-core's WCAG 2.0/2.1 A and AA rules on `page` (open shadow roots included): `violations`, and
    `shadow_nodes`, how many elements inside shadow roots a rule checked (their targets are paths)."""
    page.add_script_tag(path=str(AXE))
    results: dict[str, Any] = page.evaluate(
        """async ([include, tags]) => {
            const context = include ? { include: [include] } : document;
            const results = await axe.run(context, { runOnly: { type: "tag", values: tags } });
            const checked = [...results.passes, ...results.violations, ...results.incomplete];
            const shadowNodes = checked.flatMap((rule) => rule.nodes).filter((node) => Array.isArray(node.target[0]));
            return { violations: results.violations, shadow_nodes: shadowNodes.length };
        }""",
        [include, WCAG_TAGS],
    )
    return results


def readable(violations: list[dict[str, Any]]) -> str:
    """One paragraph per rule: its id, impact and help, then each element it found with axe's summary."""
    lines: list[str] = []
    for violation in violations:
        lines.append(f"{violation['id']} ({violation['impact']}): {violation['help']} <{violation['helpUrl']}>")
        for node in violation["nodes"]:
            summary = " ".join(node["failureSummary"].split())
            lines.append(f"    {' > '.join(map(str, node['target']))}: {node['html'][:160]}\n        {summary}")
    return "\n".join(lines)


def test_axe_core_is_only_a_test_tool(live_stack: LiveStack) -> None:
    """No template or script of the desk loads axe-core, and the desk neither serves nor collects it: only
    this module injects it, from disk."""
    root = Path(__file__).resolve().parent.parent
    sources = [*root.joinpath("templates").rglob("*.html"), *root.joinpath("static", "js").glob("*.js")]
    assert AXE.is_file() and sources
    assert [path for path in sources if "axe-core" in path.read_text() or "axe.min" in path.read_text()] == []
    for path in (f"vendor/axe-core/{AXE_VERSION}/axe.min.js", f"vendor/axe-core/{AXE_VERSION}/LICENSE"):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{live_stack.base_url}/static/{path}")
        assert refused.value.code == 404
        assert finders.find(path) is None  # so collectstatic leaves it out of STATIC_ROOT too
    with urllib.request.urlopen(f"{live_stack.base_url}/static/vendor/chartjs/4.4.9/chart.umd.min.js") as served:
        assert served.status == 200  # the other vendored files are served as before


@pytest.mark.parametrize("axe_page", PAGES, ids=[p.name for p in PAGES])
def test_no_accessibility_violations(
    axe_page: AxePage,
    live_stack: LiveStack,
    knowledge: None,
    agent: User,
    manager: User,
    browser: Browser,
    request: pytest.FixtureRequest,
) -> None:
    desk = Desk(browser=browser, base_url=live_stack.base_url, agent=agent, manager=manager, request=request)
    page = axe_page.open(desk)
    results = axe_run(page, axe_page.include)
    violations = results["violations"]
    assert not violations, f"axe-core on {axe_page.name} ({page.url}):\n{readable(violations)}"
    if axe_page.shadow:
        assert results["shadow_nodes"] > 0, "axe-core did not reach into the shadow root"
