"""Soak: many customers and agents on the production topology for a bounded time, then check delivery.

Starts on loopback Daphne (`python -m chatdesk.serve`) and one prefork Celery worker with beat
embedded, on a PostgreSQL database created for this run and Redis keys under a prefix of its own.
Then, for `--seconds`:

- N customers hold a socket each and write paced questions (a unique client_id each; some sent
  twice with the same client_id, before or after their ack), following docs/protocol.md: one
  message per seq, `hello` with `after_seq` on a gap;
- M agents sign in (the documented login flow), watch `/ws/agents/queue/`, open the conversations
  that have a ready draft and approve it; some conversations are watched by two agents at once,
  so one approval of the pair loses with `already_handled`.

Then it stops sending, lets the desk drain (bounded), and checks from the database and from what
the clients received:

- every customer message is stored exactly once, at the seq every one of its acks gave;
- every reply an agent sent reached its customer at its seq, with its text (one message per seq),
  and every approved draft was sent exactly once;
- no draft is left pending or generating.

It prints counts and latencies p50/p99 (customer message → ack, → visible to an agent, draft
ready → delivered to the customer), the last line JSON, and exits 1 when an invariant fails.
Traffic goes to 127.0.0.1 only; the database is dropped and the Redis keys deleted at the end.

    .venv/bin/python bench/soak.py [--customers 300] [--agents 10] [--seconds 60]
        [--postgres postgres://postgres@127.0.0.1:5432] [--redis redis://127.0.0.1:6379/14]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.cookiejar
import json
import math
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import redis
import websockets

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.time_to_draft import QUESTIONS  # noqa: E402  (the same questions as the latency bench)

PASSWORD = "soak-agent-password-0123"
ACK_TIMEOUT_S = 30.0
CONNECT_TIMEOUT_S = 30.0
STALL_S = 30.0  # the drain ends early when nothing moved for this long


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"n": 0, "p50_ms": None, "p99_ms": None}
    ordered = sorted(values)
    pick = lambda q: round(1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)  # noqa: E731
    return {"n": len(ordered), "p50_ms": pick(0.5), "p99_ms": pick(0.99)}


# -- customers -------------------------------------------------------------------------------------


@dataclass
class Customer:
    """One customer's socket and everything it sent and received."""

    number: int
    token: str | None = None
    public_id: str | None = None
    messages: dict[int, dict[str, Any]] = field(default_factory=dict)
    duplicate_frames: int = 0
    gap_resyncs: int = 0
    received_at: dict[int, float] = field(default_factory=dict)  # seq -> wall time first received
    sent: dict[str, tuple[str, float]] = field(default_factory=dict)  # client_id -> (text, wall time first sent)
    acks: dict[str, list[int]] = field(default_factory=dict)
    ack_latency: list[float] = field(default_factory=list)
    resends: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    failure: str | None = None
    connect_retries: int = 0
    ws: Any = None
    reader: asyncio.Task[None] | None = None
    awaiting_welcome: bool = False
    ack_waiters: dict[str, asyncio.Future[int]] = field(default_factory=dict)
    welcomed: asyncio.Event = field(default_factory=asyncio.Event)

    def contiguous_seq(self) -> int:
        seq = 0
        while seq + 1 in self.messages:
            seq += 1
        return seq

    async def hello(self) -> None:
        self.awaiting_welcome = True
        frame: dict[str, Any] = {"type": "hello"}
        if self.token:
            frame.update(token=self.token, after_seq=self.contiguous_seq())
        await self.ws.send(json.dumps(frame))

    async def read(self) -> None:
        async for raw in self.ws:
            frame = json.loads(raw)
            kind = frame.get("type")
            if kind == "welcome":
                self.token, self.awaiting_welcome = frame["token"], False
                self.welcomed.set()
                for message in frame["messages"]:
                    self.keep(message)
                if self.contiguous_seq() < frame["last_seq"]:
                    await self.hello()
            elif kind == "message":
                gap = frame["seq"] > self.contiguous_seq() + 1
                self.keep(frame)
                if gap and not self.awaiting_welcome:  # missed something: resume after what we hold
                    self.gap_resyncs += 1
                    await self.hello()
            elif kind == "ack":
                self.acks.setdefault(frame["client_id"], []).append(frame["seq"])
                waiter = self.ack_waiters.pop(frame["client_id"], None)
                if waiter and not waiter.done():
                    waiter.set_result(frame["seq"])
            elif kind == "error":
                self.errors[frame.get("code", "?")] += 1
                waiter = self.ack_waiters.pop(str(frame.get("client_id")), None)
                if waiter and not waiter.done():
                    waiter.set_exception(RuntimeError(f"{frame.get('code')}:{frame.get('retry_after', 0)}"))

    async def connect(self, ws_url: str, origin: str, give_up_at: float) -> None:
        """Open the socket and say hello (resuming after what we hold), retrying with backoff as a client app
        would (a busy Daphne refuses handshakes it cannot finish in time with 403)."""
        attempt = 0
        while True:
            self.welcomed.clear()
            try:
                self.ws = await websockets.connect(
                    f"{ws_url}/ws/chat/",
                    origin=origin,  # type: ignore[arg-type]
                    open_timeout=CONNECT_TIMEOUT_S,
                )
                self.reader = asyncio.create_task(self.read())
                await self.hello()
                await asyncio.wait_for(self.welcomed.wait(), CONNECT_TIMEOUT_S)
                return
            except (OSError, TimeoutError, websockets.InvalidHandshake, websockets.ConnectionClosed):
                if time.time() > give_up_at:
                    raise
                self.connect_retries += 1
                await asyncio.sleep(min(0.5 * 2**attempt, 5.0))  # the reconnect backoff itself
                attempt += 1

    def keep(self, message: dict[str, Any]) -> None:
        if message["seq"] in self.messages:
            self.duplicate_frames += 1
            return
        self.messages[message["seq"]] = message
        self.received_at[message["seq"]] = time.time()

    async def send(self, client_id: str, text: str, reconnect: Any) -> int:
        """Send until acknowledged (same client_id every time); the seq. Waits out rate limits; after a dropped
        connection, reconnects (`reconnect()`) and sends again."""
        for _attempt in range(5):
            waiter: asyncio.Future[int] = asyncio.get_running_loop().create_future()
            self.ack_waiters[client_id] = waiter
            try:
                await self.ws.send(json.dumps({"type": "message", "client_id": client_id, "text": text}))
                assert self.reader is not None
                await asyncio.wait({waiter, self.reader}, timeout=ACK_TIMEOUT_S, return_when=asyncio.FIRST_COMPLETED)
                if waiter.done():
                    return waiter.result()
                self.resends += 1
                if self.reader.done():
                    await reconnect()
            except websockets.ConnectionClosed:
                self.resends += 1
                await reconnect()
            except RuntimeError as refused:
                code, _, retry_after = str(refused).partition(":")
                if code != "rate_limited":
                    raise
                self.resends += 1
                await asyncio.sleep(float(retry_after or 1))  # the server asked us to wait this long
        raise RuntimeError(f"{client_id} never acknowledged")


