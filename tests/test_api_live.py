"""The REST API against the running desk (Daphne + a Celery worker): an external draft reaches an agent live
and the customer once approved, and knowledge-base changes reach the next draft of a running worker."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from typing import Any

import pytest
from django.contrib.auth.models import User

from chatdesk.api.tokens import token_create
from tests.conftest import PASSWORD
from tests.live import Client, LiveStack, customer_connects, customer_says, is_type, login_session

# A top-level module like the other live tests: the suite's live stack starts with the first test that
# needs it, and its worker must not be running while tests/conversations expects no worker.
pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


def call(base: str, secret: str, method: str, path: str, body: object = None) -> tuple[int, Any]:
    """One API request over HTTP to the live desk: (status, JSON body)."""
    request = urllib.request.Request(
        f"{base}/api/v1{path}",
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {secret}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_an_external_draft_is_reviewed_live_sent_to_the_customer_and_reported(
    live_stack: LiveStack, knowledge: None, agent: User, manager: User
) -> None:
    base, ws = live_stack.base_url, live_stack.ws_url
    _token, secret = token_create(manager=manager, name="acme bot", scope="admin")
    session = login_session(base, agent.username, PASSWORD)

    async def scenario() -> None:
        queue = await Client.connect(f"{ws}/ws/agents/queue/", origin=base, session=session)
        await queue.wait_for(is_type("queue"))
        customer, public_id = await customer_connects(live_stack)
        await customer_says(customer, "Do you offer gift wrapping?", "m-1")
        # The desk's own draft first, so that the external one arrives on a socket already showing a draft.
        await queue.wait_for(
            lambda f: f["type"] == "queue.update" and f["in_queue"] and f["item"]["draft_status"] == "ready", 60
        )
        conversation = await Client.connect(f"{ws}/ws/agents/conversations/{public_id}/", origin=base, session=session)
        await conversation.wait_for(lambda f: f["type"] == "draft" and f["draft"]["status"] == "ready")

        status, posted = await asyncio.to_thread(
            call,
            base,
            secret,
            "POST",
            f"/conversations/{public_id}/drafts",
            {
                "text": "Yes, gift wrapping is 3 EUR per parcel.",
                "confidence": 0.7,
                "engine": "acme",
                "sources": [{"id": "wiki:gift", "title": "Gift wrapping", "score": 0.9}],
                "reply_to_seq": 1,
            },
        )
        assert status == 201, posted
        shown = await conversation.wait_for(lambda f: f["type"] == "draft" and f["draft"]["id"] == posted["id"])
        assert shown["draft"]["status"] == "ready"
        assert shown["draft"]["engine"] == "external:acme"
        assert shown["draft"]["text"] == "Yes, gift wrapping is 3 EUR per parcel."
        assert shown["draft"]["sources"] == [{"id": "wiki:gift", "title": "Gift wrapping", "score": 0.9}]

        await conversation.send({"type": "approve", "draft_id": posted["id"], "request_id": "r-1"})
        reply = await customer.wait_for(lambda f: f["type"] == "message" and f["sender"] == "agent")
        assert (reply["seq"], reply["text"], reply["author"]) == (
            2,
            "Yes, gift wrapping is 3 EUR per parcel.",
            "Alice Agent",
        )
        for client in (queue, customer, conversation):
            await client.close()

    asyncio.run(scenario())
    status, report = call(base, secret, "GET", "/reports/metrics?engine=external:acme")
    assert status == 200
    assert report["outcomes"]["by_engine"] == {"external:acme": report["outcomes"]["by_engine"]["external:acme"]}
    assert report["outcomes"]["by_engine"]["external:acme"]["approved"] == 1


def test_knowledge_changes_over_the_api_reach_the_next_draft_of_the_running_worker(
    live_stack: LiveStack, knowledge: None, agent: User, manager: User
) -> None:
    base, ws = live_stack.base_url, live_stack.ws_url
    _token, secret = token_create(manager=manager, name="kb sync", scope="admin")
    session = login_session(base, agent.username, PASSWORD)
    question = "Can I bring my parrot to the pickup point?"

    async def drafted(text: str) -> dict[str, Any]:
        """Ask `text` in a new conversation; the worker's draft as the agent sees it."""
        customer, public_id = await customer_connects(live_stack)
        await customer_says(customer, text, "m-1")
        conversation = await Client.connect(f"{ws}/ws/agents/conversations/{public_id}/", origin=base, session=session)
        frame = await conversation.wait_for(
            lambda f: f["type"] == "draft" and f["draft"] and f["draft"]["status"] == "ready", 60
        )
        for client in (customer, conversation):
            await client.close()
        return dict(frame["draft"])

    before = asyncio.run(drafted(question))  # the worker has built its index already
    assert before["sources"][0]["title"] != "Pets at pickup points"

    status, article = call(
        base,
        secret,
        "POST",
        "/articles",
        {
            "topic": "shipping",
            "title": "Pets at pickup points",
            "body": "Pets are welcome at every pickup point.",
            "questions": [question],
        },
    )
    assert status == 201, article
    first = asyncio.run(drafted(question))
    assert first["sources"][0]["title"] == "Pets at pickup points"
    assert first["text"] == "Pets are welcome at every pickup point."

    status, _ = call(base, secret, "PATCH", f"/articles/{article['id']}", {"body": "Only small pets, in a cage."})
    assert status == 200
    assert asyncio.run(drafted(question))["text"] == "Only small pets, in a cage."

    assert call(base, secret, "DELETE", f"/articles/{article['id']}")[0] == 204
    assert asyncio.run(drafted(question))["sources"][0]["title"] != "Pets at pickup points"
