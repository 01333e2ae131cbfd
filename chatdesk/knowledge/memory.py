"""Keeping each worker's reply memory (drafting/memory.py) in step with the database, change by change.

Every write to an approved reply leaves a ReplyMemoryChange row (database triggers). A worker loads the
whole memory once, then before each draft reads only the change rows after the last one it saw (a
primary-key range, whatever the size of the memory) and applies them: new replies are added, removed or
no longer active ones dropped, new weights and topics set. A reply's vector is encoded once, by the first
worker that meets it, and stored as float16 in ReplyVector for the others.

Change ids come from a sequence, so a transaction can commit a lower id after a higher one was seen: ids
skipped over are asked for again for GAP_WAIT_S before they are taken as rolled back.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

import numpy as np
from django.db.models import Max, Q
from django.utils import timezone

from chatdesk.conversations import notices
from chatdesk.drafting import encoder
from chatdesk.drafting.index import Passage
from chatdesk.drafting.memory import EXACT_MAX, ReplyMemory
from chatdesk.knowledge.models import ApprovedReply, ReplyMemoryChange, ReplyVector

DIMS = 384
GAP_WAIT_S = 120.0
# At load, change ids this far below the newest are checked for gaps (transactions still open then).
LOAD_LOOKBACK = 1000
LOAD_CHUNK = 10_000
ENCODE_BATCH = 64

ACTIVE = ApprovedReply.Status.ACTIVE

Change = tuple[int, int, datetime]  # a ReplyMemoryChange row: id, reply id, when


def reply_passages(reply_ids: Sequence[int]) -> dict[int, Passage]:
    """The passages of those replies that are still in use: key the customer's words, text the reply."""
    rows = ApprovedReply.objects.filter(pk__in=list(reply_ids), status=ACTIVE).values_list(
        "pk", "customer_text", "reply_text", "topic__name", "weight"
    )
    return {
        pk: Passage(
            id=f"reply:{pk}",
            title=f"Approved reply #{pk}",
            text=reply_text,
            topic=topic,
            keys=(customer_text,),
            weight=weight,
            language=notices.language_of_text(reply_text),
        )
        for pk, customer_text, reply_text, topic, weight in rows
    }


def reply_vectors_store(replies: Iterable[tuple[int, str]]) -> dict[int, np.ndarray]:
    """Store the vectors of the customer texts of (reply id, text) pairs (float16; a vector another worker
    stored meanwhile is kept): a text this process encoded lately (it drafted that message) is not
    encoded again. Returns float32 unit vectors by reply id."""
    pairs = list(replies)
    vectors: dict[int, np.ndarray] = {}
    for pk, text in pairs:
        known = encoder.recent(text)
        if known is not None:
            vectors[pk] = known
    unknown = [(pk, text) for pk, text in pairs if pk not in vectors]
    for start in range(0, len(unknown), ENCODE_BATCH):
        batch = unknown[start : start + ENCODE_BATCH]
        vectors.update(zip((pk for pk, _ in batch), encoder.encode([text for _, text in batch]), strict=True))
    halves = {pk: vector.astype(np.float16) for pk, vector in vectors.items()}
    rows = [ReplyVector(reply_id=pk, vector=vector.tobytes()) for pk, vector in halves.items()]
    ReplyVector.objects.bulk_create(rows, ignore_conflicts=True, batch_size=1000)
    return {pk: vector.astype(np.float32) for pk, vector in halves.items()}


def _vector(stored: bytes | memoryview) -> np.ndarray:
    return np.frombuffer(bytes(stored), dtype=np.float16)


