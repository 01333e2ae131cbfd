"""/metrics of a running desk (Daphne and a prefork Celery worker as separate processes sharing one
PROMETHEUS_MULTIPROC_DIR): a conversation shows up in the scrape, summed over both processes."""

from __future__ import annotations

import asyncio
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import User

from chatdesk.celery import app
from chatdesk.conversations import jobs
from tests.conftest import PASSWORD
from tests.live import Client, LiveStack, is_type, login_session, start_live_stack
from tests.monitoring.scrape import Samples, samples, value

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]

TOKEN = "live-metrics-token"


@pytest.fixture(scope="module")
def desk(django_db_setup: Any, django_db_blocker: Any) -> Iterator[LiveStack]:
    metrics_dir = tempfile.mkdtemp(prefix="chatdesk-metrics-")
    with django_db_blocker.unblock():
        stack = start_live_stack({"PROMETHEUS_MULTIPROC_DIR": metrics_dir, "METRICS_TOKEN": TOKEN})
    try:
        yield stack
    finally:
        stack.stop()


def get(url: str, token: str | None = TOKEN) -> tuple[int, str]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def scrape(desk: LiveStack) -> Samples:
    status, body = get(f"{desk.base_url}/metrics")
    assert status == 200, body
    return samples(body)


def scrape_until(desk: LiveStack, holds: Any, what: str, timeout: float = 30) -> Samples:
    """Scrape every 0.2 s until holds(samples); the metrics of another process land as it gets there."""
    deadline = time.monotonic() + timeout
    while True:
        scraped = scrape(desk)
        if holds(scraped):
            return scraped
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}; scraped {sorted(scraped.items())}")
        time.sleep(0.2)  # poll interval


def test_a_conversation_through_the_real_processes_shows_up_in_the_scrape(
    desk: LiveStack, knowledge: None, agent: User
) -> None:
    base, ws = desk.base_url, desk.ws_url
    engine = settings.DRAFT_ENGINE
    assert get(f"{base}/metrics", token=None)[0] == 403
    assert get(f"{base}/metrics", token="wrong")[0] == 403
    session = login_session(base, agent.username, PASSWORD)

    async def scenario() -> None:
        queue = await Client.connect(f"{ws}/ws/agents/queue/", origin=base, session=session)
        await queue.wait_for(is_type("queue"))
        customer = await Client.connect(f"{ws}/ws/chat/", origin=base)
        await customer.send({"type": "hello"})
        await customer.wait_for(is_type("welcome"))
        await customer.send({"type": "message", "client_id": "m-1", "text": "How do I reset my password?"})
        ready = await queue.wait_for(
            lambda f: f["type"] == "queue.update" and f["in_queue"] and f["item"]["draft_status"] == "ready", 60
        )
        conversation = await Client.connect(
            f"{ws}/ws/agents/conversations/{ready['id']}/", origin=base, session=session
        )
        draft = (await conversation.wait_for(lambda f: f["type"] == "draft" and f["draft"]["status"] == "ready"))[
            "draft"
        ]

        # Written by the worker's pool child (drafts) and by Daphne (sockets), read from one scrape.
        drafted = scrape(desk)
        assert value(drafted, "chatdesk_drafts_total", engine=engine, outcome="ready") == 1
        assert value(drafted, "chatdesk_time_to_draft_seconds_count", engine=engine) == 1
        assert value(drafted, "chatdesk_time_to_draft_seconds_bucket", engine=engine, le="+Inf") == 1
        assert 0 < value(drafted, "chatdesk_time_to_draft_seconds_sum", engine=engine) < 60
        assert value(drafted, "chatdesk_draft_engine_seconds_count", engine=engine) == 1
        assert value(drafted, "chatdesk_websocket_connections", kind="customer") == 1
        assert value(drafted, "chatdesk_websocket_connections", kind="agent") == 2
        assert value(drafted, "chatdesk_queue_drafts", status="ready") == 1

        await conversation.send({"type": "approve", "draft_id": draft["id"], "request_id": "r-1"})
        await customer.wait_for(lambda f: f["type"] == "message" and f["sender"] == "agent")
        await customer.send({"type": "request_human"})
        await queue.wait_for(lambda f: f["type"] == "queue.update" and f["item"] and f["item"]["status"] == "escalated")
        answered = scrape_until(
            desk, lambda s: value(s, "chatdesk_escalations_total", reason="customer_request") == 1, "the escalation"
        )
        assert value(answered, "chatdesk_draft_reviews_total", decision="approved") == 1
        assert value(answered, "chatdesk_queue_conversations", status="escalated") == 1
        assert value(answered, "chatdesk_queue_drafts", status="ready") == 0
        for client in (queue, customer, conversation):
            await client.close()

    asyncio.run(scenario())
    scrape_until(
        desk,
        lambda s: (
            value(s, "chatdesk_websocket_connections", kind="customer") == 0
            and value(s, "chatdesk_websocket_connections", kind="agent") == 0
        ),
        "every socket closed",
    )

    # A task that raises in the worker (a draft id that is not a number) is counted there.
    app.send_task(jobs.DRAFT_REPLY, args=["not-a-draft"])
    scrape_until(
        desk,
        lambda s: value(s, "chatdesk_celery_task_failures_total", task=jobs.DRAFT_REPLY) == 1,
        "the failed task counted",
    )
