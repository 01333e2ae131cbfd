"""Training the topic selector on the approved history, and keeping the version drafting uses."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from django.db import transaction

from chatdesk.drafting.selector import ARRAYS_FILE, META_FILE, ProgressCallback, TopicSelector
from chatdesk.knowledge.models import ApprovedReply, Article, SelectorVersion

HELD_BACK = 0.2
SEED = 0


class TrainingError(Exception):
    """There is not enough labelled history to train on; the message says what is missing."""


def selector_fit(vectors: np.ndarray, topics: Sequence[str], callback: ProgressCallback | None = None) -> TopicSelector:
    """The desk's one way to fit a selector (train_selector and evaluate_drafts both use it)."""
    return TopicSelector(seed=SEED).fit(vectors, topics, callback=callback)


def labelled_examples() -> tuple[list[str], list[str]]:
    """(texts, topics): customer messages agents answered (with the draft's topic), and published
    articles' titles and example questions (with the article's topic)."""
    texts: list[str] = []
    topics: list[str] = []
    for text, topic in ApprovedReply.objects.filter(topic__isnull=False).values_list("customer_text", "topic__name"):
        texts.append(text)
        topics.append(topic)
    for article in Article.objects.filter(is_published=True).select_related("topic"):
        for key in (article.title, *article.question_list):
            texts.append(key)
            topics.append(article.topic.name)
    return texts, topics


def held_back_split(topics: Sequence[str], fraction: float = HELD_BACK, seed: int = SEED) -> np.ndarray:
    """A boolean mask of held-back examples: `fraction` of each topic's, keeping at least one per topic to train on."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(topics, dtype=object)
    held = np.zeros(len(labels), dtype=bool)
    for topic in sorted(set(topics)):
        members = rng.permutation(np.flatnonzero(labels == topic))
        held[members[: min(round(len(members) * fraction), len(members) - 1)]] = True
    return held


def nearest_neighbour_topics(train: np.ndarray, train_topics: Sequence[str], queries: np.ndarray) -> list[str]:
    """What selection does without a trained selector: the topic of the most similar training example."""
    nearest = np.argmax(queries @ train.T, axis=1)
    return [train_topics[i] for i in nearest]


def selector_to_row(selector: TopicSelector) -> tuple[bytes, dict[str, object]]:
    with tempfile.TemporaryDirectory() as folder:
        selector.save(folder)
        return (Path(folder) / ARRAYS_FILE).read_bytes(), json.loads((Path(folder) / META_FILE).read_text())


def selector_from_row(version: SelectorVersion) -> TopicSelector:
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / ARRAYS_FILE).write_bytes(bytes(version.arrays))
        (Path(folder) / META_FILE).write_text(json.dumps(version.meta))
        return TopicSelector.load(folder)


def active_selector() -> tuple[int | None, TopicSelector | None]:
    version = SelectorVersion.objects.filter(is_active=True).first()
    return (version.pk, selector_from_row(version)) if version else (None, None)


def selector_train(
    *, vectors: np.ndarray, topics: Sequence[str], callback: ProgressCallback | None = None
) -> SelectorVersion:
    """Fit a new version; it becomes active only if its held-back accuracy is not worse than the active
    version's (or, with none active, plain nearest-neighbour selection's) on the same held-back examples.
    The stored version is refitted on all examples once it has passed."""
    if len(set(topics)) < 2:
        raise TrainingError("training needs customer messages or example questions of at least two topics")
    labels = list(topics)
    held = held_back_split(labels)
    if not held.any():
        raise TrainingError("too few examples per topic to hold any back for scoring")
    train_topics = [t for t, h in zip(labels, held, strict=True) if not h]
    expected = np.array([t for t, h in zip(labels, held, strict=True) if h], dtype=object)
    candidate = selector_fit(vectors[~held], train_topics, callback)
    accuracy = float(np.mean([s.topic for s in candidate.predict(vectors[held])] == expected))
    _active_id, active = active_selector()
    if active is not None:
        previous = float(np.mean([s.topic for s in active.predict(vectors[held])] == expected))
    else:
        previous = float(np.mean(nearest_neighbour_topics(vectors[~held], train_topics, vectors[held]) == expected))
    final = selector_fit(vectors, labels, callback)
    arrays, meta = selector_to_row(final)
    with transaction.atomic():
        version = SelectorVersion.objects.create(
            examples=len(labels),
            topics=len(set(labels)),
            held_back_accuracy=accuracy,
            previous_accuracy=previous,
            arrays=arrays,
            meta=meta,
        )
        if accuracy >= previous:
            SelectorVersion.objects.filter(is_active=True).update(is_active=False)
            SelectorVersion.objects.filter(pk=version.pk).update(is_active=True)
            version.is_active = True
    return version
