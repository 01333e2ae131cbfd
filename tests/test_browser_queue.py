"""What agents see, in real Chromium: an angry customer jumps to the top of the queue live, a risky draft
offers "Write a reply" first, and an SLA breach is announced until dismissed."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from playwright.sync_api import Browser, expect

from chatdesk.conversations import services
from chatdesk.conversations.models import Conversation, Draft
from tests.agents.test_queue import flag_angry
from tests.browser_pages import agent_desk, customer_says, shop_chat
from tests.conftest import say
from tests.live import LiveStack

pytestmark = [pytest.mark.browser, pytest.mark.live, pytest.mark.django_db(transaction=True)]

WAIT_MS = 30_000
QUESTION = "How do I reset my password?"  # both customers ask the same, so their drafts weigh the same


def test_an_angry_customer_moves_to_the_top_live_and_its_risky_draft_offers_write_a_reply(
    live_stack: LiveStack, knowledge: None, agent: User, browser: Browser
) -> None:
    older, newer = services.conversation_start(), services.conversation_start()
    say(older, QUESTION)
    say(newer, QUESTION)

    desk = agent_desk(browser, live_stack.base_url, agent.username)
    rows = desk.locator('[data-testid="queue-item"]')
    expect(rows).to_have_count(2, timeout=WAIT_MS)
    for conversation in (older, newer):  # the worker drafts both
        expect(desk.locator(f'[data-id="{conversation.public_id}"]')).to_contain_text("draft ready", timeout=WAIT_MS)
    expect(rows.first).to_have_attribute("data-id", str(older.public_id))  # equal priority: longest waiting first
    expect(desk.locator('[data-testid="sentiment"]')).to_have_count(0)

    flag_angry(newer)  # what the sentiment rule does, through services.flag and realtime

    top = rows.first
    expect(top).to_have_attribute("data-id", str(newer.public_id), timeout=WAIT_MS)
    reason = top.locator('[data-testid="reason"]').first
    expect(reason).to_have_text("Angry or distressed customer: sentiment -0.80")  # the detail for screen readers
    expect(reason).to_have_attribute("title", "sentiment -0.80")  # and as a tooltip
    expect(reason.get_by_text("Angry or distressed customer", exact=True)).to_be_visible()
    expect(top.locator('[data-testid="sentiment"]')).to_contain_text("Angry · Sentiment \u22120.8")
    expect(top.locator('[data-testid="priority"]')).to_contain_text("Priority 30")
    expect(rows.nth(1)).to_have_attribute("data-id", str(older.public_id))

    # The reason filter: only the angry customer, and back.
    desk.locator('[data-testid="filter-reason"]').select_option("negative_sentiment")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-id", str(newer.public_id))
    desk.locator('[data-testid="filter-reason"]').select_option("")
    expect(rows).to_have_count(2, timeout=WAIT_MS)

    top.locator("a").first.click()
    expect(desk.locator('[data-testid="conversation-reasons"]')).to_contain_text(
        "Angry or distressed customer: sentiment -0.80"
    )
    expect(desk.locator('[data-field="sentiment"]')).to_contain_text("Sentiment \u22120.8")
    risk = desk.locator('[data-testid="draft-risk"]')
    expect(risk).to_be_visible(timeout=WAIT_MS)
    expect(risk).to_contain_text("Angry or distressed customer: sentiment -0.80.")
    expect(risk).not_to_contain_text("Waiting too long")
    write = desk.locator('[data-testid="write-reply"]')
    approve = desk.locator('[data-testid="approve"]')
    expect(write).to_be_visible()
    expect(write).to_have_class(re.compile(r"\bprimary\b"))
    expect(approve).not_to_have_class(re.compile(r"\bprimary\b"))

    approve.click()  # a risky draft is not sent with one click
    expect(approve).to_have_text("Confirm: send as drafted")
    expect(desk.locator('[data-testid="message"][data-sender="agent"]')).to_have_count(0)
    assert Draft.objects.get(conversation=newer).status == Draft.Status.READY

    write.click()
    expect(desk.locator('[data-testid="reply-input"]')).to_be_focused()


def test_an_sla_breach_is_announced_on_the_queue_page_until_dismissed(
    live_stack: LiveStack, agent: User, browser: Browser
) -> None:
    waiting = services.conversation_start()
    say(waiting, "talk to a human")
    desk = agent_desk(browser, live_stack.base_url, agent.username)
    expect(desk.locator('[data-testid="queue-item"]')).to_have_count(1, timeout=WAIT_MS)

    waiting = Conversation.objects.get(pk=waiting.pk)
    assert services.sla_sweep(timezone.now() + timedelta(minutes=6)) == 1

    alert = desk.locator('[data-testid="alert"]')
    expect(alert).to_have_count(1, timeout=WAIT_MS)
    expect(alert).to_contain_text(f"{waiting.customer_label}: customer waiting 6 min")
    expect(desk.locator('[data-testid="alerts"]')).to_have_attribute("aria-live", "assertive")
    expect(desk.locator('[data-testid="queue-item"]').first.locator('[data-testid="reason"]').first).to_contain_text(
        "Waiting too long: customer waiting 6 min"
    )
    alert.locator('[data-testid="alert-dismiss"]').click()
    expect(alert).to_have_count(0)


def test_an_angry_message_typed_in_the_widget_jumps_to_the_top_with_its_reason_and_sentiment(
    live_stack: LiveStack, knowledge: None, agent: User, browser: Browser
) -> None:
    calm = services.conversation_start()
    say(calm, QUESTION)
    desk = agent_desk(browser, live_stack.base_url, agent.username)
    rows = desk.locator('[data-testid="queue-item"]')
    expect(rows).to_have_count(1, timeout=WAIT_MS)

    customer = shop_chat(browser, live_stack.base_url)
    customer_says(customer, "This is ridiculous. I am furious, your service is the worst!")

    expect(rows).to_have_count(2, timeout=WAIT_MS)
    top = rows.first
    expect(top).to_contain_text("I am furious", timeout=WAIT_MS)  # above the calm customer who wrote first
    expect(top.locator('[data-testid="reason"]').first).to_contain_text("Angry or distressed customer")
    expect(top.locator('[data-testid="sentiment"]')).to_contain_text("Angry · Sentiment \u2212")
    expect(rows.nth(1)).to_have_attribute("data-id", str(calm.public_id))
