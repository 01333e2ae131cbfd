"""Knowledge-base writes, and the per-process index drafts are selected from."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import threading
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Count, F, Max, Q, QuerySet, Value
from django.db.models.functions import Greatest
from django.utils import timezone
from django.utils.translation import gettext
from rapidfuzz.distance import Levenshtein

from chatdesk.conversations import realtime, selectors
from chatdesk.conversations.errors import ServiceError
from chatdesk.conversations.models import AgentAction, Draft, Message
from chatdesk.drafting import encoder
from chatdesk.drafting.base import Source
from chatdesk.drafting.classifier import ProgressCallback
from chatdesk.drafting.index import KnowledgeIndex, OutOfScopeKey, Passage
from chatdesk.knowledge.classification import active_classifier, classifier_train, labelled_examples
from chatdesk.knowledge.evaluation import Outcome, threshold_product
from chatdesk.knowledge.memory import reply_memory_current
from chatdesk.knowledge.models import (
    ApprovedReply,
    Article,
    ClassifierVersion,
    Embedding,
    EscalationPolicy,
    EscalationThreshold,
    OutOfScopeExample,
    Topic,
)

DEMO_ARTICLES = Path(__file__).with_name("demo_articles.json")

_index_lock = threading.Lock()
_index_cache: dict[str, object] = {"version": None, "index": None, "memory": None}


def embedding_key(text: str) -> str:
    """The Embedding cache's key for `text` under the current encoder."""
    return hashlib.sha256(f"{encoder.name()}\n{text}".encode()).hexdigest()


def embeddings_for(texts: list[str]) -> np.ndarray:
    """Vectors for texts, encoding only those no process has encoded before."""
    keys = [embedding_key(t) for t in texts]
    known = {e.key: e.vector for e in Embedding.objects.filter(key__in=set(keys))}
    missing = sorted({t for t, k in zip(texts, keys, strict=True) if k not in known})
    if missing:
        vectors = encoder.encode(missing)
        new = [Embedding(key=embedding_key(t), vector=v.tobytes()) for t, v in zip(missing, vectors, strict=True)]
        Embedding.objects.bulk_create(new, ignore_conflicts=True)
        known.update({e.key: e.vector for e in new})
    if not texts:
        return np.zeros((0, encoder.DIMENSIONS), dtype=np.float32)
    return np.stack([np.frombuffer(bytes(known[k]), dtype=np.float32) for k in keys])


def _knowledge_version() -> tuple[object, ...]:
    # The reply memory is not in it: it grows without bound and is kept up to date change by change
    # (knowledge/memory.py). These tables stay small.
    articles = Article.objects.filter(is_published=True).aggregate(n=Count("id"), t=Max("updated_at"))
    classifier = ClassifierVersion.objects.filter(is_active=True).values_list("pk", flat=True).first()
    out_of_scope = OutOfScopeExample.objects.aggregate(n=Count("id"), t=Max("updated_at"))
    return (encoder.name(), articles["n"], articles["t"], classifier, out_of_scope["n"], out_of_scope["t"])


def knowledge_passages() -> list[Passage]:
    """Published articles, keyed by title and example questions, each with the language it is written in
    (approved replies are in the reply memory)."""
    passages = [
        Passage(
            id=f"article:{a.pk}",
            title=a.title,
            text=a.body,
            topic=a.topic.name,
            keys=(a.title, *a.question_list),
            weight=a.weight,
            language=a.language,
        )
        for a in Article.objects.filter(is_published=True).select_related("topic").order_by("pk")
    ]
    return passages


def out_of_scope_keys(examples: QuerySet[OutOfScopeExample] | None = None) -> list[OutOfScopeKey]:
    """The "we don't answer this" examples (all, or those of `examples`), oldest first, each with who
    marked or imported it."""
    if examples is None:
        examples = OutOfScopeExample.objects.all()
    return [
        OutOfScopeKey(
            id=f"out_of_scope:{example.pk}",
            text=example.text,
            marked_by=(example.marked_by.get_full_name() or example.marked_by.username) if example.marked_by else None,
        )
        for example in examples.select_related("marked_by").order_by("pk")
    ]