async def run_customer(
    customer: Customer, ws_url: str, origin: str, clock: dict[str, float], rng: random.Random, args: Any
) -> None:
    async def reconnect() -> None:
        await customer.connect(ws_url, origin, give_up_at=clock["send_until"])

    try:
        # Customers arrive spread over the first seconds, not in one burst of handshakes.
        await asyncio.sleep(clock["ramp_s"] * customer.number / max(1, args.customers))
        await reconnect()
        from chatdesk.conversations.tokens import public_id_from_token

        customer.public_id = str(public_id_from_token(customer.token or ""))
        await asyncio.sleep(rng.uniform(0, args.pace_max - args.pace_min))
        number = 0
        while time.time() < clock["send_until"]:
            client_id = f"s{customer.number}-{number}"
            text = f"{QUESTIONS[rng.randrange(len(QUESTIONS))]} [{client_id}]"
            number += 1
            customer.sent[client_id] = (text, time.time())
            resend = rng.random() < args.resend_share
            if resend and number % 2:  # the same message twice at once, before any ack
                customer.resends += 1
                await customer.ws.send(json.dumps({"type": "message", "client_id": client_id, "text": text}))
            started = time.perf_counter()
            await customer.send(client_id, text, reconnect)
            customer.ack_latency.append(time.perf_counter() - started)
            if resend and not number % 2:  # again after its ack, as after a lost ack
                customer.resends += 1
                await customer.send(client_id, text, reconnect)
            await asyncio.sleep(rng.uniform(args.pace_min, args.pace_max))  # pacing between messages
        # Keep listening for replies (reconnecting if dropped) until the drain ends.
        while time.time() < clock["read_until"]:
            assert customer.reader is not None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(customer.reader), max(0.0, clock["read_until"] - time.time()))
            if customer.reader.done() and time.time() < clock["read_until"]:
                await customer.connect(ws_url, origin, give_up_at=clock["read_until"])
    except Exception as exc:  # recorded and reported: a customer that broke fails the run
        customer.failure = f"{type(exc).__name__}: {exc}"


