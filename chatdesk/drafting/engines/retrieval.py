"""The default engine: answers with the knowledge passage that fits the customer's words best."""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import dataclass

import numpy as np

from chatdesk.drafting import encoder
from chatdesk.drafting.base import DraftContext, DraftEngine, DraftResult, EngineError, Source
from chatdesk.drafting.index import KnowledgeIndex, Match, OutOfScopeMatch


@dataclass(frozen=True)
class Choice:
    """What selection decided for one message: the topic, the passage to send, and how sure it is."""

    topic: str | None
    confidence: float
    matches: list[Match]  # the chosen passage first


def selection_vectors(index: KnowledgeIndex, texts: list[str], vectors: np.ndarray) -> np.ndarray:
    """The messages' vectors for the index's classifier: from its own fine-tuned encoder when it has
    one, else the shared encoder's `vectors`."""
    return vectors if index.classifier_encode is None else index.classifier_encode(texts)


def select(
    index: KnowledgeIndex,
    query: np.ndarray,
    *,
    selection_query: np.ndarray | None = None,
    avoid: Collection[str] = (),
    limit: int = 3,
    language: str | None = None,
) -> Choice:
    """Choose for one message vector. The desk's one selection rule, used by drafting and evaluate_drafts.

    `selection_query` is the message's vector for the classifier (`selection_vectors`) when the
    classifier has an encoder of its own; passages are always searched with `query`.

    Without a trained classifier: the passage whose closest key is most similar (times its weight); the
    confidence is that similarity. With one: the classifier's topic and calibrated confidence (times the
    chosen passage's weight), and the best passage of that topic (or overall, if the topic has none).
    `avoid` lists passage ids an agent rejected for this message. `language`, the customer's, prefers
    passages written in it (KnowledgeIndex.search); a passage in another language counts for less in
    the confidence too.
    """
    matches = index.search(query, limit=limit, exclude=avoid, language=language)
    if not matches:
        raise EngineError("the knowledge base is empty")
    if index.classifier is None or not index.classifier.fitted:
        best = matches[0]
        return Choice(topic=best.passage.topic, confidence=_unit_interval(best.score), matches=matches)
    if index.classifier_encode is not None and selection_query is None:
        raise ValueError("this classifier works on its own encoder: pass selection_query")
    vector = query if selection_query is None else selection_query
    prediction = index.classifier.predict(vector[np.newaxis, :], top_k=1)[0]
    in_topic = index.search(query, limit=1, topic=prediction.topic, exclude=avoid, language=language)
    chosen = in_topic[0] if in_topic else matches[0]
    others = [m for m in matches if m.passage.id != chosen.passage.id]
    return Choice(
        topic=prediction.topic,
        confidence=_unit_interval(
            prediction.confidence * chosen.passage.weight * index.language_weight(chosen.passage, language)
        ),
        matches=[chosen, *others][:limit],
    )


def _unit_interval(value: float) -> float:
    return min(max(float(value), 0.0), 1.0)


class RetrievalEngine(DraftEngine):
    """Selects, never writes: the draft is a passage's text, verbatim (see `select` for confidence)."""

    name = "retrieval"

    def warm_up(self) -> None:
        encoder.warm_up()

    def draft(self, context: DraftContext) -> DraftResult:
        started = time.perf_counter()
        text = context.latest_customer_text
        query = encoder.encode([text])[0]
        own = selection_vectors(context.knowledge, [text], query[np.newaxis, :])[0]
        encoded = time.perf_counter()
        choice = select(
            context.knowledge, query, selection_query=own, avoid=context.avoided_sources, language=context.language
        )
        out_of_scope = context.knowledge.out_of_scope_match(query)
        selected = time.perf_counter()
        return DraftResult(
            text=choice.matches[0].passage.text,
            confidence=choice.confidence,
            sources=[Source(id=m.passage.id, title=m.passage.title, score=m.score) for m in choice.matches],
            topic=choice.topic,
            timings={"encode_s": encoded - started, "select_s": selected - encoded},
            model_name=encoder.name(),  # selects a passage: no tokens read or written
            out_of_scope=out_of_scope_source(out_of_scope),
        )


def out_of_scope_source(match: OutOfScopeMatch | None) -> Source | None:
    """The out-of-scope example a message matched, as a DraftResult carries it."""
    if match is None:
        return None
    return Source(id=match.example.id, title=match.example.text, score=match.similarity)
