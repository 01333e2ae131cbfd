"""Agents' websockets: who may connect, the live queue, and actions on a conversation."""

from __future__ import annotations

import time
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User
from django.test import Client

from chatdesk.asgi import application
from chatdesk.conversations import services
from chatdesk.conversations.models import Conversation, Draft
from chatdesk.conversations.tokens import conversation_token
from chatdesk.drafting.base import DraftContext, DraftEngine, DraftResult
from chatdesk.knowledge.models import OutOfScopeExample
from tests.conftest import UseEngine, say
from tests.conversations.test_consumers import receive_until, run

pytestmark = pytest.mark.django_db(transaction=True)

HOST = (b"host", b"127.0.0.1:8000")
ORIGIN = (b"origin", b"http://127.0.0.1:8000")


def session_cookie(user: User) -> tuple[bytes, bytes]:
    client = Client()
    client.force_login(user)
    return (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())


async def connect(path: str, *headers: tuple[bytes, bytes]) -> WebsocketCommunicator:
    socket = WebsocketCommunicator(application, path, headers=[HOST, ORIGIN, *headers])
    connected, _ = await socket.connect()
    assert connected
    return socket


@pytest.fixture
def waiting(knowledge: None) -> Conversation:
    """A conversation whose customer asked about refunds, with its draft ready."""
    conversation = services.conversation_start()
    say(conversation, "How long does a refund take?")
    draft = Draft.objects.get(conversation=conversation)
    services.draft_generate(draft_id=draft.pk)
    return conversation


@pytest.mark.parametrize(
    "path", ["/ws/agents/queue/", "/ws/agents/conversations/00000000-0000-0000-0000-000000000000/"]
)
def test_without_a_session_the_socket_says_why_and_closes(path: str) -> None:
    async def scenario() -> None:
        socket = await connect(path)
        assert (await socket.receive_json_from())["code"] == "not_agent"
        assert (await socket.receive_output())["code"] == 4403
        await socket.disconnect()

    run(scenario)


def test_a_signed_in_user_who_is_no_agent_is_refused(outsider: User) -> None:
    cookie = session_cookie(outsider)

    async def scenario() -> None:
        socket = await connect("/ws/agents/queue/", cookie)
        assert (await socket.receive_json_from())["code"] == "not_agent"
        assert (await socket.receive_output())["code"] == 4403
        await socket.disconnect()

    run(scenario)


def test_agent_sockets_refuse_other_sites(agent: User) -> None:
    cookie = session_cookie(agent)

    async def scenario() -> None:
        socket = WebsocketCommunicator(
            application, "/ws/agents/queue/", headers=[HOST, (b"origin", b"http://evil.example"), cookie]
        )
        connected, _ = await socket.connect()
        assert not connected

    run(scenario)


def test_the_queue_shows_waiting_conversations_and_updates_live(waiting: Conversation, agent: User) -> None:
    cookie = session_cookie(agent)
    newcomer = services.conversation_start()
    draft = Draft.objects.get(conversation=waiting)

    async def scenario() -> None:
        socket = await connect("/ws/agents/queue/", cookie)
        snapshot = await socket.receive_json_from()
        assert snapshot["type"] == "queue"
        [item] = snapshot["items"]
        assert item["id"] == str(waiting.public_id)
        assert (item["draft_status"], item["latest_customer_text"]) == ("ready", "How long does a refund take?")
        assert item["awaiting_reply_since"]

        await _in_thread(lambda: say(newcomer, "talk to a human"))
        update = await receive_until(socket, "queue.update", id=str(newcomer.public_id))
        assert update["in_queue"] and update["item"]["escalation_reason"] == "customer_request"

        await _in_thread(lambda: services.draft_approve(public_id=waiting.public_id, draft_id=draft.pk, agent=agent))
        update = await receive_until(socket, "queue.update", id=str(waiting.public_id))
        assert update == {"type": "queue.update", "id": str(waiting.public_id), "in_queue": False, "item": None}
        await socket.disconnect()

    run(scenario)


def test_a_conversation_socket_sends_a_snapshot_and_approve_reaches_the_customer(
    waiting: Conversation, agent: User
) -> None:
    cookie = session_cookie(agent)

    async def scenario() -> None:
        customer = await customer_socket(waiting)
        socket = await connect(f"/ws/agents/conversations/{waiting.public_id}/", cookie)
        assert (await socket.receive_json_from())["status"] == "open"
        history = await socket.receive_json_from()
        assert [m["text"] for m in history["messages"]] == ["How long does a refund take?"]
        draft = (await socket.receive_json_from())["draft"]
        assert draft["status"] == "ready" and draft["sources"] and 0 <= draft["confidence"] <= 1

        await socket.send_json_to({"type": "approve", "draft_id": draft["id"], "request_id": "r-1"})
        ack = await receive_until(socket, "ack")
        assert (ack["action"], ack["request_id"], ack["seq"]) == ("approve", "r-1", 2)
        reply = await receive_until(customer, "message", seq=2)
        assert (reply["sender"], reply["author"], reply["text"]) == ("agent", "Alice Agent", draft["text"])

        await socket.send_json_to({"type": "approve", "draft_id": draft["id"], "request_id": "r-2"})
        error = await receive_until(socket, "error")
        assert (error["code"], error["request_id"], error["by"]) == ("already_handled", "r-2", "Alice Agent")
        await socket.disconnect()
        await customer.disconnect()

    run(scenario)


