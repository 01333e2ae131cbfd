"""The agents' inbox: All / Mine / Unassigned / Closed, search, and assigning to a named agent."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from chatdesk.conversations import notes, services
from chatdesk.conversations.models import AgentAction, Conversation
from chatdesk.knowledge.models import Topic
from tests.conftest import say

pytestmark = pytest.mark.django_db


def signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def rows(client: Client, **query: str) -> list[str]:
    response = client.get("/agents/inbox/", query)
    assert response.status_code == 200
    return [str(c.public_id) for c in response.context["page"].object_list]


def test_views_and_search_find_answered_and_closed_conversations_again(agent: User, other_agent: User) -> None:
    shipping = Topic.objects.create(name="shipping")
    parcel = services.conversation_start()
    say(parcel, "My parcel never arrived at the depot")
    Conversation.objects.filter(pk=parcel.pk).update(topic=shipping)
    services.agent_reply(public_id=parcel.public_id, agent=agent, text="Sorry, resending it today.")
    services.conversation_close(public_id=parcel.public_id, agent=agent)
    refund = services.conversation_start()
    say(refund, "Where is my refund?")
    services.conversation_take_over(public_id=refund.public_id, agent=other_agent)
    waiting = services.conversation_start()
    say(waiting, "Hello?")
    services.conversation_start()  # opened the chat, wrote nothing: not in the inbox

    client = signed_in(agent)
    ids = {c: str(c.public_id) for c in (parcel, refund, waiting)}
    assert set(rows(client)) == set(ids.values())
    assert rows(client, view="closed") == [ids[parcel]]
    assert rows(client, view="unassigned") == [ids[waiting]]
    assert rows(signed_in(other_agent), view="mine") == [ids[refund]]
    assert rows(client, q="DEPOT") == [ids[parcel]]  # words the customer wrote, any case
    assert rows(client, q="resending") == [ids[parcel]]  # or the agent
    assert rows(client, agent="alice") == [ids[parcel]]  # alice acted on it, though it is closed
    assert rows(client, topic="shipping") == [ids[parcel]]
    assert rows(client, since="2999-01-01") == []
    assert set(rows(client, since="2000-01-01", until="2999-01-01", view="nonsense")) == set(ids.values())
    page = client.get("/agents/inbox/", {"q": "depot"}).content.decode()
    assert "Visitor" in page and 'aria-current="page"' in page


def test_agents_find_conversations_by_tag_and_by_words_in_their_internal_notes(agent: User) -> None:
    tagged = services.conversation_start()
    say(tagged, "The lamp flickers")
    notes.tag_add(public_id=tagged.public_id, agent=agent, tag="Warranty Claim")
    noted = services.conversation_start()
    say(noted, "Hello?")
    notes.note_add(public_id=noted.public_id, agent=agent, text="Called the courier, ref 88-K")

    client = signed_in(agent)
    assert rows(client, tag=" warranty   CLAIM ") == [str(tagged.public_id)]  # as tags are stored
    assert rows(client, tag="nothing") == []
    assert rows(client, q="courier") == [str(noted.public_id)]  # an internal note's words
    page = client.get("/agents/inbox/").content.decode()
    assert '<option value="warranty claim">' in page  # the tags offered as suggestions


def test_assigning_from_the_list_to_a_named_agent_is_recorded(agent: User, other_agent: User) -> None:
    waiting = services.conversation_start()
    say(waiting, "Hello?")
    client = signed_in(agent)
    response = client.post(
        "/agents/inbox/assign/",
        {"conversation": str(waiting.public_id), "to_agent": "bob", "next": "/agents/inbox/?view=unassigned"},
    )
    assert response.status_code == 302 and response["Location"] == "/agents/inbox/?view=unassigned"
    waiting.refresh_from_db()
    assert (waiting.assigned_agent, waiting.status) == (other_agent, "escalated")
    transfer = AgentAction.objects.get(kind="transfer")
    assert (transfer.agent, transfer.to_agent) == (agent, other_agent)

    refused = client.post(
        "/agents/inbox/assign/",
        {"conversation": str(waiting.public_id), "to_agent": "nobody", "next": "https://evil.example/"},
        follow=True,
    )
    assert refused.redirect_chain[-1][0] == "/agents/inbox/"  # never sent elsewhere
    assert "no active agent named" in refused.content.decode()
    assert client.post("/agents/inbox/assign/", {"conversation": "not-a-uuid"}).status_code == 404


def test_a_customer_who_only_pressed_talk_to_a_person_is_in_the_inbox(agent: User) -> None:
    asked = services.conversation_start()
    services.conversation_request_human(public_id=asked.public_id)  # no agent online: nobody is assigned
    services.conversation_leave_email(public_id=asked.public_id, email="ann@example.com")
    assert rows(signed_in(agent), view="unassigned") == [str(asked.public_id)]
