"""An in-memory nearest-neighbour index over knowledge passages."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from chatdesk.drafting.classifier import EncodeFn, TopicClassifier
    from chatdesk.drafting.memory import ReplyMemory


@dataclass(frozen=True)
class Passage:
    """An answer the desk may send, with the texts that customers' words are matched against."""

    id: str
    title: str
    text: str
    topic: str | None
    keys: tuple[str, ...]
    weight: float = 1.0
    language: str | None = None  # a Django language code ("en", "zh-hans"); None: not known


@dataclass(frozen=True)
class OutOfScopeKey:
    """A question the desk does not answer ("we don't answer this"), and who said so."""

    id: str
    text: str
    marked_by: str | None = None


@dataclass(frozen=True)
class OutOfScopeMatch:
    """A message's nearest out-of-scope example, with its cosine similarity and that of the message's
    nearest in-scope key text (unweighted)."""

    example: OutOfScopeKey
    similarity: float
    in_scope_similarity: float


@dataclass(frozen=True)
class Match:
    passage: Passage
    score: float
    key: str


class KnowledgeIndex:
    """Passages and one unit vector per key text; search returns the best key of each passage.

    `classifier`, when the desk has trained one (train_classifier), decides the topic first; when it
    works on a fine-tuned encoder of its own, `classifier_encode` gives a message's vector for it.
    `out_of_scope` are the desk's negative examples with one unit vector each (same encoder as the
    keys); `out_of_scope_margin` is the rule `out_of_scope_match` applies (docs/escalation.md).
    `other_language_weight` scales the similarity of a passage written in another language than the
    one a search asks for (passages of unknown language are never scaled).
    `memory`, when given, holds the remembered replies ("reply:<id>" passages) apart from `passages`: it
    is searched alongside them and kept up to date in place (drafting/memory.py).
    """

    def __init__(
        self,
        passages: list[Passage],
        key_vectors: np.ndarray,
        classifier: TopicClassifier | None = None,
        *,
        classifier_encode: EncodeFn | None = None,
        out_of_scope: list[OutOfScopeKey] | None = None,
        out_of_scope_vectors: np.ndarray | None = None,
        out_of_scope_margin: float = 0.0,
        other_language_weight: float = 1.0,
        memory: ReplyMemory | None = None,
    ) -> None:
        self.passages = passages
        self.memory = memory
        self.out_of_scope = out_of_scope or []
        self._out_of_scope_vectors = (
            out_of_scope_vectors if out_of_scope_vectors is not None else np.zeros((0, key_vectors.shape[1]))
        )
        if self._out_of_scope_vectors.shape[0] != len(self.out_of_scope):
            raise ValueError("one vector per out-of-scope example is needed")
        self.out_of_scope_margin = out_of_scope_margin
        self.classifier = classifier
        self.classifier_encode = classifier_encode
        self._owners = np.array([i for i, p in enumerate(passages) for _ in p.keys], dtype=np.int64)
        self._keys = [key for p in passages for key in p.keys]
        if key_vectors.shape[0] != len(self._keys):
            raise ValueError("one vector per key text is needed")
        self._vectors = key_vectors
        self._weights = np.array([p.weight for p in passages for _ in p.keys], dtype=np.float32)
        self._key_topics = np.array([p.topic or "" for p in passages for _ in p.keys], dtype=object)
        self._key_languages = np.array([p.language or "" for p in passages for _ in p.keys], dtype=object)
        self.other_language_weight = other_language_weight

    def __len__(self) -> int:
        return len(self.passages) + (len(self.memory) if self.memory is not None else 0)

    def __contains__(self, passage_id: object) -> bool:
        """Whether a passage id ("article:3", "reply:7") can be drafted from."""
        if any(p.id == passage_id for p in self.passages):
            return True
        reply = _reply_id(passage_id)
        return reply is not None and self.memory is not None and reply in self.memory

    def language_weight(self, passage: Passage, language: str | None) -> float:
        """What a passage's similarity counts for a customer writing in `language` (None or "": any)."""
        if language and passage.language and passage.language != language:
            return self.other_language_weight
        return 1.0

    def search(
        self,
        query: np.ndarray,
        limit: int = 3,
        *,
        topic: str | None = None,
        exclude: Collection[str] = (),
        language: str | None = None,
    ) -> list[Match]:
        """The best `limit` passages (of `topic` only, if given; never those whose id is in `exclude`)
        by the cosine similarity of their closest key times the passage's weight (agents' rejections
        lower it) and, for a customer writing in `language`, times `other_language_weight` for passages
        written in another one; best first."""
        matches = self._search_passages(query, limit, topic=topic, exclude=exclude, language=language)
        if self.memory is not None and len(self.memory):
            avoid = {reply for reply in map(_reply_id, exclude) if reply is not None}
            hits = self.memory.search(query, limit, topic=topic, exclude=avoid)
            found = self.memory.fetch([hit.reply_id for hit in hits]) if hits else {}
            for hit in hits:
                if hit.reply_id not in found:  # removed since this worker last caught up
                    continue
                passage = found[hit.reply_id]
                # np.minimum as for passages: scaling never raises a (negative) similarity
                score = min(hit.score * self.language_weight(passage, language), hit.score)
                matches.append(Match(passage=passage, score=score, key=passage.keys[0]))
            matches = sorted(matches, key=lambda match: -match.score)[:limit]
        return matches

    def _search_passages(
        self, query: np.ndarray, limit: int, *, topic: str | None, exclude: Collection[str], language: str | None
    ) -> list[Match]:
        if not self._keys:
            return []
        scores = (self._vectors @ query) * self._weights
        if language and self.other_language_weight != 1.0:
            elsewhere = (self._key_languages != "") & (self._key_languages != language)
            # np.minimum: scaling never raises a (negative) similarity
            scores = np.where(elsewhere, np.minimum(scores * self.other_language_weight, scores), scores)
        if topic is not None:
            scores = np.where(self._key_topics == topic, scores, -np.inf)
        best_per_passage: dict[int, int] = {}
        for key_index in np.argsort(-scores):
            if scores[key_index] == -np.inf:
                break
            owner = int(self._owners[key_index])
            if owner not in best_per_passage and self.passages[owner].id not in exclude:
                best_per_passage[owner] = int(key_index)
                if len(best_per_passage) == limit:
                    break
        return [
            Match(passage=self.passages[owner], score=float(scores[k]), key=self._keys[k])
            for owner, k in best_per_passage.items()
        ]

    def out_of_scope_match(self, query: np.ndarray) -> OutOfScopeMatch | None:
        """The message's nearest out-of-scope example when it is at least `out_of_scope_margin` more
        similar (cosine) than the nearest in-scope key text; None otherwise or without examples."""
        if not self.out_of_scope:
            return None
        similarities = self._out_of_scope_vectors @ query
        nearest = int(np.argmax(similarities))
        in_scope = float(np.max(self._vectors @ query)) if self._keys else -1.0
        remembered = self.memory.best_similarity(query) if self.memory is not None else None
        in_scope = max(in_scope, remembered) if remembered is not None else in_scope
        if float(similarities[nearest]) < in_scope + self.out_of_scope_margin:
            return None
        return OutOfScopeMatch(self.out_of_scope[nearest], float(similarities[nearest]), in_scope)


def _reply_id(passage_id: object) -> int | None:
    kind, _, number = str(passage_id).partition(":")
    return int(number) if kind == "reply" and number.isdigit() else None
