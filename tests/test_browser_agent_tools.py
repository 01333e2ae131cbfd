"""Agents' tools in real Chromium: a canned reply picked with `/` stays editable and is sent, `?` lists
the keyboard shortcuts, `a` approves a draft, the reply box counts and refuses an empty reply, closing
with an unanswered message asks first, and a new escalation shows as an unread count in the tab title."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Browser, Dialog, expect

from chatdesk.canned import services as canned_services
from chatdesk.conversations import services
from chatdesk.conversations.models import Conversation
from tests.browser_pages import agent_desk
from tests.conftest import say
from tests.live import LiveStack

pytestmark = [pytest.mark.browser, pytest.mark.live, pytest.mark.django_db(transaction=True)]

WAIT_MS = 30_000
QUESTION = "How do I reset my password?"


def test_shortcuts_canned_replies_the_reply_counter_and_the_close_confirmation(
    live_stack: LiveStack, knowledge: None, agent: User, browser: Browser
) -> None:
    canned_services.canned_reply_create(by=agent, shortcut="thanks", text="Thank you for your patience.", shared=False)
    conversation = services.conversation_start()
    say(conversation, QUESTION)
    desk = agent_desk(browser, live_stack.base_url, agent.username)
    desk.goto(f"{live_stack.base_url}/agents/c/{conversation.public_id}/")
    expect(desk.locator('[data-testid="draft-status"]')).to_have_attribute("data-status", "ready", timeout=WAIT_MS)
    status = desk.locator('[data-testid="conversation-status"]')
    expect(status).to_have_text("Draft ready")  # not "Drafting": the draft is written

    # The reply box: a counter of the protocol's limit, and no sending an empty or blank reply.
    reply_box = desk.locator('[data-testid="reply-input"]')
    send = desk.locator('[data-testid="reply-send"]')
    counter = desk.locator('[data-testid="reply-count"]')
    expect(counter).to_have_text("0 / 4000")
    expect(send).to_be_disabled()
    reply_box.fill("   ")
    expect(send).to_be_disabled()
    reply_box.fill("")

    # `?` opens the list of shortcuts as a modal dialog; Escape closes it and focus comes back.
    heading = desk.locator("#history-title")
    heading.evaluate("node => { node.tabIndex = -1; node.focus(); }")
    desk.keyboard.press("?")
    dialog = desk.locator('[data-testid="shortcuts-dialog"]')
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("heading", name="Keyboard shortcuts")).to_be_visible()
    for words in ("Approve the draft", "Take over the conversation", "Next conversation in your queue"):
        expect(dialog.locator('[data-testid="shortcut"]', has_text=words)).to_have_count(1)
    expect(desk.locator('[data-testid="shortcuts-close"]')).to_be_focused()
    desk.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(heading).to_be_focused()

    # Typing in a text box is never a shortcut; `a` outside one approves the draft.
    reply_box.press("a")
    expect(reply_box).to_have_value("a")
    reply_box.fill("")
    reply_box.press("Escape")  # leaves the box
    expect(reply_box).not_to_be_focused()
    draft_text = desk.locator('[data-testid="draft-text"]').input_value()
    desk.keyboard.press("a")
    agent_messages = desk.locator('[data-testid="message"][data-sender="agent"]')
    expect(agent_messages).to_have_count(1, timeout=WAIT_MS)
    expect(agent_messages.first).to_contain_text(draft_text.strip()[:40])
    expect(desk.locator('[data-testid="draft-status"]')).to_have_attribute("data-status", "approved")
    expect(status).to_have_text("Answered")  # every customer message has its reply

    # `/` opens the canned replies; arrows and Enter insert one, which stays editable, and it is sent.
    canned_list = desk.get_by_role("listbox", name="Canned replies").and_(desk.locator("#canned-list-reply"))
    reply_box.click()
    reply_box.press_sequentially("Hi! /than")
    options = desk.locator('[data-testid="canned-option"]')
    expect(canned_list).to_be_visible()
    expect(options).to_have_count(1)
    expect(options.first).to_have_attribute("aria-selected", "true")
    expect(reply_box).to_have_attribute("aria-activedescendant", "canned-list-reply-0")
    reply_box.press("ArrowDown")
    reply_box.press("Enter")
    expect(canned_list).to_be_hidden()
    expect(reply_box).to_have_value("Hi! Thank you for your patience.")
    reply_box.press_sequentially(" Anything else?")
    text = "Hi! Thank you for your patience. Anything else?"
    expect(reply_box).to_have_value(text)
    expect(counter).to_have_text(f"{len(text)} / 4000")
    expect(send).to_be_enabled()
    send.click()
    expect(agent_messages).to_have_count(2, timeout=WAIT_MS)
    expect(agent_messages.nth(1)).to_contain_text(text)
    expect(reply_box).to_have_value("")

    # Escape closes the list and keeps what was typed.
    reply_box.press_sequentially("/zzz")
    expect(canned_list).to_contain_text("No canned reply matches.")
    reply_box.press("Escape")
    expect(canned_list).to_be_hidden()
    expect(reply_box).to_have_value("/zzz")
    reply_box.fill("")

    # Closing while the customer's latest message is unanswered asks first, saying why.
    say(conversation, "One more thing: can I change my email?")
    expect(desk.locator('[data-testid="message"][data-sender="customer"]')).to_have_count(2, timeout=WAIT_MS)
    asked: list[str] = []

    def answer(accept: bool) -> None:
        def handle(dialog: Dialog) -> None:
            asked.append(dialog.message)
            dialog.accept() if accept else dialog.dismiss()

        desk.once("dialog", handle)

    answer(False)
    desk.locator('[data-testid="close"]').click()
    assert asked == ["The customer's latest message has not been answered yet. Close the conversation anyway?"]
    expect(status).not_to_have_text("Closed")
    answer(True)
    desk.locator('[data-testid="close"]').click()
    expect(status).to_have_text("Closed", timeout=WAIT_MS)
    assert len(asked) == 2
    conversation.refresh_from_db()
    assert conversation.status == Conversation.Status.CLOSED


def test_a_new_escalation_shows_as_an_unread_count_in_the_title_until_the_agent_looks(
    live_stack: LiveStack, agent: User, browser: Browser
) -> None:
    desk = agent_desk(browser, live_stack.base_url, agent.username)
    expect(desk.locator('[data-testid="connection-state"]')).to_have_attribute("data-state", "open", timeout=WAIT_MS)
    expect(desk).to_have_title("Queue · ChatDesk")
    expect(desk.locator('[data-testid="notify-toggle"]')).to_have_text("Notify me (sound and desktop)")

    waiting = services.conversation_start()
    say(waiting, "talk to a human")
    expect(desk.locator('[data-testid="queue-item"]')).to_have_count(1, timeout=WAIT_MS)
    expect(desk).to_have_title("(1) Queue · ChatDesk", timeout=WAIT_MS)

    desk.locator("h1").click()  # the agent looks
    expect(desk).to_have_title("Queue · ChatDesk")

    # `?` on the queue lists its shortcut too.
    desk.keyboard.press("?")
    expect(desk.locator('[data-testid="shortcuts-dialog"]')).to_contain_text("Open the next conversation in your queue")
    desk.keyboard.press("Escape")
    desk.keyboard.press("n")
    expect(desk).to_have_url(f"{live_stack.base_url}/agents/c/{waiting.public_id}/")
