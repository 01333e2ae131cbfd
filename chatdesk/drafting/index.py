"""An in-memory nearest-neighbour index over knowledge passages."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from chatdesk.drafting.selector import EncodeFn, TopicSelector


@dataclass(frozen=True)
class Passage:
    """An answer the desk may send, with the texts that customers' words are matched against."""

    id: str
    title: str
    text: str
    topic: str | None
    keys: tuple[str, ...]
    weight: float = 1.0


@dataclass(frozen=True)
class Match:
    passage: Passage
    score: float
    key: str


class KnowledgeIndex:
    """Passages and one unit vector per key text; search returns the best key of each passage.

    `selector`, when the desk has trained one (train_selector), decides the topic first; when it
    works on a fine-tuned encoder of its own, `selector_encode` gives a message's vector for it.
    """

    def __init__(
        self,
        passages: list[Passage],
        key_vectors: np.ndarray,
        selector: TopicSelector | None = None,
        *,
        selector_encode: EncodeFn | None = None,
    ) -> None:
        self.passages = passages
        self.selector = selector
        self.selector_encode = selector_encode
        self._owners = np.array([i for i, p in enumerate(passages) for _ in p.keys], dtype=np.int64)
        self._keys = [key for p in passages for key in p.keys]
        if key_vectors.shape[0] != len(self._keys):
            raise ValueError("one vector per key text is needed")
        self._vectors = key_vectors
        self._weights = np.array([p.weight for p in passages for _ in p.keys], dtype=np.float32)
        self._key_topics = np.array([p.topic or "" for p in passages for _ in p.keys], dtype=object)

    def __len__(self) -> int:
        return len(self.passages)

    def search(
        self, query: np.ndarray, limit: int = 3, *, topic: str | None = None, exclude: Collection[str] = ()
    ) -> list[Match]:
        """The best `limit` passages (of `topic` only, if given; never those whose id is in `exclude`)
        by the cosine similarity of their closest key times the passage's weight (agents' rejections
        lower it), best first."""
        if not self._keys:
            return []
        scores = (self._vectors @ query) * self._weights
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
