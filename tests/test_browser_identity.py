"""Who the customer is, end to end: a customer signs in on the host site mid-chat, then chats from their phone,
over the real desk; the agent in Chromium sees who they are and the page they are on, live (docs/identity.md)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Browser, expect
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Origin

from chatdesk.conversations import identity
from chatdesk.widget_sites.models import WidgetSite
from tests.browser_pages import agent_desk
from tests.live import LiveStack

pytestmark = [pytest.mark.browser, pytest.mark.live, pytest.mark.django_db(transaction=True)]

WAIT_MS = 30_000
ORDER_PAGE = "https://shop.example.com/orders/1182"
HELP_PAGE = "https://shop.example.com/m/help"


def answer(socket: ClientConnection, frame: dict[str, Any], wanted: str) -> dict[str, Any]:
    """Send `frame`, return the first frame of type `wanted` (or an error) that comes back."""
    socket.send(json.dumps(frame))
    while True:
        received = json.loads(socket.recv(timeout=30))
        if received["type"] in (wanted, "error"):
            return received


def test_a_customer_who_signs_in_is_known_to_the_agent_live_and_resumes_on_another_device(
    live_stack: LiveStack, agent: User, browser: Browser
) -> None:
    site = WidgetSite.objects.create(name="Shop")
    ann = {"id": "cust-1001", "name": "Ann Lee", "email": "ann.lee@example.com"}
    ann["signature"] = identity.sign(site.secret, account_id=ann["id"], email=ann["email"], name=ann["name"])
    signed_in = {"type": "hello", "site": site.public_key, "customer": ann}
    chat_url, origin = f"{live_stack.ws_url}/ws/chat/", Origin(live_stack.base_url)

    with connect(chat_url, origin=origin) as laptop:
        welcome = answer(laptop, {"type": "hello", "site": site.public_key}, "welcome")
        assert welcome["type"] == "welcome" and welcome["verified"] is False
        assert answer(laptop, {"type": "message", "client_id": "m-1", "text": "Where is my order 1182?"}, "ack")["seq"]

        desk = agent_desk(browser, live_stack.base_url, agent.username)
        expect(desk.locator('[data-testid="connection-state"]')).to_have_text("Live", timeout=WAIT_MS)
        desk.goto(f"{live_stack.base_url}/agents/c/{welcome['conversation_id']}/")
        expect(desk.locator('[data-testid="connection-state"]')).to_have_text("Live", timeout=WAIT_MS)
        panel = desk.locator('[data-testid="customer-panel"]')
        expect(panel.locator('[data-testid="customer-anonymous"]')).to_be_visible()

        # Ann signs in on the shop and opens her order: the widget says hello again, signed.
        again = answer(laptop, {**signed_in, "token": welcome["token"], "page": ORDER_PAGE}, "welcome")
        assert again["conversation_id"] == welcome["conversation_id"] and again["verified"] is True
        expect(panel.locator('[data-testid="customer-name"]')).to_have_text("Ann Lee", timeout=WAIT_MS)
        expect(panel.locator('[data-testid="customer-email"]')).to_have_text("ann.lee@example.com")
        expect(panel.locator('[data-testid="customer-anonymous"]')).to_be_hidden()
        expect(panel.locator('[data-testid="customer-identity"]')).to_have_attribute("data-verified", "true")
        expect(panel.locator('[data-badge="verified"]')).to_be_visible()
        expect(panel.locator('[data-badge="unverified"]')).to_be_hidden()
        page_link = panel.locator('[data-field="page"]')
        expect(page_link).to_have_attribute("href", ORDER_PAGE)
        expect(page_link).to_have_attribute("rel", "noopener noreferrer")
        expect(desk.locator('[data-field="customer"]')).to_have_text("Ann Lee")

    # The same customer on their phone: no token, the same signed identity, another page.
    with connect(chat_url, origin=origin) as phone:
        resumed = answer(phone, {**signed_in, "page": HELP_PAGE}, "welcome")
        assert resumed["conversation_id"] == welcome["conversation_id"]
        assert [m["text"] for m in resumed["messages"]] == ["Where is my order 1182?"]
        expect(page_link).to_have_attribute("href", HELP_PAGE, timeout=WAIT_MS)  # live, without a reload

        # Someone who knows Ann's details but not the site's secret gets a chat of their own.
        forged = answer(phone, {**signed_in, "customer": {**ann, "signature": "0" * 64}}, "welcome")
        assert forged["verified"] is False and forged["conversation_id"] != welcome["conversation_id"]
        assert forged["messages"] == []
