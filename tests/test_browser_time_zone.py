"""Times drawn by the pages' scripts, in real Chromium: an agent reads them in the time zone and language of
their preferences whatever the browser's own; a customer reads the widget's in the browser's time zone."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Browser, expect

from chatdesk.accounts.models import Profile
from chatdesk.conversations import services
from chatdesk.conversations.models import Message
from tests.conftest import PASSWORD, say
from tests.live import LiveStack

pytestmark = [pytest.mark.browser, pytest.mark.live, pytest.mark.django_db(transaction=True)]

WAIT_MS = 30_000


def hh_mm(when: dt.datetime, zone: str) -> str:
    return when.astimezone(ZoneInfo(zone)).strftime("%H:%M")


def test_an_agent_in_shanghai_reads_message_times_in_shanghai_on_a_new_york_browser(
    live_stack: LiveStack, agent: User, browser: Browser
) -> None:
    Profile.objects.create(user=agent, language="zh-hans", time_zone="Asia/Shanghai")
    conversation = services.conversation_start()
    message = say(conversation, "How do I reset my password?")
    page = browser.new_context(timezone_id="America/New_York", locale="en-US").new_page()
    page.goto(f"{live_stack.base_url}/agents/c/{conversation.public_id}/")
    page.locator('input[name="username"]').fill(agent.username)
    page.locator('input[name="password"]').fill(PASSWORD)
    page.locator('input[name="password"]').press("Enter")

    expect(page.locator("body")).to_have_attribute("data-time-zone", "Asia/Shanghai")
    when = page.locator('[data-testid="message"][data-sender="customer"] time')
    expect(when).to_have_text(hh_mm(message.created_at, "Asia/Shanghai"), timeout=WAIT_MS)
    assert hh_mm(message.created_at, "Asia/Shanghai") != hh_mm(message.created_at, "America/New_York")


def test_the_widget_shows_times_in_the_customers_browser_time_zone_and_its_language(
    live_stack: LiveStack, browser: Browser
) -> None:
    page = browser.new_context(timezone_id="Asia/Kolkata", locale="zh-CN").new_page()  # the widget speaks Chinese
    page.goto(f"{live_stack.base_url}/")
    page.locator('[data-chatdesk="open"]').click()
    page.locator('[data-chatdesk="input"]').fill("Where is my parcel?")
    page.locator('[data-chatdesk="send"]').click()
    sent = page.locator('[data-chatdesk="message"][data-sender="customer"]')
    expect(sent).to_have_attribute("data-seq", "1", timeout=WAIT_MS)
    stored = Message.objects.get(text="Where is my parcel?")
    expect(sent.locator(".meta")).to_have_text(hh_mm(stored.created_at, "Asia/Kolkata"))


def test_the_preferences_page_offers_the_browsers_time_zone_until_one_is_chosen(
    live_stack: LiveStack, agent: User, browser: Browser
) -> None:
    page = browser.new_context(timezone_id="Europe/Paris", locale="en-GB").new_page()
    page.goto(f"{live_stack.base_url}/accounts/preferences/")
    page.locator('input[name="username"]').fill(agent.username)
    page.locator('input[name="password"]').fill(PASSWORD)
    page.locator('input[name="password"]').press("Enter")
    offer = page.locator('[data-testid="use-browser-time-zone"]')
    expect(offer).to_have_text("Use this browser's time zone: Europe/Paris", timeout=WAIT_MS)
    offer.click()
    expect(page.locator("#id_time_zone")).to_have_value("Europe/Paris")
    page.locator('[data-testid="preferences"] button[type="submit"]').click()
    expect(page.locator("body")).to_have_attribute("data-time-zone", "Europe/Paris", timeout=WAIT_MS)
    assert Profile.objects.get(user=agent).time_zone == "Europe/Paris"
    expect(offer).to_have_count(0)
