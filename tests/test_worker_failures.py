"""Workers that die, hang or choke, as real processes: Daphne, a prefork Celery worker with beat, PostgreSQL, Redis.

The worker drafts with tests.engines.ScriptedEngine, whose behaviour each test picks through the
customer's words. Failures are real: processes are killed with signals, engines really hang.
"""

from __future__ import annotations

import asyncio
import os
import signal
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from django.conf import settings
from django.contrib.auth.models import User

from chatdesk.conversations.models import Conversation, Draft, Message
from tests.conftest import PASSWORD
from tests.engines import ANSWER_PREFIX, pid_file, warm_up_file
from tests.live import (
    PREFORK,
    Client,
    LiveStack,
    customer_connects,
    customer_says,
    is_type,
    login_session,
    start_live_stack,
)

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]

# The worker's settings (small, so that failures show within seconds).
SOFT_TIME_LIMIT_S = 3
HARD_TIME_LIMIT_S = 5
FAIL_AFTER_S = 25
MAX_ATTEMPTS = 3
PREFIX = f"{settings.REDIS_PREFIX}-failures"  # Redis keys of this stack alone (cleared by conftest's prefix)


@pytest.fixture(scope="module")
def desk(django_db_setup: Any, django_db_blocker: Any) -> Iterator[LiveStack]:
    """This module's stack. Its beat sweeps the whole test database every second, so no other stack may
    have drafts waiting while it runs (a test needing the suite's live_stack belongs in another module)."""
    engine_dir = Path(tempfile.mkdtemp(prefix="chatdesk-scripted-"))
    env = {
        "REDIS_PREFIX": PREFIX,
        "DRAFT_ENGINE": "scripted",
        "DRAFT_EXTRA_ENGINES": "scripted=tests.engines.ScriptedEngine",
        "SCRIPTED_ENGINE_DIR": str(engine_dir),
        "DRAFT_SOFT_TIME_LIMIT": str(SOFT_TIME_LIMIT_S),
        "DRAFT_HARD_TIME_LIMIT": str(HARD_TIME_LIMIT_S),
        "DRAFT_REQUEUE_AFTER_S": "2",
        "DRAFT_FAIL_AFTER_S": str(FAIL_AFTER_S),
        "DRAFT_MAX_ATTEMPTS": str(MAX_ATTEMPTS),
        "DRAFT_SWEEP_EVERY_S": "1",
        "CLASSIFIER_TRAIN_EVERY_S": "0",
    }
    os.environ["SCRIPTED_ENGINE_DIR"] = str(engine_dir)  # for pid_file() and warm_up_file() here
    pool = [*PREFORK, "--beat", "--schedule", str(engine_dir / "celerybeat-schedule")]
    with django_db_blocker.unblock():
        stack = start_live_stack(env, pool=pool)
    try:
        yield stack
    finally:
        stack.stop()
        del os.environ["SCRIPTED_ENGINE_DIR"]


def customer_writes(desk: LiveStack, text: str) -> uuid.UUID:
    """A new customer sends `text` through the chat socket; returns the conversation's public id."""

    async def scenario() -> uuid.UUID:
        customer, public_id = await customer_connects(desk)
        await customer_says(customer, text, "m-1")
        await customer.close()
        return public_id

    return asyncio.run(scenario())


def wait_until(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll the database (or anything) until `condition()` is truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.05)


def finished_draft(public_id: uuid.UUID) -> Draft | None:
    return (
        Draft.objects.filter(conversation__public_id=public_id)
        .exclude(status__in=[Draft.Status.PENDING, Draft.Status.GENERATING])
        .first()
    )


