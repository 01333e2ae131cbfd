"""The reply memory inside one worker: the vectors of remembered replies, changed one reply at a time.

Plain Python, no ORM: knowledge/memory.py loads it from the database and applies each change it reads
there; `fetch` gives the passages of the replies a search returns (their texts stay in the database).

Search is exact (a flat faiss index) up to `exact_max` replies and approximate above (an inverted-file
index over float16 codes, faiss IVF-SQfp16): bench/memory.py measures both at each size. Topic-restricted
search filters by reply id inside the index, so it costs about the same as an unrestricted one.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from chatdesk.drafting.index import Passage

# Above this many replies search is approximate: bench/memory.py measured exact search (one thread) at
# 0.13 ms for 1k replies and 19 ms for 10k on a busy 2-core machine, approximate at 0.1–0.4 ms with the
# same top 10.
EXACT_MAX = 5_000
# Inverted lists probed per search: recall@1 ≥ 0.99 on bench/memory.py's clustered vectors at 1M.
NPROBE = 16
# Candidates fetched per search beyond what is asked, so that weights and exclusions rarely need a second pass.
EXTRA_CANDIDATES = 8
MAX_CANDIDATES = 4096

Fetch = Callable[[Sequence[int]], Mapping[int, "Passage"]]


@dataclass(frozen=True)
class MemoryHit:
    """A remembered reply close to a message: cosine similarity of its key, and that times its weight."""

    reply_id: int
    similarity: float
    score: float


class ReplyMemory:
    """Replies' unit key vectors by reply id, with each reply's topic and weight (agents' rejections lower it).

    Thread-safe: searches and changes take one lock (a search holds it for about a millisecond).
    `fetch(ids)` returns the passages of those replies that still exist (used by KnowledgeIndex).
    """

    def __init__(self, dims: int, fetch: Fetch, *, exact_max: int = EXACT_MAX, threads: int = 1) -> None:
        logging.getLogger("faiss.loader").setLevel(logging.WARNING)  # which CPU build it picked, at INFO
        import faiss

        faiss.omp_set_num_threads(threads)  # one query at a time; torch has the other cores
        self.threads = threads
        self.dims = dims
        self.fetch = fetch
        self.exact_max = exact_max
        self._faiss: Any = faiss
        self._lock = threading.Lock()
        self._index: Any = faiss.IndexIDMap2(faiss.IndexFlatIP(dims))
        self._approximate = False
        self._nlist = 0
        self._count = 0
        # By reply id (ids are the database's, dense enough for arrays): topic code, -1 when absent.
        self._topic_by_id = np.full(0, -1, dtype=np.int32)
        self._weight_by_id = np.zeros(0, dtype=np.float32)
        self._topic_codes: dict[str | None, int] = {None: 0}
        self._topic_counts: list[int] = [0]
        self._bitmaps: dict[int, np.ndarray] = {}
        self._bounds: tuple[float, float] | None = None  # highest and lowest weight held

    def __len__(self) -> int:
        return self._count

    def __contains__(self, reply_id: object) -> bool:
        return isinstance(reply_id, int) and 0 <= reply_id < len(self._topic_by_id) and self._topic_by_id[reply_id] >= 0

    @property
    def approximate(self) -> bool:
        """Whether searches use the approximate index (more than `exact_max` replies were held at once)."""
        return self._approximate

    def add(
        self,
        reply_ids: Sequence[int] | np.ndarray,
        vectors: np.ndarray,
        topics: Sequence[str | None],
        weights: Sequence[float] | np.ndarray,
        *,
        chunk: int = 50_000,
    ) -> None:
        """Add replies (replacing those held already). `vectors`: one unit row per reply, float16 or
        float32; they are added `chunk` rows at a time so a float16 array of millions is never copied whole."""
        ids = np.asarray(reply_ids, dtype=np.int64)
        if vectors.shape != (len(ids), self.dims) or len(topics) != len(ids) or len(weights) != len(ids):
            raise ValueError("one vector, topic and weight per reply id is needed")
        if len(ids) == 0:
            return
        with self._lock:
            self._remove_locked(ids[self._held(ids)])
            self._grow(int(ids.max()) + 1)
            codes = np.array([self._code(topic) for topic in topics], dtype=np.int32)
            self._topic_by_id[ids] = codes
            self._weight_by_id[ids] = np.asarray(weights, dtype=np.float32)
            for code, count in zip(*np.unique(codes, return_counts=True), strict=True):
                self._topic_counts[int(code)] += int(count)
            self._count += len(ids)
            self._bitmaps.clear()
            self._bounds = None
            if not self._approximate and self._count > self.exact_max:
                self._become_approximate(ids, vectors, chunk)
            else:
                for start in range(0, len(ids), chunk):
                    part = np.ascontiguousarray(vectors[start : start + chunk], dtype=np.float32)
                    self._index.add_with_ids(part, ids[start : start + chunk])

    def set_attributes(self, reply_id: int, *, topic: str | None, weight: float) -> None:
        """A held reply's new topic and weight (its vector stays)."""
        with self._lock:
            if reply_id not in self:
                raise KeyError(reply_id)
            old = int(self._topic_by_id[reply_id])
            new = self._code(topic)
            if old != new:
                self._topic_counts[old] -= 1
                self._topic_counts[new] += 1
                self._topic_by_id[reply_id] = new
                self._bitmaps.clear()
            self._weight_by_id[reply_id] = weight
            self._bounds = None

    def remove(self, reply_ids: Collection[int]) -> None:
        """Forget these replies; ids not held are ignored."""
        ids = np.fromiter(reply_ids, dtype=np.int64, count=len(reply_ids))
        with self._lock:
            self._remove_locked(ids[self._held(ids)])

    def search(
        self, query: np.ndarray, limit: int, *, topic: str | None = None, exclude: Collection[int] = ()
    ) -> list[MemoryHit]:
        """The `limit` replies with the best similarity × weight (of `topic` only, when given; none in
        `exclude`), best first. Exact below `exact_max` replies; above, among the approximate index's
        nearest candidates, fetching more until no reply left out could outscore the last one kept."""
        with self._lock:
            selected = None
            if topic is not None:
                code = self._topic_codes.get(topic)
                if code is None or self._topic_counts[code] == 0:
                    return []
                selected = code
            population = self._count if selected is None else self._topic_counts[selected]
            if population == 0 or limit <= 0:
                return []
            top_weight, low_weight = self._weight_bounds()
            wanted = min(population, limit + len(exclude) + EXTRA_CANDIDATES)
            while True:
                similarities, ids = self._nearest(query, wanted, selected, population)
                hits = [
                    MemoryHit(int(i), float(s), float(s) * float(self._weight_by_id[i]))
                    for s, i in zip(similarities, ids, strict=True)
                    if i >= 0 and int(i) not in exclude
                ]
                hits.sort(key=lambda hit: -hit.score)
                kept = hits[:limit]
                if wanted >= min(population, MAX_CANDIDATES) or not len(ids) or ids[-1] < 0:
                    return kept
                last = float(similarities[-1])
                best_left_out = last * (top_weight if last >= 0 else low_weight)
                if len(kept) == limit and kept[-1].score >= best_left_out:
                    return kept
                wanted = min(population, MAX_CANDIDATES, wanted * 4)

    def best_similarity(self, query: np.ndarray) -> float | None:
        """The highest cosine similarity of any reply's key (unweighted); None when empty."""
        with self._lock:
            if self._count == 0:
                return None
            similarities, ids = self._nearest(query, 1, None, self._count)
            return float(similarities[0]) if ids[0] >= 0 else None

    # -- inside the lock ---------------------------------------------------------------------

    def _held(self, ids: np.ndarray) -> np.ndarray:
        inside = ids < len(self._topic_by_id)
        held = np.zeros(len(ids), dtype=bool)
        held[inside] = self._topic_by_id[ids[inside]] >= 0
        return held

    def _weight_bounds(self) -> tuple[float, float]:
        if self._bounds is None:
            held = self._weight_by_id[self._topic_by_id >= 0]
            self._bounds = (float(held.max()), float(held.min()))
        return self._bounds

    def _code(self, topic: str | None) -> int:
        code = self._topic_codes.get(topic)
        if code is None:
            code = self._topic_codes[topic] = len(self._topic_counts)
            self._topic_counts.append(0)
        return code

    def _grow(self, size: int) -> None:
        if size <= len(self._topic_by_id):
            return
        size = max(size, 2 * len(self._topic_by_id), 1024)
        topics = np.full(size, -1, dtype=np.int32)
        topics[: len(self._topic_by_id)] = self._topic_by_id
        weights = np.zeros(size, dtype=np.float32)
        weights[: len(self._weight_by_id)] = self._weight_by_id
        self._topic_by_id, self._weight_by_id = topics, weights

    def _remove_locked(self, ids: np.ndarray) -> None:
        if len(ids) == 0:
            return
        self._index.remove_ids(self._faiss.IDSelectorBatch(ids))
        for code in self._topic_by_id[ids]:
            self._topic_counts[int(code)] -= 1
        self._topic_by_id[ids] = -1
        self._count -= len(ids)
        self._bitmaps.clear()
        self._bounds = None

    def _become_approximate(self, new_ids: np.ndarray, new_vectors: np.ndarray, chunk: int) -> None:
        """Move what the flat index holds, and the replies being added, into an IVF index (trained on a
        sample of both)."""
        faiss = self._faiss
        flat = self._index
        held = flat.ntotal
        held_ids = faiss.vector_to_array(flat.id_map).astype(np.int64)
        held_vectors = flat.index.reconstruct_n(0, held) if held else np.zeros((0, self.dims), np.float32)
        total = held + len(new_ids)
        self._nlist = max(1, min(int(math.sqrt(total)), total // 40))  # k-means wants ≥ 39 points per list
        rng = np.random.default_rng(0)
        sample_size = min(total, 40 * self._nlist)
        picks = np.sort(rng.choice(total, size=sample_size, replace=False))
        sample = np.concatenate(
            [held_vectors[picks[picks < held]], np.asarray(new_vectors[picks[picks >= held] - held], np.float32)]
        )
        quantizer = faiss.IndexFlatIP(self.dims)
        index = faiss.IndexIVFScalarQuantizer(
            quantizer, self.dims, self._nlist, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT
        )
        index.cp.niter = 10
        faiss.omp_set_num_threads(os.cpu_count() or 1)  # once per process: training and assigning lists
        try:
            index.train(np.ascontiguousarray(sample, dtype=np.float32))
            index.nprobe = NPROBE
            if held:
                index.add_with_ids(held_vectors, held_ids)
            del held_vectors, flat
            for start in range(0, len(new_ids), chunk):
                part = np.ascontiguousarray(new_vectors[start : start + chunk], dtype=np.float32)
                index.add_with_ids(part, new_ids[start : start + chunk])
        finally:
            faiss.omp_set_num_threads(self.threads)
        self._index = index
        self._approximate = True

    def _nearest(
        self, query: np.ndarray, wanted: int, code: int | None, population: int
    ) -> tuple[np.ndarray, np.ndarray]:
        faiss = self._faiss
        vector = np.ascontiguousarray(query, dtype=np.float32).reshape(1, self.dims)
        params = None
        if code is not None:
            bitmap = self._bitmaps.get(code)
            if bitmap is None:
                bitmap = self._bitmaps[code] = np.packbits(self._topic_by_id == code, bitorder="little")
            selector = faiss.IDSelectorBitmap(len(bitmap), faiss.swig_ptr(bitmap))
            if self._approximate:
                # a rarer topic has fewer members per probed list: probe more lists to find as many
                nprobe = min(self._nlist, NPROBE * max(1, math.ceil(self._count / population)))
                params = faiss.SearchParametersIVF(sel=selector, nprobe=nprobe)
            else:
                params = faiss.SearchParameters(sel=selector)
        similarities, ids = self._index.search(vector, wanted, params=params)
        return similarities[0], ids[0]
