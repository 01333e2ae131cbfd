"""The worker's reply memory on its own: exact and approximate search agree on what a draft would use."""

from __future__ import annotations

import numpy as np
import pytest

from chatdesk.drafting.memory import ReplyMemory

DIMS = 32


def clustered(rng: np.random.Generator, n: int, centres: int = 12) -> np.ndarray:
    """Unit vectors around a few centres, as sentence vectors of a few kinds of question are."""
    middles = rng.standard_normal((centres, DIMS))
    vectors = middles[rng.integers(0, centres, n)] + 0.4 * rng.standard_normal((n, DIMS))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def filled(exact_max: int, vectors: np.ndarray) -> ReplyMemory:
    memory = ReplyMemory(DIMS, fetch=lambda ids: {}, exact_max=exact_max)
    topics = ["orders" if i % 4 else "returns" for i in range(len(vectors))]
    ids = np.arange(len(vectors)) * 2 + 1  # the database's ids need not be dense
    memory.add(ids[:100], vectors[:100], topics[:100], np.ones(100))  # then grows past exact_max
    memory.add(ids[100:], vectors[100:].astype(np.float16), topics[100:], np.ones(len(vectors) - 100))
    return memory


@pytest.fixture(scope="module")
def vectors() -> np.ndarray:
    return clustered(np.random.default_rng(7), 3_000)


def test_approximate_search_finds_what_exact_search_finds(vectors: np.ndarray) -> None:
    exact, approximate = filled(1_000_000, vectors), filled(500, vectors)
    assert (exact.approximate, approximate.approximate) == (False, True)
    queries = vectors[::60] + 0.05 * np.random.default_rng(1).standard_normal((50, DIMS)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    same = sum(exact.search(q, 1)[0].reply_id == approximate.search(q, 1)[0].reply_id for q in queries)
    same_topic = sum(
        exact.search(q, 1, topic="returns")[0].reply_id == approximate.search(q, 1, topic="returns")[0].reply_id
        for q in queries
    )
    assert same >= 48 and same_topic >= 48


@pytest.mark.parametrize("exact_max", [1_000_000, 500], ids=["exact", "approximate"])
def test_weights_topics_exclusions_and_removals(vectors: np.ndarray, exact_max: int) -> None:
    memory = filled(exact_max, vectors)
    query = vectors[40]
    best = memory.search(query, 2)
    assert best[0].reply_id == 81 and best[0].similarity == pytest.approx(1.0, abs=0.01)

    memory.set_attributes(81, topic="orders", weight=0.5)  # rejected: preferred less
    assert [hit.reply_id for hit in memory.search(query, 1)] == [best[1].reply_id]
    memory.set_attributes(81, topic="orders", weight=0.99)
    assert memory.search(query, 1)[0].score == pytest.approx(0.99, abs=0.01)
    assert memory.search(query, 1, exclude={best[1].reply_id})[0].reply_id != best[1].reply_id

    memory.set_attributes(81, topic="refunds", weight=1.0)
    assert [hit.reply_id for hit in memory.search(query, 3, topic="refunds")] == [81]
    memory.remove([81, 999_999])
    assert 81 not in memory and len(memory) == 2_999
    assert memory.search(query, 1, topic="refunds") == []
    assert all(hit.reply_id != 81 for hit in memory.search(query, 20))
