"""One question through the real processes: customer socket → Daphne → Postgres → Celery worker → agent → customer."""

from __future__ import annotations

import asyncio

import pytest
from django.contrib.auth.models import User

from tests.conftest import PASSWORD
from tests.live import Client, LiveStack, login_session

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


def is_type(kind: str, **fields: object):  # type: ignore[no-untyped-def]
    return lambda frame: frame["type"] == kind and all(frame.get(k) == v for k, v in fields.items())


def test_a_question_is_drafted_by_the_worker_approved_by_an_agent_and_answered(
    live_stack: LiveStack, knowledge: None, agent: User
) -> None:
    base, ws = live_stack.base_url, live_stack.ws_url
    session = login_session(base, agent.username, PASSWORD)

    async def scenario() -> None:
        queue = await Client.connect(f"{ws}/ws/agents/queue/", origin=base, session=session)
        await queue.wait_for(is_type("queue"))

        customer = await Client.connect(f"{ws}/ws/chat/", origin=base)
        await customer.send({"type": "hello"})
        await customer.wait_for(is_type("welcome"))
        await customer.send({"type": "message", "client_id": "m-1", "text": "How do I reset my password?"})
        assert (await customer.wait_for(is_type("ack")))["seq"] == 1

        ready = await queue.wait_for(
            lambda f: f["type"] == "queue.update" and f["in_queue"] and f["item"]["draft_status"] == "ready", 60
        )
        conversation = await Client.connect(
            f"{ws}/ws/agents/conversations/{ready['id']}/", origin=base, session=session
        )
        draft = (await conversation.wait_for(lambda f: f["type"] == "draft" and f["draft"]["status"] == "ready"))[
            "draft"
        ]
        assert "Account > Security" in draft["text"]
        assert draft["sources"][0]["title"] == "Resetting your password"

        await conversation.send({"type": "approve", "draft_id": draft["id"], "request_id": "r-1"})
        reply = await customer.wait_for(lambda f: f["type"] == "message" and f["sender"] == "agent")
        assert (reply["seq"], reply["text"], reply["author"]) == (2, draft["text"], "Alice Agent")
        removed = await queue.wait_for(is_type("queue.update", id=ready["id"], in_queue=False))
        assert removed["item"] is None
        for client in (queue, customer, conversation):
            await client.close()

    asyncio.run(scenario())
