"""The SLA sweep as it runs in production: Celery beat schedules it, a worker runs it, Daphne tells the agent."""

from __future__ import annotations

import asyncio

import pytest
from django.contrib.auth.models import User

from tests.conftest import PASSWORD
from tests.live import Client, login_session, start_live_stack

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


def test_beat_sweeps_and_an_agent_on_the_queue_is_alerted_when_a_customer_waits_too_long(agent: User) -> None:
    # One-second limits, so the real clock passes them while the test waits for the frame.
    stack = start_live_stack({"SLA_CUSTOMER_WAIT_S": "1", "SLA_SWEEP_EVERY_S": "1"}, beat=True)
    try:

        async def scenario() -> None:
            session = login_session(stack.base_url, agent.username, PASSWORD)
            queue = await Client.connect(f"{stack.ws_url}/ws/agents/queue/", origin=stack.base_url, session=session)
            await queue.wait_for(lambda f: f["type"] == "queue")
            customer = await Client.connect(f"{stack.ws_url}/ws/chat/", origin=stack.base_url)
            await customer.send({"type": "hello"})
            conversation_id = (await customer.wait_for(lambda f: f["type"] == "welcome"))["conversation_id"]
            await customer.send({"type": "message", "client_id": "m-1", "text": "talk to a human"})

            alert = await queue.wait_for(lambda f: f["type"] == "alert", 60)
            assert (alert["kind"], alert["conversation"]) == ("sla_breach", conversation_id)
            assert alert["text"].endswith("for a reply (limit 1 s).")
            row = next(
                f["item"]
                for f in reversed(queue.frames)
                if f["type"] == "queue.update" and f["id"] == conversation_id and f["in_queue"]
            )
            assert [r["reason"] for r in row["reasons"]] == ["sla_breach", "customer_request"]
            for client in (queue, customer):
                await client.close()

        asyncio.run(scenario())
    finally:
        stack.stop()