# -- agents ----------------------------------------------------------------------------------------


@dataclass
class Agents:
    """What every agent saw and did."""

    seen_customer_message: dict[str, float] = field(default_factory=dict)  # client_id -> wall time first seen
    approvals: dict[int, list[int]] = field(default_factory=dict)  # draft id -> seqs of winning approvals
    outcomes: Counter[str] = field(default_factory=Counter)
    conversation_sockets: int = 0
    failures: list[str] = field(default_factory=list)

    def saw(self, text: str | None) -> None:
        if text and text.endswith("]") and "[" in text:
            self.seen_customer_message.setdefault(text[text.rindex("[") + 1 : -1], time.time())


def login(base: str, username: str) -> str:
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    url = f"{base}/accounts/login/"
    opener.open(url, timeout=30).read()
    csrf = next(c.value for c in jar if c.name == "csrftoken")
    data = urllib.parse.urlencode({"username": username, "password": PASSWORD, "csrfmiddlewaretoken": csrf})
    opener.open(urllib.request.Request(url, data=data.encode(), headers={"Referer": url}), timeout=30).read()
    return next(c.value for c in jar if c.name == "sessionid")


async def run_agent(
    number: int, count: int, base: str, until: dict[str, float], agents: Agents, ready: asyncio.Event, race_share: float
) -> None:
    ws_url = base.replace("http://", "ws://")
    opened: dict[str, asyncio.Task[None]] = {}
    try:
        session = await asyncio.to_thread(login, base, f"soak-agent-{number}")
        headers = {"Cookie": f"sessionid={session}"}

        async def conversation(public_id: str) -> None:
            """Approve every ready draft of this conversation; a socket that fails is reopened on the next
            queue update (a busy Daphne refuses handshakes it cannot finish in time)."""
            try:
                await approve_drafts(public_id)
            except (OSError, TimeoutError, websockets.InvalidHandshake, websockets.ConnectionClosed):
                agents.outcomes["conversation_socket_failed"] += 1
                opened.pop(public_id, None)

        async def approve_drafts(public_id: str) -> None:
            attempted: set[int] = set()
            async with websockets.connect(
                f"{ws_url}/ws/agents/conversations/{public_id}/",
                origin=base,  # type: ignore[arg-type]
                additional_headers=headers,
                open_timeout=CONNECT_TIMEOUT_S,
            ) as ws:
                agents.conversation_sockets += 1
                while time.time() < until["t"]:
                    try:
                        frame = json.loads(await asyncio.wait_for(ws.recv(), max(0.01, until["t"] - time.time())))
                    except TimeoutError:
                        break
                    kind = frame.get("type")
                    if kind == "message" and frame["sender"] == "customer":
                        agents.saw(frame["text"])
                    elif kind == "history":
                        for message in frame["messages"]:
                            if message["sender"] == "customer":
                                agents.saw(message["text"])
                    elif kind == "draft" and frame["draft"] and frame["draft"]["status"] == "ready":
                        draft_id = frame["draft"]["id"]
                        if draft_id not in attempted:
                            attempted.add(draft_id)
                            await ws.send(json.dumps({"type": "approve", "draft_id": draft_id, "request_id": draft_id}))
                    elif kind == "ack" and frame.get("action") == "approve":
                        agents.approvals.setdefault(frame["request_id"], []).append(frame["seq"])
                        agents.outcomes["approved"] += 1
                    elif kind == "error":
                        agents.outcomes[frame["code"]] += 1

        def watch(public_id: str) -> None:
            if public_id not in opened:
                opened[public_id] = asyncio.create_task(conversation(public_id))

        async with websockets.connect(
            f"{ws_url}/ws/agents/queue/",
            origin=base,
            additional_headers=headers,
            open_timeout=CONNECT_TIMEOUT_S,  # type: ignore[arg-type]
        ) as queue:
            ready.set()
            while time.time() < until["t"]:
                try:
                    frame = json.loads(await asyncio.wait_for(queue.recv(), max(0.01, until["t"] - time.time())))
                except TimeoutError:
                    break
                items = frame.get("items", []) if frame["type"] == "queue" else [frame.get("item")]
                for item in items:
                    if not item:
                        continue
                    agents.saw(item.get("latest_customer_text"))
                    if item.get("draft_status") == "ready":
                        # Each conversation has an owner; some have a second agent racing for the same draft.
                        owner = uuid.UUID(item["id"]).int % count
                        racer = (owner + 1) % count if uuid.UUID(item["id"]).int % 100 < race_share * 100 else owner
                        if number in (owner, racer):
                            watch(item["id"])
        for task in list(opened.values()):
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(task, max(0.0, until["t"] - time.time()) + 5)
    except Exception as exc:
        agents.failures.append(f"agent {number}: {type(exc).__name__}: {exc}")
        ready.set()
    finally:
        for task in list(opened.values()):
            task.cancel()


