"""What a client may send, and what it gets back when the frame is wrong: the regressions of issue 9
(lone surrogates, deep nesting, coerced booleans, wrong error codes, resends, hello floods,
malformed conversation ids), through the real ASGI application and Redis channel layer."""

from __future__ import annotations

import json
from typing import Any

import pytest
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User

from chatdesk.asgi import application
from chatdesk.conversations import services
from chatdesk.conversations.models import AgentAction, Conversation, Draft, Message
from tests.agents.test_consumers import HOST, ORIGIN, session_cookie
from tests.conftest import say
from tests.conversations.test_consumers import connect, receive_until, run

pytestmark = pytest.mark.django_db(transaction=True)

LONE_SURROGATE = json.dumps({"type": "message", "client_id": "m-1", "text": "hello \ud83d there"})


async def hello(socket: WebsocketCommunicator, **fields: Any) -> dict[str, Any]:
    await socket.send_json_to({"type": "hello", **fields})
    return await receive_until(socket, "welcome")


async def still_open(socket: WebsocketCommunicator) -> None:
    await socket.send_json_to({"type": "ping"})
    await receive_until(socket, "pong")  # broadcasts about the conversation may come first


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (LONE_SURROGATE, "invalid_text"),
        ('{"type": "message", "client_id": "m-1", "text": "nul \\u0000"}', "invalid_text"),
        ("[" * 100_000 + "]" * 100_000, "invalid_frame"),
        ('{"type": "message", "client_id": "m-1", "text": 5}', "invalid_request"),
        ('{"type": "message", "client_id": "m-1"}', "invalid_request"),
        ('{"type": "message", "client_id": 7, "text": "hi"}', "invalid_request"),
        ('{"type": "hello", "after_seq": true}', "invalid_request"),
        ('{"type": "hello", "after_seq": 1e3}', "invalid_request"),
        ('{"type": "hello", "after_seq": 99999999999999999999}', "invalid_request"),
        ('{"type": "hello", "after_seq": NaN}', "invalid_frame"),
        ('{"type": "history", "before_seq": 0}', "invalid_request"),
    ],
)
def test_a_bad_customer_frame_gets_an_error_frame_the_socket_stays_open_and_nothing_is_stored(
    raw: str, code: str
) -> None:
    async def scenario() -> None:
        socket = await connect()
        await hello(socket)
        await socket.send_to(text_data=raw)
        error = await receive_until(socket, "error")
        assert error["code"] == code and error["message"]
        await still_open(socket)
        await socket.disconnect()

    run(scenario)
    assert not Message.objects.exists()


def test_after_seq_may_be_null_as_an_optional_field() -> None:
    async def scenario() -> None:
        socket = await connect()
        assert (await hello(socket, after_seq=None))["messages"] == []
        await socket.disconnect()

    run(scenario)


def test_a_valid_text_is_stored_in_nfc() -> None:
    async def scenario() -> None:
        socket = await connect()
        await hello(socket)
        await socket.send_json_to({"type": "message", "client_id": "m-1", "text": "cafe\u0301"})
        assert (await receive_until(socket, "ack"))["seq"] == 1
        await socket.disconnect()

    run(scenario)
    assert Message.objects.get().text == "caf\u00e9"


def test_a_resend_is_acked_as_a_duplicate_and_another_text_under_the_same_client_id_is_refused() -> None:
    async def scenario() -> None:
        socket = await connect()
        await hello(socket)
        first = {"type": "message", "client_id": "m-1", "text": "Where is my order?"}
        await socket.send_json_to(first)
        assert (await receive_until(socket, "ack"))["seq"] == 1
        await socket.send_json_to(first)
        again = await receive_until(socket, "ack", duplicate=True)
        assert again["seq"] == 1
        await socket.send_json_to({**first, "text": "Something else entirely"})
        conflict = await receive_until(socket, "error")
        assert (conflict["code"], conflict["seq"], conflict["client_id"]) == ("client_id_conflict", 1, "m-1")
        await socket.disconnect()

    run(scenario)
    assert list(Message.objects.values_list("text", flat=True)) == ["Where is my order?"]


def test_hello_alone_stores_nothing_and_a_hello_flood_is_throttled_per_socket() -> None:
    async def scenario() -> None:
        socket = await connect()
        answers = []
        for _ in range(30):
            await socket.send_json_to({"type": "hello"})
            answers.append(await socket.receive_json_from(timeout=5))
        welcomes = [a for a in answers if a["type"] == "welcome"]
        refused = [a for a in answers if a.get("code") == "rate_limited"]
        assert len(welcomes) == 10 and len(refused) == 20
        assert all(r["retry_after"] >= 1 for r in refused)
        await socket.disconnect()

    run(scenario)
    assert not Conversation.objects.exists()


def test_new_conversations_are_limited_per_client_address(settings: Any) -> None:
    settings.CHAT_CONVERSATIONS_PER_HOUR_PER_ADDRESS = 3

    async def scenario() -> None:
        codes = []
        for n in range(5):
            socket = await connect()
            await hello(socket)
            await socket.send_json_to({"type": "message", "client_id": f"m-{n}", "text": "Hello?"})
            frame = await socket.receive_json_from(timeout=5)
            while frame["type"] not in ("ack", "error"):
                frame = await socket.receive_json_from(timeout=5)
            codes.append(frame.get("code", "ack"))
            await socket.disconnect()
        assert codes == ["ack", "ack", "ack", "rate_limited", "rate_limited"]

    run(scenario)
    assert Conversation.objects.count() == 3


