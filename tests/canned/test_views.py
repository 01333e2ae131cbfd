"""The canned replies page and the `/` search data on the conversation page."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import User
from django.test import Client

from chatdesk.canned import services
from chatdesk.canned.models import CannedReply
from chatdesk.conversations import services as conversation_services

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
