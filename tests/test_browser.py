"""The whole journey in real Chromium: a customer asks on the shop page, an agent approves, the customer sees it."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Browser, expect

from chatdesk.knowledge.models import OutOfScopeExample
from tests.browser_pages import agent_desk, customer_says, shop_chat
from tests.live import LiveStack

pytestmark = [pytest.mark.browser, pytest.mark.live, pytest.mark.django_db(transaction=True)]

WAIT_MS = 30_000


def test_customer_question_agent_approval_customer_sees_reply_without_reloading(
    live_stack: LiveStack, knowledge: None, agent: User, browser: Browser
) -> None:
    base = live_stack.base_url
    customer = shop_chat(browser, base)
    customer_says(customer, "How do I reset my password?")
    sent = customer.locator('[data-chatdesk="message"][data-sender="customer"]')
    expect(sent).to_contain_text("How do I reset my password?")
    expect(sent).to_have_attribute("data-seq", "1", timeout=WAIT_MS)  # stored by the desk
    expect(customer.locator('[data-chatdesk="status"]')).to_contain_text("reviewing", timeout=WAIT_MS)

    desk = agent_desk(browser, base, agent.username)
    row = desk.locator('[data-testid="queue-item"]')
    expect(row).to_have_count(1, timeout=WAIT_MS)
    expect(row).to_contain_text("How do I reset my password?")
    row.locator("a").first.click()

    expect(desk.locator('[data-testid="draft-text"]')).to_have_value(
        re.compile("Account > Security"),  # the knowledge base's answer, selected by the worker
        timeout=WAIT_MS,
    )
    expect(desk.locator('[data-testid="draft-sources"]')).to_contain_text("Resetting your password")
    desk.locator('[data-testid="approve"]').click()

    reply = customer.locator('[data-chatdesk="message"][data-sender="agent"]')
    expect(reply).to_contain_text("Account > Security", timeout=WAIT_MS)
    expect(desk.locator('[data-testid="message"][data-sender="agent"]')).to_have_count(1, timeout=WAIT_MS)

    customer.reload()
    customer.locator('[data-chatdesk="open"]').click()
    expect(customer.locator('[data-chatdesk="message"]')).to_have_count(2, timeout=WAIT_MS)


def test_an_empty_or_oversized_message_gets_a_clear_error_and_nothing_typed_is_lost(
    live_stack: LiveStack, browser: Browser
) -> None:
    page = shop_chat(browser, live_stack.base_url)
    page.locator('[data-chatdesk="send"]').click()
    expect(page.locator('[data-chatdesk="error"]')).to_contain_text("type a message", timeout=WAIT_MS)
    too_long = "a" * 4001
    page.locator('[data-chatdesk="input"]').fill(too_long)
    page.locator('[data-chatdesk="send"]').click()
    expect(page.locator('[data-chatdesk="error"]')).to_contain_text("4,000")
    expect(page.locator('[data-chatdesk="input"]')).to_have_value(too_long)
    expect(page.locator('[data-chatdesk="message"]')).to_have_count(0)


def test_an_agent_marks_a_question_we_dont_answer_with_one_click(
    live_stack: LiveStack, knowledge: None, agent: User, browser: Browser
) -> None:
    base = live_stack.base_url
    customer = shop_chat(browser, base)
    customer_says(customer, "Can I pay with bitcoin?")
    expect(customer.locator('[data-chatdesk="message"][data-sender="customer"]')).to_have_attribute(
        "data-seq", "1", timeout=WAIT_MS
    )
    desk = agent_desk(browser, base, agent.username)
    desk.locator('[data-testid="queue-item"] a').first.click()
    expect(desk.locator('[data-testid="draft-text"]')).not_to_have_value("", timeout=WAIT_MS)
    button = desk.locator('[data-testid="message"][data-sender="customer"] [data-testid="mark-out-of-scope"]')
    expect(button).to_have_text("We don't answer this")
    button.click()
    expect(button).to_have_text("Marked: we don't answer this", timeout=WAIT_MS)
    expect(button).to_be_disabled()
    assert OutOfScopeExample.objects.filter(text="Can I pay with bitcoin?", marked_by=agent).exists()
