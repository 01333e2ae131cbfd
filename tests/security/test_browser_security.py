"""In real Chromium: the pages load under their Content-Security-Policy without a violation, the widget
works embedded in another origin's page, and hostile texts from customers (and names) stay inert text."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Browser, Page, expect

from chatdesk.conversations.models import Conversation
from chatdesk.knowledge.models import Topic
from tests.conftest import PASSWORD
from tests.live import LiveStack, free_port

pytestmark = [pytest.mark.browser, pytest.mark.live, pytest.mark.django_db(transaction=True)]

WAIT_MS = 30_000
HOSTILE = [
    "<script>window.__xss=1</script>",
    '<img src=x onerror="window.__xss=1">',
    "[my order](javascript:window.__xss=1) javascript:window.__xss=1",
]
HOSTILE_NAME = "<img src=x onerror=window.__xss=1>"

# Runs before any page script, outside the page's policy: records every violation the page reports.
WATCH_CSP = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__cspViolations.push(e.violatedDirective + " " + e.blockedURI);
});
"""


class Watched:
    """A page in its own context, with its CSP violations and console errors kept."""

    def __init__(self, browser: Browser) -> None:
        context = browser.new_context()
        context.add_init_script(WATCH_CSP)
        self.page = context.new_page()
        self.console: list[str] = []
        self.page.on("console", lambda m: self.console.append(m.text) if m.type == "error" else None)

    def assert_clean(self) -> None:
        """No CSP violation, no script run from a hostile text, no javascript: link."""
        assert self.page.evaluate("window.__cspViolations") == []
        assert not [text for text in self.console if "Content Security Policy" in text]
        assert self.page.evaluate("typeof window.__xss") == "undefined"
        assert self.page.locator('a[href^="javascript:" i]').count() == 0


def sign_in(browser: Browser, base: str, username: str, path: str) -> Watched:
    watched = Watched(browser)
    watched.page.goto(f"{base}{path}")
    watched.page.locator('input[name="username"]').fill(username)
    watched.page.locator('input[name="password"]').fill(PASSWORD)
    watched.page.locator('input[name="password"]').press("Enter")
    watched.page.wait_for_url(f"{base}{path}")
    return watched


def chat(page: Page, text: str) -> None:
    page.locator('[data-chatdesk="input"]').fill(text)
    page.locator('[data-chatdesk="send"]').click()


@pytest.fixture
def other_origin(live_stack: LiveStack, tmp_path: Path) -> Iterator[str]:
    """A shop on another origin (localhost, another port) embedding the widget, under a strict policy of
    its own that allows the desk's script and websocket, as docs/operations.md tells site owners."""
    desk = live_stack.base_url
    csp = (
        f"default-src 'none'; script-src {desk}; connect-src {live_stack.ws_url}; style-src 'unsafe-inline'; "
        "img-src data:"
    )
    (tmp_path / "index.html").write_text(
        f'<!doctype html><html><head><meta charset="utf-8"><meta http-equiv="Content-Security-Policy" '
        f'content="{csp}"><title>Another shop</title></head><body><h1>Another shop</h1>'
        f'<script src="{desk}/static/js/widget.js" defer></script></body></html>'
    )
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://localhost:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_hostile_texts_stay_text_everywhere_and_no_page_breaks_its_policy(
    live_stack: LiveStack, knowledge: None, agent: User, manager: User, browser: Browser
) -> None:
    base = live_stack.base_url
    agent.first_name, agent.last_name = HOSTILE_NAME, "Agent"
    agent.save()
    Topic.objects.filter(name="shipping").update(name=f"shipping {HOSTILE_NAME}")

    customer = Watched(browser)
    customer.page.goto(f"{base}/")
    customer.page.locator('[data-chatdesk="open"]').click()
    for text in HOSTILE:
        chat(customer.page, text)
    sent = customer.page.locator('[data-chatdesk="message"][data-sender="customer"]')
    expect(sent).to_have_count(len(HOSTILE), timeout=WAIT_MS)
    for index, text in enumerate(HOSTILE):
        expect(sent.nth(index)).to_contain_text(text)
        expect(sent.nth(index)).to_have_attribute("data-seq", str(index + 1), timeout=WAIT_MS)

    desk = sign_in(browser, base, agent.username, "/agents/")
    row = desk.page.locator('[data-testid="queue-item"]')
    expect(row).to_have_count(1, timeout=WAIT_MS)
    expect(row).to_contain_text(HOSTILE[-1])
    desk.assert_clean()
    row.locator("a").first.click()
    messages = desk.page.locator('[data-testid="message"][data-sender="customer"]')
    expect(messages).to_have_count(len(HOSTILE), timeout=WAIT_MS)
    for index, text in enumerate(HOSTILE):
        expect(messages.nth(index)).to_contain_text(text)
    desk.page.locator('[data-testid="reply-input"]').fill(HOSTILE[0])
    desk.page.locator('[data-testid="reply-send"]').click()
    expect(desk.page.locator('[data-testid="message"][data-sender="agent"]')).to_contain_text(
        HOSTILE[0], timeout=WAIT_MS
    )
    desk.assert_clean()

    reply = customer.page.locator('[data-chatdesk="message"][data-sender="agent"]')
    expect(reply).to_contain_text(HOSTILE[0], timeout=WAIT_MS)
    customer.assert_clean()

    reports = sign_in(browser, base, manager.username, "/reports/")
    expect(reports.page.locator('canvas[data-ready="true"]')).to_have_count(6)  # charts drawn under the policy
    expect(reports.page.locator("#id_agent")).to_contain_text(HOSTILE_NAME)
    reports.assert_clean()
    conversation = Conversation.objects.get()
    reports.page.goto(f"{base}/reports/conversations/{conversation.public_id}/")
    expect(reports.page.locator('[data-testid="transcript-messages"]')).to_contain_text(HOSTILE_NAME)  # who replied
    reports.assert_clean()


def test_the_widget_works_embedded_in_another_origin_under_that_sites_policy(
    live_stack: LiveStack, other_origin: str, browser: Browser
) -> None:
    shop = Watched(browser)
    shop.page.goto(other_origin)
    shop.page.locator('[data-chatdesk="open"]').click()
    chat(shop.page, "Do you ship to Norway?")
    sent = shop.page.locator('[data-chatdesk="message"][data-sender="customer"]')
    expect(sent).to_have_attribute("data-seq", "1", timeout=WAIT_MS)  # stored by the desk over the websocket
    shop.assert_clean()


@pytest.mark.parametrize("path", ["/accounts/login/", "/admin/", "/admin/knowledge/article/add/"])
def test_sign_in_and_admin_pages_keep_their_policy(
    live_stack: LiveStack, manager: User, browser: Browser, path: str, settings: Any
) -> None:
    manager.is_staff = True
    manager.save()
    page = sign_in(browser, live_stack.base_url, manager.username, path) if path != "/accounts/login/" else None
    if page is None:
        page = Watched(browser)
        page.page.goto(f"{live_stack.base_url}{path}")
    page.page.wait_for_load_state("load")
    page.assert_clean()
