"""Replaying a delivery in real Chromium: the manager clicks Replay in the log, the Celery worker sends it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Browser, expect

from chatdesk.conversations import services
from chatdesk.webhooks import services as webhooks
from tests.browser_pages import agent_desk
from tests.live import LiveStack
from tests.webhooks.receiver import Receiver, documented_verify, receiving

pytestmark = [pytest.mark.browser, pytest.mark.live, pytest.mark.django_db(transaction=True)]

WAIT_MS = 30_000


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as running:
        yield running


def test_a_manager_replays_a_delivery_from_the_log_and_the_worker_sends_it_again(
    live_stack: LiveStack, manager: User, browser: Browser, receiver: Receiver, settings: Any
) -> None:
    settings.WEBHOOK_ALLOW_HTTP_LOOPBACK = True
    endpoint = webhooks.endpoint_create(url=receiver.url, events=["conversation.created"], by=manager)
    services.conversation_start()
    first = receiver.wait_for("conversation.created")

    page = agent_desk(browser, live_stack.base_url, manager.username)
    page.get_by_role("link", name="Webhooks").click()
    page.get_by_role("link", name=receiver.url).click()
    expect(page.get_by_test_id("webhook-secret")).to_have_text(endpoint.secret)
    rows = page.get_by_test_id("webhook-deliveries").locator("tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Delivered")

    page.get_by_role("button", name="Replay").click()
    expect(page.get_by_role("status")).to_contain_text("Replaying conversation.created", timeout=WAIT_MS)
    deadline = time.monotonic() + 30
    while len(receiver.received) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    again = receiver.received[1]
    assert again.body == first.body
    assert documented_verify()(endpoint.secret, again.headers["X-ChatDesk-Signature"], again.body)
    page.reload()
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("replay by Mona Manager")