def alive(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def the_only_draft(public_id: uuid.UUID) -> Draft:
    drafts = list(Draft.objects.filter(conversation__public_id=public_id))
    assert len(drafts) == 1, drafts
    return drafts[0]


def test_a_pool_child_killed_mid_draft_is_replaced_and_the_draft_is_written_in_time(desk: LiveStack) -> None:
    """The replacement child loads its engine for longer than Celery's default 4 s wait for it."""
    warm_up_file().write_text("6")
    try:
        public_id = customer_writes(desk, "[block child] Where is my order?")
        child = int(wait_until(lambda: pid_file("child").exists() and pid_file("child").read_text(), 15, "drafting"))
        assert Draft.objects.get(conversation__public_id=public_id).status == Draft.Status.GENERATING
        os.kill(child, signal.SIGKILL)
        draft = wait_until(lambda: finished_draft(public_id), FAIL_AFTER_S, "the draft written or escalated")
    finally:
        warm_up_file().unlink()
    draft = the_only_draft(public_id)
    asked = Message.objects.get(conversation__public_id=public_id, seq=1)
    assert (draft.status, draft.attempts, draft.reply_to_id) == (Draft.Status.READY, 2, asked.pk)
    assert draft.text == ANSWER_PREFIX + asked.text
    assert draft.ready_at is not None
    assert (draft.ready_at - asked.created_at).total_seconds() < FAIL_AFTER_S
    assert desk.worker.poll() is None
    assert "Timed out waiting for UP message" not in desk.worker_log()


def test_drafts_queued_on_a_killed_worker_are_all_written_by_the_next_one(desk: LiveStack) -> None:
    in_flight = customer_writes(desk, "[block main] Where is my parcel?")
    wait_until(lambda: pid_file("main").exists(), 15, "the first draft being written")
    queued = [customer_writes(desk, f"Question {n}: can I pay by card?") for n in range(3)]
    main = psutil.Process(desk.worker.pid)
    children = main.children(recursive=True)  # the pool child and the embedded beat
    assert len(children) == 2
    main.kill()
    desk.worker.wait()
    try:
        wait_until(lambda: not any(alive(p) for p in children), 5, "the worker's children gone with it")
    finally:
        for process in filter(alive, children):
            process.kill()
    desk.start_worker()
    for public_id in [in_flight, *queued]:
        wait_until(lambda p=public_id: finished_draft(p), FAIL_AFTER_S, f"the draft for {public_id}")
    for public_id in [in_flight, *queued]:
        draft = the_only_draft(public_id)
        assert draft.status == Draft.Status.READY, (draft.status, draft.error)
        assert draft.text.startswith(ANSWER_PREFIX)
    assert the_only_draft(in_flight).attempts == 2


def test_a_draft_that_kills_its_worker_every_time_stops_after_the_attempts_allowed(desk: LiveStack) -> None:
    public_id = customer_writes(desk, "[crash] Where is my order?")
    draft = wait_until(lambda: finished_draft(public_id), FAIL_AFTER_S, "the poison draft given up")
    draft = the_only_draft(public_id)
    assert (draft.status, draft.error_code, draft.attempts) == (Draft.Status.FAILED, "too_many_attempts", MAX_ATTEMPTS)
    conversation = Conversation.objects.get(public_id=public_id)
    assert (conversation.status, conversation.escalation_reason) == ("escalated", "draft_failed")
    # The worker is still there for everyone else.
    healthy = customer_writes(desk, "How do I reset my password?")
    assert wait_until(lambda: finished_draft(healthy), FAIL_AFTER_S, "the next draft").status == Draft.Status.READY


def test_a_hung_engine_is_stopped_at_the_time_limit_and_the_agent_is_told(desk: LiveStack, agent: User) -> None:
    session = login_session(desk.base_url, agent.username, PASSWORD)

    async def scenario() -> tuple[dict[str, Any], dict[str, Any], float]:
        customer, public_id = await customer_connects(desk)
        asked = time.monotonic()
        await customer_says(customer, "[hang] Where is my order?", "m-1")
        # The conversation is stored with its first message: the agent opens it while it is drafted.
        watching = await Client.connect(
            f"{desk.ws_url}/ws/agents/conversations/{public_id}/", origin=desk.base_url, session=session
        )
        failed = await watching.wait_for(
            lambda f: f["type"] == "draft" and f["draft"] is not None and f["draft"]["status"] == "failed",
            timeout=HARD_TIME_LIMIT_S + 5,
        )
        took = time.monotonic() - asked
        escalated = await watching.wait_for(is_type("conversation", status="escalated"))
        for client in (customer, watching):
            await client.close()
        return failed["draft"], escalated, took

    draft, conversation, took = asyncio.run(scenario())
    assert draft["error_code"] == "timed_out"
    assert "timed out" in draft["error"]
    assert SOFT_TIME_LIMIT_S <= took < HARD_TIME_LIMIT_S + 5
    assert conversation["escalation_reason"] == "draft_failed"
    assert desk.worker.poll() is None
