"""The default engine: answers with the knowledge passage closest to the customer's words."""

from __future__ import annotations

import time

from chatdesk.drafting import encoder
from chatdesk.drafting.base import DraftContext, DraftEngine, DraftResult, EngineError, Source


class RetrievalEngine(DraftEngine):
    """Selects, never writes: the draft is a passage's text, verbatim.

    Confidence is the cosine similarity between the latest customer message
    and the closest example question (or approved customer message) of the
    chosen passage, clipped to [0, 1]. options["avoid_sources"] lists passage
    ids an agent rejected for this message.
    """

    name = "retrieval"

    def warm_up(self) -> None:
        encoder.warm_up()

    def draft(self, context: DraftContext) -> DraftResult:
        started = time.perf_counter()
        query = encoder.encode([context.latest_customer_text])[0]
        encoded = time.perf_counter()
        avoid = set(context.options.get("avoid_sources", []))
        matches = [m for m in context.knowledge.search(query, limit=3 + len(avoid)) if m.passage.id not in avoid][:3]
        searched = time.perf_counter()
        if not matches:
            raise EngineError("the knowledge base is empty")
        best = matches[0]
        return DraftResult(
            text=best.passage.text,
            confidence=min(max(best.score, 0.0), 1.0),
            sources=[Source(id=m.passage.id, title=m.passage.title, score=m.score) for m in matches],
            topic=best.passage.topic,
            timings={"encode_s": encoded - started, "search_s": searched - encoded},
        )