class MemorySync:
    """One worker's reply memory and where it is in the change log. `current()` brings it up to date.

    `exact_max` is ReplyMemory's (tests lower it to exercise approximate search on small data).
    """

    def __init__(self, *, exact_max: int = EXACT_MAX) -> None:
        self.exact_max = exact_max
        self.memory: ReplyMemory | None = None
        self._lock = threading.Lock()
        self._cursor: Change | None = None  # the last change row seen: id, reply, time
        self._gaps: dict[int, float] = {}  # change ids skipped over → when first missed (monotonic s)
        self.loads = 0  # full loads so far (bench/memory.py and the tests read it)

    def current(self) -> ReplyMemory:
        """The memory with every change committed before this call: loaded in full the first time, and
        again only when the change log was emptied or rewound past where this worker was (tests roll
        back, a flush truncates); otherwise the changes since the last call are applied."""
        with self._lock:
            if self.memory is None or not self._catch_up(self.memory):
                self.memory = self._load()
            return self.memory

    def _load(self) -> ReplyMemory:
        newest = ReplyMemoryChange.objects.aggregate(newest=Max("pk"))["newest"] or 0
        recent = ReplyMemoryChange.objects.filter(pk__gt=newest - LOAD_LOOKBACK).values_list(
            "pk", "reply_id", "changed_at"
        )
        self._cursor, self._gaps = None, {}
        self._advance(list(recent), start=max(newest - LOAD_LOOKBACK, 0))
        missing = ApprovedReply.objects.filter(status=ACTIVE, memory_vector__isnull=True)
        reply_vectors_store(list(missing.values_list("pk", "customer_text").order_by("pk")))

        memory = ReplyMemory(DIMS, reply_passages, exact_max=self.exact_max)
        expected = ApprovedReply.objects.filter(status=ACTIVE).count()
        ids = np.empty(expected, dtype=np.int64)
        vectors = np.empty((expected, DIMS), dtype=np.float16)  # half the size of the float32 the index decodes
        weights = np.empty(expected, dtype=np.float32)
        topics: list[str | None] = []
        rows = (
            ApprovedReply.objects.filter(status=ACTIVE, memory_vector__isnull=False)
            .values_list("pk", "topic__name", "weight", "memory_vector__vector")
            .order_by("pk")
            .iterator(chunk_size=LOAD_CHUNK)
        )
        count = 0
        for pk, topic, weight, vector in rows:
            if count == expected:  # added since the count: they are in the change log too
                break
            ids[count], weights[count], vectors[count] = pk, weight, _vector(vector)
            topics.append(topic)
            count += 1
        memory.add(ids[:count], vectors[:count], topics, weights[:count])
        self.loads += 1
        return memory

    def _catch_up(self, memory: ReplyMemory) -> bool:
        """Apply the changes since the cursor; False when the log no longer holds the cursor's row."""
        if self._cursor is None:  # the log was empty at load: everything in it now is new
            rows = list(ReplyMemoryChange.objects.values_list("pk", "reply_id", "changed_at").order_by("pk"))
            changed = self._advance(rows, start=0)
        else:
            cursor_id = self._cursor[0]
            changes = ReplyMemoryChange.objects.filter(Q(pk__gte=cursor_id) | Q(pk__in=list(self._gaps)))
            rows = list(changes.values_list("pk", "reply_id", "changed_at").order_by("pk"))
            if not any((pk, reply, at) == self._cursor for pk, reply, at in rows):
                return False
            changed = self._advance([row for row in rows if row[0] != cursor_id], start=cursor_id)
        if changed:
            self._apply(memory, changed)
        return True

    def _advance(self, rows: list[Change], *, start: int) -> set[int]:
        """Move the cursor over `rows` (change rows with ids above `start`, or gaps filled), note ids
        skipped over as gaps; returns the replies they changed."""
        now = time.monotonic()
        seen = {pk for pk, _, _ in rows}
        for pk in seen:
            self._gaps.pop(pk, None)
        highest = max((row for row in rows if row[0] > start), default=None)
        if highest is not None:
            top = highest[0]
            self._gaps.update({pk: now for pk in range(start + 1, top) if pk not in seen and pk not in self._gaps})
            if self._cursor is None or top > self._cursor[0]:
                self._cursor = highest
        self._gaps = {pk: at for pk, at in self._gaps.items() if now - at < GAP_WAIT_S}
        return {reply for _, reply, _ in rows}

    def _apply(self, memory: ReplyMemory, changed: set[int]) -> None:
        rows = ApprovedReply.objects.filter(pk__in=changed, status=ACTIVE).values_list(
            "pk", "topic__name", "weight", "customer_text", "memory_vector__vector"
        )
        active = {pk: (topic, weight, text, vector) for pk, topic, weight, text, vector in rows}
        memory.remove(changed - active.keys())
        new = {pk: row for pk, row in active.items() if pk not in memory}
        for pk, (topic, weight, _, _) in active.items():
            if pk in memory:
                memory.set_attributes(pk, topic=topic, weight=weight)
        if not new:
            return
        vectors = {pk: _vector(row[3]).astype(np.float32) for pk, row in new.items() if row[3] is not None}
        vectors.update(reply_vectors_store((pk, row[2]) for pk, row in new.items() if row[3] is None))
        ids = sorted(new)
        memory.add(
            ids,
            np.stack([vectors[pk] for pk in ids]),
            [new[pk][0] for pk in ids],
            [new[pk][1] for pk in ids],
        )


def reply_memory_changes_prune(*, older_than: timedelta) -> int:
    """Delete change rows older than `older_than`, always keeping the newest (a worker's cursor). A worker
    whose cursor row was deleted loads the memory again on its next draft. Returns how many went."""
    newest = ReplyMemoryChange.objects.aggregate(newest=Max("pk"))["newest"]
    if newest is None:
        return 0
    old = ReplyMemoryChange.objects.filter(changed_at__lt=timezone.now() - older_than, pk__lt=newest)
    deleted, _ = old.delete()
    return deleted


_process = MemorySync()


def reply_memory_current() -> ReplyMemory:
    """This process's reply memory, up to date with every committed change (see MemorySync.current)."""
    return _process.current()