def test_take_over_tells_the_customer_an_agent_joined(waiting: Conversation, agent: User) -> None:
    cookie = session_cookie(agent)

    async def scenario() -> None:
        customer = await customer_socket(waiting)
        socket = await connect(f"/ws/agents/conversations/{waiting.public_id}/", cookie)
        await socket.send_json_to({"type": "take_over"})
        await receive_until(socket, "ack", action="take_over")
        assert (await receive_until(socket, "draft"))["draft"]["status"] == "taken_over"
        joined = await receive_until(customer, "status", status="agent_joined")
        assert joined["text"] == "An agent has joined the conversation."
        await socket.send_json_to({"type": "reply", "text": "Hi, Alice here.", "client_id": "a-1"})
        assert (await receive_until(customer, "message", seq=2))["text"] == "Hi, Alice here."
        await socket.disconnect()
        await customer.disconnect()

    run(scenario)


def test_agents_watch_a_draft_being_written_piece_by_piece(knowledge: None, agent: User, use_engine: UseEngine) -> None:
    pieces = ["Your ", "parcel ", "left ", "our ", "warehouse ", "today."]

    class StreamingEngine(DraftEngine):
        def draft(self, context: DraftContext) -> DraftResult:
            for piece in pieces:
                assert context.on_text is not None
                context.on_text(piece)
                time.sleep(0.06)  # slower than the stream's flush interval, so several frames go out
            return DraftResult(text="".join(pieces), confidence=0.9)

    use_engine(StreamingEngine())
    conversation = services.conversation_start()
    say(conversation, "Where is my order?")
    draft = Draft.objects.get(conversation=conversation)
    cookie = session_cookie(agent)

    async def scenario() -> None:
        socket = await connect(f"/ws/agents/conversations/{conversation.public_id}/", cookie)
        await receive_until(socket, "draft")
        await _in_thread(lambda: services.draft_generate(draft_id=draft.pk))
        streamed = ""
        while True:
            frame = await socket.receive_json_from(timeout=5)
            if frame["type"] == "draft.delta":
                assert (frame["draft_id"], frame["offset"]) == (draft.pk, len(streamed))
                streamed += frame["text"]
            elif frame["type"] == "draft" and frame["draft"]["status"] == "ready":
                break
        assert streamed == frame["draft"]["text"] == "".join(pieces)
        await socket.disconnect()

    run(scenario)


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ({"type": "approve"}, "invalid_request"),
        ({"type": "approve", "draft_id": 999999}, "not_found"),
        ({"type": "edit", "draft_id": 1, "text": ""}, "empty_message"),
        ({"type": "fly"}, "unknown_type"),
    ],
)
def test_bad_actions_get_clear_errors(waiting: Conversation, agent: User, frame: dict[str, Any], code: str) -> None:
    cookie = session_cookie(agent)

    async def scenario() -> None:
        socket = await connect(f"/ws/agents/conversations/{waiting.public_id}/", cookie)
        await socket.send_json_to({**frame, "request_id": 7})
        error = await receive_until(socket, "error")
        assert (error["code"], error["request_id"]) == (code, 7)
        await socket.disconnect()

    run(scenario)


async def _in_thread(work: Any) -> Any:
    return await database_sync_to_async(work)()


async def customer_socket(conversation: Conversation) -> WebsocketCommunicator:
    customer = WebsocketCommunicator(application, "/ws/chat/", headers=[HOST, ORIGIN])
    await customer.connect()
    await customer.send_json_to({"type": "hello", "token": conversation_token(conversation.public_id)})
    await receive_until(customer, "welcome")
    return customer


def test_one_click_marks_a_customer_message_as_something_we_dont_answer(waiting: Conversation, agent: User) -> None:
    cookie = session_cookie(agent)

    async def scenario() -> None:
        socket = await connect(f"/ws/agents/conversations/{waiting.public_id}/", cookie)
        await receive_until(socket, "draft")
        await socket.send_json_to({"type": "mark_out_of_scope", "seq": 1, "request_id": "r-1"})
        ack = await receive_until(socket, "ack")
        assert (ack["action"], ack["request_id"], ack["seq"]) == ("mark_out_of_scope", "r-1", 1)
        await receive_until(socket, "conversation")  # the usual update to everyone watching
        for frame, code in [
            ({"type": "mark_out_of_scope"}, "invalid_request"),
            ({"type": "mark_out_of_scope", "seq": True}, "invalid_request"),
            ({"type": "mark_out_of_scope", "seq": 99}, "not_found"),
        ]:
            await socket.send_json_to({**frame, "request_id": "r-2"})
            error = await receive_until(socket, "error")
            assert (error["code"], error["request_id"]) == (code, "r-2")
        await socket.disconnect()

    run(scenario)
    example = OutOfScopeExample.objects.get()
    assert (example.text, example.marked_by, example.message.seq if example.message else None) == (
        "How long does a refund take?",
        agent,
        1,
    )
