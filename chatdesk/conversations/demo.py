"""Demo data for the embedded default: the shop's knowledge base, two logins (one per role) and four
weeks of finished conversations, so the manager's reports have something to show."""

from __future__ import annotations

import datetime as dt
import json
import random
from typing import TypeVar

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone
from rapidfuzz.distance import Levenshtein

from chatdesk.conversations import facts
from chatdesk.conversations.models import AgentAction, Conversation, Draft, EscalationFlag, Message, Rating
from chatdesk.conversations.roles import groups_ensure
from chatdesk.knowledge.models import Topic
from chatdesk.knowledge.services import DEMO_ARTICLES, knowledge_seed_demo

# Demo-only credentials, printed by `manage.py rundesk`; the embedded default listens on 127.0.0.1.
DEMO_LOGINS = {"agent": ("agent", "agent-demo-pass"), "manager": ("manager", "manager-demo-pass")}


@transaction.atomic
def demo_seed() -> int:
    """Idempotent: returns how many articles were new. The history is written once, into a desk
    that has no conversations yet."""
    agents, managers = groups_ensure()
    for role, group, is_staff in (("agent", agents, False), ("manager", managers, True)):
        username, password = DEMO_LOGINS[role]
        user, created = User.objects.get_or_create(
            username=username, defaults={"first_name": role.title(), "last_name": "Demo", "is_staff": is_staff}
        )
        if created:
            user.set_password(password)
            user.save()
        user.groups.add(group)
    new_articles = knowledge_seed_demo()
    if not Conversation.objects.exists():
        demo_history_seed(timezone.now())
    return new_articles


T = TypeVar("T")

# Demo agents who only appear in the history (no password: they cannot sign in).
HISTORY_AGENTS = (("mei", "Mei", "Lin"), ("sam", "Sam", "Okafor"))
HISTORY_DAYS = 28
EDITS = (" Sorry for the wait!", " Let me know if there is anything else.", "")
REASONS = (
    EscalationFlag.Reason.CUSTOMER_REQUEST,
    EscalationFlag.Reason.LOW_CONFIDENCE,
    EscalationFlag.Reason.NEGATIVE_SENTIMENT,
    EscalationFlag.Reason.SENSITIVE,
)


def demo_history_seed(now: dt.datetime, *, days: int = HISTORY_DAYS, seed: int = 7) -> int:
    """Write `days` days of closed conversations before `now` (about 12 a day) with the shop's
    questions, drafts from its articles, every draft outcome, take-overs, escalations and ratings, by the
    rows' own times (the services stamp the present). Returns how many conversations were written."""
    rng = random.Random(seed)
    articles = [a for a in json.loads(DEMO_ARTICLES.read_text()) if a.get("language", "en") == "en"]
    agents_group, _ = groups_ensure()
    agents = [User.objects.get(username="agent")]
    for username, first, last in HISTORY_AGENTS:
        user, _ = User.objects.get_or_create(username=username, defaults={"first_name": first, "last_name": last})
        user.groups.add(agents_group)
        agents.append(user)
    topics = {name: Topic.objects.get_or_create(name=name)[0] for name in {a["topic"] for a in articles}}
    written = 0
    for day in range(days, 0, -1):
        for _ in range(rng.randint(8, 16)):
            start = now - dt.timedelta(days=day, hours=rng.uniform(0, 10), minutes=rng.uniform(0, 59))
            _demo_conversation(rng, start, rng.choice(articles), agents, topics)
            written += 1
    facts.recompute(Conversation.objects.all())
    return written


