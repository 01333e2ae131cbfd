"""The reply memory in each worker follows approvals, edits, rejections and removals change by change:
the next draft in any worker sees them, and no worker loads the memory again to get there."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from chatdesk.conversations import services
from chatdesk.conversations.models import Draft
from chatdesk.drafting import encoder
from chatdesk.knowledge import memory
from chatdesk.knowledge.memory import MemorySync
from chatdesk.knowledge.models import ApprovedReply, ReplyMemoryChange, ReplyVector, Topic
from chatdesk.knowledge.services import approved_reply_remember, knowledge_index_current, memory_review
from tests.conftest import say

pytestmark = pytest.mark.django_db

QUESTION = "How many days until my refund shows up on my card?"
EDITED = "Refunds reach your card within 3 working days. Bob from the desk"


def drafted(text: str) -> Draft:
    conversation = services.conversation_start()
    say(conversation, text)
    draft = Draft.objects.get(conversation=conversation)
    services.draft_generate(draft_id=draft.pk)
    draft.refresh_from_db()
    return draft


def test_an_edited_reply_drafts_the_next_same_question_in_the_same_worker_without_a_load(
    knowledge: None, agent: User, manager: User
) -> None:
    first = drafted(QUESTION)
    assert first.text != EDITED
    index = knowledge_index_current()
    loads = memory._process.loads

    services.draft_edit(public_id=first.conversation.public_id, draft_id=first.pk, agent=agent, text=EDITED)
    reply = ApprovedReply.objects.get(reply_text=EDITED)
    second = drafted(QUESTION)
    assert second.text == EDITED and second.sources[0]["id"] == f"reply:{reply.pk}"
    assert ReplyVector.objects.filter(reply=reply).exists()  # encoded once, for every other worker

    memory_review(reply_id=reply.pk, manager=manager, action="remove")
    third = drafted(QUESTION)
    assert third.text != EDITED and all(s["id"] != f"reply:{reply.pk}" for s in third.sources)
    assert knowledge_index_current() is index and memory._process.loads == loads


def test_a_rejected_source_weighs_less_in_the_next_draft(knowledge: None, agent: User) -> None:
    reply = approved_reply_remember(customer_text=QUESTION, reply_text=EDITED, topic=None, agent=agent)
    query = encoder.encode([QUESTION])[0]
    before = knowledge_index_current().search(query, limit=1)[0]
    assert before.passage.id == f"reply:{reply.pk}" and before.score == pytest.approx(1.0, abs=0.01)

    draft = drafted(QUESTION)
    assert draft.sources[0]["id"] == f"reply:{reply.pk}"
    services.draft_reject(public_id=draft.conversation.public_id, draft_id=draft.pk, agent=agent)
    found = {m.passage.id: m.score for m in knowledge_index_current().search(query, limit=5)}
    assert found[f"reply:{reply.pk}"] == pytest.approx(0.8, abs=0.01)


@pytest.mark.parametrize("exact_max", [1_000_000, 20], ids=["exact", "approximate"])
def test_two_workers_both_see_each_change(agent: User, exact_max: int) -> None:
    """Two workers (two memories on the one database): whichever writes, both follow; with exact_max 20
    the memories hold their 60 replies in the approximate index."""
    shipping, returns = Topic.objects.create(name="shipping"), Topic.objects.create(name="returns")
    texts = [f"question number {i} about parcel {i * 7} going to town {i % 5}" for i in range(60)]
    replies = [
        approved_reply_remember(customer_text=t, reply_text=f"answer {i}", topic=shipping, agent=agent)
        for i, t in enumerate(texts)
    ]
    one, two = MemorySync(exact_max=exact_max), MemorySync(exact_max=exact_max)
    assert len(one.current()) == len(two.current()) == 60
    assert one.current().approximate == two.current().approximate == (exact_max < 60)

    late = approved_reply_remember(
        customer_text="can I send back shoes that do not fit", reply_text="Yes.", topic=returns, agent=agent
    )
    query = encoder.encode(["can I send back shoes that don't fit?"])[0]
    for worker in (one, two):
        hits = worker.current().search(query, 1, topic="returns")
        assert [hit.reply_id for hit in hits] == [late.pk]
        assert worker.current().search(query, 1)[0].reply_id == late.pk
    assert ReplyVector.objects.filter(reply=late).count() == 1

    ApprovedReply.objects.filter(pk=late.pk).update(topic=shipping)  # any write path is logged
    assert two.current().search(query, 1, topic="returns") == []
    assert one.current().search(query, 1, topic="shipping")[0].reply_id == late.pk

    ApprovedReply.objects.filter(pk__in=[late.pk, replies[0].pk]).delete()
    for worker in (one, two):
        assert late.pk not in worker.current() and replies[0].pk not in worker.current()
        assert len(worker.current()) == 59
        assert worker.current().search(query, 1)[0].reply_id != late.pk
    assert one.loads == two.loads == 1


def test_a_change_committed_after_a_later_one_was_seen_is_still_applied(agent: User) -> None:
    """Change ids are handed out before commit: a transaction can commit id n after n + 1 was read."""
    worker = MemorySync()
    worker.current()
    slow = approved_reply_remember(customer_text="where is my parcel", reply_text="On its way", topic=None, agent=agent)
    uncommitted = ReplyMemoryChange.objects.get(reply_id=slow.pk)
    uncommitted.delete()  # as if its transaction had not committed yet
    fast = approved_reply_remember(customer_text="do you sell gift cards", reply_text="Yes.", topic=None, agent=agent)
    assert fast.pk in worker.current() and slow.pk not in worker.current()

    ReplyMemoryChange.objects.create(pk=uncommitted.pk, reply_id=slow.pk, changed_at=uncommitted.changed_at)
    assert slow.pk in worker.current()
    assert worker.loads == 1


def test_a_pending_reply_joins_once_approved_and_an_edit_changes_the_text_drafted(
    knowledge: None, agent: User, manager: User
) -> None:
    own = approved_reply_remember(
        customer_text=QUESTION, reply_text="3 days.", topic=None, agent=agent, source=ApprovedReply.Source.AGENT
    )
    worker = MemorySync()
    assert own.status == "pending" and own.pk not in worker.current()
    memory_review(reply_id=own.pk, manager=manager, action="edit", reply_text=EDITED)
    assert own.pk in worker.current()
    assert drafted(QUESTION).text == EDITED


def test_pruning_the_change_log_makes_a_worker_behind_it_load_again(agent: User) -> None:
    reply = approved_reply_remember(customer_text="is there a shop in Oslo", reply_text="No.", topic=None, agent=agent)
    worker = MemorySync()
    assert reply.pk in worker.current()
    ApprovedReply.objects.filter(pk=reply.pk).update(status=ApprovedReply.Status.PENDING)
    newer = approved_reply_remember(customer_text="opening hours?", reply_text="9 to 5.", topic=None, agent=agent)
    ReplyMemoryChange.objects.update(changed_at=timezone.now() - timedelta(days=2))
    logged = ReplyMemoryChange.objects.count()  # the reply added, made pending; the newer one added
    assert logged == 3 and memory.reply_memory_changes_prune(older_than=timedelta(days=1)) == 2
    assert ReplyMemoryChange.objects.count() == 1  # the newest stays

    current = worker.current()
    assert worker.loads == 2 and reply.pk not in current and newer.pk in current
