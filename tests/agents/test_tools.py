"""The "next conversation" shortcut's redirect, and the styled 403 page that says why."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from chatdesk.conversations import services as conversation_services
from tests.conftest import draft_now, say

pytestmark = pytest.mark.django_db


def signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_next_conversation_skips_the_current_one_and_others_agents_conversations(
    agent: User, other_agent: User
) -> None:
    first, second, held = (conversation_services.conversation_start() for _ in range(3))
    for conversation in (first, second, held):
        say(conversation, "Where is my order?")
    conversation_services.conversation_take_over(public_id=held.public_id, agent=other_agent)
    client = signed_in(agent)

    assert client.get("/agents/next/")["Location"] == f"/agents/c/{first.public_id}/"
    assert client.get(f"/agents/next/?from={first.public_id}")["Location"] == f"/agents/c/{second.public_id}/"
    conversation_services.conversation_close(public_id=first.public_id, agent=agent)
    last = client.get(f"/agents/next/?from={second.public_id}", follow=True)
    assert last.redirect_chain[-1][0] == "/agents/"
    assert "Nothing else is waiting for you." in last.content.decode()


def test_the_403_page_is_styled_and_says_why(agent: User, outsider: User) -> None:
    refused = signed_in(agent).get("/reports/")
    assert refused.status_code == 403
    html = refused.content.decode()
    assert "Only managers can see reports." in html
    assert 'data-testid="forbidden-reason"' in html and "ChatDesk" in html  # base.html's page
    assert "Only managers can manage webhooks." in signed_in(agent).get("/webhooks/").content.decode()
    outsider_page = signed_in(outsider).get("/agents/").content.decode()
    assert "Only agents and managers can use the agents&#x27; dashboard." in outsider_page

    chinese = signed_in(agent).get("/reports/", HTTP_ACCEPT_LANGUAGE="zh-CN")
    assert chinese.status_code == 403
    assert "只有主管可以查看报表。" in chinese.content.decode()  # in the agent's language


def test_the_inbox_says_answered_or_waiting_instead_of_drafting(agent: User, knowledge: None) -> None:
    answered, waiting = conversation_services.conversation_start(), conversation_services.conversation_start()
    say(answered, "How do I reset my password?")
    say(waiting, "Where is my order?")
    draft = draft_now(answered)
    conversation_services.draft_approve(public_id=answered.public_id, draft_id=draft.pk, agent=agent)

    html = signed_in(agent).get("/agents/inbox/").content.decode()
    assert '<span class="badge status-open">Answered</span>' in html
    assert '<span class="badge status-open">Waiting for a reply</span>' in html
    assert "Drafting" not in html


def test_the_reports_list_and_transcript_say_answered_too(agent: User, manager: User, knowledge: None) -> None:
    answered = conversation_services.conversation_start()
    say(answered, "How do I reset my password?")
    draft = draft_now(answered)
    conversation_services.draft_approve(public_id=answered.public_id, draft_id=draft.pk, agent=agent)

    client = signed_in(manager)
    listed = client.get("/reports/conversations/", {"metric": "conversations"}).content.decode()
    transcript = client.get(f"/reports/conversations/{answered.public_id}/").content.decode()
    for html in (listed, transcript):
        assert '<span class="badge status-open">Answered</span>' in html
        assert "Drafting" not in html
