"""The handoff report at scale: seed PostgreSQL, then time the report page and the full CSV export.

Creates a database of its own (dropped at the end unless --keep), migrates it, and seeds N conversations
(default 100,000) spread over the last 90 days with about 10 messages each, by bulk inserts: 30 agents,
40 topics, 3 engines, every draft outcome and escalation reason, take-overs, reopenings and ratings.
Then, through Django's test client signed in as a manager:

- the report page for the last 30 and the last 90 days, each in a fresh child process (a web server's, not
  the seeding one): the median of 3 timed loads after a warm-up,
  and the number of SQL queries of one load (CaptureQueriesContext);
- the full conversations CSV (every conversation of the 90 days) and the drafts CSV for 30 days, each in
  a fresh child process that reports its peak RSS (VmHWM), with the 30-day conversation
  export for comparison: the peak must not grow with the rows.

    .venv/bin/python bench/reports.py [--conversations 100000] [--database-url postgres://...] [--keep]

The last line is JSON: {"conversations", "messages", "report_30d_s", "report_90d_s", "queries_30d",
"queries_90d", "export_s", "export_rows", "export_peak_rss_mb", "export_30d_peak_rss_mb", ...}.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
ADMIN_URL = "postgres://postgres@127.0.0.1:5432/postgres"
BATCH = 2000


def django_for(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-not-for-production-0123456789")
    os.environ.setdefault("ALLOWED_HOSTS", "testserver")
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")
    os.environ.setdefault("REDIS_PREFIX", f"chatdesk-bench-reports-{os.getpid()}")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatdesk.settings")
    import django

    django.setup()


def seed(conversations: int, rng: random.Random) -> dict[str, int]:
    """Bulk-insert the history; returns row counts."""
    import datetime as dt

    from django.contrib.auth.models import User
    from django.db import connection
    from django.utils import timezone

    from chatdesk.conversations import facts
    from chatdesk.conversations.models import AgentAction, Conversation, Draft, EscalationFlag, Message, Rating
    from chatdesk.conversations.roles import groups_ensure
    from chatdesk.knowledge.models import Topic

    # The seeded times are the history: auto_now_add would replace them by now.
    for model in (Message, Draft, AgentAction, EscalationFlag, Rating):
        model._meta.get_field("created_at").auto_now_add = False  # type: ignore[union-attr]
    agents_group, managers = groups_ensure()
    agents = User.objects.bulk_create([User(username=f"agent{i:02d}", first_name=f"Agent {i}") for i in range(30)])
    agents_group.user_set.add(*agents)
    manager = User.objects.create_user("bench-manager", password="unused")
    manager.groups.add(managers)
    topics = Topic.objects.bulk_create([Topic(name=f"topic {i:02d}") for i in range(40)])
    engines = ["retrieval"] * 6 + ["transformers"] * 3 + ["openai"]
    outcomes = (
        [Draft.Status.APPROVED] * 34 + [Draft.Status.EDITED] * 20 + [Draft.Status.REJECTED] * 6
        + [Draft.Status.AUTO_SENT] * 20 + [Draft.Status.SUPERSEDED] * 8 + [Draft.Status.TAKEN_OVER] * 3
        + [Draft.Status.DISCARDED] * 4 + [Draft.Status.FAILED] * 5
    )  # fmt: skip
    reasons = list(EscalationFlag.Reason.values)
    now = timezone.now()
    # 90 calendar days, today included (the report's 90-day range in UTC, the site's default zone).
    oldest = dt.datetime.combine(now.date() - dt.timedelta(days=89), dt.time(), tzinfo=dt.UTC)
    spread = (now - oldest).total_seconds() - 3600  # the last hour stays free for replies
    counts = dict.fromkeys(("conversations", "messages", "drafts", "actions", "flags", "ratings"), 0)

    for first in range(0, conversations, BATCH):
        size = min(BATCH, conversations - first)
        plans: list[dict[str, Any]] = []
        rows: list[Conversation] = []
        for _ in range(size):
            start = oldest + dt.timedelta(seconds=rng.uniform(0, spread))
            turns = rng.randint(4, 6)
            kind = rng.random()
            status = "closed" if kind < 0.7 else "open" if kind < 0.82 else "escalated" if kind < 0.88 else "taken_over"
            taken = status == "taken_over" or (status == "closed" and rng.random() < 0.08)
            first_response = start + dt.timedelta(seconds=rng.lognormvariate(4, 1.3))
            plans.append({"start": start, "turns": turns, "taken": taken, "status": status})
            rows.append(
                Conversation(
                    status=status,
                    topic=rng.choice(topics),
                    assigned_agent=rng.choice(agents) if taken else None,
                    first_customer_at=start,
                    first_response_at=first_response if rng.random() < 0.95 else None,
                    closed_at=start + dt.timedelta(minutes=rng.lognormvariate(3, 1)) if status == "closed" else None,
                    reopened_count=1 if rng.random() < 0.05 else 0,
                    last_seq=turns * 2,
                    escalation_reason=rng.choice(reasons) if status == "escalated" else "",
                )
            )
        created = Conversation.objects.bulk_create(rows)
        messages: list[Message] = []
        for conversation, plan in zip(created, plans, strict=True):
            for turn in range(plan["turns"]):
                at = plan["start"] + dt.timedelta(minutes=turn * 3)
                messages.append(
                    Message(conversation=conversation, seq=turn * 2 + 1, sender="customer", text="q", created_at=at)
                )
        messages = Message.objects.bulk_create(messages)
        drafts: list[Draft] = []
        by_conversation: dict[int, list[Message]] = {}
        for m in messages:
            by_conversation.setdefault(m.conversation_id, []).append(m)
        for conversation in created:
            for m in by_conversation[conversation.pk]:
                status = rng.choice(outcomes)
                decided = status in (Draft.Status.APPROVED, Draft.Status.EDITED, Draft.Status.REJECTED)
                ready = m.created_at + dt.timedelta(seconds=rng.uniform(1, 12))
                drafts.append(
                    Draft(
                        conversation=conversation,
                        reply_to=m,
                        status=status,
                        engine=rng.choice(engines),
                        text="a",
                        topic=conversation.topic,
                        created_at=m.created_at + dt.timedelta(seconds=1),
                        ready_at=ready if status != Draft.Status.FAILED else None,
                        decided_at=ready + dt.timedelta(seconds=30) if decided else None,
                        decided_by=rng.choice(agents) if decided else None,
                        edit_distance=(round(rng.betavariate(1.2, 4), 3) if status == Draft.Status.EDITED else 0.0)
                        if status in (Draft.Status.APPROVED, Draft.Status.EDITED)
                        else None,
                        chars_changed=rng.randint(1, 120) if status == Draft.Status.EDITED else None,
                        review_seconds=rng.lognormvariate(3, 1) if decided else None,
                        draft_seconds=(ready - m.created_at).total_seconds() if status != Draft.Status.FAILED else None,
                        tokens=rng.randint(20, 200),
                        prompt_tokens=rng.randint(200, 1500),
                        confidence=rng.random(),
                    )
                )
        drafts = Draft.objects.bulk_create(drafts)
        replies: list[Message] = []
        actions: list[AgentAction] = []
        for d in drafts:
            at = d.created_at + dt.timedelta(seconds=40)
            if d.status in (Draft.Status.APPROVED, Draft.Status.EDITED):
                replies.append(
                    Message(
                        conversation_id=d.conversation_id,
                        seq=d.reply_to.seq + 1,
                        sender="agent",
                        text="a",
                        author=d.decided_by,
                        draft=d,
                        created_at=at,
                    )
                )
                kind = AgentAction.Kind.APPROVE if d.status == Draft.Status.APPROVED else AgentAction.Kind.EDIT
                actions.append(
                    AgentAction(
                        conversation_id=d.conversation_id, draft=d, agent=d.decided_by, kind=kind, created_at=at
                    )
                )
            elif d.status == Draft.Status.AUTO_SENT:
                replies.append(
                    Message(
                        conversation_id=d.conversation_id,
                        seq=d.reply_to.seq + 1,
                        sender="bot",
                        text="a",
                        draft=d,
                        created_at=at,
                    )
                )
            else:
                agent = d.decided_by or rng.choice(agents)
                replies.append(
                    Message(
                        conversation_id=d.conversation_id,
                        seq=d.reply_to.seq + 1,
                        sender="agent",
                        text="a",
                        author=agent,
                        created_at=at,
                    )
                )
                if d.status == Draft.Status.REJECTED:
                    actions.append(
                        AgentAction(
                            conversation_id=d.conversation_id, draft=d, agent=agent, kind="reject", created_at=at
                        )
                    )
        flags: list[EscalationFlag] = []
        ratings: list[Rating] = []
        for conversation, plan in zip(created, plans, strict=True):
            if plan["taken"]:
                actions.append(
                    AgentAction(
                        conversation=conversation,
                        agent=conversation.assigned_agent or agents[0],
                        kind="take_over",
                        created_at=plan["start"],
                    )
                )
            if plan["taken"] or plan["status"] == "escalated" or rng.random() < 0.1:
                for reason in rng.sample(reasons, rng.choice((1, 1, 2))):
                    flags.append(
                        EscalationFlag(conversation=conversation, reason=reason, active=False, created_at=plan["start"])
                    )
            if plan["status"] == "closed" and rng.random() < 0.4:
                ratings.append(
                    Rating(
                        conversation=conversation,
                        after_seq=plan["turns"] * 2,
                        score=rng.randint(1, 5),
                        created_at=plan["start"],
                    )
                )
        Message.objects.bulk_create(replies)
        AgentAction.objects.bulk_create(actions)
        EscalationFlag.objects.bulk_create(flags)
        Rating.objects.bulk_create(ratings)
        # Bulk inserts bypass the services: derive what they keep on each conversation from its rows.
        facts.recompute(Conversation.objects.filter(pk__in=[c.pk for c in created]))
        counts["conversations"] += len(created)
        counts["messages"] += len(messages) + len(replies)
        counts["drafts"] += len(drafts)
        counts["actions"] += len(actions)
        counts["flags"] += len(flags)
        counts["ratings"] += len(ratings)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")  # what autovacuum does after bulk inserts: index-only scans work
    return counts


def report_timings(client: Any, days: int) -> tuple[float, int]:
    import datetime as dt

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    today = dt.date.today()
    params = {"from": (today - dt.timedelta(days=days - 1)).isoformat(), "to": today.isoformat()}
    assert client.get("/reports/", params).status_code == 200  # warm-up
    with CaptureQueriesContext(connection) as captured:
        assert client.get("/reports/", params).status_code == 200
    queries = len(captured)  # now: each request clears the connection's query log
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        response = client.get("/reports/", params)
        timings.append(time.perf_counter() - started)
        assert response.status_code == 200
    return statistics.median(timings), queries


def report_child(database_url: str, days: int) -> dict[str, Any]:
    """In this (fresh) process, like a web server's: the report page's time and query count."""
    django_for(database_url)
    from django.contrib.auth.models import User
    from django.test import Client

    client = Client()
    client.force_login(User.objects.get(username="bench-manager"))
    seconds, queries = report_timings(client, days)
    return {"s": round(seconds, 3), "queries": queries}


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM): unlike getrusage's ru_maxrss, it starts afresh at
    exec, so a child does not report the parent's size at fork."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # not Linux


def export_child(database_url: str, kind: str, days: int) -> dict[str, Any]:
    """In this (fresh) process: stream one export, count its rows; report time and peak RSS."""
    import datetime as dt

    django_for(database_url)
    from django.contrib.auth.models import User
    from django.test import Client

    client = Client()
    client.force_login(User.objects.get(username="bench-manager"))
    today = dt.date.today()
    params = {"from": (today - dt.timedelta(days=days - 1)).isoformat(), "to": today.isoformat()}
    before = peak_rss_mb()
    started = time.perf_counter()
    response = client.get(f"/reports/export/{kind}.csv", params)
    lines = 0
    size = 0
    for chunk in response.streaming_content:
        lines += chunk.count(b"\n")
        size += len(chunk)
    elapsed = time.perf_counter() - started
    peak = peak_rss_mb()
    return {
        "s": round(elapsed, 3),
        "rows": lines - 1,
        "bytes": size,
        "peak_rss_mb": round(peak, 1),
        "rss_before_mb": round(before, 1),
    }


def run_child(database_url: str, kind: str, days: int) -> dict[str, Any]:
    """Run report_child (kind "report") or export_child (kind: the export's name) in a new process."""
    out = subprocess.run(
        [sys.executable, __file__, "--child", kind, "--days", str(days), "--database-url", database_url],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--database-url", help="an existing, empty PostgreSQL database (default: create one)")
    parser.add_argument("--keep", action="store_true", help="keep the database it created")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--seeded", action="store_true", help="--database-url is already seeded: only time")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--days", type=int, default=90, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "report":
        print(json.dumps(report_child(args.database_url, args.days)))
        return
    if args.child:
        print(json.dumps(export_child(args.database_url, args.child, args.days)))
        return

    import psycopg

    created = None
    url = args.database_url
    if not url:
        created = f"chatdesk_bench_reports_{os.getpid()}"
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{created}"')
        url = ADMIN_URL.rsplit("/", 1)[0] + "/" + created
    try:
        django_for(url)
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        started = time.perf_counter()
        if args.seeded:
            from chatdesk.conversations.models import Conversation, Draft, Message

            counts = {"conversations": Conversation.objects.count(), "messages": Message.objects.count()}
            counts["drafts"] = Draft.objects.count()
        else:
            counts = seed(args.conversations, random.Random(args.seed))
        seed_s = time.perf_counter() - started
        print(f"seeded {counts} in {seed_s:.1f} s", file=sys.stderr)
        from django.db import connections

        connections.close_all()
        page_30, page_90 = run_child(url, "report", 30), run_child(url, "report", 90)
        report_30, queries_30, report_90, queries_90 = (
            page_30["s"],
            page_30["queries"],
            page_90["s"],
            page_90["queries"],
        )
        print(
            f"report 30 d {report_30:.3f} s ({queries_30} queries), 90 d {report_90:.3f} s ({queries_90})",
            file=sys.stderr,
        )
        full = run_child(url, "conversations", 90)
        small = run_child(url, "conversations", 30)
        drafts = run_child(url, "drafts", 30)
        print(f"exports: 90 d {full}, 30 d {small}, drafts 30 d {drafts}", file=sys.stderr)
        result = {
            "conversations": counts["conversations"],
            "messages": counts["messages"],
            "drafts": counts["drafts"],
            "seed_s": round(seed_s, 1),
            "report_30d_s": round(report_30, 3),
            "report_90d_s": round(report_90, 3),
            "queries_30d": queries_30,
            "queries_90d": queries_90,
            "export_s": full["s"],
            "export_rows": full["rows"],
            "export_peak_rss_mb": full["peak_rss_mb"],
            "export_30d_rows": small["rows"],
            "export_30d_peak_rss_mb": small["peak_rss_mb"],
            "drafts_export_30d_s": drafts["s"],
            "drafts_export_30d_rows": drafts["rows"],
            "drafts_export_30d_peak_rss_mb": drafts["peak_rss_mb"],
        }
        assert full["rows"] == counts["conversations"], (full["rows"], counts["conversations"])
        print(json.dumps(result))
    finally:
        if created and not args.keep:
            from django.db import connections

            connections.close_all()
            with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{created}" WITH (FORCE)')


if __name__ == "__main__":
    main()
