"""Dashboard: an agent's queue socket with 100, 1,000, 10,000 and 50,000 queued conversations.

Seeds PostgreSQL (a database of its own) with queued conversations in bulk — each with a customer
message awaiting a reply, a share of them escalated with active flags and a priority, so the queue's
order has work to do — and starts Daphne (`python -m chatdesk.serve`) on loopback. At each size it
measures, over `--repeat` connections of a signed-in agent to `/ws/agents/queue/`, the time from
opening the socket to the first screen (the `queue` snapshot frame), that frame's size, and in this
process the SQL queries building the snapshot takes. Prints a table, the first-screen time of each
size against the smallest (a flat queue stays near 1x), the last line JSON.

    .venv/bin/python bench/dashboard.py [--sizes 100,1000,10000,50000] [--repeat 5]
        [--postgres postgres://postgres@127.0.0.1:5432] [--redis redis://127.0.0.1:6379/14]

Goal (issue: Performance): first screen <= 150 ms at every size, no frame over 256 KiB, the same
number of queries at every size. Traffic goes to 127.0.0.1 only; the database is dropped and the
Redis keys deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import socket
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import websockets

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.soak import free_port, login, prepare_database, stop_processes  # noqa: E402
from bench.topology import isolated_run, remove  # noqa: E402

FRAME_LIMIT = 256 * 1024
ESCALATED_SHARE = 0.3


def seed(upto: int, already: int, rng: random.Random) -> None:
    """Queue conversations until there are `upto` (there are `already`): bulk inserts, one customer message
    each, ESCALATED_SHARE of them escalated with an active flag and its reason's priority."""
    from django.conf import settings
    from django.db import connection, transaction
    from django.utils import timezone

    from chatdesk.conversations.models import Conversation, EscalationFlag, Message

    reasons = [r for r in Conversation.EscalationReason.values if r in settings.ESCALATION_WEIGHTS]
    now = timezone.now()
    batch = 2000
    for start in range(already, upto, batch):
        count = min(batch, upto - start)
        rows = []
        for _ in range(count):
            waited = timedelta(seconds=rng.uniform(0, 3 * 3600))
            escalated = rng.random() < ESCALATED_SHARE
            reason = rng.choice(reasons) if escalated else ""
            rows.append(
                Conversation(
                    status=Conversation.Status.ESCALATED if escalated else Conversation.Status.OPEN,
                    escalation_reason=reason,
                    priority=settings.ESCALATION_WEIGHTS.get(reason, 0),
                    escalated_at=now - waited if escalated else None,
                    awaiting_reply_since=now - waited,
                    last_seq=1,
                    first_customer_at=now - waited,
                    language="en",
                )
            )
        with transaction.atomic():
            made = Conversation.objects.bulk_create(rows)
            Message.objects.bulk_create(
                Message(conversation=c, seq=1, sender=Message.Sender.CUSTOMER, text=f"Where is my order {start + n}?")
                for n, c in enumerate(made)
            )
            EscalationFlag.objects.bulk_create(
                EscalationFlag(conversation=c, reason=c.escalation_reason, detail="seeded")
                for c in made
                if c.escalation_reason
            )
    with connection.cursor() as cursor:  # what autovacuum does after a bulk load: the planner's statistics
        cursor.execute("ANALYZE")


def snapshot_queries() -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from chatdesk.conversations import frames

    with CaptureQueriesContext(connection) as queries:
        frames.queue_snapshot_frame()
    return len(queries.captured_queries)


async def first_screen(url: str, origin: str, session: str) -> tuple[float, int, int]:
    """(seconds from opening the socket to the queue frame, its size in bytes, items in it)."""
    started = time.perf_counter()
    async with websockets.connect(
        url,
        origin=origin,
        additional_headers={"Cookie": f"sessionid={session}"},
        max_size=None,  # type: ignore[arg-type]
    ) as ws:
        while True:
            raw = await asyncio.wait_for(ws.recv(), 60)
            frame = json.loads(raw)
            if frame.get("type") == "queue":
                return (
                    time.perf_counter() - started,
                    len(raw.encode() if isinstance(raw, str) else raw),
                    len(frame["items"]),
                )
            if frame.get("type") == "error":
                raise RuntimeError(frame)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100,1000,10000,50000")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432", help="server (no database)")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/14")
    args = parser.parse_args()
    sizes = sorted(int(n) for n in args.sizes.split(","))

    run = isolated_run("dashboard", args.postgres, args.redis)
    env = run.env
    work = Path(tempfile.mkdtemp(prefix="chatdesk-dashboard-"))
    daphne: subprocess.Popen[bytes] | None = None
    results: dict[str, dict[str, Any]] = {}
    try:
        import django

        django.setup()
        prepare_database(1)
        port = free_port()
        daphne = subprocess.Popen(
            [sys.executable, "-m", "chatdesk.serve", "--bind", "127.0.0.1", "--port", str(port)],
            cwd=ROOT, env=env, stdout=open(work / "daphne.log", "wb"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while True:
            if daphne.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"Daphne did not start; log in {work}")
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            time.sleep(0.1)
        base = f"http://127.0.0.1:{port}"
        session = login(base, "soak-agent-0")
        rng = random.Random(1)
        seeded = 0
        for size in sizes:
            started = time.perf_counter()
            seed(size, seeded, rng)
            seeded = size
            seed_s = time.perf_counter() - started
            screens = [
                asyncio.run(first_screen(f"ws://127.0.0.1:{port}/ws/agents/queue/", base, session))
                for _ in range(args.repeat + 1)
            ][1:]  # the first connection warms the process's caches
            times = sorted(t for t, _, _ in screens)
            results[str(size)] = {
                "first_screen_ms_median": round(1000 * times[len(times) // 2], 1),
                "first_screen_ms_max": round(1000 * times[-1], 1),
                "frame_bytes": max(b for _, b, _ in screens),
                "items": screens[0][2],
                "queries": snapshot_queries(),
                "seed_s": round(seed_s, 1),
            }
            print(f"{size:>7,} queued: {results[str(size)]}", flush=True)
    finally:
        if daphne is not None:
            stop_processes([daphne])
        remove(run)
    smallest = results[str(sizes[0])]["first_screen_ms_median"]
    for figures in results.values():
        figures["vs_smallest"] = round(figures["first_screen_ms_median"] / smallest, 2) if smallest else None
    goals = {
        "first_screen_le_150ms": all(r["first_screen_ms_median"] <= 150 for r in results.values()),
        "frames_le_256KiB": all(r["frame_bytes"] <= FRAME_LIMIT for r in results.values()),
        "constant_queries": len({r["queries"] for r in results.values()}) == 1,
    }
    print()
    print(
        f"{'queued':>8s} {'first screen ms':>16s} {'max ms':>8s} {'x smallest':>11s} {'frame KiB':>10s} {'queries':>8s}"
    )
    for size, r in results.items():
        print(
            f"{int(size):>8,} {r['first_screen_ms_median']:>16.1f} {r['first_screen_ms_max']:>8.1f} "
            f"{r['vs_smallest'] or 0:>11.2f} {r['frame_bytes'] / 1024:>10.1f} {r['queries']:>8d}"
        )
    print(f"goals: {goals}")
    print(json.dumps({"sizes": results, "goals": goals}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