def knowledge_index_current() -> KnowledgeIndex:
    """The index for what is in the database now: rebuilt only when articles, the active classifier, the
    out-of-scope examples or the encoder changed (texts encoded before come from the Embedding cache); the
    reply memory in it is brought up to date change by change (knowledge/memory.py), never rebuilt."""
    version = _knowledge_version()
    memory = reply_memory_current()
    with _index_lock:
        if _index_cache["index"] is not None and _index_cache["memory"] is not memory:
            _index_cache["version"] = None  # the memory was loaded again
        if _index_cache["version"] != version:
            passages = knowledge_passages()
            vectors = embeddings_for([key for p in passages for key in p.keys])
            out_of_scope = out_of_scope_keys()
            _classifier_id, classifier, classifier_encode = active_classifier()
            index = KnowledgeIndex(
                passages,
                vectors,
                classifier,
                classifier_encode=classifier_encode,
                out_of_scope=out_of_scope,
                out_of_scope_vectors=embeddings_for([key.text for key in out_of_scope]),
                out_of_scope_margin=settings.OUT_OF_SCOPE_MARGIN,
                other_language_weight=settings.OTHER_LANGUAGE_WEIGHT,
                memory=memory,
            )
            _index_cache.update(version=version, index=index, memory=memory)
        current = _index_cache["index"]
    assert isinstance(current, KnowledgeIndex)
    return current


def approved_reply_remember(
    *, customer_text: str, reply_text: str, topic: Topic | None, agent: User, source: str = ApprovedReply.Source.DRAFT
) -> ApprovedReply:
    """Add an agent-sent reply to the memory drafts are selected from; the next similar question can reuse it.

    source: "draft" (an approved or edited draft: in use at once) or "agent" (the agent's own words: in
    use at once only when MEMORY_AGENT_REPLIES is "auto", else pending a manager's approval).
    """
    pending = source == ApprovedReply.Source.AGENT and settings.MEMORY_AGENT_REPLIES == "review"
    return ApprovedReply.objects.create(
        customer_text=customer_text,
        reply_text=reply_text,
        topic=topic,
        agent=agent,
        source=source,
        status=ApprovedReply.Status.PENDING if pending else ApprovedReply.Status.ACTIVE,
    )


def memory_review(*, reply_id: int, manager: User, action: str, reply_text: str = "") -> ApprovedReply | None:
    """A manager's decision on one remembered reply: "approve" (a pending one is used from now on),
    "edit" (new reply text, in use from now on), "remove" (forgotten). Returns the entry, None once removed.

    Raises ApprovedReply.DoesNotExist for an unknown id, ValueError for an unknown action or empty text.
    """
    entry = ApprovedReply.objects.get(pk=reply_id)
    if action == "remove":
        entry.delete()
        return None
    if action == "edit":
        reply_text = reply_text.strip()
        if not reply_text:
            raise ValueError(gettext("Write the reply the desk should remember, or remove the entry."))
        entry.reply_text = reply_text
    elif action != "approve":
        raise ValueError(gettext("Unknown action %(action)r.") % {"action": action})
    entry.status = ApprovedReply.Status.ACTIVE
    entry.reviewed_by = manager
    entry.reviewed_at = timezone.now()
    entry.save()
    return entry


REJECTION_FACTOR = 0.8
MIN_WEIGHT = 0.2


def knowledge_source_penalize(source_id: str) -> None:
    """An agent rejected a draft taken from this source ("article:<id>" or "reply:<id>"): prefer it less."""
    kind, _, pk = source_id.partition(":")
    sources: QuerySet[Article] | QuerySet[ApprovedReply]
    if kind == "article":
        sources = Article.objects.all()
    elif kind == "reply":
        sources = ApprovedReply.objects.all()
    else:
        return
    sources.filter(pk=int(pk)).update(
        weight=Greatest(F("weight") * REJECTION_FACTOR, Value(MIN_WEIGHT)), updated_at=timezone.now()
    )


@transaction.atomic
def knowledge_seed_demo() -> int:
    """Load the demo shop's articles; articles whose title exists already are left as they are."""
    created = 0
    for item in json.loads(DEMO_ARTICLES.read_text()):
        topic, _ = Topic.objects.get_or_create(name=item["topic"])
        _, was_created = Article.objects.get_or_create(
            title=item["title"],
            defaults={
                "topic": topic,
                "body": item["body"],
                "questions": "\n".join(item["questions"]),
                "language": item.get("language", "en"),
            },
        )
        created += was_created
    return created


def classifier_train_on_history(*, callback: ProgressCallback | None = None) -> ClassifierVersion:
    """train_classifier: fit a new classifier version on the approved history (see classification.classifier_train)."""
    texts, topics = labelled_examples()
    return classifier_train(texts=texts, vectors=embeddings_for(texts), topics=topics, callback=callback)


# -- "we don't answer this" ------------------------------------------------------


