"""A small desk history, written row by row with every reported column set, whose report numbers are
worked out by hand in test_metrics.py.

Times are UTC; the manager reads them in New York (UTC-5 in November 2026). The report range is
2026-11-10 to 2026-11-11 New York time, i.e. [2026-11-10 05:00Z, 2026-11-12 05:00Z).

c1  Nov 10 09:00 NY  approved draft (alice), closed, rated 5                       topic Shipping
c2  Nov 10 15:00 NY  failed draft, then an edited one (bob, 40%), low confidence,
                     closed after 1 h, rated 3                                    topic Shipping
c3  Nov 10 23:30 NY  (Nov 11 04:30Z) taken over by alice before any draft,
                     customer asked for a person, alice replied; still open        no topic
c4  Nov 11 22:00 NY  (Nov 12 03:00Z) one customer message, no draft, no reply      no topic
c5  Nov 11 10:00 NY  auto-sent, closed, reopened, a draft "edited" to the same
                     text (bob) and a superseded one; closed again; rated 4 then 2 topic Returns
c8  Nov 11 07:00 NY  draft dropped when bob took over (angry, asked for a person),
                     bob replied, closed after 30 min, rated 1                     topic Returns
c6  Nov  9 23:00 NY  (Nov 10 04:00Z) rejected draft, out of scope: previous period
c7  Nov  9 07:00 NY  approved draft, closed: previous period
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import User

from chatdesk.accounts.services import user_time_zone_set
from chatdesk.conversations import facts
from chatdesk.conversations.models import AgentAction, Conversation, Draft, EscalationFlag, Message, Rating
from chatdesk.knowledge.models import Topic

NEW_YORK = ZoneInfo("America/New_York")
UTC = dt.UTC
RANGE = {"from": "2026-11-10", "to": "2026-11-11"}


def at(day: int, hour: int, minute: int = 0, second: int = 0) -> dt.datetime:
    """2026-11-<day> hour:minute:second UTC."""
    return dt.datetime(2026, 11, day, hour, minute, second, tzinfo=UTC)


@dataclass
class History:
    c: dict[str, Conversation]
    d: dict[str, Draft]
    alice: User
    bob: User
    manager: User
    shipping: Topic
    returns: Topic

    def ids(self, *names: str) -> set[int]:
        return {self.c[n].pk for n in names}


class Writer:
    """Rows with the times given, whatever auto_now_add says."""

    def conversation(self, first: dt.datetime, **fields: Any) -> Conversation:
        return Conversation.objects.create(first_customer_at=first, **fields)

    def message(self, c: Conversation, sender: str, when: dt.datetime, text: str = "", **fields: Any) -> Message:
        c.last_seq += 1
        c.save(update_fields=["last_seq"])
        m = Message.objects.create(
            conversation=c, seq=c.last_seq, sender=sender, text=text or f"{sender} {when}", **fields
        )
        Message.objects.filter(pk=m.pk).update(created_at=when)
        return m

    def draft(self, c: Conversation, reply_to: Message, when: dt.datetime, status: str, **fields: Any) -> Draft:
        d = Draft.objects.create(conversation=c, reply_to=reply_to, status=status, text=f"draft {when}", **fields)
        Draft.objects.filter(pk=d.pk).update(created_at=when)
        return d

    def action(self, c: Conversation, agent: User, kind: str, when: dt.datetime, **fields: Any) -> AgentAction:
        a = AgentAction.objects.create(conversation=c, agent=agent, kind=kind, **fields)
        AgentAction.objects.filter(pk=a.pk).update(created_at=when)
        return a

    def flag(self, c: Conversation, reason: str, when: dt.datetime) -> None:
        f = EscalationFlag.objects.create(conversation=c, reason=reason, active=False)
        EscalationFlag.objects.filter(pk=f.pk).update(created_at=when)

    def rating(self, c: Conversation, after_seq: int, score: int, when: dt.datetime) -> None:
        r = Rating.objects.create(conversation=c, after_seq=after_seq, score=score)
        Rating.objects.filter(pk=r.pk).update(created_at=when)


@pytest.fixture
def history(agent: User, other_agent: User, manager: User) -> History:
    alice, bob = agent, other_agent
    user_time_zone_set(user=manager, name="America/New_York")
    shipping = Topic.objects.create(name="Shipping")
    returns = Topic.objects.create(name="Returns")
    w = Writer()
    Status, S = Draft.Status, Message.Sender
    c: dict[str, Conversation] = {}
    d: dict[str, Draft] = {}

    # c1: sent as is
    c["c1"] = w.conversation(at(10, 14), topic=shipping, status="closed", first_response_at=at(10, 14, 0, 40))
    m = w.message(c["c1"], S.CUSTOMER, at(10, 14))
    d["d1"] = w.draft(
        c["c1"], m, at(10, 14, 0, 2), Status.APPROVED, engine="retrieval", topic=shipping, decided_by=alice,
        decided_at=at(10, 14, 0, 36), draft_seconds=4, review_seconds=30, edit_distance=0.0, chars_changed=0,
        tokens=50, prompt_tokens=200, confidence=0.9, sources=[{"id": 1, "title": "Shipping times", "score": 0.8}],
    )  # fmt: skip
    w.message(c["c1"], S.AGENT, at(10, 14, 0, 40), text=d["d1"].text, author=alice, draft=d["d1"])
    w.action(c["c1"], alice, AgentAction.Kind.APPROVE, at(10, 14, 0, 36), draft=d["d1"])
    Conversation.objects.filter(pk=c["c1"].pk).update(closed_at=at(10, 14, 10))
    w.rating(c["c1"], 2, 5, at(10, 14, 11))

    # c2: a failed draft, then an edited one
    c["c2"] = w.conversation(at(10, 20), topic=shipping, status="closed", first_response_at=at(10, 20, 2))
    m = w.message(c["c2"], S.CUSTOMER, at(10, 20))
    d["d2f"] = w.draft(c["c2"], m, at(10, 20, 0, 1), Status.FAILED, engine="retrieval", topic=shipping)
    d["d2"] = w.draft(
        c["c2"], m, at(10, 20, 0, 3), Status.EDITED, engine="retrieval", topic=shipping, decided_by=bob,
        decided_at=at(10, 20, 1, 39), draft_seconds=6, review_seconds=90, edit_distance=0.4, chars_changed=12,
        tokens=70, prompt_tokens=300, confidence=0.4,
    )  # fmt: skip
    w.message(c["c2"], S.AGENT, at(10, 20, 2), text="edited reply", author=bob, draft=d["d2"])
    w.action(c["c2"], bob, AgentAction.Kind.EDIT, at(10, 20, 1, 39), draft=d["d2"])
    w.flag(c["c2"], EscalationFlag.Reason.LOW_CONFIDENCE, at(10, 20, 0, 5))
    Conversation.objects.filter(pk=c["c2"].pk).update(closed_at=at(10, 21))
    w.rating(c["c2"], 2, 3, at(10, 21, 5))

    # c3: taken over before any draft; local Nov 10 23:30, UTC Nov 11
    c["c3"] = w.conversation(at(11, 4, 30), status="taken_over", assigned_agent=alice, first_response_at=at(11, 4, 35))
    w.message(c["c3"], S.CUSTOMER, at(11, 4, 30))
    w.flag(c["c3"], EscalationFlag.Reason.CUSTOMER_REQUEST, at(11, 4, 30))
    w.action(c["c3"], alice, AgentAction.Kind.TAKE_OVER, at(11, 4, 31))
    w.message(c["c3"], S.AGENT, at(11, 4, 35), author=alice)
    w.action(c["c3"], alice, AgentAction.Kind.REPLY, at(11, 4, 35))

    # c4: no drafts, no reply; local Nov 11 22:00, UTC Nov 12
    c["c4"] = w.conversation(at(12, 3))
    w.message(c["c4"], S.CUSTOMER, at(12, 3))

    # c5: auto-sent, closed, reopened; a draft "edited" into its own text; closed again
    c["c5"] = w.conversation(
        at(11, 15), topic=returns, status="closed", reopened_count=1, first_response_at=at(11, 15, 0, 5)
    )
    m = w.message(c["c5"], S.CUSTOMER, at(11, 15))
    d["d5a"] = w.draft(
        c["c5"], m, at(11, 15, 0, 2), Status.AUTO_SENT, engine="retrieval", topic=returns, draft_seconds=2,
        confidence=0.95,
    )  # fmt: skip
    w.message(c["c5"], S.BOT, at(11, 15, 0, 5), text=d["d5a"].text, draft=d["d5a"])
    m = w.message(c["c5"], S.CUSTOMER, at(11, 16))
    d["d5c"] = w.draft(c["c5"], m, at(11, 16, 0, 1), Status.SUPERSEDED, engine="transformers", topic=returns)
    d["d5b"] = w.draft(
        c["c5"], m, at(11, 16, 0, 3), Status.EDITED, engine="transformers", topic=returns, decided_by=bob,
        decided_at=at(11, 16, 0, 50), draft_seconds=3, review_seconds=20, edit_distance=0.0, chars_changed=0,
        tokens=40, prompt_tokens=100, model_name="tiny-llama",
    )  # fmt: skip
    w.message(c["c5"], S.AGENT, at(11, 16, 1), text=d["d5b"].text, author=bob, draft=d["d5b"])
    w.action(c["c5"], bob, AgentAction.Kind.EDIT, at(11, 16, 0, 50), draft=d["d5b"])
    Conversation.objects.filter(pk=c["c5"].pk).update(closed_at=at(11, 18))
    w.rating(c["c5"], 2, 4, at(11, 15, 31))
    w.rating(c["c5"], 4, 2, at(11, 18, 1))

    # c8: the draft is dropped when bob takes over
    c["c8"] = w.conversation(
        at(11, 12), topic=returns, status="closed", assigned_agent=bob, first_response_at=at(11, 12, 4)
    )
    m = w.message(c["c8"], S.CUSTOMER, at(11, 12))
    d["d8"] = w.draft(
        c["c8"], m, at(11, 12, 0, 2), Status.TAKEN_OVER, engine="transformers", topic=returns, draft_seconds=5,
        tokens=80, prompt_tokens=150,
    )  # fmt: skip
    w.flag(c["c8"], EscalationFlag.Reason.NEGATIVE_SENTIMENT, at(11, 12))
    w.flag(c["c8"], EscalationFlag.Reason.CUSTOMER_REQUEST, at(11, 12, 1))
    w.action(c["c8"], bob, AgentAction.Kind.TAKE_OVER, at(11, 12, 3), draft=d["d8"])
    w.message(c["c8"], S.AGENT, at(11, 12, 4), author=bob)
    w.action(c["c8"], bob, AgentAction.Kind.CLOSE, at(11, 12, 30))
    Conversation.objects.filter(pk=c["c8"].pk).update(closed_at=at(11, 12, 30))
    w.rating(c["c8"], 2, 1, at(11, 12, 31))

    # The previous period (Nov 8–9 New York).
    c["c6"] = w.conversation(at(10, 4))  # local Nov 9 23:00
    m = w.message(c["c6"], S.CUSTOMER, at(10, 4))
    d["d6"] = w.draft(
        c["c6"], m, at(10, 4, 0, 3), Status.REJECTED, engine="retrieval", decided_by=alice, decided_at=at(10, 4, 1)
    )  # fmt: skip
    w.action(c["c6"], alice, AgentAction.Kind.REJECT, at(10, 4, 1), draft=d["d6"])
    w.flag(c["c6"], EscalationFlag.Reason.OUT_OF_SCOPE, at(10, 4))
    c["c7"] = w.conversation(at(9, 12), status="closed", first_response_at=at(9, 12, 1), closed_at=at(9, 12, 30))
    m = w.message(c["c7"], S.CUSTOMER, at(9, 12))
    d["d7"] = w.draft(
        c["c7"], m, at(9, 12, 0, 2), Status.APPROVED, engine="retrieval", decided_by=alice, edit_distance=0.0
    )  # fmt: skip
    w.message(c["c7"], S.AGENT, at(9, 12, 1), author=alice, draft=d["d7"])
    w.action(c["c7"], alice, AgentAction.Kind.APPROVE, at(9, 12, 1), draft=d["d7"])
    # Written without the services, so what they keep on each conversation is derived from the rows.
    facts.recompute(Conversation.objects.all())
    for conversation in c.values():
        conversation.refresh_from_db()
    return History(c=c, d=d, alice=alice, bob=bob, manager=manager, shipping=shipping, returns=returns)
