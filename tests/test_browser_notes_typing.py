"""Internal notes, tags and typing indicators in real Chromium: an agent adds a note and a tag, a second
agent's page shows them live, the customer's widget never shows the note; the customer's typing shows
on the agent's page and the agent's typing in the widget; a manager finds the conversation by the
note's words and reads it in the transcript, marked internal."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Browser, expect

from chatdesk.conversations.models import Conversation, ConversationTag, Note
from tests.browser_pages import agent_desk, customer_says, shop_chat
from tests.live import LiveStack

pytestmark = [pytest.mark.browser, pytest.mark.live, pytest.mark.django_db(transaction=True)]

WAIT_MS = 30_000
NOTE = "Courier confirmed delivery on Tuesday"


def test_notes_and_tags_are_live_for_agents_only_and_typing_shows_both_ways(
    live_stack: LiveStack, agent: User, other_agent: User, manager: User, browser: Browser
) -> None:
    base = live_stack.base_url
    customer = shop_chat(browser, base)
    customer_says(customer, "Where is my parcel?")
    expect(customer.locator('[data-chatdesk="message"][data-sender="customer"]')).to_have_attribute(
        "data-seq", "1", timeout=WAIT_MS
    )
    conversation = Conversation.objects.get()
    url = f"{base}/agents/c/{conversation.public_id}/"

    alice = agent_desk(browser, base, agent.username)
    alice.goto(url)
    bob = agent_desk(browser, base, other_agent.username)
    bob.goto(url)
    for page in (alice, bob):
        expect(page.get_by_test_id("connection-state")).to_have_attribute("data-state", "open", timeout=WAIT_MS)

    alice.get_by_test_id("note-input").fill(NOTE)
    alice.get_by_test_id("note-add").click()
    alice.get_by_test_id("tag-input").fill("  Courier ")
    alice.get_by_test_id("tag-add").click()

    expect(bob.get_by_test_id("note")).to_contain_text(NOTE, timeout=WAIT_MS)
    expect(bob.get_by_test_id("note")).to_contain_text("Alice Agent")
    expect(bob.get_by_test_id("tag")).to_have_attribute("data-tag", "courier", timeout=WAIT_MS)
    expect(alice.get_by_test_id("note")).to_contain_text(NOTE)
    assert list(Note.objects.values_list("text", flat=True)) == [NOTE]

    bob.get_by_role("button", name="Remove the tag courier").click()
    expect(alice.get_by_test_id("tag")).to_have_count(0, timeout=WAIT_MS)
    assert not ConversationTag.objects.exists()

    # The customer types: both agents see it for a few seconds.
    customer.locator('[data-chatdesk="input"]').press_sequentially("Also, can I", delay=50)
    expect(alice.get_by_test_id("customer-typing")).to_have_text("Customer is typing…", timeout=WAIT_MS)
    expect(bob.get_by_test_id("customer-typing")).to_have_text("Customer is typing…", timeout=WAIT_MS)
    expect(alice.get_by_test_id("customer-typing")).to_have_text("", timeout=WAIT_MS)  # it fades

    # An agent types a reply: the customer sees someone is writing, not who.
    typing_line = customer.locator('[data-chatdesk="typing"]')
    expect(typing_line).to_have_text("")
    alice.get_by_test_id("reply-input").press_sequentially("Your parcel", delay=50)
    expect(typing_line).to_have_text("An agent is typing…", timeout=WAIT_MS)
    alice.get_by_test_id("reply-send").click()
    expect(customer.locator('[data-chatdesk="message"][data-sender="agent"]')).to_contain_text(
        "Your parcel", timeout=WAIT_MS
    )
    expect(typing_line).to_have_text("")  # the reply came: no longer typing

    # The note never reached the customer: not in the widget, not after a reload either.
    panel = customer.locator("#chatdesk-panel")
    assert "Courier confirmed" not in panel.inner_text()
    customer.reload()
    customer.locator('[data-chatdesk="open"]').click()
    expect(customer.locator('[data-chatdesk="message"][data-sender="agent"]')).to_have_count(1, timeout=WAIT_MS)
    assert "Courier confirmed" not in panel.inner_text()

    # A manager finds the conversation by the note's words and reads the note, marked internal.
    reports = agent_desk(browser, base, manager.username)
    reports.goto(f"{base}/reports/conversations/")
    reports.get_by_test_id("search-text").fill("courier confirmed")
    reports.get_by_role("button", name="Search").click()
    expect(reports.get_by_test_id("drill-row")).to_have_count(1, timeout=WAIT_MS)
    reports.get_by_test_id("drill-row").get_by_role("link").click()
    internal = reports.get_by_test_id("transcript-internal")
    expect(internal).to_contain_text("never shown to the customer", timeout=WAIT_MS)
    expect(internal.get_by_test_id("transcript-notes")).to_contain_text(NOTE)
