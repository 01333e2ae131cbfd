"""The canned replies page, the `/` search data on the conversation page, the "next conversation"
shortcut and the styled 403 page that says why."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import User
from django.test import Client

from chatdesk.canned import services
from chatdesk.canned.models import CannedReply
from chatdesk.conversations import services as conversation_services
from tests.conftest import say

pytestmark = pytest.mark.django_db


def signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_an_agent_creates_a_personal_reply_and_cannot_make_it_shared(agent: User) -> None:
    client = signed_in(agent)
    page = client.get("/agents/canned/")
    assert page.status_code == 200
    assert 'name="shared"' not in page.content.decode()  # only managers are offered "Shared"

    response = client.post("/agents/canned/", {"shortcut": "thanks", "text": "Thank you!", "shared": "1"})
    assert response.status_code == 400
    assert "Only managers can create shared canned replies." in response.content.decode()

    response = client.post("/agents/canned/", {"shortcut": "thanks", "text": "Thank you!"})
    assert response.status_code == 302
    reply = CannedReply.objects.get()
    assert reply.owner == agent
    assert "/thanks" in client.get("/agents/canned/").content.decode()


def test_a_manager_creates_edits_and_deletes_a_shared_reply(manager: User, agent: User) -> None:
    client = signed_in(manager)
    assert 'name="shared"' in client.get("/agents/canned/").content.decode()
    client.post("/agents/canned/", {"shortcut": "refund", "text": "Refunds take 5 days.", "shared": "1"})
    reply = CannedReply.objects.get()
    assert reply.shared

    agent_page = signed_in(agent).get("/agents/canned/").content.decode()
    assert "/refund" in agent_page and "Managers change shared replies" in agent_page
    refused = signed_in(agent).post(f"/agents/canned/{reply.pk}/", {"shortcut": "mine", "text": "Mine now"})
    assert refused.status_code == 403
    assert "Only managers can change shared canned replies." in refused.content.decode()
    assert signed_in(agent).post(f"/agents/canned/{reply.pk}/delete/").status_code == 403

    assert client.post(f"/agents/canned/{reply.pk}/", {"shortcut": "refund", "text": "3 days."}).status_code == 302
    assert CannedReply.objects.get().text == "3 days."
    assert client.post(f"/agents/canned/{reply.pk}/delete/").status_code == 302
    assert not CannedReply.objects.exists()


def test_another_agents_personal_reply_does_not_exist_for_you(agent: User, other_agent: User) -> None:
    reply = services.canned_reply_create(by=other_agent, shortcut="bye", text="Goodbye!", shared=False)
    client = signed_in(agent)
    assert client.get(f"/agents/canned/{reply.pk}/").status_code == 404
    assert client.post(f"/agents/canned/{reply.pk}/delete/").status_code == 404
    assert "/bye" not in client.get("/agents/canned/").content.decode()
    assert signed_in(other_agent).get(f"/agents/canned/{reply.pk}/").status_code == 200


def test_the_conversation_page_embeds_the_agents_replies_and_the_reply_limit(
    agent: User, other_agent: User, manager: User
) -> None:
    services.canned_reply_create(by=agent, shortcut="thanks", text="Thank you!", shared=False)
    services.canned_reply_create(by=other_agent, shortcut="bye", text="Goodbye!", shared=False)
    services.canned_reply_create(by=manager, shortcut="refund", text="</script><b>5 days</b>", shared=True)
    conversation = conversation_services.conversation_start()
    html = signed_in(agent).get(f"/agents/c/{conversation.public_id}/").content.decode()
    data = html.split('<script id="canned-replies-data" type="application/json">')[1].split("</script>")[0]
    assert [reply["shortcut"] for reply in json.loads(data)] == ["refund", "thanks"]
    assert json.loads(data)[0]["text"] == "</script><b>5 days</b>"  # escaped by json_script, intact
    assert 'data-max-chars="4000"' in html


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
