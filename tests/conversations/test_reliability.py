"""What drafting promises when things go wrong, through the service functions, on PostgreSQL and Redis.

The same failures with real worker processes killed and hung: tests/test_worker_failures.py.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from datetime import timedelta
from typing import Any

import pytest
import redis
from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.utils import timezone

from chatdesk.conversations import services
from chatdesk.conversations.errors import ServiceError
from chatdesk.conversations.frames import draft_frame
from chatdesk.conversations.models import Conversation, Draft
from chatdesk.drafting.base import DraftCancelled, DraftContext, DraftEngine, DraftResult, EngineError
from chatdesk.knowledge.models import Topic
from tests.conftest import UseEngine, drafts_queued, say
from tests.conversations.test_services import draft_now, refreshed

pytestmark = pytest.mark.django_db


def test_time_limits_end_before_the_broker_redelivers_and_a_slow_pool_child_may_start() -> None:
    """A late-acknowledged draft is redelivered after the visibility timeout: by then its run is over."""
    soft, hard = settings.CELERY_TASK_SOFT_TIME_LIMIT, settings.CELERY_TASK_TIME_LIMIT
    assert soft < hard < settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]
    # Loading torch and the encoder in a replacement pool child takes longer than Celery's default 4 s.
    assert settings.CELERY_WORKER_PROC_ALIVE_TIMEOUT >= 60
    # The sweep runs often enough to fail a lost draft before it is DRAFT_FAIL_AFTER_S old.
    assert 0 < settings.DRAFT_SWEEP_EVERY_S < settings.DRAFT_FAIL_AFTER_S


class Answering(DraftEngine):
    def draft(self, context: DraftContext) -> DraftResult:
        return DraftResult(text="It is on its way.", confidence=0.9)


@pytest.fixture
def queued_draft(conversation: Conversation, use_engine: UseEngine) -> Draft:
    use_engine(Answering())
    say(conversation, "Where is my order?")
    return Draft.objects.get(conversation=conversation)


class TestAttempts:
    def test_a_redelivery_of_the_task_whose_worker_died_claims_the_draft_again_and_counts_it(
        self, queued_draft: Draft
    ) -> None:
        # The first delivery claimed it; its worker died before finishing.
        Draft.objects.filter(pk=queued_draft.pk).update(
            status=Draft.Status.GENERATING, task_id="task-1", attempts=1, started_at=timezone.now()
        )
        assert services.draft_generate(draft_id=queued_draft.pk, task_id="task-2") is None  # another task: no
        draft = services.draft_generate(draft_id=queued_draft.pk, task_id="task-1")
        assert draft is not None
        assert (draft.status, draft.attempts, draft.text) == (Draft.Status.READY, 2, "It is on its way.")

    def test_a_draft_started_the_most_times_allowed_fails_and_escalates(
        self, queued_draft: Draft, settings: Any
    ) -> None:
        settings.DRAFT_MAX_ATTEMPTS = 3
        Draft.objects.filter(pk=queued_draft.pk).update(
            status=Draft.Status.GENERATING, task_id="task-1", attempts=3, started_at=timezone.now()
        )
        assert services.draft_generate(draft_id=queued_draft.pk, task_id="task-1") is None
        draft = Draft.objects.get(pk=queued_draft.pk)
        assert (draft.status, draft.error_code, draft.attempts) == (Draft.Status.FAILED, "too_many_attempts", 3)
        conversation = refreshed(queued_draft.conversation)
        assert (conversation.status, conversation.escalation_reason) == ("escalated", "draft_failed")
        assert draft_frame(draft)["draft"]["error_code"] == "too_many_attempts"

    def test_the_sweep_queues_again_a_draft_whose_worker_died_while_generating(
        self, queued_draft: Draft, monkeypatch: Any
    ) -> None:
        queued = drafts_queued(monkeypatch)
        started = timezone.now() - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT - 1)
        Draft.objects.filter(pk=queued_draft.pk).update(
            status=Draft.Status.GENERATING, task_id="task-1", attempts=1, started_at=started
        )
        assert services.drafts_requeue_stale() == 0  # it may still be running
        Draft.objects.filter(pk=queued_draft.pk).update(started_at=started - timedelta(seconds=2))
        assert services.drafts_requeue_stale() == 1  # past the hard time limit: its worker is gone
        assert services.drafts_requeue_stale() == 0  # queued once
        assert queued == [queued_draft.pk]
        draft = services.draft_generate(draft_id=queued_draft.pk, task_id="task-2")
        assert draft is not None and (draft.status, draft.attempts) == (Draft.Status.READY, 2)
        assert services.draft_generate(draft_id=queued_draft.pk, task_id="task-1") is None  # the old task, late

    def test_the_sweep_fails_a_draft_that_lost_its_worker_the_most_times_allowed(
        self, queued_draft: Draft, monkeypatch: Any, settings: Any
    ) -> None:
        queued = drafts_queued(monkeypatch)
        settings.DRAFT_MAX_ATTEMPTS = 2
        Draft.objects.filter(pk=queued_draft.pk).update(
            status=Draft.Status.GENERATING, attempts=2, started_at=timezone.now() - timedelta(hours=1)
        )
        assert services.drafts_requeue_stale() == 0
        assert queued == []
        draft = Draft.objects.get(pk=queued_draft.pk)
        assert (draft.status, draft.error_code) == (Draft.Status.FAILED, "too_many_attempts")
        assert refreshed(queued_draft.conversation).escalation_reason == "draft_failed"

    def test_a_draft_no_worker_finishes_is_failed_as_worker_lost_before_it_is_fail_after_old(
        self, queued_draft: Draft, monkeypatch: Any, settings: Any
    ) -> None:
        drafts_queued(monkeypatch)
        settings.DRAFT_FAIL_AFTER_S, settings.DRAFT_SWEEP_EVERY_S = 120, 15
        # The next sweep comes 15 s later, when this draft would be 121 s old: this sweep fails it.
        created = timezone.now() - timedelta(seconds=106)
        Draft.objects.filter(pk=queued_draft.pk).update(created_at=created + timedelta(seconds=2))
        services.drafts_requeue_stale()
        assert Draft.objects.get(pk=queued_draft.pk).status == Draft.Status.PENDING  # 104 s: the next sweep will
        Draft.objects.filter(pk=queued_draft.pk).update(created_at=created)
        services.drafts_requeue_stale()
        draft = Draft.objects.get(pk=queued_draft.pk)
        assert (draft.status, draft.error_code) == (Draft.Status.FAILED, "worker_lost")
        assert refreshed(queued_draft.conversation).escalation_reason == "draft_failed"


class TestFailureCodes:
    def test_an_engine_error_and_a_time_out_are_told_apart(
        self, conversation: Conversation, use_engine: UseEngine, settings: Any
    ) -> None:
        class Broken(DraftEngine):
            def draft(self, context: DraftContext) -> DraftResult:
                raise EngineError("model server unreachable")

        use_engine(Broken())
        say(conversation, "Where is my order?")
        broken = draft_now(conversation)
        assert (broken.status, broken.error_code) == (Draft.Status.FAILED, "engine_error")

        class Endless(DraftEngine):
            def draft(self, context: DraftContext) -> DraftResult:
                while not context.cancelled():
                    time.sleep(0.02)
                raise DraftCancelled()

        other = services.conversation_start()
        use_engine(Endless())
        settings.CELERY_TASK_SOFT_TIME_LIMIT = 0.3
        say(other, "Where is my order?")
        endless = draft_now(other)
        assert (endless.status, endless.error_code) == (Draft.Status.FAILED, "timed_out")
        assert draft_frame(endless)["draft"]["error_code"] == "timed_out"
        assert draft_frame(broken)["draft"]["error_code"] == "engine_error"


class TestDashboardRaces:
    def test_a_stale_edit_after_another_agents_edit_is_refused_and_the_first_text_is_kept(
        self, knowledge: None, conversation: Conversation, agent: User, other_agent: User
    ) -> None:
        say(conversation, "How long does a refund take?")
        draft = draft_now(conversation)
        first = "Refunds take three business days."
        services.draft_edit(public_id=conversation.public_id, draft_id=draft.pk, agent=agent, text=first)
        with pytest.raises(ServiceError) as refused:  # Bob still sees the draft as it was
            services.draft_edit(
                public_id=conversation.public_id, draft_id=draft.pk, agent=other_agent, text="About a week."
            )
        assert refused.value.code == "already_handled"
        assert list(conversation.messages.filter(sender="agent").values_list("text", flat=True)) == [first]
        draft.refresh_from_db()
        assert (draft.status, draft.decided_by) == (Draft.Status.EDITED, agent)

    def test_a_draft_finishing_after_a_take_over_is_dropped_and_never_sent(
        self, knowledge: None, conversation: Conversation, agent: User, use_engine: UseEngine
    ) -> None:
        Topic.objects.update(autopilot=True, autopilot_min_confidence=0.1)  # it would be sent at once

        class Late(DraftEngine):
            def draft(self, context: DraftContext) -> DraftResult:
                services.conversation_take_over(public_id=conversation.public_id, agent=agent)
                return DraftResult(text="Your parcel is on its way.", confidence=0.99, topic="orders")

        use_engine(Late())
        say(conversation, "Where is my order?")
        draft = draft_now(conversation)
        assert draft.status == Draft.Status.TAKEN_OVER
        assert not conversation.messages.exclude(sender="customer").exists()
        assert refreshed(conversation).status == Conversation.Status.TAKEN_OVER

    def test_a_drafting_task_delivered_again_after_the_approval_sends_nothing(
        self, knowledge: None, conversation: Conversation, agent: User
    ) -> None:
        say(conversation, "How long does a refund take?")
        pending = Draft.objects.get(conversation=conversation)
        services.draft_generate(draft_id=pending.pk, task_id="task-1")
        services.draft_approve(public_id=conversation.public_id, draft_id=pending.pk, agent=agent)
        with pytest.raises(ServiceError):
            services.draft_approve(public_id=conversation.public_id, draft_id=pending.pk, agent=agent)
        assert services.draft_generate(draft_id=pending.pk, task_id="task-1") is None
        assert Draft.objects.get(pk=pending.pk).status == Draft.Status.APPROVED
        assert list(conversation.messages.values_list("seq", "sender")) == [(1, "customer"), (2, "agent")]


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_message_queues_no_drafting_task() -> None:
    """Tasks are sent after commit only: the broker never holds a task for a draft that does not exist."""
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    drafts_queue = f"{settings.CELERY_BROKER_TRANSPORT_OPTIONS['global_keyprefix']}drafts"
    broker.delete(drafts_queue)  # tasks earlier tests queued on this run's keys (no worker consumes them here)
    conversation = services.conversation_start()
    with pytest.raises(RuntimeError), transaction.atomic():
        say(conversation, "Where is my order?")
        raise RuntimeError("the request failed after the message was stored")
    assert not Draft.objects.exists()
    assert broker.llen(drafts_queue) == 0

    say(conversation, "Where is my order?")  # committed: its task is in the broker (the probe sees tasks)
    queued = broker.lrange(drafts_queue, 0, -1)
    broker.delete(drafts_queue)
    assert len(queued) == 1
    message = json.loads(queued[0])
    args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
    assert (message["headers"]["task"], args) == ("chatdesk.conversations.tasks.draft_reply", [Draft.objects.get().pk])


@pytest.mark.django_db(transaction=True)
def test_two_sweeps_at_once_queue_a_lost_draft_once(monkeypatch: Any) -> None:
    queued = drafts_queued(monkeypatch)
    conversation = services.conversation_start()
    say(conversation, "Where is my order?")
    Draft.objects.update(
        status=Draft.Status.GENERATING, attempts=1, started_at=timezone.now() - timedelta(hours=1), task_id="t"
    )
    queued.clear()  # the message's own task
    barrier = threading.Barrier(2)

    def sweep() -> None:
        barrier.wait()
        try:
            services.drafts_requeue_stale()
        finally:
            connection.close()

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert queued == [Draft.objects.get().pk]
