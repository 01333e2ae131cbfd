"""What the services keep on a conversation for the reports (who answered, when it was taken over and
handed off) is what its rows say (chatdesk/conversations/facts.py): after each step of a scripted
conversation the noted values equal those derived from its messages, drafts, actions and flags."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User

from chatdesk.conversations import facts, services
from chatdesk.conversations.models import Conversation
from chatdesk.drafting.base import DraftContext, DraftEngine, DraftResult
from chatdesk.knowledge.models import Topic
from tests.conftest import UseEngine, draft_now, refreshed, say

AnsweredBy = Conversation.AnsweredBy
DRAFTED = "Your parcel left our warehouse this morning and arrives tomorrow."


class Fixed(DraftEngine):
    def draft(self, context: DraftContext) -> DraftResult:
        return DraftResult(text=DRAFTED, confidence=0.95, topic="orders")


@pytest.fixture
def fixed_engine(db: Any, use_engine: UseEngine) -> None:
    Topic.objects.get_or_create(name="orders")
    use_engine(Fixed())


def noted_and_derived(conversation: Conversation) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    noted = refreshed(conversation)
    facts.recompute(Conversation.objects.filter(pk=conversation.pk))
    derived = refreshed(conversation)
    keys = ("answered_by", "taken_over_at", "handed_off_at")
    return tuple(getattr(noted, k) for k in keys), tuple(getattr(derived, k) for k in keys)


def assert_kept(conversation: Conversation, answered_by: str) -> Conversation:
    noted, derived = noted_and_derived(conversation)
    assert noted == derived
    assert noted[0] == answered_by
    return refreshed(conversation)


@pytest.mark.django_db
class TestKeptOnWrite:
    def test_drafts_sent_as_is_then_edited_then_a_person(
        self, fixed_engine: None, conversation: Conversation, agent: User
    ) -> None:
        say(conversation, "Where is my order?")
        assert_kept(conversation, AnsweredBy.NONE)
        first = draft_now(conversation)
        services.draft_approve(public_id=conversation.public_id, draft_id=first.pk, agent=agent)
        assert_kept(conversation, AnsweredBy.AS_IS)

        say(conversation, "And the other one?")
        same = draft_now(conversation)  # "edited" into its own text: still as is
        services.draft_edit(public_id=conversation.public_id, draft_id=same.pk, agent=agent, text=DRAFTED)
        assert_kept(conversation, AnsweredBy.AS_IS)

        say(conversation, "Can it come on Friday?")
        second = draft_now(conversation)
        services.draft_edit(public_id=conversation.public_id, draft_id=second.pk, agent=agent, text="Friday works.")
        kept = assert_kept(conversation, AnsweredBy.EDITED)
        assert kept.taken_over_at is None and kept.handed_off_at is None

        say(conversation, "Thanks, and a refund for the last one?")
        third = draft_now(conversation)
        services.draft_reject(
            public_id=conversation.public_id, draft_id=third.pk, agent=agent, reply_text="I'll look into it."
        )
        kept = assert_kept(conversation, AnsweredBy.PERSON)
        assert kept.taken_over_at is None  # an own reply instead of a draft is a person's answer, not a take-over

    def test_a_take_over_before_any_draft(self, fixed_engine: None, conversation: Conversation, agent: User) -> None:
        say(conversation, "Hello?")
        services.conversation_take_over(public_id=conversation.public_id, agent=agent)
        kept = assert_kept(conversation, AnsweredBy.PERSON)
        assert kept.taken_over_at is not None and kept.handed_off_at == kept.taken_over_at
        services.agent_reply(public_id=conversation.public_id, agent=agent, text="Hi, how can I help?")
        assert assert_kept(conversation, AnsweredBy.PERSON).taken_over_at == kept.taken_over_at

    def test_an_escalation_hands_it_off_without_an_answer(self, fixed_engine: None, conversation: Conversation) -> None:
        say(conversation, "Where is my order?")
        services.conversation_request_human(public_id=conversation.public_id)
        kept = assert_kept(conversation, AnsweredBy.NONE)
        assert kept.handed_off_at is not None and kept.taken_over_at is None
        assert kept.handed_off_at == kept.flags.order_by("created_at").first().created_at  # type: ignore[union-attr]
