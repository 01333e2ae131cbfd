"""What agents' decisions export as training data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from chatdesk.conversations import services
from chatdesk.conversations.models import Conversation, Draft
from tests.conftest import say

pytestmark = pytest.mark.django_db


def drafted(question: str) -> tuple[Conversation, Draft]:
    conversation = services.conversation_start()
    say(conversation, question)
    draft = Draft.objects.get(conversation=conversation)
    services.draft_generate(draft_id=draft.pk)
    draft.refresh_from_db()
    return conversation, draft


def test_export_writes_chats_for_every_sent_reply_and_pairs_for_replaced_drafts(
    knowledge: None, agent: User, tmp_path: Path
) -> None:
    approved, approved_draft = drafted("How long does a refund take?")
    services.draft_approve(public_id=approved.public_id, draft_id=approved_draft.pk, agent=agent)
    edited, edited_draft = drafted("Can I pay with PayPal?")
    services.draft_edit(public_id=edited.public_id, draft_id=edited_draft.pk, agent=agent, text="Yes, PayPal works.")
    rejected, rejected_draft = drafted("Do you sell gift cards?")
    services.draft_reject(
        public_id=rejected.public_id, draft_id=rejected_draft.pk, agent=agent, reply_text="Yes, from 10 to 200 EUR."
    )
    redrafted, redrafted_draft = drafted("I was charged twice")
    services.draft_reject(public_id=redrafted.public_id, draft_id=redrafted_draft.pk, agent=agent, redraft=True)

    call_command("export_training_data", out=str(tmp_path), stdout=open("/dev/null", "w"))
    chats = [json.loads(line) for line in (tmp_path / "chat.jsonl").read_text().splitlines()]
    pairs = [json.loads(line) for line in (tmp_path / "preferences.jsonl").read_text().splitlines()]

    assert [c["messages"][-1]["content"] for c in chats] == [
        approved_draft.text,
        "Yes, PayPal works.",
        "Yes, from 10 to 200 EUR.",
    ]
    assert chats[1]["messages"][:-1] == [{"role": "user", "content": "Can I pay with PayPal?"}]
    assert chats[1]["topic"] == "payments"
    assert [(p["chosen"], p["rejected"]) for p in pairs] == [
        ("Yes, PayPal works.", edited_draft.text),
        ("Yes, from 10 to 200 EUR.", rejected_draft.text),
    ]
    assert pairs[0]["prompt"] == [{"role": "user", "content": "Can I pay with PayPal?"}]
