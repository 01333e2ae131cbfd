"""CSAT in real Chromium: the agent closes the chat, the customer rates it in the widget and changes the rating."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Browser, expect

from chatdesk.conversations import services
from chatdesk.conversations.models import Conversation, Rating
from tests.browser_pages import agent_desk, customer_says, shop_chat
from tests.live import LiveStack

pytestmark = [pytest.mark.browser, pytest.mark.live, pytest.mark.django_db(transaction=True)]

WAIT_MS = 30_000


def test_customer_rates_a_closed_chat_and_changes_the_rating(
    live_stack: LiveStack, agent: User, browser: Browser
) -> None:
    base = live_stack.base_url
    customer = shop_chat(browser, base)
    customer_says(customer, "I want to talk to a human please")
    expect(customer.locator('[data-chatdesk="message"][data-sender="customer"]')).to_have_attribute(
        "data-seq", "1", timeout=WAIT_MS
    )
    rating = customer.locator('[data-chatdesk="rating"]')
    expect(rating).to_be_hidden()

    conversation = Conversation.objects.get()
    services.conversation_close(public_id=conversation.public_id, agent=agent)
    expect(customer.locator('[data-chatdesk="status"]')).to_contain_text("closed", timeout=WAIT_MS)
    expect(rating).to_be_visible()
    expect(rating.get_by_role("group", name="How did we do?")).to_be_visible()

    four = customer.get_by_role("button", name="4 \u2013 happy", exact=True)
    four.click()
    expect(four).to_have_attribute("aria-pressed", "true")
    customer.get_by_label("Comment (optional)").fill("Quick and friendly")
    customer.get_by_role("button", name="Send rating").click()
    thanks = customer.locator('[data-chatdesk="rate-thanks"]')
    expect(thanks).to_contain_text("Thanks for your rating: 4 of 5", timeout=WAIT_MS)
    stored = Rating.objects.get(conversation=conversation)
    assert (stored.score, stored.comment, stored.after_seq) == (4, "Quick and friendly", 1)

    customer.get_by_role("button", name="Change rating").click()
    expect(four).to_have_attribute("aria-pressed", "true")  # the form shows what was given
    expect(customer.get_by_label("Comment (optional)")).to_have_value("Quick and friendly")
    customer.get_by_role("button", name="5 \u2013 very happy", exact=True).click()
    expect(four).to_have_attribute("aria-pressed", "false")
    customer.get_by_role("button", name="Send rating").click()
    expect(thanks).to_contain_text("Thanks for your rating: 5 of 5", timeout=WAIT_MS)
    assert list(Rating.objects.values_list("score", "comment")) == [(5, "Quick and friendly")]

    customer.reload()  # the widget resumes with the rating given
    customer.locator('[data-chatdesk="open"]').click()
    expect(customer.locator('[data-chatdesk="rate-thanks"]')).to_contain_text("5 of 5", timeout=WAIT_MS)

    desk = agent_desk(browser, base, agent.username)
    desk.goto(f"{base}/agents/c/{conversation.public_id}/")
    expect(desk.get_by_test_id("rating")).to_have_text("5 of 5: \u201cQuick and friendly\u201d", timeout=WAIT_MS)

    customer_says(customer, "One more question, sorry")  # writing again ends the rating for that closing
    expect(customer.locator('[data-chatdesk="rating"]')).to_be_hidden(timeout=WAIT_MS)

    customer.get_by_role("button", name="End chat").click()  # the customer closes it: a new closing to rate
    expect(rating.get_by_role("group", name="How did we do?")).to_be_visible(timeout=WAIT_MS)
    expect(customer.get_by_role("button", name="End chat")).to_be_hidden()
    expect(four).to_have_attribute("aria-pressed", "false")
    expect(customer.get_by_label("Comment (optional)")).to_have_value("")
    customer.get_by_role("button", name="Send rating").click()
    expect(customer.locator('[data-chatdesk="error"]')).to_contain_text("choose a rating")
    customer.get_by_role("button", name="2 \u2013 unhappy", exact=True).click()
    customer.get_by_role("button", name="Send rating").click()
    expect(thanks).to_contain_text("2 of 5", timeout=WAIT_MS)
    conversation.refresh_from_db()
    assert (conversation.status, conversation.reopened_count) == (Conversation.Status.CLOSED, 1)
    assert sorted(Rating.objects.values_list("after_seq", "score")) == [(1, 5), (2, 2)]
