"""Knowledge-base writes, and the per-process index drafts are selected from."""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path

import numpy as np
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Count, F, Max, QuerySet, Value
from django.db.models.functions import Greatest
from django.utils import timezone

from chatdesk.drafting import encoder
from chatdesk.drafting.index import KnowledgeIndex, Passage
from chatdesk.drafting.selector import ProgressCallback
from chatdesk.knowledge.models import ApprovedReply, Article, Embedding, SelectorVersion, Topic
from chatdesk.knowledge.selection import active_selector, labelled_examples, selector_train

DEMO_ARTICLES = Path(__file__).with_name("demo_articles.json")

_index_lock = threading.Lock()
_index_cache: dict[str, object] = {"version": None, "index": None}


def embedding_key(text: str) -> str:
    """The Embedding cache's key for `text` under the current encoder."""
    return hashlib.sha256(f"{encoder.ENCODER_NAME}\n{text}".encode()).hexdigest()


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
        return np.zeros((0, 384), dtype=np.float32)
    return np.stack([np.frombuffer(bytes(known[k]), dtype=np.float32) for k in keys])


def _knowledge_version() -> tuple[object, ...]:
    articles = Article.objects.filter(is_published=True).aggregate(n=Count("id"), t=Max("updated_at"))
    replies = ApprovedReply.objects.aggregate(n=Count("id"), t=Max("updated_at"))
    selector = SelectorVersion.objects.filter(is_active=True).values_list("pk", flat=True).first()
    return (articles["n"], articles["t"], replies["n"], replies["t"], selector)


def knowledge_passages() -> list[Passage]:
    """Published articles (keyed by title and example questions) and approved replies (by the customer's words)."""
    passages = [
        Passage(
            id=f"article:{a.pk}",
            title=a.title,
            text=a.body,
            topic=a.topic.name,
            keys=(a.title, *a.question_list),
            weight=a.weight,
        )
        for a in Article.objects.filter(is_published=True).select_related("topic").order_by("pk")
    ]
    passages += [
        Passage(
            id=f"reply:{r.pk}",
            title=f"Approved reply #{r.pk}",
            text=r.reply_text,
            topic=r.topic.name if r.topic else None,
            keys=(r.customer_text,),
            weight=r.weight,
        )
        for r in ApprovedReply.objects.select_related("topic").order_by("pk")
    ]
    return passages


def knowledge_index_current() -> KnowledgeIndex:
    """The index for what is in the database now; rebuilt only when articles or replies changed."""
    version = _knowledge_version()
    with _index_lock:
        if _index_cache["version"] != version:
            passages = knowledge_passages()
            vectors = embeddings_for([key for p in passages for key in p.keys])
            _selector_id, selector, selector_encode = active_selector()
            _index_cache.update(
                version=version, index=KnowledgeIndex(passages, vectors, selector, selector_encode=selector_encode)
            )
        current = _index_cache["index"]
    assert isinstance(current, KnowledgeIndex)
    return current


def approved_reply_remember(*, customer_text: str, reply_text: str, topic: Topic | None, agent: User) -> ApprovedReply:
    """Add an agent-sent reply to the memory drafts are selected from; the next similar question can reuse it."""
    return ApprovedReply.objects.create(customer_text=customer_text, reply_text=reply_text, topic=topic, agent=agent)


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
            defaults={"topic": topic, "body": item["body"], "questions": "\n".join(item["questions"])},
        )
        created += was_created
    return created


def selector_train_on_history(*, callback: ProgressCallback | None = None) -> SelectorVersion:
    """train_selector: fit a new selector version on the approved history (see selection.selector_train)."""
    texts, topics = labelled_examples()
    return selector_train(texts=texts, vectors=embeddings_for(texts), topics=topics, callback=callback)
