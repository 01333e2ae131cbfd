"""What agents see: the queue in priority order, its filters, SLA alerts, and risky drafts."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.db import transaction

from chatdesk.conversations import frames, realtime, services
from chatdesk.conversations.models import Conversation, Draft
from chatdesk.drafting.base import DraftContext, DraftEngine, DraftResult
from tests.agents.test_consumers import _in_thread, connect, session_cookie
from tests.conftest import UseEngine, say
from tests.conversations.test_consumers import receive_until, run

pytestmark = pytest.mark.django_db(transaction=True)


def flag_angry(conversation: Conversation, sentiment: float = -0.8) -> None:
    """What the sentiment rule does to a conversation: a negative_sentiment flag and the score, under its lock."""
    with transaction.atomic():
        locked = Conversation.objects.select_for_update().get(pk=conversation.pk)
        services.flag(
            locked, "negative_sentiment", detail=f"sentiment {sentiment:+.2f}", score=sentiment, escalate=False
        )
        locked.sentiment = sentiment
        locked.save()
        realtime.conversation_changed(locked.pk)


class FixedConfidence(DraftEngine):
    """Answers everything with the same confidence."""

    def __init__(self, confidence: float) -> None:
        self.confidence = confidence

    def draft(self, context: DraftContext) -> DraftResult:
        return DraftResult(text="Here is what we can do.", confidence=self.confidence)


def drafted(text: str) -> tuple[Conversation, Draft]:
    conversation = services.conversation_start()
    say(conversation, text)
    draft = Draft.objects.get(conversation=conversation)
    services.draft_generate(draft_id=draft.pk)
    draft.refresh_from_db()
    conversation.refresh_from_db()
    return conversation, draft


def test_an_angry_customer_goes_to_the_top_of_the_queue_with_reason_and_sentiment(agent: User) -> None:
    older, newer = services.conversation_start(), services.conversation_start()
    say(older, "talk to a human")
    say(newer, "talk to a human")
    cookie = session_cookie(agent)

    async def scenario() -> None:
        socket = await connect("/ws/agents/queue/", cookie)
        snapshot = await receive_until(socket, "queue")
        assert [item["id"] for item in snapshot["items"]] == [str(older.public_id), str(newer.public_id)]

        await _in_thread(lambda: flag_angry(newer))
        update = await receive_until(socket, "queue.update", id=str(newer.public_id))
        item = update["item"]
        assert item["sentiment"] == -0.8 and item["priority"] == 20 + 30
        assert [r["label"] for r in item["reasons"]] == ["Angry or distressed customer", "Customer asked for a person"]
        assert item["reasons"][0]["detail"] == "sentiment -0.80"
        await socket.disconnect()

        socket = await connect("/ws/agents/queue/", cookie)
        snapshot = await receive_until(socket, "queue")
        assert [item["id"] for item in snapshot["items"]] == [str(newer.public_id), str(older.public_id)]
        await socket.disconnect()

    run(scenario)


def test_an_sla_breach_alerts_a_connected_agent_and_raises_priority(agent: User) -> None:
    waiting = services.conversation_start()
    say(waiting, "talk to a human")
    waiting.refresh_from_db()
    assert waiting.awaiting_reply_since is not None
    later = waiting.awaiting_reply_since + timedelta(seconds=320)
    cookie = session_cookie(agent)

    async def scenario() -> None:
        socket = await connect("/ws/agents/queue/", cookie)
        await receive_until(socket, "queue")
        assert await _in_thread(lambda: services.sla_sweep(later)) == 1
        update = await receive_until(socket, "queue.update", id=str(waiting.public_id))  # the new row, then
        alert = await receive_until(socket, "alert")
        assert alert == {
            "type": "alert",
            "kind": "sla_breach",
            "conversation": str(waiting.public_id),
            "text": f"{waiting.customer_label}: customer waiting 5 min 20 s for a reply (limit 5 min).",
        }
        assert update["item"]["priority"] == 20 + 40
        assert update["item"]["reasons"][0]["label"] == "Waiting too long"

        assert await _in_thread(lambda: services.sla_sweep(later + timedelta(seconds=60))) == 0  # once per wait
        await socket.send_json_to({"type": "ping"})
        assert (await socket.receive_json_from(timeout=5))["type"] == "pong"  # and no second alert before it
        await socket.disconnect()

    run(scenario)


def test_filters_show_one_reason_or_my_conversations_and_keep_live_updates_within_them(
    agent: User, other_agent: User
) -> None:
    asked, angry, mine = (services.conversation_start() for _ in range(3))
    for conversation in (asked, angry, mine):
        say(conversation, "talk to a human")
    flag_angry(angry)
    services.conversation_take_over(public_id=mine.public_id, agent=agent)
    cookie = session_cookie(agent)

    async def scenario() -> None:
        socket = await connect("/ws/agents/queue/", cookie)
        snapshot = await receive_until(socket, "queue")
        assert snapshot["total"] == 3 and snapshot["filter"] == {"reason": None, "topic": None, "mine": False}

        await socket.send_json_to({"type": "filter", "reason": "negative_sentiment"})
        snapshot = await receive_until(socket, "queue")
        assert [item["id"] for item in snapshot["items"]] == [str(angry.public_id)]
        assert (snapshot["total"], snapshot["truncated"]) == (1, False)
        assert snapshot["filter"] == {"reason": "negative_sentiment", "topic": None, "mine": False}
        # A conversation outside the filter changes: the socket hears that it is not in this view.
        await _in_thread(lambda: say(asked, "hello?"))
        update = await receive_until(socket, "queue.update", id=str(asked.public_id))
        assert (update["in_queue"], update["item"]) == (False, None)
        await _in_thread(lambda: flag_angry(asked, -0.5))
        update = await receive_until(socket, "queue.update", id=str(asked.public_id), in_queue=True)
        assert update["item"]["sentiment"] == -0.5

        await socket.send_json_to({"type": "filter", "mine": True})
        snapshot = await receive_until(socket, "queue")
        assert [item["id"] for item in snapshot["items"]] == [str(mine.public_id)]

        await socket.send_json_to({"type": "filter", "topic": "no such topic"})
        assert (await receive_until(socket, "queue"))["items"] == []

        await socket.send_json_to({"type": "filter", "reason": "bored", "request_id": "f-1"})
        error = await receive_until(socket, "error")
        assert (error["code"], error["request_id"]) == ("invalid_request", "f-1")
        await socket.disconnect()

    run(scenario)


def test_a_draft_below_the_threshold_is_risky_with_the_reason_first(
    knowledge: None, use_engine: UseEngine, settings: object
) -> None:
    use_engine(FixedConfidence(0.16))
    _, draft = drafted("Can I pay with bitcoin?")
    shown = frames.draft_frame(draft)["draft"]
    assert shown["risky"] is True
    assert shown["risk_reasons"] == ["Confidence 16% is below the 45% a draft needs."]


def test_a_confident_draft_is_risky_only_when_the_conversation_is_flagged(
    knowledge: None, use_engine: UseEngine
) -> None:
    use_engine(FixedConfidence(0.9))
    conversation, draft = drafted("Where is my order?")
    shown = frames.draft_frame(draft)["draft"]
    assert (shown["risky"], shown["risk_reasons"]) == (False, [])

    flag_angry(conversation)
    draft.refresh_from_db()
    shown = frames.draft_frame(draft)["draft"]
    assert (shown["risky"], shown["risk_reasons"]) == (True, ["Angry or distressed customer: sentiment -0.80."])


def test_reasons_about_time_or_an_earlier_draft_do_not_make_a_confident_draft_risky(
    knowledge: None, use_engine: UseEngine
) -> None:
    use_engine(FixedConfidence(0.2))
    conversation, draft = drafted("hello")
    assert frames.conversation_frame(conversation)["reasons"][0]["reason"] == "low_confidence"
    use_engine(FixedConfidence(0.9))
    say(conversation, "I forgot my password")
    draft = Draft.objects.get(conversation=conversation, status=Draft.Status.PENDING)
    services.draft_generate(draft_id=draft.pk)
    draft.refresh_from_db()
    assert conversation.awaiting_reply_since is not None
    assert services.sla_sweep(conversation.awaiting_reply_since + timedelta(minutes=10)) == 1
    conversation.refresh_from_db()
    assert {r["reason"] for r in frames.conversation_frame(conversation)["reasons"]} == {"low_confidence", "sla_breach"}
    shown = frames.draft_frame(draft)["draft"]
    assert (shown["risky"], shown["risk_reasons"]) == (False, [])
