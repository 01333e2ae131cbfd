"""What the handoff reports aggregate is recorded as it happens (docs/architecture.md, "Recorded for
reports"), and the customer's CSAT rating of a closing (docs/protocol.md, `rate`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.apps import apps
from django.contrib.auth.models import User
from rapidfuzz.distance import Levenshtein

from chatdesk.asgi import application
from chatdesk.conversations import frames, privacy, services
from chatdesk.conversations.errors import ServiceError
from chatdesk.conversations.models import AgentAction, Conversation, Draft, Message, Rating
from chatdesk.conversations.tokens import conversation_token
from chatdesk.drafting.base import DraftContext, DraftEngine, DraftResult
from chatdesk.drafting.encoder import ENCODER_NAME
from chatdesk.knowledge.models import Topic
from tests.conftest import UseEngine, draft_now, refreshed, say
from tests.conversations.test_consumers import receive_until

DRAFTED = "Your parcel left our warehouse this morning and arrives tomorrow."


class Fixed(DraftEngine):
    """Always the same draft, with the cost figures an engine reports."""

    def draft(self, context: DraftContext) -> DraftResult:
        return DraftResult(
            text=DRAFTED, confidence=0.95, topic="orders", tokens=17, prompt_tokens=412, model_name="tiny-llama-test"
        )


@pytest.fixture
def fixed_engine(db: Any, use_engine: UseEngine) -> None:
    Topic.objects.get_or_create(name="orders")
    use_engine(Fixed())


def seconds(start: Any, end: Any) -> float:
    return float((end - start).total_seconds())


@pytest.mark.django_db
class TestRecordedOnWrite:
    def test_a_scripted_conversation_records_every_value(
        self, fixed_engine: None, conversation: Conversation, agent: User
    ) -> None:
        question = say(conversation, "Where is my order?")
        assert refreshed(conversation).first_customer_at == question.created_at
        assert conversation.first_response_at is None

        first = draft_now(conversation)
        assert first.status == Draft.Status.READY
        assert first.draft_seconds == pytest.approx(seconds(question.created_at, first.ready_at))
        assert (first.tokens, first.prompt_tokens, first.model_name) == (17, 412, "tiny-llama-test")
        assert first.review_seconds is None and first.edit_distance is None

        reply = services.draft_approve(public_id=conversation.public_id, draft_id=first.pk, agent=agent)
        first.refresh_from_db()
        assert first.status == Draft.Status.APPROVED
        assert first.review_seconds == pytest.approx(seconds(first.ready_at, first.decided_at))
        assert (first.edit_distance, first.chars_changed) == (0.0, 0)
        assert refreshed(conversation).first_response_at == reply.created_at

        say(conversation, "Can it come on Friday instead?")
        second = draft_now(conversation)
        sent = "Your parcel left our warehouse this morning; we can deliver it on Friday."
        services.draft_edit(public_id=conversation.public_id, draft_id=second.pk, agent=agent, text=sent)
        second.refresh_from_db()
        assert second.status == Draft.Status.EDITED
        assert second.edit_distance == pytest.approx(Levenshtein.normalized_distance(DRAFTED, sent))
        assert second.chars_changed == Levenshtein.distance(DRAFTED, sent) > 0
        assert 0 < second.edit_distance < 1
        assert second.review_seconds == pytest.approx(seconds(second.ready_at, second.decided_at))
        assert refreshed(conversation).first_response_at == reply.created_at  # the first one stays

        say(conversation, "And the invoice?")
        third = draft_now(conversation)
        services.draft_reject(public_id=conversation.public_id, draft_id=third.pk, agent=agent)
        third.refresh_from_db()
        assert third.status == Draft.Status.REJECTED
        assert third.review_seconds == pytest.approx(seconds(third.ready_at, third.decided_at))
        assert (third.edit_distance, third.chars_changed) == (None, None)  # nothing of it was sent

        services.conversation_close(public_id=conversation.public_id, agent=agent)
        closed = refreshed(conversation)
        assert closed.closed_at is not None and closed.reopened_count == 0
        first_close = closed.closed_at

        say(conversation, "One more thing")
        assert (refreshed(conversation).status, conversation.reopened_count) == (Conversation.Status.OPEN, 1)
        assert conversation.closed_at == first_close  # when it was last closed, until it closes again
        services.conversation_close(public_id=conversation.public_id, agent=agent)
        assert refreshed(conversation).closed_at > first_close
        say(conversation, "Sorry, still here")
        assert refreshed(conversation).reopened_count == 2
        assert conversation.first_customer_at == question.created_at

    def test_a_conversation_with_no_drafts(self, conversation: Conversation, agent: User) -> None:
        asked = say(conversation, "I want to talk to a human")
        assert not Draft.objects.filter(conversation=conversation).exists()
        answer = services.agent_reply(public_id=conversation.public_id, agent=agent, text="Hello, Alice here.")
        conversation = refreshed(conversation)
        assert (conversation.first_customer_at, conversation.first_response_at) == (
            asked.created_at,
            answer.created_at,
        )
        take_over = AgentAction.objects.get(conversation=conversation, kind=AgentAction.Kind.TAKE_OVER)
        assert take_over.draft is None

    def test_a_greeting_before_the_first_customer_message_is_not_the_first_response(
        self, conversation: Conversation, agent: User
    ) -> None:
        services.conversation_request_human(public_id=conversation.public_id)
        services.agent_reply(public_id=conversation.public_id, agent=agent, text="Hi, how can I help?")
        assert refreshed(conversation).first_response_at is None
        question = say(conversation, "My parcel is late")
        answer = services.agent_reply(public_id=conversation.public_id, agent=agent, text="Let me check.")
        conversation = refreshed(conversation)
        assert (conversation.first_customer_at, conversation.first_response_at) == (
            question.created_at,
            answer.created_at,
        )

    def test_taken_over_before_any_draft_was_ready(
        self, fixed_engine: None, conversation: Conversation, agent: User
    ) -> None:
        say(conversation, "Where is my order?")
        pending = Draft.objects.get(conversation=conversation)
        services.conversation_take_over(public_id=conversation.public_id, agent=agent)
        pending.refresh_from_db()
        assert pending.status == Draft.Status.TAKEN_OVER
        assert (pending.decided_by, pending.review_seconds, pending.draft_seconds) == (agent, None, None)
        take_over = AgentAction.objects.get(conversation=conversation, kind=AgentAction.Kind.TAKE_OVER)
        assert take_over.draft == pending
        services.draft_generate(draft_id=pending.pk)  # its task runs late: nothing changes
        pending.refresh_from_db()
        assert pending.status == Draft.Status.TAKEN_OVER and pending.text == ""

    def test_taken_over_while_a_draft_awaited_review(
        self, fixed_engine: None, conversation: Conversation, agent: User
    ) -> None:
        say(conversation, "Where is my order?")
        ready = draft_now(conversation)
        services.agent_reply(public_id=conversation.public_id, agent=agent, text="I will check myself.")
        ready.refresh_from_db()
        assert ready.status == Draft.Status.TAKEN_OVER
        assert ready.review_seconds == pytest.approx(seconds(ready.ready_at, ready.decided_at))
        assert ready.edit_distance is None
        take_over = AgentAction.objects.get(conversation=conversation, kind=AgentAction.Kind.TAKE_OVER)
        assert (take_over.draft, take_over.draft_text) == (ready, DRAFTED)
        with pytest.raises(ServiceError) as refused:
            services.draft_approve(public_id=conversation.public_id, draft_id=ready.pk, agent=agent)
        assert refused.value.code == "already_handled"

    def test_closing_discards_rather_than_takes_over(
        self, fixed_engine: None, conversation: Conversation, agent: User
    ) -> None:
        say(conversation, "Where is my order?")
        ready = draft_now(conversation)
        services.conversation_close(public_id=conversation.public_id, agent=agent)
        ready.refresh_from_db()
        assert ready.status == Draft.Status.DISCARDED and ready.review_seconds is None

    def test_a_draft_edited_to_its_own_text_counts_as_sent_as_drafted(
        self, fixed_engine: None, conversation: Conversation, agent: User
    ) -> None:
        say(conversation, "Where is my order?")
        draft = draft_now(conversation)
        services.draft_edit(public_id=conversation.public_id, draft_id=draft.pk, agent=agent, text=f"  {DRAFTED}\n")
        draft.refresh_from_db()
        assert draft.status == Draft.Status.APPROVED
        assert (draft.edit_distance, draft.chars_changed) == (0.0, 0)
        action = AgentAction.objects.get(conversation=conversation, draft=draft)
        assert action.kind == AgentAction.Kind.APPROVE

    def test_autopilot_records_a_first_response_and_no_review(
        self, fixed_engine: None, conversation: Conversation
    ) -> None:
        Topic.objects.filter(name="orders").update(autopilot=True, autopilot_min_confidence=0.5)
        question = say(conversation, "Where is my order?")
        draft = draft_now(conversation)
        assert draft.status == Draft.Status.AUTO_SENT
        assert (draft.review_seconds, draft.edit_distance, draft.chars_changed) == (0.0, 0.0, 0)
        assert draft.draft_seconds == pytest.approx(seconds(question.created_at, draft.ready_at))
        bot = Message.objects.get(conversation=conversation, sender=Message.Sender.BOT)
        assert refreshed(conversation).first_response_at == bot.created_at

    def test_the_retrieval_engine_reports_its_encoder_and_no_tokens(
        self, knowledge: None, conversation: Conversation
    ) -> None:
        say(conversation, "Where is my order?")
        draft = draft_now(conversation)
        assert (draft.engine, draft.model_name, draft.prompt_tokens, draft.tokens) == ("retrieval", ENCODER_NAME, 0, 0)


def assert_close(rows: list[tuple[Any, ...]], expected: list[tuple[Any, ...]]) -> None:
    """Equal, but times and seconds within 0.1 s."""
    assert len(rows) == len(expected)
    for row, want in zip(rows, expected, strict=True):
        for value, wanted in zip(row, want, strict=True):
            if isinstance(wanted, datetime):
                assert value is not None and abs(seconds(value, wanted)) < 0.1, (row, want)
            elif isinstance(wanted, float):
                assert value == pytest.approx(wanted, abs=0.1), (row, want)
            else:
                assert value == wanted, (row, want)


@pytest.mark.django_db
class TestBackfill:
    """Migration 0009 derives, for rows stored before recording, what recording stores live."""

    def test_backfill_matches_what_is_recorded_on_write(
        self, fixed_engine: None, conversation: Conversation, agent: User, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from importlib import import_module

        migration = import_module("chatdesk.conversations.migrations.0009_backfill_report_columns")
        monkeypatch.setattr(migration, "BATCH", 2)  # several windows, even on this small data set
        say(conversation, "Where is my order?")
        approved = draft_now(conversation)
        services.draft_approve(public_id=conversation.public_id, draft_id=approved.pk, agent=agent)
        say(conversation, "Friday?")
        edited = draft_now(conversation)
        services.draft_edit(public_id=conversation.public_id, draft_id=edited.pk, agent=agent, text="Friday works.")
        services.conversation_close(public_id=conversation.public_id, agent=agent)
        say(conversation, "Thanks, one more question")
        dropped = draft_now(conversation)
        services.conversation_take_over(public_id=conversation.public_id, agent=agent)
        other = services.conversation_start()
        say(other, "Hello?")
        discarded = Draft.objects.get(conversation=other)
        services.conversation_close(public_id=other.public_id, agent=agent)

        columns = ["first_customer_at", "first_response_at", "closed_at", "reopened_count"]
        draft_columns = ["status", "decided_by", "review_seconds", "draft_seconds", "edit_distance", "chars_changed"]
        recorded = list(Conversation.objects.order_by("pk").values_list(*columns))
        recorded_drafts = list(Draft.objects.order_by("pk").values_list(*draft_columns))
        take_over = AgentAction.objects.get(kind=AgentAction.Kind.TAKE_OVER)
        assert take_over.draft == dropped
        # As a desk before 0009 stored them.
        Conversation.objects.update(first_customer_at=None, first_response_at=None, closed_at=None, reopened_count=0)
        Draft.objects.update(review_seconds=None, draft_seconds=None, edit_distance=None, chars_changed=None)
        Draft.objects.filter(status=Draft.Status.TAKEN_OVER).update(
            status=Draft.Status.DISCARDED, decided_by=None, decided_at=None
        )
        AgentAction.objects.update(draft=None)

        migration.backfill(apps, None)

        # Times come from the actions and messages stored a moment after the live values were taken.
        assert_close(list(Conversation.objects.order_by("pk").values_list(*columns)), recorded)
        assert_close(list(Draft.objects.order_by("pk").values_list(*draft_columns)), recorded_drafts)
        assert AgentAction.objects.get(kind=AgentAction.Kind.TAKE_OVER).draft == dropped
        assert Draft.objects.get(pk=discarded.pk).status == Draft.Status.DISCARDED


@pytest.mark.django_db
class TestRatingService:
    def test_a_rating_is_for_the_closing_and_changeable_until_the_customer_writes(
        self, conversation: Conversation, agent: User
    ) -> None:
        say(conversation, "Where is my order?")
        with pytest.raises(ServiceError) as refused:
            services.conversation_rate(public_id=conversation.public_id, score=4)
        assert refused.value.code == "rating_closed"
        services.conversation_close(public_id=conversation.public_id, agent=agent)
        assert frames.status_frame(refreshed(conversation))["can_rate"] is True
        assert frames.status_frame(conversation)["rating"] is None

        services.conversation_rate(public_id=conversation.public_id, score=4, comment="  Quick, thanks  ")
        rating = Rating.objects.get(conversation=conversation)
        assert (rating.after_seq, rating.score, rating.comment) == (1, 4, "Quick, thanks")
        services.conversation_rate(public_id=conversation.public_id, score=5)
        rating = Rating.objects.get(conversation=conversation)
        assert (rating.score, rating.comment) == (5, "")
        assert frames.status_frame(refreshed(conversation))["rating"]["score"] == 5

        say(conversation, "Actually, one more thing")
        with pytest.raises(ServiceError) as refused:
            services.conversation_rate(public_id=conversation.public_id, score=1)
        assert refused.value.code == "rating_closed"
        assert Rating.objects.get(conversation=conversation).score == 5
        status = frames.status_frame(refreshed(conversation))
        assert (status["can_rate"], status["rating"]) == (False, None)
        assert frames.conversation_frame(conversation)["rating"]["score"] == 5  # agents still see it

        services.conversation_close(public_id=conversation.public_id, agent=agent)
        services.conversation_rate(public_id=conversation.public_id, score=2)
        assert sorted(Rating.objects.values_list("after_seq", "score")) == [(1, 5), (2, 2)]

    @pytest.mark.parametrize(
        ("score", "comment", "code", "field"),
        [
            (0, None, "invalid_request", "score"),
            (6, None, "invalid_request", "score"),
            ("4", None, "invalid_request", "score"),
            (True, None, "invalid_request", "score"),
            (4.5, None, "invalid_request", "score"),
            (4, 17, "invalid_request", "comment"),
            (4, "x" * 4001, "message_too_long", "comment"),
            (4, "bad \ud83d", "invalid_text", "comment"),
        ],
    )
    def test_bad_ratings_are_refused_clearly(
        self, conversation: Conversation, agent: User, score: Any, comment: Any, code: str, field: str
    ) -> None:
        say(conversation, "Hello")
        services.conversation_close(public_id=conversation.public_id, agent=agent)
        with pytest.raises(ServiceError) as refused:
            services.conversation_rate(public_id=conversation.public_id, score=score, comment=comment)
        assert (refused.value.code, refused.value.details.get("field")) == (code, field)
        assert not Rating.objects.exists()

    def test_a_rating_comment_is_in_the_customers_export_and_erased_with_their_data(
        self, conversation: Conversation, agent: User
    ) -> None:
        say(conversation, "Hello")
        services.conversation_close(public_id=conversation.public_id, agent=agent)
        services.conversation_rate(public_id=conversation.public_id, score=2, comment="Call me on 0612345678")
        exported = privacy.customer_data_export([conversation])["conversations"][0]["ratings"]
        assert [(r["after_seq"], r["score"], r["comment"]) for r in exported] == [(1, 2, "Call me on 0612345678")]
        privacy.customer_data_erase([conversation])
        assert list(Rating.objects.values_list("score", "comment")) == [(2, "")]  # reports keep the score

    def test_the_customer_ends_the_chat(self, fixed_engine: None, conversation: Conversation) -> None:
        say(conversation, "Where is my order?")
        draft = draft_now(conversation)
        services.conversation_end(public_id=conversation.public_id)
        conversation = refreshed(conversation)
        assert conversation.status == Conversation.Status.CLOSED and conversation.closed_at is not None
        assert conversation.awaiting_reply_since is None
        draft.refresh_from_db()
        assert draft.status == Draft.Status.DISCARDED
        services.conversation_rate(public_id=conversation.public_id, score=3)
        closed_at = conversation.closed_at
        services.conversation_end(public_id=conversation.public_id)  # ending twice changes nothing
        assert refreshed(conversation).closed_at == closed_at
        say(conversation, "Back again")
        assert refreshed(conversation).reopened_count == 1


ORIGIN = (b"origin", b"http://127.0.0.1:8000")


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    async_to_sync(scenario)()


async def customer(conversation: Conversation) -> WebsocketCommunicator:
    socket = WebsocketCommunicator(application, "/ws/chat/", headers=[ORIGIN, (b"host", b"127.0.0.1:8000")])
    connected, _ = await socket.connect()
    assert connected
    await socket.send_json_to({"type": "hello", "token": conversation_token(conversation.public_id)})
    return socket


@pytest.mark.django_db(transaction=True)
def test_rating_frames_on_the_customer_socket(agent: User) -> None:
    conversation = services.conversation_start()
    say(conversation, "I want to talk to a human")
    services.conversation_close(public_id=conversation.public_id, agent=agent)

    async def scenario() -> None:
        socket = await customer(conversation)
        welcome = await receive_until(socket, "welcome")
        assert (welcome["status"], welcome["can_rate"], welcome["rating"]) == ("closed", True, None)
        await socket.send_json_to({"type": "rate", "score": 4, "comment": "Kind people", "request_id": "r-1"})
        ack = await receive_until(socket, "ack", action="rate")
        assert ack["request_id"] == "r-1"
        assert (ack["rating"]["score"], ack["rating"]["comment"]) == (4, "Kind people")
        status = await receive_until(socket, "status", status="closed")
        assert status["can_rate"] is True and status["rating"]["score"] == 4
        for bad in (0, 6, "5", None, 2.5):
            await socket.send_json_to({"type": "rate", "score": bad, "request_id": "r-2"})
            error = await receive_until(socket, "error")
            assert (error["code"], error["field"], error["request_id"]) == ("invalid_request", "score", "r-2")
        await socket.send_json_to({"type": "message", "client_id": "m-2", "text": "One more question"})
        await receive_until(socket, "ack", client_id="m-2")
        await socket.send_json_to({"type": "rate", "score": 1})
        error = await receive_until(socket, "error")
        assert error["code"] == "rating_closed" and error["message"]
        await socket.send_json_to({"type": "end", "request_id": "e-1"})
        await receive_until(socket, "ack", action="end", request_id="e-1")
        ended = await receive_until(socket, "status", status="closed")
        assert (ended["can_rate"], ended["rating"]) == (True, None)  # a new closing, not rated yet
        await socket.disconnect()

    run(scenario)
    assert list(Rating.objects.values_list("after_seq", "score", "comment")) == [(1, 4, "Kind people")]
