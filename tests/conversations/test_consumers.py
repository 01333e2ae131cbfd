"""The customer's websocket, through the real ASGI application and the Redis channel layer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator

from chatdesk.asgi import application
from chatdesk.conversations import services
from chatdesk.conversations.tokens import conversation_token

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = (b"origin", b"http://127.0.0.1:8000")


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    async_to_sync(scenario)()


async def connect(origin: tuple[bytes, bytes] = ORIGIN) -> WebsocketCommunicator:
    socket = WebsocketCommunicator(application, "/ws/chat/", headers=[origin, (b"host", b"127.0.0.1:8000")])
    connected, _ = await socket.connect()
    assert connected
    return socket


async def receive_until(socket: WebsocketCommunicator, frame_type: str, **expected: Any) -> dict[str, Any]:
    while True:
        frame = await socket.receive_json_from(timeout=5)
        if frame["type"] == frame_type and all(frame.get(k) == v for k, v in expected.items()):
            return frame


def test_a_new_customer_gets_a_token_and_their_message_back_in_order(knowledge: None) -> None:
    async def scenario() -> None:
        socket = await connect()
        await socket.send_json_to({"type": "hello"})
        welcome = await socket.receive_json_from()
        assert welcome["type"] == "welcome" and welcome["messages"] == [] and welcome["token"]
        assert welcome["max_message_chars"] == 4000
        await socket.send_json_to({"type": "message", "client_id": "m-1", "text": "Where is my order?"})
        assert await receive_until(socket, "ack") == {"type": "ack", "client_id": "m-1", "seq": 1}
        echoed = await receive_until(socket, "message")
        assert (echoed["seq"], echoed["sender"], echoed["text"]) == (1, "customer", "Where is my order?")
        status = await receive_until(socket, "status")
        assert status["status"] == "reviewing" and status["text"]
        await socket.disconnect()

    run(scenario)


def test_reconnecting_with_the_token_resumes_with_the_full_history() -> None:
    conversation = services.conversation_start()
    services.customer_message_post(public_id=conversation.public_id, text="talk to a human", client_id="m-1")

    async def scenario() -> None:
        socket = await connect()
        await socket.send_json_to({"type": "hello", "token": conversation_token(conversation.public_id)})
        welcome = await socket.receive_json_from()
        assert [m["text"] for m in welcome["messages"]] == ["talk to a human"]
        assert welcome["status"] == "no_agent_online"  # no agent has a dashboard open
        await socket.send_json_to({"type": "hello", "token": welcome["token"], "after_seq": 1})
        assert (await socket.receive_json_from())["messages"] == []
        await socket.disconnect()

    run(scenario)


def test_a_resend_after_a_dropped_connection_is_acknowledged_not_stored_twice() -> None:
    conversation = services.conversation_start()

    async def scenario() -> None:
        for _ in range(2):
            socket = await connect()
            await socket.send_json_to({"type": "hello", "token": conversation_token(conversation.public_id)})
            await receive_until(socket, "welcome")
            await socket.send_json_to({"type": "message", "client_id": "m-7", "text": "talk to a human"})
            assert (await receive_until(socket, "ack"))["seq"] == 1
            await socket.disconnect()

    run(scenario)
    assert conversation.messages.count() == 1


def test_a_token_for_one_conversation_never_reads_another() -> None:
    mine, theirs = services.conversation_start(), services.conversation_start()
    services.customer_message_post(public_id=theirs.public_id, text="my address is secret", client_id="t-1")
    forged = conversation_token(mine.public_id).replace(mine.public_id.hex, theirs.public_id.hex)

    async def scenario() -> None:
        socket = await connect()
        await socket.send_json_to({"type": "hello", "token": conversation_token(mine.public_id)})
        assert (await socket.receive_json_from())["messages"] == []
        await socket.send_json_to({"type": "hello", "token": forged})
        error = await socket.receive_json_from()
        assert error["code"] == "invalid_token"
        assert "secret" not in str(error)
        await socket.disconnect()

    run(scenario)


def test_a_page_on_another_site_cannot_connect() -> None:
    async def scenario() -> None:
        socket = WebsocketCommunicator(application, "/ws/chat/", headers=[(b"origin", b"http://evil.example")])
        connected, _ = await socket.connect()
        assert not connected

    run(scenario)


def test_a_site_listed_in_widget_allowed_origins_can_embed_the_widget(settings: Any) -> None:
    from chatdesk.conversations import routing

    validator = routing.websocket_urlpatterns[0].callback
    assert "shop.example" not in validator.allowed_origins  # type: ignore[attr-defined]
    validator.allowed_origins = [*validator.allowed_origins, "https://shop.example"]  # type: ignore[attr-defined]
    try:

        async def scenario() -> None:
            socket = await connect(origin=(b"origin", b"https://shop.example"))
            await socket.disconnect()

        run(scenario)
    finally:
        validator.allowed_origins = validator.allowed_origins[:-1]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ({"type": "message", "client_id": "m-1", "text": "hi"}, "hello_required"),
        ({"type": "dance"}, "unknown_type"),
        ({"text": "no type"}, "invalid_frame"),
        ({"type": "hello", "after_seq": -1}, "invalid_request"),
    ],
)
def test_malformed_or_early_frames_get_a_clear_error(frame: dict[str, Any], code: str) -> None:
    async def scenario() -> None:
        socket = await connect()
        await socket.send_json_to(frame)
        error = await socket.receive_json_from()
        assert (error["type"], error["code"]) == ("error", code)
        assert error["message"]
        await socket.disconnect()

    run(scenario)


def test_not_json_gets_a_clear_error_and_the_connection_stays_usable() -> None:
    async def scenario() -> None:
        socket = await connect()
        await socket.send_to(text_data="{not json")
        assert (await socket.receive_json_from())["code"] == "invalid_frame"
        await socket.send_json_to({"type": "ping"})
        assert (await socket.receive_json_from()) == {"type": "pong"}
        await socket.disconnect()

    run(scenario)


def test_a_refused_message_error_names_its_client_id() -> None:
    async def scenario() -> None:
        socket = await connect()
        await socket.send_json_to({"type": "hello"})
        await receive_until(socket, "welcome")
        await socket.send_json_to({"type": "message", "client_id": "m-9", "text": "x" * 4001})
        error = await receive_until(socket, "error")
        assert (error["code"], error["client_id"], error["limit"]) == ("message_too_long", "m-9", 4000)
        await socket.disconnect()

    run(scenario)
