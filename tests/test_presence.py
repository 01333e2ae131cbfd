"""Who is at the desk, from agents' dashboard sockets, and what a customer is offered when nobody is."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth.models import User
from django.utils import timezone
from playwright.sync_api import Browser, expect

from chatdesk.conversations import frames, notices, presence, services
from chatdesk.conversations.models import Conversation
from chatdesk.conversations.privacy import customer_data_erase
from tests.agents.test_consumers import connect as agent_connect
from tests.agents.test_consumers import session_cookie
from tests.browser_pages import agent_desk, shop_chat
from tests.conversations.test_consumers import connect as customer_connect
from tests.conversations.test_consumers import receive_until, run
from tests.live import LiveStack

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_agent_is_online_with_a_dashboard_open_away_when_hidden_and_offline_after_the_grace(
    agent: User, settings: Any
) -> None:
    assert presence.agent_state(agent) == "offline"
    cookie = session_cookie(agent)

    async def scenario() -> None:
        socket = await agent_connect("/ws/agents/queue/", cookie)
        await receive_until(socket, "queue")
        assert await presence_of(agent) == "online"
        await socket.send_json_to({"type": "presence", "away": True})
        await socket.send_json_to({"type": "ping"})
        await receive_until(socket, "pong")  # frames are handled in order: the presence one is done
        assert await presence_of(agent) == "away"
        await socket.send_json_to({"type": "presence", "away": "yes"})
        assert (await receive_until(socket, "error"))["code"] == "invalid_request"
        await socket.send_json_to({"type": "presence", "away": False})
        await socket.send_json_to({"type": "ping"})
        await receive_until(socket, "pong")
        assert await presence_of(agent) == "online"
        await socket.disconnect()

    run(scenario)
    assert presence.agent_state(agent) == "online"  # a reload is not leaving the desk
    later = timezone.now() + timedelta(seconds=settings.AGENT_OFFLINE_GRACE_S + 1)
    assert presence.agent_state(agent, now=later) == "offline"
    assert not presence.anyone_online(now=later)


async def presence_of(agent: User) -> str:
    return await database_sync_to_async(presence.agent_state)(agent)


def test_a_socket_not_heard_from_stops_counting_and_one_visible_tab_outweighs_a_hidden_one(
    agent: User, settings: Any
) -> None:
    start = timezone.now()
    presence.socket_opened(agent, "hidden-tab", now=start)
    presence.socket_seen("hidden-tab", away=True, now=start)
    presence.socket_opened(agent, "visible-tab", now=start)
    assert presence.agent_state(agent, now=start) == "online"
    stale = start + timedelta(seconds=settings.AGENT_PRESENCE_STALE_S + 1)
    assert presence.agent_state(agent, now=stale) == "offline"  # e.g. Daphne was killed with the sockets open
    agent.is_active = False
    agent.save()
    assert presence.agent_state(agent, now=start) == "offline"


def test_with_nobody_at_the_desk_a_customer_who_asks_for_a_person_can_leave_an_email(agent: User) -> None:
    async def scenario() -> None:
        socket = await customer_connect()
        await socket.send_json_to({"type": "hello"})
        await receive_until(socket, "welcome")
        await socket.send_json_to({"type": "request_human"})  # before any message
        status = await receive_until(socket, "status")
        assert status["status"] == "no_agent_online" and "email" in status["text"]
        for bad in ("not an address", "a@b@c", "x" * 300 + "@example.com", 5):
            await socket.send_json_to({"type": "leave_email", "email": bad})
            assert (await receive_until(socket, "error"))["code"] in ("invalid_email", "invalid_request")
        await socket.send_json_to({"type": "leave_email", "email": " ann@example.com "})
        status = await receive_until(socket, "status")
        assert status["status"] == "email_left" and "ann@example.com" in status["text"]
        await socket.disconnect()

    run(scenario)
    conversation = Conversation.objects.get()
    assert (conversation.status, conversation.contact_email) == ("escalated", "ann@example.com")
    row = frames.queue_snapshot_frame()["items"][0]
    assert row["contact_email"] == "ann@example.com"
    assert row["reasons"][0]["reason"] == "customer_request"

    customer_data_erase([conversation])
    conversation.refresh_from_db()
    assert conversation.contact_email == ""


def test_with_an_agent_at_the_desk_the_customer_is_told_one_is_being_found(agent: User) -> None:
    presence.socket_opened(agent, "dashboard")
    conversation = services.conversation_start()
    services.conversation_request_human(public_id=conversation.public_id)
    assert frames.status_frame(Conversation.objects.get())["status"] == "waiting_for_agent"


@pytest.mark.browser
@pytest.mark.live
def test_in_the_browser_a_customer_who_chose_a_person_first_with_nobody_online_leaves_an_email(
    live_stack: LiveStack, agent: User, browser: Browser
) -> None:
    page = shop_chat(browser, live_stack.base_url)
    page.locator('[data-chatdesk="human"]').click()
    status = page.locator('[data-chatdesk="status"]')
    expect(status).to_contain_text("No one is at the desk", timeout=30_000)
    expect(page.locator('[data-chatdesk="human"]')).to_be_hidden()  # a person is already coming
    form = page.locator('[data-chatdesk="email-form"]')
    expect(form).to_be_visible()
    page.locator('[data-chatdesk="email"]').fill("ann@example.com")
    form.locator("button").click()
    expect(status).to_contain_text("ann@example.com", timeout=30_000)
    expect(form).to_be_hidden()

    desk = agent_desk(browser, live_stack.base_url, agent.username)
    row = desk.locator('[data-testid="queue-item"]')
    expect(row).to_contain_text("Answer by email: ann@example.com", timeout=30_000)


@pytest.mark.browser
@pytest.mark.live
def test_in_a_chinese_browser_the_customer_is_told_in_chinese(live_stack: LiveStack, browser: Browser) -> None:
    page = shop_chat(browser, live_stack.base_url, locale="zh-CN")
    page.locator('[data-chatdesk="human"]').click()
    status = page.locator('[data-chatdesk="status"]')
    expect(status).to_have_text(notices.BUILT_IN["no_agent_online"]["zh-hans"], timeout=30_000)
    expect(page.locator('[data-chatdesk="email-form"]')).to_be_visible()