def _demo_conversation(
    rng: random.Random, start: dt.datetime, article: dict[str, object], agents: list[User], topics: dict[str, Topic]
) -> None:
    topic, agent = topics[str(article["topic"])], rng.choice(agents)
    questions, body = list(article["questions"]), str(article["body"])  # type: ignore[call-overload]
    c = Conversation.objects.create(topic=topic, status=Conversation.Status.CLOSED, language="en")
    at, seq, first_response = start, 0, None

    def message(sender: str, text: str, when: dt.datetime, **fields: object) -> Message:
        nonlocal seq
        seq += 1
        return _dated(Message.objects.create(conversation=c, seq=seq, sender=sender, text=text, **fields), when)

    def action(kind: str, when: dt.datetime, **fields: object) -> None:
        _dated(AgentAction.objects.create(conversation=c, agent=agent, kind=kind, **fields), when)

    taken = rng.random() < 0.12
    if taken or rng.random() < 0.1:
        _dated(EscalationFlag.objects.create(conversation=c, reason=rng.choice(REASONS), active=False), start)
    for turn in range(rng.randint(1, 3)):
        question = message(Message.Sender.CUSTOMER, rng.choice(questions), at)
        ready = at + dt.timedelta(seconds=rng.uniform(0.5, 4))
        decided = ready + dt.timedelta(seconds=rng.lognormvariate(3.2, 0.8))
        if taken and turn == 0:
            status = Draft.Status.TAKEN_OVER
        elif taken:
            status = None  # taken over: no more drafts
        else:
            status = rng.choices(
                (Draft.Status.APPROVED, Draft.Status.EDITED, Draft.Status.REJECTED, Draft.Status.AUTO_SENT),
                (50, 25, 10, 15),
            )[0]
        sent_text = body
        if status is not None:
            if status == Draft.Status.EDITED:
                sent_text = body + rng.choice(EDITS[:2])
            draft = Draft.objects.create(
                conversation=c, reply_to=question, status=status, text=body, engine="retrieval", topic=topic,
                confidence=rng.uniform(0.55, 0.98), ready_at=ready,
                decided_at=None if status == Draft.Status.AUTO_SENT else decided,
                decided_by=None if status == Draft.Status.AUTO_SENT else agent,
                draft_seconds=(ready - at).total_seconds(),
                review_seconds=None if status == Draft.Status.AUTO_SENT else (decided - ready).total_seconds(),
                edit_distance=Levenshtein.normalized_distance(body, sent_text) if status in facts.SENT else None,
                chars_changed=Levenshtein.distance(body, sent_text) if status in facts.SENT else None,
                tokens=rng.randint(40, 120), prompt_tokens=rng.randint(200, 600),
            )  # fmt: skip
            _dated(draft, at)
        else:
            draft = None
        if status == Draft.Status.AUTO_SENT:
            reply = message(Message.Sender.BOT, body, ready, draft=draft)
        elif status in (Draft.Status.APPROVED, Draft.Status.EDITED):
            reply = message(Message.Sender.AGENT, sent_text, decided, author=agent, draft=draft)
            action(AgentAction.Kind.APPROVE if status == Draft.Status.APPROVED else AgentAction.Kind.EDIT, decided,
                   draft=draft, draft_text=body, sent_text=sent_text)  # fmt: skip
        else:
            if status == Draft.Status.TAKEN_OVER:
                action(AgentAction.Kind.TAKE_OVER, decided, draft=draft, draft_text=body)
            elif status == Draft.Status.REJECTED:
                action(AgentAction.Kind.REJECT, decided, draft=draft, draft_text=body)
            reply = message(Message.Sender.AGENT, "Let me check that for you personally.", decided, author=agent)
        first_response = first_response or reply.created_at
        at = reply.created_at + dt.timedelta(minutes=rng.uniform(1, 6))
    closed = at + dt.timedelta(minutes=rng.uniform(1, 30))
    action(AgentAction.Kind.CLOSE, closed)
    if rng.random() < 0.45:
        score = rng.choices((1, 2, 3, 4, 5), (5, 5, 15, 35, 40))[0]
        _dated(Rating.objects.create(conversation=c, after_seq=seq, score=score), closed)
    Conversation.objects.filter(pk=c.pk).update(
        created_at=start, first_customer_at=start, first_response_at=first_response, closed_at=closed, last_seq=seq
    )


def _dated(row: T, when: dt.datetime) -> T:
    """`row` as written at `when` (created_at is stamped on insert)."""
    type(row).objects.filter(pk=row.pk).update(created_at=when)  # type: ignore[attr-defined]
    row.created_at = when  # type: ignore[attr-defined]
    return row
