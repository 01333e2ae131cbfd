"""In real Chromium: a customer whose browser speaks Chinese holds a conversation in a Chinese widget,
and an agent who chose Chinese handles it on a Chinese desk (scripts' words included)."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Browser, expect

from chatdesk.accounts.models import Profile
from tests.browser_pages import agent_desk, customer_says, shop_chat
from tests.live import LiveStack

pytestmark = [pytest.mark.browser, pytest.mark.live, pytest.mark.django_db(transaction=True)]

WAIT_MS = 30_000
DRAFT_WAIT_MS = 120_000  # the worker's first draft loads the encoder: slow on a busy machine


def test_a_chinese_customer_and_a_chinese_agent_hold_a_conversation_in_chinese(
    live_stack: LiveStack, knowledge: None, agent: User, browser: Browser
) -> None:
    Profile.objects.create(user=agent, language="zh-hans")
    customer = shop_chat(browser, live_stack.base_url, locale="zh-CN")
    widget = customer.locator("[data-chatdesk-widget]")
    expect(widget).to_have_attribute("lang", "zh-CN")
    expect(customer.get_by_role("heading", name="在线咨询")).to_be_visible()  # "Chat with us"
    expect(customer.locator('[data-chatdesk="send"]')).to_have_text("发送")
    expect(customer.locator('[data-chatdesk="human"]')).to_have_text("转人工客服")
    expect(customer.locator('[data-chatdesk="input"]')).to_have_attribute("placeholder", "请输入您的消息…")

    customer.locator('[data-chatdesk="send"]').click()  # nothing typed: the widget's own error, in Chinese
    expect(customer.locator('[data-chatdesk="error"]')).to_have_text("请先输入消息再发送。")

    customer_says(customer, "我想重置密码，怎么操作？")
    sent = customer.locator('[data-chatdesk="message"][data-sender="customer"]')
    expect(sent).to_have_attribute("data-seq", "1", timeout=WAIT_MS)
    expect(customer.locator('[data-chatdesk="status"]')).to_have_text("客服正在审核回复…", timeout=WAIT_MS)

    desk = agent_desk(browser, live_stack.base_url, agent.username)
    expect(desk.locator("h1")).to_have_text("队列")
    expect(desk.locator('[data-testid="connection-state"]')).to_have_text("实时", timeout=WAIT_MS)  # "Live"
    row = desk.locator('[data-testid="queue-item"]')
    expect(row).to_contain_text("我想重置密码", timeout=WAIT_MS)
    row.locator("a").first.click()
    ready = desk.locator('[data-testid="draft-status"]')
    expect(ready).to_have_text("待审核", timeout=DRAFT_WAIT_MS)  # "Ready for review"
    # "Approve", or "Approve anyway…" when the draft is risky (an English draft for a Chinese question may be).
    expect(desk.locator('[data-testid="approve"]')).to_have_text(re.compile("^(批准|仍然批准…)$"))
    desk.locator('[data-testid="draft-text"]').fill("您可以在 账户 > 安全 中重置密码。")
    desk.locator('[data-testid="send-edit"]').click()

    reply = customer.locator('[data-chatdesk="message"][data-sender="agent"]')
    expect(reply).to_contain_text("您可以在 账户 > 安全 中重置密码。", timeout=WAIT_MS)
    customer.locator('[data-chatdesk="human"]').click()
    expect(customer.locator('[data-chatdesk="status"]')).to_contain_text("人工客服", timeout=WAIT_MS)
