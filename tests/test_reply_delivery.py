"""An approved reply reaches the customer once: the agent approves twice, the drafting task is delivered again."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection

from chatdesk.conversations.models import Conversation, Draft
from chatdesk.conversations.tasks import draft_reply
from tests.conftest import PASSWORD
from tests.live import Client, LiveStack, customer_connects, customer_says, is_type, login_session

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


def test_an_approved_reply_reaches_the_customer_once_despite_a_repeat_and_a_redelivered_task(
    live_stack: LiveStack, knowledge: None, agent: User
) -> None:
    """On the suite's stack (retrieval engine, demo knowledge): the agent approves twice, then the
    broker delivers the drafting task again with its original id."""
    session = login_session(live_stack.base_url, agent.username, PASSWORD)

    def redeliver(draft_id: int) -> None:
        try:
            task_id = Draft.objects.get(pk=draft_id).task_id
        finally:
            connection.close()  # this thread's own database connection
        draft_reply.apply_async(args=[draft_id], task_id=task_id)

    async def scenario() -> list[dict[str, Any]]:
        customer, public_id = await customer_connects(live_stack)
        agent_socket = await Client.connect(
            f"{live_stack.ws_url}/ws/agents/conversations/{public_id}/", origin=live_stack.base_url, session=session
        )
        await customer_says(customer, "How do I reset my password?", "m-1")
        ready = await agent_socket.wait_for(lambda f: f["type"] == "draft" and f["draft"]["status"] == "ready", 60)
        draft_id = ready["draft"]["id"]
        for request_id in ("r-1", "r-2"):
            await agent_socket.send({"type": "approve", "draft_id": draft_id, "request_id": request_id})
        await agent_socket.wait_for(is_type("ack", request_id="r-1"))
        refused = await agent_socket.wait_for(is_type("error", request_id="r-2"))
        assert refused["code"] == "already_handled"
        await asyncio.to_thread(redeliver, draft_id)
        # The worker takes tasks in order: once the next message's draft is ready, the redelivery has run.
        await customer_says(customer, "Can I pay with PayPal?", "m-2")
        second = await agent_socket.wait_for(
            lambda f: f["type"] == "draft" and f["draft"]["status"] == "ready" and f["draft"]["reply_to_seq"] == 3, 60
        )
        await agent_socket.send({"type": "approve", "draft_id": second["draft"]["id"], "request_id": "r-3"})
        await customer.wait_for(is_type("message", seq=4))  # every frame sent before it has arrived too
        for client in (customer, agent_socket):
            await client.close()
        return customer.frames

    frames = asyncio.run(scenario())
    replies = [f for f in frames if f["type"] == "message" and f["seq"] == 2]
    assert len(replies) == 1
    assert (replies[0]["sender"], replies[0]["author"]) == ("agent", "Alice Agent")
    conversation = Conversation.objects.get(messages__client_id="m-2")
    assert list(conversation.messages.values_list("seq", "sender")) == [
        (1, "customer"), (2, "agent"), (3, "customer"), (4, "agent"),
    ]  # fmt: skip
