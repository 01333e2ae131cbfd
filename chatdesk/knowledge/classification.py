"""Training the topic classifier on the approved history, and keeping the version drafting uses."""

from __future__ import annotations

import json
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import transaction

from chatdesk.drafting import encoder
from chatdesk.drafting.classifier import (
    ARRAYS_FILE,
    META_FILE,
    EncodeFn,
    ProgressCallback,
    TopicClassifier,
    encoder_changes,
    load_encoder_with_changes,
    tune_encoder,
)
from chatdesk.knowledge.models import ApprovedReply, Article, ClassifierVersion

HELD_BACK = 0.2
SEED = 0
# A classifier on a tuned encoder blends in neighbour votes at this fixed share: the held-out slice it
# would otherwise choose the share on was seen by the encoder while it was tuned.
TUNED_KNN_WEIGHT = 0.5
SHARED_ENCODER_KEY = "shared_encoder"  # in a version's meta: the shared encoder it was trained with
KEEP_ENCODERS = 3  # versions whose tuned encoder is kept, besides the active one


class TrainingError(Exception):
    """There is not enough labelled history to train on; the message says what is missing."""


@dataclass(frozen=True)
class Learned:
    """A classifier fitted on every example, and the encoder whose vectors it works on."""

    classifier: TopicClassifier
    encoder_changes: bytes | None  # the tuned encoder's weights (drafting.classifier.encoder_changes); None: shared
    encode: EncodeFn | None  # vectors for it; None: the shared encoder's
    held_back_accuracy: float  # of the same method fitted without the held-back examples
    held: np.ndarray  # which examples were held back


def classifier_fit(
    vectors: np.ndarray,
    topics: Sequence[str],
    callback: ProgressCallback | None = None,
    *,
    knn_weight: float | None = None,
) -> TopicClassifier:
    """The desk's one way to fit a classifier on vectors (see classifier_learn)."""
    return TopicClassifier(seed=SEED, knn_weight=knn_weight).fit(vectors, topics, callback=callback)


def classifier_learn(
    texts: Sequence[str],
    vectors: np.ndarray,
    topics: Sequence[str],
    callback: ProgressCallback | None = None,
    *,
    threads: int | None = None,
) -> Learned:
    """The desk's one way to learn topic classification (train_classifier and evaluate_drafts both use it).

    Holds back a fifth of each topic's examples; fits a classifier on the rest of the shared
    encoder's `vectors` and, as CLASSIFIER_ENCODER says, another on a copy of the encoder fine-tuned
    on the rest (tune_encoder, within CLASSIFIER_TUNE_BUDGET_S); keeps the one more accurate on the
    held-back examples (the shared encoder on a tie) and refits it on every example.
    """
    if len(set(topics)) < 2:
        raise TrainingError("training needs customer messages or example questions of at least two topics")
    labels = list(topics)
    held = held_back_split(labels)
    if not held.any():
        raise TrainingError("too few examples per topic to hold any back for scoring")
    train_topics, expected = split_held_back(labels, held)

    def accuracy(classifier: TopicClassifier, space: np.ndarray) -> float:
        return classification_accuracy(classifier, space[held], expected)

    mode = settings.CLASSIFIER_ENCODER
    candidates: list[tuple[Learned, np.ndarray]] = []  # each with the vectors it works on
    if mode != "tuned":
        plain = classifier_fit(vectors[~held], train_topics, callback)
        candidates.append((Learned(plain, None, None, accuracy(plain, vectors), held), vectors))
    tunable = encoder.fine_tunable()  # the multilingual encoder is never fine-tuned
    if mode == "tuned" or (mode == "auto" and tunable and len(labels) >= settings.CLASSIFIER_TUNE_MIN_EXAMPLES):
        changes = encoder_tune(split_held_back(texts, held)[0], train_topics, callback, threads)
        encode = load_encoder_with_changes(encoder.model_path(), changes, threads=threads)
        space = encode(list(texts))
        tuned = classifier_fit(space[~held], train_topics, callback, knn_weight=TUNED_KNN_WEIGHT)
        candidates.append((Learned(tuned, changes, encode, accuracy(tuned, space), held), space))
    best, space = max(candidates, key=lambda candidate: candidate[0].held_back_accuracy)  # the first on a tie
    knn_weight = TUNED_KNN_WEIGHT if best.encode is not None else None
    final = classifier_fit(space, labels, callback, knn_weight=knn_weight)
    return Learned(final, best.encoder_changes, best.encode, best.held_back_accuracy, held)


def encoder_tune(
    texts: Sequence[str], topics: Sequence[str], callback: ProgressCallback | None, threads: int | None
) -> bytes:
    """A copy of the shared encoder fine-tuned on (text, topic), as its changed weights."""
    with tempfile.TemporaryDirectory() as folder:
        tune_encoder(
            texts,
            topics,
            encoder.model_path(),
            folder,
            time_budget_s=settings.CLASSIFIER_TUNE_BUDGET_S,
            threads=threads,
            callback=callback,
        )
        return encoder_changes(encoder.model_path(), folder)


