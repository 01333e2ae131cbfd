"""Service levels: the sweep, driven by the test's clock, flags a conversation waiting too long once per wait."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.utils import timezone

from chatdesk.celery import app
from chatdesk.conversations import frames, services, tasks
from chatdesk.conversations.models import Conversation, Draft
from tests.conftest import say

pytestmark = pytest.mark.django_db(transaction=True)


def since(conversation: Conversation) -> datetime:
    conversation.refresh_from_db()
    assert conversation.awaiting_reply_since is not None
    return conversation.awaiting_reply_since


def breaches(conversation: Conversation) -> list[dict[str, object]]:
    conversation.refresh_from_db()
    return [r for r in frames.conversation_frame(conversation)["reasons"] if r["reason"] == "sla_breach"]


def test_a_waiting_customer_is_flagged_once_after_the_limit_not_before(conversation: Conversation) -> None:
    say(conversation, "talk to a human")  # escalated: no draft, only the customer's wait counts
    start = since(conversation)
    priority_before = conversation.priority

    assert services.sla_sweep(start + timedelta(seconds=299)) == 0
    assert breaches(conversation) == []

    assert services.sla_sweep(start + timedelta(seconds=301)) == 1
    [breach] = breaches(conversation)
    assert breach["label"] == "Waiting too long"
    assert breach["detail"] == "customer waiting 5 min 01 s for a reply (limit 5 min)"
    assert conversation.priority == priority_before + 40

    assert services.sla_sweep(start + timedelta(seconds=900)) == 0
    assert len(breaches(conversation)) == 1


def test_a_draft_left_unreviewed_is_flagged_without_escalating(knowledge: None, conversation: Conversation) -> None:
    say(conversation, "How long does a refund take?")
    draft = Draft.objects.get(conversation=conversation)
    services.draft_generate(draft_id=draft.pk)
    draft.refresh_from_db()
    assert draft.status == Draft.Status.READY and draft.ready_at is not None
    ready = draft.ready_at

    assert services.sla_sweep(ready + timedelta(seconds=119)) == 0
    assert services.sla_sweep(ready + timedelta(seconds=121)) == 1
    [breach] = breaches(conversation)
    assert str(breach["detail"]).startswith("draft awaiting review 2 min 01 s (limit 2 min)")
    assert conversation.status == Conversation.Status.OPEN  # still drafted; it only moved up the queue
    assert frames.status_frame(conversation)["status"] == "reviewing"


def test_each_waiting_episode_is_flagged_once_even_after_a_hand_back(conversation: Conversation, agent: User) -> None:
    say(conversation, "talk to a human")
    first = since(conversation)
    assert services.sla_sweep(first + timedelta(seconds=400)) == 1
    services.conversation_take_over(public_id=conversation.public_id, agent=agent)
    services.conversation_hand_back(public_id=conversation.public_id, agent=agent)  # clears the flags
    assert breaches(conversation) == []
    assert services.sla_sweep(first + timedelta(seconds=800)) == 0  # the same customer is still waiting

    services.agent_reply(public_id=conversation.public_id, agent=agent, text="Sorry for the wait, I am here.")
    assert services.sla_sweep(first + timedelta(seconds=900)) == 0  # answered: nobody waits
    say(conversation, "talk to a human again please")
    second = since(conversation)
    assert services.sla_sweep(second + timedelta(seconds=301)) == 1
    assert len(breaches(conversation)) == 1


def test_closed_and_answered_conversations_are_left_alone(conversation: Conversation, agent: User) -> None:
    say(conversation, "talk to a human")
    start = since(conversation)
    services.conversation_close(public_id=conversation.public_id, agent=agent)
    assert services.sla_sweep(start + timedelta(hours=1)) == 0
    assert breaches(conversation) == []


def test_beat_runs_the_sweep_on_the_current_clock(conversation: Conversation) -> None:
    entry = settings.CELERY_BEAT_SCHEDULE["sla-sweep"]
    assert entry["task"] == tasks.sla_sweep.name and entry["task"] in app.tasks
    assert entry["schedule"] == settings.SLA_SWEEP_EVERY_S
    say(conversation, "talk to a human")
    assert tasks.sla_sweep() == 0  # just arrived
    # The customer has been waiting six minutes (moved back in the data: the task reads the real clock).
    Conversation.objects.filter(pk=conversation.pk).update(awaiting_reply_since=timezone.now() - timedelta(minutes=6))
    conversation.messages.update(created_at=timezone.now() - timedelta(minutes=6))
    assert tasks.sla_sweep() == 1
    assert str(breaches(conversation)[0]["detail"]).startswith("customer waiting 6 min")