def test_a_malformed_conversation_id_gets_not_found_never_a_server_error(agent: User) -> None:
    cookie = session_cookie(agent)

    async def scenario() -> None:
        for path in ("/ws/agents/conversations/not-a-uuid/", "/ws/nowhere/"):
            socket = WebsocketCommunicator(application, path, headers=[HOST, ORIGIN, cookie])
            connected, _ = await socket.connect()
            assert connected
            assert (await socket.receive_json_from())["code"] == "not_found"
            assert (await socket.receive_output())["code"] == 4404
            await socket.disconnect()  # ends the consumer's task; left pending, it hangs the loop's shutdown

    run(scenario)


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ({"type": "approve", "draft_id": True}, "invalid_request"),
        ({"type": "approve", "draft_id": "7"}, "invalid_request"),
        ({"type": "edit", "draft_id": 1, "text": "hi \ud83d"}, "invalid_text"),
        ({"type": "reply", "text": "hi \ud83d"}, "invalid_text"),
        ({"type": "reply", "text": 5}, "invalid_request"),
        ({"type": "reject", "draft_id": 1, "redraft": "yes"}, "invalid_request"),
        ({"type": "approve"}, "invalid_request"),
        ({"type": "approve", "draft_id": 1, "request_id": {"a": 1}}, "invalid_request"),
    ],
)
def test_a_bad_agent_frame_gets_an_error_frame_and_changes_nothing(
    conversation: Conversation, agent: User, frame: dict[str, Any], code: str
) -> None:
    say(conversation, "Where is my order?")
    cookie = session_cookie(agent)

    async def scenario() -> None:
        socket = WebsocketCommunicator(
            application, f"/ws/agents/conversations/{conversation.public_id}/", headers=[HOST, ORIGIN, cookie]
        )
        assert (await socket.connect())[0]
        await socket.send_json_to(frame)
        assert (await receive_until(socket, "error"))["code"] == code
        await still_open(socket)
        await socket.disconnect()

    run(scenario)
    assert Message.objects.count() == 1
    assert not AgentAction.objects.exists()


class TestDraftsAnswerTheLatestQuestion:
    def test_an_escalated_conversation_gets_a_draft_for_each_new_message(
        self, conversation: Conversation, knowledge: None
    ) -> None:
        say(conversation, "I want to talk to a human")
        assert Conversation.objects.get().status == Conversation.Status.ESCALATED
        assert not Draft.objects.exists()
        asked = say(conversation, "How long does a refund take?")
        draft = Draft.objects.get()
        assert draft.reply_to_id == asked.pk
        services.draft_generate(draft_id=draft.pk)
        assert Draft.objects.get().status == Draft.Status.READY

    def test_a_ready_draft_for_an_older_question_is_superseded_and_cannot_be_sent(
        self, conversation: Conversation, knowledge: None, agent: User
    ) -> None:
        say(conversation, "How long does a refund take?")
        old = Draft.objects.get()
        services.draft_generate(draft_id=old.pk)
        services.conversation_request_human(public_id=conversation.public_id)
        say(conversation, "Actually, which payment methods do you accept?")
        from chatdesk.conversations.errors import ServiceError

        with pytest.raises(ServiceError) as refused:
            services.draft_approve(public_id=conversation.public_id, draft_id=old.pk, agent=agent)
        assert refused.value.code == "draft_not_ready"
        assert Draft.objects.get(pk=old.pk).status == Draft.Status.SUPERSEDED
        assert not Message.objects.filter(sender=Message.Sender.AGENT).exists()
        newest = Draft.objects.exclude(pk=old.pk).get()
        assert newest.reply_to.text.startswith("Actually")


def test_a_resume_cursor_older_than_one_frame_replays_is_told_to_reset_and_can_page_back(settings: Any) -> None:
    settings.CHAT_REPLAY_MESSAGES = 5
    conversation = services.conversation_start()
    for n in range(12):
        say(conversation, f"line {n}")
        Message.objects.filter(conversation=conversation).update(created_at="2000-01-01T00:00:00Z")  # no rate limit

    async def scenario() -> None:
        socket = await connect()
        from chatdesk.conversations.tokens import conversation_token

        token = conversation_token(conversation.public_id)
        behind = await hello(socket, token=token, after_seq=1)
        assert behind["reset"] is True and [m["seq"] for m in behind["messages"]] == [8, 9, 10, 11, 12]
        nearly = await hello(socket, token=token, after_seq=9)
        assert nearly["reset"] is False and [m["seq"] for m in nearly["messages"]] == [10, 11, 12]
        await socket.send_json_to({"type": "history", "before_seq": 8})
        older = await receive_until(socket, "history")
        assert ([m["seq"] for m in older["messages"]], older["has_more"]) == ([3, 4, 5, 6, 7], True)
        await socket.send_json_to({"type": "history", "before_seq": 3})
        oldest = await receive_until(socket, "history")
        assert ([m["seq"] for m in oldest["messages"]], oldest["has_more"]) == ([1, 2], False)
        await socket.disconnect()

    run(scenario)


def test_customer_messages_are_limited_per_client_address_across_conversations(settings: Any) -> None:
    settings.CHAT_MESSAGES_PER_MINUTE_PER_ADDRESS = 4

    async def scenario() -> None:
        codes = []
        for n in range(3):
            socket = await connect()
            await hello(socket)
            for m in range(2):
                await socket.send_json_to({"type": "message", "client_id": f"m-{n}-{m}", "text": "Hello?"})
                frame = await socket.receive_json_from(timeout=5)
                while frame["type"] not in ("ack", "error"):
                    frame = await socket.receive_json_from(timeout=5)
                codes.append(frame.get("code", "ack"))
            await socket.disconnect()
        assert codes == ["ack"] * 4 + ["rate_limited"] * 2

    run(scenario)
    assert Message.objects.count() == 4
