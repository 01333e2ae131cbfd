"""The reply memory as it grows: drafting with 1k, 10k, 100k and 1M remembered replies, side by side.

Creates a throwaway PostgreSQL database and fills it with synthetic remembered replies: each is one of
300 real questions (encoded by the shared encoder) plus noise — a paraphrase's cosine of about 0.85 —
stored as a worker stores vectors (float16, ReplyVector), spread over 20 topics. For each size a fresh
worker process (python bench/memory.py --worker) then:

- loads the memory (seconds, and the process's peak memory with the encoder loaded);
- drafts warm: the default engine on a real question, with `knowledge_index_current()` before each draft
  as a drafting task does (the version check and the change-log read included);
- drafts once after each of several approvals (a new reply, whose vector no worker has encoded yet), rejections
  (weight lowered) and removals, each written to the database before the draft: the memory is updated in
  place, never loaded again (`loads` stays 1);
- times search alone, exact and approximate, on the memory it holds (the crossover behind EXACT_MAX).

    .venv/bin/python bench/memory.py [--sizes 1000,10000,100000,1000000] [--drafts 60] [--postgres URL]

Sizes grow one database; the 1M step inserts about 1.3 GB and takes several minutes on 2 cores. The last
line is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

DIMS = 384
TOPICS = 20
SUBJECTS = [
    "my order", "the parcel", "my refund", "my password", "the invoice", "my subscription", "the jacket",
    "my card payment", "the delivery address", "a promo code", "the warranty", "my account email",
    "the return label", "a gift card", "the size chart",
]  # fmt: skip
PATTERNS = [
    "where is {}?", "how do I change {}", "{} has a problem", "can you help with {}", "I have a question about {}",
    "why is {} late", "what happened to {}", "how long does {} take", "is there an update on {}",
    "I want to cancel {}", "{} is wrong", "who do I ask about {}", "can I get help with {} today",
    "something went wrong with {}", "please check {}", "I can't find {}", "tell me more about {}",
    "how much is {}", "{} does not work", "I was charged for {}",
]  # fmt: skip
QUESTIONS = [pattern.format(subject) for subject in SUBJECTS for pattern in PATTERNS]  # 300
NOISE = 0.03  # per dimension: |noise| ≈ 0.6, cosine to the question ≈ 0.85


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values), q)) if values else float("nan")


# -- the parent: data and the table -------------------------------------------------------------


def base_vectors(cache: Path) -> np.ndarray:
    if cache.exists():
        return np.load(cache)
    from chatdesk.drafting import encoder

    vectors = encoder.encode(QUESTIONS)
    np.save(cache, vectors)
    return vectors


def fill(start: int, stop: int, bases: np.ndarray, topic_ids: list[int]) -> None:
    """Replies start+1 … stop (ids), with vectors, by COPY; the triggers log each as a change."""
    from django.db import connection

    rng = np.random.default_rng(start)
    now = "2026-01-01 00:00:00+00"
    chunk = 50_000
    with connection.cursor() as cursor:
        for low in range(start, stop, chunk):
            high = min(stop, low + chunk)
            ids = np.arange(low + 1, high + 1)
            which = ids % len(QUESTIONS)
            vectors = bases[which] + NOISE * rng.standard_normal((len(ids), DIMS)).astype(np.float32)
            vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float16)
            columns = "id, customer_text, reply_text, topic_id, source, status, weight, created_at, updated_at"
            with cursor.copy(f"COPY knowledge_approvedreply ({columns}) FROM STDIN") as copy:
                for pk, base in zip(ids.tolist(), which.tolist(), strict=True):
                    copy.write_row(
                        (pk, f"{QUESTIONS[base]} (#{pk})", f"Synthetic reply {pk}", topic_ids[base % TOPICS],
                         "draft", "active", 1.0, now, now)
                    )  # fmt: skip
            with cursor.copy("COPY knowledge_replyvector (reply_id, vector) FROM STDIN") as copy:
                for pk, vector in zip(ids.tolist(), vectors, strict=True):
                    copy.write_row((pk, vector.tobytes()))
        cursor.execute("SELECT setval(pg_get_serial_sequence('knowledge_approvedreply', 'id'), %s)", [stop])
        cursor.execute("ANALYZE")


def run_worker(size: int, drafts: int, env: dict[str, str]) -> dict[str, Any]:
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", "--size", str(size), "--drafts", str(drafts)]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise SystemExit(f"worker at {size:,} failed:\n{done.stdout}\n{done.stderr}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,10000,100000,1000000")
    parser.add_argument("--drafts", type=int, default=60, help="warm drafts per size")
    parser.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432", help="server (no database)")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.size, args.drafts)))
        return 0
    sizes = sorted(int(n) for n in args.sizes.split(","))

    from topology import isolated_run, remove

    run = isolated_run("memory", args.postgres, args.redis, TORCH_NUM_THREADS="1")
    results: dict[int, dict[str, Any]] = {}
    try:
        import django

        django.setup()
        from django.core.management import call_command

        from chatdesk.knowledge.models import Topic

        call_command("migrate", verbosity=0)
        topic_ids = [Topic.objects.create(name=f"topic-{i}").pk for i in range(TOPICS)]
        bases = base_vectors(Path(tempfile.gettempdir()) / "chatdesk-bench-memory-questions.npy")
        held = 0
        for size in sizes:
            started = time.perf_counter()
            fill(held, size, bases, topic_ids)
            held = size
            print(f"{size:>9,} replies stored in {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
            results[size] = run_worker(size, args.drafts, run.env)
            print(f"{size:>9,}: {json.dumps(results[size])}", file=sys.stderr, flush=True)
    finally:
        remove(run)

    smallest = results[sizes[0]]
    header = (
        f"{'replies':>9} {'load s':>7} {'peak MB':>8} {'warm p50':>9} {'p99':>6} {'approved':>9} {'ratio':>6} "
        f"{'elsewhere':>9} {'ratio':>6} {'rejected':>9} {'removed':>8} {'exact ms':>9} {'approx ms':>10} "
        f"{'rec@10':>7} {'mode':>7} {'vs 1st':>7}"
    )
    print(header)
    for size in sizes:
        r = results[size]
        cells = [
            f"{size:>9,}", f"{r['load_s']:>7.2f}", f"{r['peak_rss_mb']:>8.0f}", f"{r['warm_p50_ms']:>9.1f}",
            f"{r['warm_p99_ms']:>6.1f}", f"{r['after_approval_p50_ms']:>9.1f}", f"{r['after_approval_ratio']:>5.2f}×",
            f"{r['after_approval_elsewhere_p50_ms']:>9.1f}", f"{r['after_approval_elsewhere_ratio']:>5.2f}×",
            f"{r['after_rejection_p50_ms']:>9.1f}", f"{r['after_removal_p50_ms']:>8.1f}",
            f"{r['search_exact_ms']:>9.2f}", f"{r['search_approximate_ms']:>10.2f}",
            f"{r['approximate_recall_at_10']:>7.2f}", f"{r['mode']:>7}",
            f"{r['warm_p50_ms'] / smallest['warm_p50_ms']:>6.2f}×",
        ]  # fmt: skip
        print(" ".join(cells))
    largest = results[sizes[-1]]
    goals = {
        "first_draft_after_a_change_within_2x_warm": all(
            max(r["after_approval_ratio"], r["after_rejection_ratio"], r["after_removal_ratio"]) <= 2.0
            for r in results.values()
        ),
        "largest_p50_within_3x_smallest": largest["warm_p50_ms"] <= 3 * smallest["warm_p50_ms"],
        "largest_peak_under_4_gb": largest["peak_rss_mb"] < 4096,
        "never_loaded_again": all(r["loads"] == 1 for r in results.values()),
    }
    print(json.dumps({"sizes": {str(s): results[s] for s in sizes}, "goals": goals}))
    return 0


# -- the worker: one fresh process per size -------------------------------------------------------


def worker(size: int, drafts: int) -> dict[str, Any]:
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.db import reset_queries

    from chatdesk.drafting import encoder
    from chatdesk.drafting.base import DraftContext, Turn
    from chatdesk.drafting.engines.retrieval import RetrievalEngine
    from chatdesk.drafting.memory import ReplyMemory
    from chatdesk.knowledge import memory as memory_module
    from chatdesk.knowledge.models import ApprovedReply, Topic
    from chatdesk.knowledge.services import (
        approved_reply_remember,
        knowledge_index_current,
        knowledge_source_penalize,
        memory_review,
    )

    engine = RetrievalEngine()
    engine.warm_up()
    started = time.perf_counter()
    index = knowledge_index_current()
    load_s = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    memory = index.memory
    assert memory is not None and len(memory) == size, (len(memory) if memory else None, size)

    rng = np.random.default_rng(size)

    def draft(text: str) -> tuple[float, str]:
        began = time.perf_counter()
        context = DraftContext(turns=[Turn("customer", text)], knowledge=knowledge_index_current())
        result = engine.draft(context)
        reset_queries()
        return (time.perf_counter() - began) * 1000, result.sources[0].id

    questions = [QUESTIONS[int(i)] for i in rng.integers(0, len(QUESTIONS), drafts + 10)]
    for text in questions[:10]:
        draft(text)  # settle caches and the interpreter
    warm = [draft(text)[0] for text in questions[10:]]

    manager = User.objects.create(username=f"bench-{size}")
    topic = Topic.objects.get(name="topic-3")
    approved, elsewhere, rejected, removed = [], [], [], []
    for n in range(10):
        # a customer asks (drafted here), the agent approves, the next customer asks the same
        text = f"question {n} of run {size}: does {SUBJECTS[n]} come with a free {SUBJECTS[-n - 1]}?"
        draft(text)
        reply = approved_reply_remember(customer_text=text, reply_text=f"Yes ({n}).", topic=topic, agent=manager)
        took, source = draft(text)
        assert source == f"reply:{reply.pk}", (source, reply.pk)  # the next draft already uses it
        approved.append(took)
        # approved from a message another worker drafted: this one encodes it on its first draft after
        other = f"question {n} of run {size} from elsewhere: can {SUBJECTS[n]} be sent to {SUBJECTS[-n - 1]}?"
        far = approved_reply_remember(customer_text=other, reply_text=f"Yes ({n}).", topic=topic, agent=manager)
        took, source = draft(other)
        assert source == f"reply:{far.pk}", (source, far.pk)
        elsewhere.append(took)
        knowledge_source_penalize(f"reply:{reply.pk}")
        rejected.append(draft(questions[n % len(questions)])[0])
        memory_review(reply_id=reply.pk, manager=manager, action="remove")
        took, source = draft(text)
        assert source != f"reply:{reply.pk}"
        removed.append(took)
        memory_review(reply_id=far.pk, manager=manager, action="remove")
        draft(questions[(n + 10) % len(questions)])
    assert not ApprovedReply.objects.filter(reply_text__startswith="Yes (").exists()

    peak_mb = max(peak_mb, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)

    # search alone, exact and approximate, on the same vectors (the crossover behind EXACT_MAX)
    import faiss

    ids = np.arange(1, size + 1, dtype=np.int64)  # what the bench stored; its own replies are gone again
    if memory.approximate:
        memory._index.set_direct_map_type(faiss.DirectMap.Hashtable)
    vectors = memory._index.reconstruct_batch(ids)
    other = ReplyMemory(DIMS, memory.fetch, exact_max=size + 1 if memory.approximate else 0)
    other.add(ids, vectors, [None] * size, np.ones(size, dtype=np.float32))
    del vectors
    exact, approximate = (other, memory) if memory.approximate else (memory, other)
    queries = encoder.encode(questions[:30])
    exact_ms, approximate_ms = search_ms(exact, queries), search_ms(approximate, queries)
    recall = statistics.mean(
        len({h.reply_id for h in exact.search(q, 10)} & {h.reply_id for h in approximate.search(q, 10)}) / 10
        for q in queries
    )
    warm_p50 = statistics.median(warm)
    return {
        "replies": size,
        "mode": "approx" if memory.approximate else "exact",
        "load_s": round(load_s, 3),
        "peak_rss_mb": round(peak_mb),
        "warm_p50_ms": round(warm_p50, 2),
        "warm_p99_ms": round(percentile(warm, 99), 2),
        "after_approval_p50_ms": round(statistics.median(approved), 2),
        "after_approval_ratio": round(statistics.median(approved) / warm_p50, 2),
        "after_approval_elsewhere_p50_ms": round(statistics.median(elsewhere), 2),
        "after_approval_elsewhere_ratio": round(statistics.median(elsewhere) / warm_p50, 2),
        "after_rejection_p50_ms": round(statistics.median(rejected), 2),
        "after_rejection_ratio": round(statistics.median(rejected) / warm_p50, 2),
        "after_removal_p50_ms": round(statistics.median(removed), 2),
        "after_removal_ratio": round(statistics.median(removed) / warm_p50, 2),
        "search_exact_ms": round(exact_ms, 3),
        "search_approximate_ms": round(approximate_ms, 3),
        "approximate_recall_at_10": round(recall, 3),
        "loads": memory_module._process.loads,
    }


def search_ms(memory: Any, queries: np.ndarray) -> float:
    took = []
    for query in queries:
        began = time.perf_counter()
        memory.search(query, 3)
        took.append((time.perf_counter() - began) * 1000)
    return statistics.median(took)


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatdesk.settings")
    sys.exit(main())