def out_of_scope_mark(*, public_id: uuid.UUID, seq: object, agent: User) -> Message:
    """An agent's one click: the customer message `seq` of the conversation is something the desk does
    not answer; it becomes a negative example for the escalation decision (docs/escalation.md).

    Idempotent: marking a message again changes nothing. Returns the message. Raises ServiceError
    `not_found` (no such conversation for this agent, or no such message) or `not_customer_message`.
    """
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        raise ServiceError("invalid_request", gettext("seq must be a whole number from 1."), field="seq")
    conversation = selectors.conversation_for_agent(user=agent, public_id=public_id)
    if conversation is None:
        raise ServiceError("not_found", gettext("This conversation does not exist."))
    message = conversation.messages.filter(seq=seq).first()
    if message is None:
        raise ServiceError("not_found", gettext("There is no message %(seq)s in this conversation.") % {"seq": seq})
    if message.sender != Message.Sender.CUSTOMER:
        raise ServiceError(
            "not_customer_message", gettext("Only customer messages can be marked as something we don't answer.")
        )
    OutOfScopeExample.objects.get_or_create(
        message=message,
        defaults={"text": message.text, "source": OutOfScopeExample.Source.AGENT, "marked_by": agent},
    )
    realtime.conversation_changed(conversation.pk)
    return message


def out_of_scope_import(
    texts: Iterable[str], *, source: str = OutOfScopeExample.Source.IMPORT, by: User | None = None
) -> int:
    """Store questions as "we don't answer this" examples (managers' lists, evaluate_drafts). Blank
    lines and texts stored already are skipped. Returns how many were added."""
    wanted = list(dict.fromkeys(" ".join(text.split()) for text in texts if text.strip()))
    known = set(OutOfScopeExample.objects.filter(text__in=wanted).values_list("text", flat=True))
    new = [OutOfScopeExample(text=text, source=source, marked_by=by) for text in wanted if text not in known]
    OutOfScopeExample.objects.bulk_create(new)
    return len(new)


def out_of_scope_read(path: Path) -> list[str]:
    """Questions from a file: one per line, or a CSV whose header has a `text` (or `question`) column.
    Raises ValueError when a CSV header has neither."""
    content = path.read_text(encoding="utf-8-sig")
    first = content.splitlines()[0] if content.strip() else ""
    columns = [name.strip().lower() for name in next(csv.reader([first]))] if first else []
    if path.suffix.lower() == ".csv" or (len(columns) > 1 and {"text", "question"} & set(columns)):
        rows = list(csv.reader(io.StringIO(content)))
        column = next((columns.index(name) for name in ("text", "question") if name in columns), None)
        if column is None:
            raise ValueError(f"{path}: the CSV header needs a text or question column; it has {', '.join(columns)}")
        return [row[column] for row in rows[1:] if len(row) > column and row[column].strip()]
    return [line for line in content.splitlines() if line.strip()]


def out_of_scope_detail(example: Source) -> str:
    """What agents read on an out-of-scope flag: the example it is close to, and who marked it."""
    kind, _, pk = example.id.partition(":")
    who = None
    if kind == "out_of_scope" and pk.isdigit():
        stored = OutOfScopeExample.objects.select_related("marked_by").filter(pk=int(pk)).first()
        if stored is not None and stored.marked_by is not None:
            who = stored.marked_by.get_full_name() or stored.marked_by.username
        elif stored is not None:
            who = stored.get_source_display().lower()
    text = example.title if len(example.title) <= 120 else example.title[:117] + "…"
    return f"close to '{text}'" + (f" marked by {who}" if who else "") + f" (similarity {example.score:.0%})"


# -- the calibrated threshold ------------------------------------------------------


@dataclass(frozen=True)
class LabelledDraft:
    """A reviewed draft: its confidence, topic, and whether it was a right answer."""

    confidence: float
    topic_id: int | None
    right: bool


def drafts_labelled() -> list[LabelledDraft]:
    """The desk's labelled history: drafts sent as drafted, or edited by at most CALIBRATION_MAX_EDIT
    (normalised edit distance), are right; rejected ones, heavier edits, and drafts that were ready
    when an agent took the conversation over instead are wrong. Other drafts are not labels."""
    status = Draft.Status
    labelled = []
    drafts = Draft.objects.filter(
        confidence__isnull=False,
        status__in=[status.APPROVED, status.EDITED, status.REJECTED, status.TAKEN_OVER],
    ).values_list("pk", "status", "confidence", "topic_id", "text", "ready_at")
    sent = dict(AgentAction.objects.filter(kind=AgentAction.Kind.EDIT).values_list("draft_id", "sent_text"))
    for pk, state, confidence, topic_id, text, ready_at in drafts:
        if state == status.APPROVED:
            right = True
        elif state == status.EDITED:
            right = Levenshtein.normalized_distance(text, sent.get(pk, "")) <= settings.CALIBRATION_MAX_EDIT
        elif state == status.REJECTED:
            right = False
        elif ready_at is not None:
            right = False  # taken over: it waited for review and the agent answered themselves instead
        else:
            continue  # taken over before it was ready: says nothing about the draft
        labelled.append(LabelledDraft(confidence=float(confidence or 0.0), topic_id=topic_id, right=right))
    return labelled