# -- the desk --------------------------------------------------------------------------------------


def start_processes(env: dict[str, str], work: Path) -> tuple[list[subprocess.Popen[bytes]], str]:
    port = free_port()
    worker = subprocess.Popen(
        [
            sys.executable, "-m", "celery", "-A", "chatdesk", "worker", "--queues", "drafts,celery,webhooks",
            "--pool", "prefork", "--concurrency", "1", "--beat", "--schedule", str(work / "beat-schedule"),
            "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel", "INFO",
        ],
        cwd=ROOT, env=env, stdout=open(work / "worker.log", "wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    daphne = subprocess.Popen(
        [sys.executable, "-m", "chatdesk.serve", "--bind", "127.0.0.1", "--port", str(port)],
        cwd=ROOT, env=env, stdout=open(work / "daphne.log", "wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    processes = [daphne, worker]
    deadline = time.monotonic() + 60
    while True:
        if any(p.poll() is not None for p in processes) or time.monotonic() > deadline:
            stop_processes(processes)
            raise SystemExit(f"the desk did not start; logs in {work}")
        with contextlib.suppress(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return processes, f"http://127.0.0.1:{port}"
        time.sleep(0.1)


def stop_processes(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def prepare_database(agents: int) -> None:
    from django.contrib.auth.models import User
    from django.core.management import call_command

    from chatdesk.conversations.roles import groups_ensure
    from chatdesk.knowledge.services import knowledge_seed_demo

    call_command("migrate", verbosity=0)
    knowledge_seed_demo()
    group, _managers = groups_ensure()
    for n in range(agents):
        user = User.objects.create_user(f"soak-agent-{n}", password=PASSWORD, first_name="Soak", last_name=str(n))
        user.groups.add(group)


def unfinished_drafts() -> dict[str, int]:
    from chatdesk.conversations.models import Draft

    return {
        status: Draft.objects.filter(status=status).count()
        for status in (Draft.Status.PENDING, Draft.Status.GENERATING, Draft.Status.READY)
    }


def warm_up_draft_status(public_id: str) -> str | None:
    from chatdesk.conversations.models import Draft

    return Draft.objects.filter(conversation__public_id=public_id).values_list("status", flat=True).first()


def forget_conversation(public_id: str) -> None:
    from chatdesk.conversations.models import Conversation

    Conversation.objects.filter(public_id=public_id).delete()


async def warm_up(base: str) -> float:
    """One question drafted before the clock starts (the worker child loads the encoder after its fork),
    then its conversation is deleted. Returns how long it took."""
    from asgiref.sync import sync_to_async

    started = time.time()
    ws_url = base.replace("http://", "ws://")
    customer = Customer(number=-1)

    async def reconnect() -> None:
        await customer.connect(ws_url, base, give_up_at=started + 60)

    await reconnect()
    await customer.send("warm-up", QUESTIONS[0], reconnect)
    from chatdesk.conversations.tokens import public_id_from_token

    public_id = str(public_id_from_token(customer.token or ""))
    while await sync_to_async(warm_up_draft_status, thread_sensitive=False)(public_id) in ("pending", "generating"):
        if time.time() - started > 180:
            raise SystemExit("the worker drafted nothing within 180 s")
        await asyncio.sleep(0.2)  # poll interval
    await customer.ws.close()
    await sync_to_async(forget_conversation, thread_sensitive=False)(public_id)
    return time.time() - started


async def drive(base: str, args: Any) -> tuple[list[Customer], Agents, float]:
    from asgiref.sync import sync_to_async

    rng = random.Random(args.seed)
    ws_url = base.replace("http://", "ws://")
    print(f"warm-up: first draft after {await warm_up(base):.1f} s")
    # Agents sign in and watch the queue before the first customer arrives.
    agents = Agents()
    ready = [asyncio.Event() for _ in range(args.agents)]
    agents_until = {"t": math.inf}
    agent_tasks = [
        asyncio.create_task(run_agent(n, args.agents, base, agents_until, agents, ready[n], args.race_share))
        for n in range(args.agents)
    ]
    await asyncio.wait_for(asyncio.gather(*(event.wait() for event in ready)), 120)
    started = time.time()
    clock = {"ramp_s": min(10.0, args.seconds / 3), "send_until": started + args.seconds}
    clock["read_until"] = agents_until["t"] = clock["send_until"] + args.drain
    customers = [Customer(number=n) for n in range(args.customers)]
    customer_tasks = [
        asyncio.create_task(run_customer(customer, ws_url, base, clock, random.Random(rng.random()), args))
        for customer in customers
    ]
    # Drain: once sending stopped, end as soon as no draft is left unfinished and every customer holds every
    # message of its conversation; early when nothing moved for STALL_S (stuck); at the latest at read_until.
    progress: tuple[Any, ...] = ()
    moved_at = time.time()
    while time.time() < clock["read_until"] and time.time() - moved_at < STALL_S:
        sending = any(not t.done() and c.ack_waiters for t, c in zip(customer_tasks, customers, strict=True))
        if time.time() > clock["send_until"] and not sending:
            left = await sync_to_async(unfinished_drafts, thread_sensitive=False)()
            last = await sync_to_async(last_seqs, thread_sensitive=False)()
            if not any(left.values()) and all(
                c.failure or c.contiguous_seq() >= last.get(c.public_id or "", 0) for c in customers
            ):
                break
            now = (tuple(left.values()), sum(len(c.messages) for c in customers), len(agents.approvals))
            if now != progress:
                progress, moved_at = now, time.time()
        else:
            moved_at = time.time()
        await asyncio.sleep(0.5)  # poll interval
    drained_at = time.time()
    for task in [*customer_tasks, *agent_tasks]:
        task.cancel()
    await asyncio.gather(*customer_tasks, *agent_tasks, return_exceptions=True)

    async def close(customer: Customer) -> None:
        if customer.ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(customer.ws.close(), 5)

    await asyncio.gather(*(close(c) for c in customers))
    return customers, agents, drained_at - clock["send_until"]


def last_seqs() -> dict[str, int]:
    from chatdesk.conversations.models import Conversation

    return {str(pid): seq for pid, seq in Conversation.objects.values_list("public_id", "last_seq")}


def check(customers: list[Customer], agents: Agents) -> tuple[dict[str, bool], dict[str, Any], dict[str, Any]]:
    """The invariants, the counts, and the latencies, from the database and what the clients received."""
    from chatdesk.conversations.models import Draft, Message

    rows = list(
        Message.objects.values_list(
            "conversation__public_id", "seq", "sender", "client_id", "text", "draft_id", "draft__ready_at"
        )
    )
    by_conversation: dict[str, dict[int, tuple[str, str, str]]] = {}
    customer_rows: Counter[tuple[str, str]] = Counter()
    seq_of: dict[tuple[str, str], int] = {}
    ready_at: dict[tuple[str, int], float] = {}
    drafts_sent: Counter[int] = Counter()
    for public_id, seq, sender, client_id, text, draft_id, draft_ready_at in rows:
        pid = str(public_id)
        by_conversation.setdefault(pid, {})[seq] = (sender, client_id, text)
        if sender == Message.Sender.CUSTOMER:
            customer_rows[(pid, client_id)] += 1
            seq_of[(pid, client_id)] = seq
        if draft_id is not None:
            drafts_sent[draft_id] += 1
            if draft_ready_at is not None:
                ready_at[(pid, seq)] = draft_ready_at.timestamp()

    stored_once = True
    lost: list[str] = []
    for c in customers:
        pid = c.public_id or ""
        for client_id, acked in c.acks.items():
            if customer_rows[(pid, client_id)] != 1 or set(acked) != {seq_of.get((pid, client_id))}:
                stored_once = False
                lost.append(client_id)
    sent_ids = {(c.public_id or "", cid) for c in customers for cid in c.sent}
    stray = [key for key in customer_rows if key not in sent_ids or customer_rows[key] != 1]

    delivered_once, undelivered, mismatched = True, 0, 0
    delivery_latency: list[float] = []
    for c in customers:
        stored_here = by_conversation.get(c.public_id or "", {})
        for seq, message in c.messages.items():  # one message per seq, and it is the stored one
            if seq not in stored_here or (message["sender"], message["text"]) != (
                stored_here[seq][0],
                stored_here[seq][2],
            ):
                mismatched += 1
        for seq, (sender, _cid, _text) in stored_here.items():
            if sender == Message.Sender.CUSTOMER:
                continue
            if seq not in c.messages:
                undelivered += 1
            elif (c.public_id, seq) in ready_at:
                delivery_latency.append(c.received_at[seq] - ready_at[(c.public_id or "", seq)])
    approved_twice = [d for d, seqs in agents.approvals.items() if len(seqs) != 1]
    sent_twice = [d for d, n in drafts_sent.items() if n != 1]
    delivered_once = not (undelivered or mismatched or approved_twice or sent_twice)

    stuck = Draft.objects.filter(status__in=[Draft.Status.PENDING, Draft.Status.GENERATING]).count()
    visible = [
        agents.seen_customer_message[cid] - sent_at
        for c in customers
        for cid, (_text, sent_at) in c.sent.items()
        if cid in agents.seen_customer_message
    ]
    failures = agents.failures + [f"customer {c.number}: {c.failure}" for c in customers if c.failure]
    invariants = {
        "every_customer_message_stored_once": stored_once and not stray,
        "every_reply_delivered_once": delivered_once,
        "no_draft_stuck": stuck == 0,
        "no_client_failed": not failures,
    }
    errors: Counter[str] = Counter()
    for c in customers:
        errors.update(c.errors)
    counts = {
        "customer_messages_sent": sum(len(c.sent) for c in customers),
        "customer_messages_acked": sum(len(c.acks) for c in customers),
        "customer_rows": sum(customer_rows.values()),
        "resends": sum(c.resends for c in customers),
        "connect_retries": sum(c.connect_retries for c in customers),
        "customer_errors": dict(errors),
        "agent_replies_stored": sum(1 for r in rows if r[2] != Message.Sender.CUSTOMER),
        "approvals": agents.outcomes["approved"],
        "agent_outcomes": dict(agents.outcomes),
        "agent_conversation_sockets": agents.conversation_sockets,
        "drafts": dict(Counter(Draft.objects.values_list("status", flat=True))),
        "stuck_drafts": stuck,
        "lost_acked_messages": len(lost),
        "stray_rows": len(stray),
        "undelivered_replies": undelivered,
        "mismatched_messages": mismatched,
        "drafts_approved_twice": len(approved_twice) + len(sent_twice),
        "duplicate_frames": sum(c.duplicate_frames for c in customers),
        "gap_resyncs": sum(c.gap_resyncs for c in customers),
        "failures": failures[:10],
    }
    latency = {
        "message_to_ack": percentiles([x for c in customers for x in c.ack_latency]),
        "message_to_agent": percentiles(visible),
        "ready_to_delivered": percentiles(delivery_latency),
    }
    return invariants, counts, latency


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=300)
    parser.add_argument("--agents", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=60, help="how long customers keep writing")
    parser.add_argument(
        "--drain",
        type=float,
        default=None,
        help="at most this long to settle after sending (default: 2 x --seconds, 30-180)",
    )
    parser.add_argument("--pace-min", type=float, default=3.0, help="seconds between a customer's messages, at least")
    parser.add_argument("--pace-max", type=float, default=6.0)
    parser.add_argument("--resend-share", type=float, default=0.1, help="share of messages sent twice")
    parser.add_argument("--race-share", type=float, default=0.2, help="share of conversations two agents approve")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432", help="server (no database)")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--keep", action="store_true", help="keep the database and logs")
    args = parser.parse_args()
    if args.drain is None:
        args.drain = min(180.0, max(30.0, 2 * args.seconds))
    if args.pace_min * 4 < 10 + 1:  # the desk's default rate limit: 5 messages in 10 s
        print("note: --pace-min below 2.75 s will meet the rate limit (5 messages in 10 s)")

    run_id = f"{int(time.time())}_{os.getpid()}"
    database = f"chatdesk_soak_{run_id}"
    server = args.postgres.rstrip("/")
    prefix = f"chatdesk-soak-{run_id}"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL")}
    env.update(
        DATABASE_URL=f"{server}/{database}",
        REDIS_URL=args.redis,
        REDIS_PREFIX=prefix,
        SECRET_KEY=env.get("SECRET_KEY") or f"soak-only-secret-key-{uuid.uuid4().hex}",
        DJANGO_SETTINGS_MODULE="chatdesk.settings",
        LOG_LEVEL="WARNING",
        # Every simulated customer comes from 127.0.0.1: limits per client address would stop the
        # soak after a few dozen of them (they have tests of their own).
        CHAT_HELLOS_PER_MINUTE_PER_ADDRESS="0",
        CHAT_MESSAGES_PER_MINUTE_PER_ADDRESS="0",
        CHAT_CONVERSATIONS_PER_HOUR_PER_ADDRESS="0",
    )
    os.environ.update(env)
    work = Path(tempfile.mkdtemp(prefix="chatdesk-soak-"))
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')
    processes: list[subprocess.Popen[bytes]] = []
    try:
        import django

        django.setup()
        prepare_database(args.agents)
        processes, base = start_processes(env, work)
        print(f"desk at {base}; {args.customers} customers, {args.agents} agents, {args.seconds:g} s; logs in {work}")
        setup_done = time.time()
        customers, agents, drain_s = asyncio.run(drive(base, args))
        stop_processes(processes)
        invariants, counts, latency = check(customers, agents)
    finally:
        stop_processes(processes)
        from django.db import connections

        connections.close_all()
        if not args.keep:
            with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            client = redis.Redis.from_url(args.redis)
            for key in client.scan_iter(match=f"{prefix}*", count=1000):
                client.delete(key)
    for name, value in counts.items():
        print(f"{name:28s} {value}")
    for name, figures in latency.items():
        print(f"{name:28s} n={figures['n']}  p50={figures['p50_ms']} ms  p99={figures['p99_ms']} ms")
    for name, holds in invariants.items():
        print(f"{name:40s} {'ok' if holds else 'FAILED'}")
    result = {
        "customers": args.customers,
        "agents": args.agents,
        "seconds": args.seconds,
        "drain_s": round(drain_s, 1),
        "wall_s": round(time.time() - setup_done, 1),
        "invariants_hold": all(invariants.values()),
        "invariants": invariants,
        "counts": {k: v for k, v in counts.items() if k != "failures"},
        "latency": latency,
    }
    print(json.dumps(result))
    return 0 if result["invariants_hold"] else 1


if __name__ == "__main__":
    sys.exit(main())
