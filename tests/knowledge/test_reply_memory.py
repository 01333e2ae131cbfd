"""What the reply memory learns: agents' own replies wait for a manager (by default), who can approve,
edit or remove any entry; drafts use only entries in use."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from chatdesk.conversations import services
from chatdesk.conversations.models import Draft
from chatdesk.knowledge.models import ApprovedReply
from chatdesk.knowledge.services import knowledge_index_current
from tests.conftest import say

pytestmark = pytest.mark.django_db


def ready_draft(text: str) -> Draft:
    conversation = services.conversation_start()
    say(conversation, text)
    draft = Draft.objects.get(conversation=conversation)
    services.draft_generate(draft_id=draft.pk)
    draft.refresh_from_db()
    return draft


def remembered(passage_id: str) -> bool:
    return passage_id in knowledge_index_current()


def test_an_agents_own_reply_waits_for_a_manager_while_an_approved_draft_is_used_at_once(
    knowledge: None, agent: User, manager: User
) -> None:
    approved = ready_draft("How long does a refund take?")
    services.draft_approve(public_id=approved.conversation.public_id, draft_id=approved.pk, agent=agent)
    rejected = ready_draft("Do you ship to Norway?")
    services.draft_reject(
        public_id=rejected.conversation.public_id,
        draft_id=rejected.pk,
        agent=agent,
        reply_text="Yes, in 5 days. Cheers, Alice",
    )
    from_draft = ApprovedReply.objects.get(source="draft")
    own = ApprovedReply.objects.get(source="agent")
    assert (from_draft.status, own.status) == ("active", "pending")
    assert remembered(f"reply:{from_draft.pk}") and not remembered(f"reply:{own.pk}")

    client = Client()
    client.force_login(manager)
    page = client.get("/knowledge/memory/", {"status": "pending"})
    assert page.status_code == 200 and "Cheers, Alice" in page.content.decode()
    assert "1 await your approval" in page.content.decode()
    response = client.post(
        f"/knowledge/memory/{own.pk}/",
        {"action": "edit", "reply_text": "Yes, we ship to Norway in 5 days.", "next": "/knowledge/memory/"},
    )
    assert response.status_code == 302
    own.refresh_from_db()
    assert (own.status, own.reply_text, own.reviewed_by) == ("active", "Yes, we ship to Norway in 5 days.", manager)
    assert remembered(f"reply:{own.pk}")

    client.post(f"/knowledge/memory/{from_draft.pk}/", {"action": "remove"})
    assert not ApprovedReply.objects.filter(pk=from_draft.pk).exists()
    assert not remembered(f"reply:{from_draft.pk}")
    refused = client.post(f"/knowledge/memory/{own.pk}/", {"action": "edit", "reply_text": " "}, follow=True)
    assert "Write the reply" in refused.content.decode()
    assert client.post("/knowledge/memory/999999/", {"action": "remove"}).status_code == 404


def test_with_auto_an_agents_own_reply_is_used_at_once(knowledge: None, agent: User, settings: Any) -> None:
    settings.MEMORY_AGENT_REPLIES = "auto"
    rejected = ready_draft("Do you ship to Norway?")
    services.draft_reject(
        public_id=rejected.conversation.public_id, draft_id=rejected.pk, agent=agent, reply_text="Yes, in 5 days."
    )
    assert ApprovedReply.objects.get(source="agent").status == "active"


def test_agents_cannot_review_the_memory(agent: User) -> None:
    entry = ApprovedReply.objects.create(customer_text="hi", reply_text="hello", agent=agent)
    client = Client()
    client.force_login(agent)
    assert client.get("/knowledge/memory/").status_code == 403
    assert client.post(f"/knowledge/memory/{entry.pk}/", {"action": "remove"}).status_code == 403
    assert ApprovedReply.objects.filter(pk=entry.pk).exists()