def escalation_target_precision() -> float:
    """The answered precision thresholds are chosen for: the manager's (EscalationPolicy), else the setting."""
    stored = EscalationPolicy.objects.values_list("target_precision", flat=True).first()
    return float(stored) if stored is not None else float(settings.ESCALATION_TARGET_PRECISION)


@dataclass(frozen=True)
class Calibration:
    """A threshold chosen on labelled drafts, and what it would have done on them."""

    topic: str | None  # None: the global threshold
    threshold: float
    target_precision: float
    precision: float  # right answered / answered (1.0 when it answers nothing)
    coverage: float  # right answered / right
    answered: int
    escalated: int
    n: int


def threshold_calibrate(drafts: Sequence[LabelledDraft], target: float, topic: str | None = None) -> Calibration:
    """The product rule on the desk's history: the lowest threshold whose answered precision is ≥
    `target` (evaluation.threshold_product; if none reaches it, the highest confidence seen)."""
    outcomes = [Outcome(expected="right", chosen="right" if d.right else "", confidence=d.confidence) for d in drafts]
    threshold = threshold_product(outcomes, precision=target)
    answered = [d for d in drafts if d.confidence >= threshold]
    right = sum(d.right for d in drafts)
    answered_right = sum(d.right for d in answered)
    return Calibration(
        topic=topic,
        threshold=threshold,
        target_precision=target,
        precision=answered_right / len(answered) if answered else 1.0,
        coverage=answered_right / right if right else 0.0,
        answered=len(answered),
        escalated=len(drafts) - len(answered),
        n=len(drafts),
    )


@transaction.atomic
def escalation_calibrate() -> list[Calibration]:
    """calibrate_escalation: choose and store the thresholds for the current target precision, a
    global one and one per topic with at least CALIBRATION_MIN_EXAMPLES labelled drafts (others use
    the global one). With fewer labelled drafts than that in all, nothing is stored and drafts keep
    DRAFT_ESCALATE_BELOW. Topics that no longer qualify lose their threshold. Returns what was stored,
    the global one first."""
    drafts = drafts_labelled()
    target = escalation_target_precision()
    minimum = settings.CALIBRATION_MIN_EXAMPLES
    now = timezone.now()
    chosen: list[Calibration] = []
    kept_topics: list[int] = []
    if len(drafts) >= minimum:
        chosen.append(_store_calibration(threshold_calibrate(drafts, target), None, now))
        names = dict(Topic.objects.values_list("pk", "name"))
        by_topic: dict[int, list[LabelledDraft]] = {}
        for draft in drafts:
            if draft.topic_id is not None:
                by_topic.setdefault(draft.topic_id, []).append(draft)
        for topic_id, topic_drafts in sorted(by_topic.items(), key=lambda item: names.get(item[0], "")):
            if len(topic_drafts) >= minimum and topic_id in names:
                calibration = threshold_calibrate(topic_drafts, target, names[topic_id])
                chosen.append(_store_calibration(calibration, topic_id, now))
                kept_topics.append(topic_id)
    else:
        EscalationThreshold.objects.filter(topic__isnull=True).delete()
    EscalationThreshold.objects.filter(topic__isnull=False).exclude(topic_id__in=kept_topics).delete()
    return chosen


def _store_calibration(calibration: Calibration, topic_id: int | None, now: datetime) -> Calibration:
    values = {
        "threshold": calibration.threshold,
        "target_precision": calibration.target_precision,
        "precision": calibration.precision,
        "coverage": calibration.coverage,
        "answered": calibration.answered,
        "escalated": calibration.escalated,
        "n": calibration.n,
        "computed_at": now,
    }
    if topic_id is None:
        EscalationThreshold.objects.update_or_create(topic__isnull=True, defaults=values)
    else:
        EscalationThreshold.objects.update_or_create(topic_id=topic_id, defaults=values)
    return calibration


def escalation_threshold(topic: Topic | None) -> float:
    """The confidence below which a draft on `topic` is escalated: the topic's calibrated threshold,
    else the global calibrated one, else the DRAFT_ESCALATE_BELOW setting."""
    rows: dict[int | None, float] = dict(
        EscalationThreshold.objects.filter(Q(topic__isnull=True) | Q(topic=topic)).values_list("topic_id", "threshold")
    )
    if topic is not None and topic.pk in rows:
        return rows[topic.pk]
    return rows.get(None, settings.DRAFT_ESCALATE_BELOW)
