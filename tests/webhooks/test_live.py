"""A conversation's events reach a real receiver through the real processes: Daphne stores them with each
change, a Celery worker sends them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User

from chatdesk.webhooks import services as webhooks
from chatdesk.webhooks.models import Delivery
from tests.conftest import PASSWORD
from tests.live import Client, LiveStack, login_session
from tests.webhooks.receiver import Receiver, documented_verify, receiving

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as running:
        yield running


def test_a_conversations_events_reach_the_receiver_through_a_celery_worker(
    live_stack: LiveStack, knowledge: None, agent: User, receiver: Receiver, settings: Any
) -> None:
    settings.WEBHOOK_ALLOW_HTTP_LOOPBACK = True
    endpoint = webhooks.endpoint_create(
        url=receiver.url,
        events=["conversation.created", "draft.ready", "draft.approved", "message.sent"],
        by=None,
    )
    base, ws = live_stack.base_url, live_stack.ws_url
    session = login_session(base, agent.username, PASSWORD)

    async def scenario() -> None:
        customer = await Client.connect(f"{ws}/ws/chat/", origin=base)
        await customer.send({"type": "hello"})
        await customer.wait_for(lambda f: f["type"] == "welcome")
        await customer.send({"type": "message", "client_id": "m-1", "text": "How do I reset my password?"})
        await customer.wait_for(lambda f: f["type"] == "ack")
        ready = await asyncio.to_thread(receiver.wait_for, "draft.ready")
        conversation_id, draft_id = ready.event["data"]["conversation"]["id"], ready.event["data"]["draft"]["id"]
        conversation = await Client.connect(
            f"{ws}/ws/agents/conversations/{conversation_id}/", origin=base, session=session
        )
        await conversation.wait_for(lambda f: f["type"] == "draft" and f["draft"]["status"] == "ready")
        await conversation.send({"type": "approve", "draft_id": draft_id, "request_id": "r-1"})
        reply = await customer.wait_for(lambda f: f["type"] == "message" and f["sender"] == "agent")
        sent = await asyncio.to_thread(receiver.wait_for, "message.sent")
        assert sent.event["data"]["message"]["text"] == reply["text"]
        assert sent.event["data"]["conversation"]["id"] == conversation_id
        for client in (customer, conversation):
            await client.close()

    asyncio.run(scenario())
    receiver.wait_for("draft.approved")
    created = receiver.wait_for("conversation.created")
    verify = documented_verify()
    assert all(verify(endpoint.secret, r.headers["X-ChatDesk-Signature"], r.body) for r in receiver.received)
    assert created.event["data"]["conversation"]["status"] == "open"
    deadline = time.monotonic() + 30
    while Delivery.objects.exclude(status=Delivery.Status.SUCCEEDED).exists() and time.monotonic() < deadline:
        time.sleep(0.1)  # the worker records each attempt after the receiver answered it
    assert sorted(Delivery.objects.values_list("event_type", "status", "attempts")) == [
        ("conversation.created", "succeeded", 1),
        ("draft.approved", "succeeded", 1),
        ("draft.ready", "succeeded", 1),
        ("message.sent", "succeeded", 1),
    ]
