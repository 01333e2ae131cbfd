"""Escalation reasons are stored, order the agents' queue, and stop counting once a person dealt with them."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.db import transaction

from chatdesk.conversations import frames, selectors, services
from chatdesk.conversations.models import Conversation, EscalationFlag
from tests.conftest import say

pytestmark = pytest.mark.django_db

Reason = Conversation.EscalationReason


def queue_order() -> list[str]:
    return [item["id"] for item in frames.queue_snapshot_frame()["items"]]


def test_a_flagged_conversation_comes_before_older_ones_and_carries_its_reason() -> None:
    older = services.conversation_start()
    say(older, "Where is my parcel?")
    newer = services.conversation_start()
    say(newer, "Can I talk to a person?")
    assert queue_order() == [str(newer.public_id), str(older.public_id)]

    flag = EscalationFlag.objects.get(conversation=newer)
    assert (flag.reason, flag.message.text) == (Reason.CUSTOMER_REQUEST, "Can I talk to a person?")
    row = frames.queue_snapshot_frame()["items"][0]
    assert row["priority"] > 0
    assert [r["reason"] for r in row["reasons"]] == ["customer_request"]
    assert row["reasons"][0]["label"] == "Customer asked for a person"


def test_several_reasons_add_up_and_closing_clears_them_but_keeps_the_record(agent: User) -> None:
    conversation = services.conversation_start()
    say(conversation, "Can I talk to a person?")
    one_reason = selectors.agent_queue().get().priority
    services.conversation_request_human(public_id=conversation.public_id)  # already escalated: no new flag
    with transaction.atomic():
        locked = Conversation.objects.select_for_update().get(pk=conversation.pk)
        services.flag(locked, Reason.NEGATIVE_SENTIMENT, detail="sentiment -0.9", score=-0.9, escalate=False)
        locked.save()
    conversation.refresh_from_db()
    assert conversation.priority > one_reason
    reasons = [r["reason"] for r in frames.conversation_frame(conversation)["reasons"]]
    assert reasons == ["negative_sentiment", "customer_request"]  # the heavier reason first

    services.conversation_close(public_id=conversation.public_id, agent=agent)
    conversation.refresh_from_db()
    assert conversation.priority == 0
    assert frames.conversation_frame(conversation)["reasons"] == []
    assert EscalationFlag.objects.filter(conversation=conversation, active=False).count() == 2
