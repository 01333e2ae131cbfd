"""Property-based fuzzing (hypothesis) of every inbound frame type on the customer and agent sockets.

Whatever a client sends — right or wrong field types, unpaired surrogates, NUL, huge numbers, deep
nesting, unknown types, not JSON at all — it gets an error frame with a documented code or a valid
answer, the socket stays open (never 1011), and a refused frame stores nothing.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents.consumers import AgentConversationConsumer
from chatdesk.asgi import application
from chatdesk.conversations.consumers import CustomerChatConsumer
from chatdesk.conversations.models import AgentAction, Conversation, Message
from tests.agents.test_consumers import HOST, ORIGIN, session_cookie
from tests.conftest import say

pytestmark = pytest.mark.django_db(transaction=True)

# Every code docs/protocol.md lists for errors.
DOCUMENTED_CODES = {
    "invalid_frame", "unknown_type", "invalid_request", "invalid_text", "hello_required", "invalid_token",
    "invalid_client_id", "client_id_conflict", "empty_message", "message_too_long", "rate_limited", "not_agent",
    "not_found", "already_handled", "draft_not_ready", "taken_over_by_other", "not_taken_over", "closed",
    "session_ended", "internal_error", "already_claimed", "not_assigned", "invalid_email", "rating_closed",
    "invalid_tag", "too_many_tags",
    "unknown_site",
}  # fmt: skip
ANSWERS = {
    "welcome", "ack", "message", "status", "history", "pong", "conversation", "draft", "draft.delta", "viewers",
    "error", "notes", "note", "tags", "typing",
}  # fmt: skip

any_text = st.text(alphabet=st.characters(exclude_categories=()), max_size=60)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | any_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(any_text, inner, max_size=4),
    max_leaves=12,
)


def frames_for(specs: dict[str, dict[str, Any]]) -> st.SearchStrategy[str]:
    """Raw text frames: each endpoint frame type with its fields (and request_id) given any JSON
    values, plus unknown types, non-objects, deep nesting and text that is not JSON."""
    typed = st.sampled_from(sorted(specs)).flatmap(
        lambda kind: st.fixed_dictionaries(
            {"type": st.just(kind)},
            optional={name: json_values for name in [*specs[kind], "request_id", "client_id"]},
        )
    )
    odd = st.one_of(
        st.dictionaries(any_text, json_values, max_size=4),
        st.fixed_dictionaries({"type": json_values}),
        json_values,
    )
    raw_json = st.one_of(typed, odd).map(json.dumps)
    nested = st.integers(min_value=1, max_value=60_000).map(lambda depth: "[" * depth + "]" * depth)
    return st.one_of(raw_json, raw_json, raw_json, nested, any_text)


async def answers_to(socket: WebsocketCommunicator, raw: str) -> list[dict[str, Any]]:
    """Every frame the socket sends back to `raw`, up to the answer to a marker frame sent after it (an
    unknown type, refused with its request_id echoed): the socket is still open and answering."""
    await socket.send_input({"type": "websocket.receive", "text": raw})  # "" included, which send_to refuses
    await socket.send_to(text_data='{"type": "end-of-example", "request_id": "end-of-example"}')
    received = []
    while True:
        frame = await socket.receive_json_from(timeout=10)
        if frame.get("request_id") == "end-of-example":
            assert frame["code"] == "unknown_type"
            return received
        received.append(frame)


def assert_well_answered(received: list[dict[str, Any]]) -> None:
    for frame in received:
        assert frame["type"] in ANSWERS, frame
        if frame["type"] == "error":
            assert frame["code"] in DOCUMENTED_CODES and frame["message"], frame
            assert frame["code"] != "internal_error", frame


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))


@pytest.fixture
def no_flood_limits(settings: Any) -> None:
    """The fuzzer sends far faster than a person; the flood limits have tests of their own."""
    settings.WS_FRAMES_PER_SOCKET = 1_000_000
    settings.CHAT_HELLOS_PER_MINUTE_PER_SOCKET = 1_000_000
    settings.CHAT_HELLOS_PER_MINUTE_PER_ADDRESS = 0
    settings.CHAT_MESSAGES_PER_MINUTE_PER_ADDRESS = 0
    settings.CHAT_CONVERSATIONS_PER_HOUR_PER_ADDRESS = 0


def test_any_customer_frame_gets_an_error_or_a_valid_answer(no_flood_limits: None) -> None:
    @FUZZ
    @given(before_hello=frames_for(CustomerChatConsumer.FRAMES), after_hello=frames_for(CustomerChatConsumer.FRAMES))
    def check(before_hello: str, after_hello: str) -> None:
        messages_before = Message.objects.count()

        async def scenario() -> list[dict[str, Any]]:
            socket = WebsocketCommunicator(application, "/ws/chat/", headers=[ORIGIN, HOST])
            assert (await socket.connect())[0]
            received = await answers_to(socket, before_hello)
            await socket.send_json_to({"type": "hello"})
            assert (await socket.receive_json_from(timeout=10))["type"] == "welcome"
            received += await answers_to(socket, after_hello)
            await socket.disconnect()
            return received

        received = async_to_sync(scenario)()
        assert_well_answered(received)
        if not any(frame["type"] == "ack" for frame in received):
            assert Message.objects.count() == messages_before  # a refused frame stored nothing

    check()


def test_any_agent_frame_gets_an_error_or_a_valid_answer(no_flood_limits: None, agent: User, knowledge: None) -> None:
    conversation = Conversation.objects.create()
    say(conversation, "How long does a refund take?")
    cookie = session_cookie(agent)
    path = f"/ws/agents/conversations/{conversation.public_id}/"

    @FUZZ
    @given(raw=frames_for(AgentConversationConsumer.FRAMES))
    def check(raw: str) -> None:
        actions_before, messages_before = AgentAction.objects.count(), Message.objects.count()

        async def scenario() -> list[dict[str, Any]]:
            socket = WebsocketCommunicator(application, path, headers=[HOST, ORIGIN, cookie])
            assert (await socket.connect())[0]
            for _ in range(3):  # conversation, history, draft
                await socket.receive_json_from(timeout=10)
            received = await answers_to(socket, raw)
            await socket.disconnect()
            return received

        received = async_to_sync(scenario)()
        assert_well_answered(received)
        if not any(frame["type"] == "ack" for frame in received):
            assert (AgentAction.objects.count(), Message.objects.count()) == (actions_before, messages_before)

    check()