def labelled_examples() -> tuple[list[str], list[str]]:
    """(texts, topics): customer messages agents answered (with the draft's topic), and published
    articles' titles and example questions (with the article's topic)."""
    texts: list[str] = []
    topics: list[str] = []
    learned = ApprovedReply.objects.filter(topic__isnull=False, status=ApprovedReply.Status.ACTIVE)
    for text, topic in learned.values_list("customer_text", "topic__name"):
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


def split_held_back(values: Sequence[str], held: np.ndarray) -> tuple[list[str], list[str]]:
    """(the values trained on, the held-back values), in their order."""
    return [v for v, h in zip(values, held, strict=True) if not h], [v for v, h in zip(values, held, strict=True) if h]


def classification_accuracy(classifier: TopicClassifier, vectors: np.ndarray, expected: Sequence[str | None]) -> float:
    """The share of `vectors` whose selected topic is the expected one."""
    return share_right([s.topic for s in classifier.predict(vectors, top_k=1)], expected)


def share_right(chosen: Sequence[str | None], expected: Sequence[str | None]) -> float:
    return float(np.mean(np.array(chosen, dtype=object) == np.array(expected, dtype=object)))


def nearest_neighbour_topics(train: np.ndarray, train_topics: Sequence[str], queries: np.ndarray) -> list[str]:
    """What selection does without a trained classifier: the topic of the most similar training example."""
    nearest = np.argmax(queries @ train.T, axis=1)
    return [train_topics[i] for i in nearest]


def classifier_to_row(classifier: TopicClassifier) -> tuple[bytes, dict[str, object]]:
    with tempfile.TemporaryDirectory() as folder:
        classifier.save(folder)
        return (Path(folder) / ARRAYS_FILE).read_bytes(), json.loads((Path(folder) / META_FILE).read_text())


def classifier_from_row(version: ClassifierVersion) -> TopicClassifier:
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / ARRAYS_FILE).write_bytes(bytes(version.arrays))
        (Path(folder) / META_FILE).write_text(json.dumps(version.meta))
        return TopicClassifier.load(folder)


_encoders: dict[int, EncodeFn] = {}  # a tuned encoder per version, loaded once per process
_encoders_lock = threading.Lock()


def version_encoder(version_id: int) -> EncodeFn | None:
    """The encode function of a version's tuned encoder; None when it works on the shared encoder."""
    with _encoders_lock:
        if version_id not in _encoders:
            changes = ClassifierVersion.objects.filter(pk=version_id).values_list("encoder", flat=True).first()
            if changes is None:
                return None
            _encoders.clear()  # only the active version's is wanted
            _encoders[version_id] = load_encoder_with_changes(
                encoder.model_path(), bytes(changes), threads=settings.TORCH_NUM_THREADS
            )
        return _encoders[version_id]


def active_classifier() -> tuple[int | None, TopicClassifier | None, EncodeFn | None]:
    """The active version's id, classifier, and encoder (None: the shared one); all None without an
    active version, or when it was trained while another shared encoder (SENTENCE_ENCODER) was set."""
    version = ClassifierVersion.objects.filter(is_active=True).defer("encoder").first()
    if version is None or version.meta.get(SHARED_ENCODER_KEY, encoder.ENCODER_NAME) != encoder.name():
        return None, None, None
    return version.pk, classifier_from_row(version), version_encoder(version.pk)


def classifier_train(
    *, texts: Sequence[str], vectors: np.ndarray, topics: Sequence[str], callback: ProgressCallback | None = None
) -> ClassifierVersion:
    """Learn a new version (classifier_learn); it becomes active only if its held-back accuracy is not
    worse than the active version's (or, with none active, plain nearest-neighbour selection's) on
    the same held-back examples."""
    learned = classifier_learn(texts, vectors, topics, callback)
    labels, held = list(topics), learned.held
    train_topics, expected = split_held_back(labels, held)
    _active_id, active, active_encode = active_classifier()
    if active is not None:
        space = active_encode(split_held_back(texts, held)[1]) if active_encode is not None else vectors[held]
        previous = classification_accuracy(active, space, expected)
    else:
        previous = share_right(nearest_neighbour_topics(vectors[~held], train_topics, vectors[held]), expected)
    arrays, meta = classifier_to_row(learned.classifier)
    meta[SHARED_ENCODER_KEY] = encoder.name()
    with transaction.atomic():
        version = ClassifierVersion.objects.create(
            examples=len(labels),
            topics=len(set(labels)),
            held_back_accuracy=learned.held_back_accuracy,
            previous_accuracy=previous,
            arrays=arrays,
            meta=meta,
            encoder=learned.encoder_changes,
        )
        if learned.held_back_accuracy >= previous:
            ClassifierVersion.objects.filter(is_active=True).update(is_active=False)
            ClassifierVersion.objects.filter(pk=version.pk).update(is_active=True)
            version.is_active = True
        keep = ClassifierVersion.objects.filter(encoder__isnull=False).values_list("pk", flat=True)[:KEEP_ENCODERS]
        ClassifierVersion.objects.filter(encoder__isnull=False, is_active=False).exclude(pk__in=list(keep)).update(
            encoder=None
        )
    return version
