"""Which escalation rules a new customer message fires: the text rules (chatdesk.conversations.rules) run
on the message and what the conversation says around it. Reads only; services.flag records each result.
docs/escalation.md says how each rule works and how to tune it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings

from chatdesk.conversations import rules
from chatdesk.conversations.injection import INJECTION
from chatdesk.conversations.models import Conversation, Message, SensitiveRule
from chatdesk.knowledge.models import Topic

Reason = Conversation.EscalationReason


@dataclass(frozen=True)
class Hit:
    """One rule that fired: the flag to record (services.flag's arguments)."""

    reason: str
    detail: str
    score: float | None = None
    escalate: bool = True


@dataclass(frozen=True)
class Assessment:
    """What the rules found in one customer message. `sentiment`: -1..1, stored on the conversation;
    `hits`: the flags to record, heaviest reason (ESCALATION_WEIGHTS) first; `asked_for_person`: the
    message asks for a person in words (then nothing is drafted for it)."""

    sentiment: float
    hits: list[Hit] = field(default_factory=list)
    asked_for_person: bool = False


def customer_message_assess(conversation: Conversation, message: Message) -> Assessment:
    """Run every rule on the customer's `message`, already stored in `conversation` (whose lock the
    caller holds). A person asked for while an agent has taken the conversation over is no new reason."""
    text = message.text
    hits: list[Hit] = []
    asked = rules.person_request(text)
    if asked is not None and conversation.status != Conversation.Status.TAKEN_OVER:
        hits.append(Hit(Reason.CUSTOMER_REQUEST, f"said: '{rules.quote(asked)}'"))
    score = rules.sentiment(text)
    if score < settings.ESCALATION_SENTIMENT_BELOW:
        # No escalation by itself: the draft is still written and reviewed, this conversation first.
        hits.append(Hit(Reason.NEGATIVE_SENTIMENT, f"sentiment {score:+.2f}", score=score, escalate=False))
    sensitive = _sensitive_phrase_rule(text)
    if sensitive is not None:
        hits.append(Hit(Reason.SENSITIVE, sensitive))
    repeated = _repeated_question(conversation, message)
    if repeated is not None:
        earlier, similarity = repeated
        hits.append(
            Hit(Reason.REPEATED_QUESTION, f"asked again ({similarity:.0%} alike): '{earlier}'", score=similarity)
        )
    injection = INJECTION.search(rules.normalise(text))
    if injection is not None:
        hits.append(Hit(Reason.INJECTION, f"said: '{rules.quote(injection.group(0))}'"))
    else:
        abuse = rules.abuse_marker(text)
        if abuse is not None:
            hits.append(Hit(Reason.INJECTION, f"abuse: '{abuse}'"))
    weights = settings.ESCALATION_WEIGHTS
    hits.sort(key=lambda hit: -weights.get(hit.reason, 0))
    return Assessment(sentiment=score, hits=hits, asked_for_person=asked is not None)


def _sensitive_phrase_rule(text: str) -> str | None:
    """What agents are shown of the first active phrase rule `text` fires, e.g. "said: 'lawyer' (Legal
    threat)" or, for a rule with amount_above, "said: 'refund' with 250, above 200"; None if none fires."""
    for rule in SensitiveRule.objects.filter(active=True).exclude(phrase=""):
        if rule.amount_above is None:
            fired = rules.sensitive_phrase(text, [rule.phrase]) is not None
            said = f"said: '{rule.phrase}'"
        else:
            amount = rules.sensitive_amount(text, rule.phrase, float(rule.amount_above))
            fired = amount is not None
            said = f"said: '{rule.phrase}' with {amount:g}, above {float(rule.amount_above):g}" if fired else ""
        if fired:
            return said + (f" ({rule.note})" if rule.note else "")
    return None


def _repeated_question(conversation: Conversation, message: Message) -> tuple[str, float] | None:
    """(the earlier question, similarity) when `message` asks again what the customer's previous message
    asked and an agent or autopilot answered in between; None otherwise (a resend without an answer
    between is impatience, not a failed answer)."""
    before = list(conversation.messages.filter(seq__lt=message.seq).order_by("-seq")[:20])
    if not before or before[0].sender == Message.Sender.CUSTOMER:
        return None
    previous = next((m for m in before if m.sender == Message.Sender.CUSTOMER), None)
    if previous is None:
        return None
    similarity = rules.question_similarity(previous.text, message.text)
    if similarity < settings.ESCALATION_REPEAT_SIMILARITY:
        return None
    return rules.quote(previous.text), similarity


def sensitive_topic_rule(topic: Topic | None) -> SensitiveRule | None:
    """The active rule that marks `topic` sensitive, if any."""
    if topic is None:
        return None
    return SensitiveRule.objects.filter(active=True, topic=topic).first()
