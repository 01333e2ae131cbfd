"""Delivery under faults, against the real processes (tests/live.py): dropped sockets, lost acks, concurrent
resends, a SIGKILLed Daphne, Redis going away, and a channel layer that drops events silently.

What a client may rely on is docs/protocol.md: one message per seq, seq gap-free, a resend with the same
client_id never stored twice, `hello` with `after_seq` replays exactly what is missing.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest
import websockets
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.db import connection

from chatdesk.conversations import services
from chatdesk.conversations.models import Draft, Message
from chatdesk.conversations.tokens import public_id_from_token
from tests.conftest import PASSWORD
from tests.live import Client, LiveStack, RedisServer, ResyncingCustomer, login_session, start_live_stack

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]

T = TypeVar("T")
# The rate limit (5 messages in 10 s) is not what these tests are about.
NO_RATE_LIMIT = {"CHAT_RATE_LIMIT_MESSAGES": "100000"}


def is_type(kind: str, **fields: object) -> Callable[[dict[str, Any]], bool]:
    return lambda frame: frame["type"] == kind and all(frame.get(k) == v for k, v in fields.items())


async def in_db(read: Callable[[], T]) -> T:
    """Run ORM code from the scenario's event loop (in a worker thread, whose connection is closed after)."""

    def call() -> T:
        try:
            return read()
        finally:
            connection.close()

    return await sync_to_async(call, thread_sensitive=False)()


async def until_db(read: Callable[[], T], holds: Callable[[T], bool], timeout: float, what: str) -> T:
    """Poll the database until holds(read()); fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = await in_db(read)
        if holds(value):
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached within {timeout} s: {value!r}")
        await asyncio.sleep(0.2)  # poll interval


def stored(public_id: uuid.UUID) -> list[tuple[int, str, str, str]]:
    """(seq, sender, client_id, text) of every stored message of the conversation, in seq order."""
    return list(
        Message.objects.filter(conversation__public_id=public_id)
        .order_by("seq")
        .values_list("seq", "sender", "client_id", "text")
    )


def shown(customer: ResyncingCustomer) -> list[tuple[int, str, str]]:
    return [(seq, m["sender"], m["text"]) for seq, m in sorted(customer.messages.items())]


def as_shown(rows: list[tuple[int, str, str, str]]) -> list[tuple[int, str, str]]:
    return [(seq, sender, text) for seq, sender, _client_id, text in rows]


async def new_customer(stack: LiveStack) -> tuple[Client, uuid.UUID, str]:
    customer = await Client.connect(f"{stack.ws_url}/ws/chat/", origin=stack.base_url)
    await customer.send({"type": "hello"})
    token = (await customer.wait_for(is_type("welcome")))["token"]
    public_id = public_id_from_token(token)
    assert public_id is not None
    return customer, public_id, token


async def agent_socket(stack: LiveStack, session: str, public_id: uuid.UUID) -> Client:
    agent = await Client.connect(
        f"{stack.ws_url}/ws/agents/conversations/{public_id}/", origin=stack.base_url, session=session
    )
    await agent.wait_for(is_type("draft"))
    return agent


async def resyncing_customer_and_agent(
    stack: LiveStack, session: str, first_text: str
) -> tuple[ResyncingCustomer, uuid.UUID, Client]:
    """A reconnecting customer whose first message (client_id m-1) is stored, and an agent watching it."""
    customer = ResyncingCustomer(stack.ws_url, stack.base_url)
    customer.start()
    await customer.send_message("m-1", first_text)
    await customer.wait_until(lambda c: "m-1" in c.acks, 30)
    public_id = public_id_from_token(customer.token or "")
    assert public_id is not None
    return customer, public_id, await agent_socket(stack, session, public_id)


async def agent_replies(agent: Client, texts: list[str], prefix: str) -> list[int]:
    """Send the replies as fast as the socket takes them, then wait for every ack; their seqs, in order."""
    for n, text in enumerate(texts):
        await agent.send({"type": "reply", "text": text, "client_id": f"{prefix}-{n}", "request_id": f"{prefix}-{n}"})
    return [(await agent.wait_for(is_type("ack", request_id=f"{prefix}-{n}")))["seq"] for n in range(len(texts))]


@pytest.fixture(scope="module")
def desk(django_db_setup: Any, django_db_blocker: Any) -> Iterator[LiveStack]:
    """One Daphne and worker for the tests that break nothing but sockets."""
    with django_db_blocker.unblock():
        stack = start_live_stack(NO_RATE_LIMIT)
    try:
        yield stack
    finally:
        stack.stop()


def test_a_customer_back_after_a_drop_gets_exactly_the_replies_missed_in_order(desk: LiveStack, agent: User) -> None:
    session = login_session(desk.base_url, agent.username, PASSWORD)

    async def scenario() -> None:
        customer, public_id, token = await new_customer(desk)
        await customer.send({"type": "message", "client_id": "m-1", "text": "Where is my parcel?"})
        await customer.wait_for(is_type("message", seq=1))
        await customer.close()

        agent = await agent_socket(desk, session, public_id)
        missed = ["It left the warehouse today.", "Tracking number: NW-1234.", "Anything else?"]
        assert await agent_replies(agent, missed, "r") == [2, 3, 4]

        back = await Client.connect(f"{desk.ws_url}/ws/chat/", origin=desk.base_url)
        await back.send({"type": "hello", "token": token, "after_seq": 1})
        welcome = await back.wait_for(is_type("welcome"))
        assert [(m["seq"], m["sender"], m["text"]) for m in welcome["messages"]] == [
            (2, "agent", missed[0]),
            (3, "agent", missed[1]),
            (4, "agent", missed[2]),
        ]
        assert welcome["last_seq"] == 4
        for client in (agent, back):
            await client.close()

    asyncio.run(scenario())


def test_a_resend_after_a_lost_ack_is_stored_once_with_the_same_seq(desk: LiveStack) -> None:
    async def scenario() -> None:
        customer, public_id, token = await new_customer(desk)
        # Acknowledged, but the ack never reaches the customer's screen: the connection drops right after.
        await customer.send({"type": "message", "client_id": "m-1", "text": "Can I change my address?"})
        first_seq = (await customer.wait_for(is_type("ack", client_id="m-1")))["seq"]
        # Sent, and the connection drops before anything comes back.
        await customer.send({"type": "message", "client_id": "m-2", "text": "It is 12 Elm Street."})
        await customer.close()

        again = await Client.connect(f"{desk.ws_url}/ws/chat/", origin=desk.base_url)
        await again.send({"type": "hello", "token": token, "after_seq": 0})
        welcome = await again.wait_for(is_type("welcome"))
        for client_id, text in (("m-1", "Can I change my address?"), ("m-2", "It is 12 Elm Street.")):
            await again.send({"type": "message", "client_id": client_id, "text": text})
        acks = {cid: (await again.wait_for(is_type("ack", client_id=cid)))["seq"] for cid in ("m-1", "m-2")}
        await again.close()

        assert acks["m-1"] == first_seq
        replayed = {m["client_id"]: m["seq"] for m in welcome["messages"]}
        if "m-2" in replayed:  # the first send was stored before the drop
            assert acks["m-2"] == replayed["m-2"]
        rows = await in_db(lambda: stored(public_id))
        assert [(seq, cid) for seq, _sender, cid, _text in rows] == [(acks["m-1"], "m-1"), (acks["m-2"], "m-2")]

    asyncio.run(scenario())


def test_five_sockets_sending_one_client_id_at_once_store_one_row(desk: LiveStack) -> None:
    async def scenario() -> None:
        first, public_id, token = await new_customer(desk)
        sockets = [first]
        for _ in range(4):
            other = await Client.connect(f"{desk.ws_url}/ws/chat/", origin=desk.base_url)
            await other.send({"type": "hello", "token": token})
            await other.wait_for(is_type("welcome"))
            sockets.append(other)
        frame = {"type": "message", "client_id": "m-same", "text": "Do you ship to Canada?"}
        await asyncio.gather(*(s.send(frame) for s in sockets))
        acks = [(await s.wait_for(is_type("ack", client_id="m-same")))["seq"] for s in sockets]
        for s in sockets:
            await s.close()

        assert acks == [1] * 5
        assert await in_db(lambda: stored(public_id)) == [(1, "customer", "m-same", "Do you ship to Canada?")]

    asyncio.run(scenario())


def test_a_hundred_interleaved_messages_have_gap_free_increasing_seqs_everywhere(desk: LiveStack, agent: User) -> None:
    session = login_session(desk.base_url, agent.username, PASSWORD)

    async def scenario() -> None:
        customer, public_id, _token = await new_customer(desk)
        # The conversation is stored with its first message; only then can an agent open it.
        await customer.send({"type": "message", "client_id": "c-0", "text": "customer line 0"})
        await customer.wait_for(is_type("ack", client_id="c-0"))
        agent_ws = await agent_socket(desk, session, public_id)

        async def customer_writes() -> None:
            for n in range(1, 50):
                await customer.send({"type": "message", "client_id": f"c-{n}", "text": f"customer line {n}"})
                await customer.wait_for(is_type("ack", client_id=f"c-{n}"))

        async def agent_writes() -> None:
            for n in range(50):
                await agent_ws.send({"type": "reply", "text": f"agent line {n}", "request_id": f"a-{n}"})
                await agent_ws.wait_for(is_type("ack", request_id=f"a-{n}"))

        await asyncio.gather(customer_writes(), agent_writes())
        for client in (customer, agent_ws):
            await client.wait_for(is_type("message", seq=100))
            first_seen: list[int] = []
            for frame in client.frames:  # the agent saw the first message in its snapshot's history
                for message in frame["messages"] if frame["type"] == "history" else [frame]:
                    if message["type"] == "message" and message["seq"] not in first_seen:
                        first_seen.append(message["seq"])
            assert first_seen == list(range(1, 101))
            await client.close()

        rows = await in_db(lambda: stored(public_id))
        assert [seq for seq, *_ in rows] == list(range(1, 101))
        assert sorted(text for _seq, _sender, _cid, text in rows) == sorted(
            [f"customer line {n}" for n in range(50)] + [f"agent line {n}" for n in range(50)]
        )

    asyncio.run(scenario())


def test_after_daphne_is_killed_a_reconnecting_client_resyncs_everything(transactional_db: Any, agent: User) -> None:
    stack = start_live_stack(NO_RATE_LIMIT)
    try:
        session = login_session(stack.base_url, agent.username, PASSWORD)

        async def scenario() -> None:
            customer, public_id, agent_ws = await resyncing_customer_and_agent(stack, session, "My order never came.")
            await agent_replies(agent_ws, ["Sorry to hear that, let me check."], "before")
            await customer.wait_until(lambda c: c.contiguous_seq() == 2, 30)

            stack.kill_daphne()
            await customer.wait_until(lambda c: not c.ready, 30)
            # While Daphne is down the conversation goes on (another web process would serve the agent),
            # and the customer writes too: the message waits in the client's outbox.
            agent_user = await in_db(lambda: User.objects.get(pk=agent.pk))
            for n in range(3):
                await in_db(
                    lambda n=n: services.agent_reply(
                        public_id=public_id, agent=agent_user, text=f"While you were away {n}", client_id=f"away-{n}"
                    )
                )
            await customer.send_message("m-2", "Hello? Are you there?")

            stack.start_daphne()
            await customer.wait_until(lambda c: "m-2" in c.acks and c.contiguous_seq() == 6, 60)
            rows = await in_db(lambda: stored(public_id))
            assert shown(customer) == as_shown(rows)
            assert [cid for *_, cid, _text in rows if cid.startswith("m-")] == ["m-1", "m-2"]
            assert customer.connections >= 2
            await customer.stop()
            await agent_ws.close()

        asyncio.run(scenario())
    finally:
        stack.stop()


def test_with_redis_down_a_send_is_acked_and_kept_or_fails_visibly_and_drafting_resumes(
    transactional_db: Any, knowledge: None
) -> None:
    redis = RedisServer()
    redis.start()
    # The sweep that queues lost drafts again runs every 15 s (beat); a draft counts as lost after 1 s.
    stack = start_live_stack({"REDIS_URL": redis.url, "DRAFT_REQUEUE_AFTER_S": "1"}, beat=True)
    try:

        async def scenario() -> None:
            customer, public_id, token = await new_customer(stack)
            await customer.send({"type": "message", "client_id": "m-1", "text": "How do I reset my password?"})
            await customer.wait_for(is_type("ack", client_id="m-1"))
            await until_db(
                lambda: list(Draft.objects.filter(conversation__public_id=public_id).values_list("status", flat=True)),
                lambda statuses: statuses == ["ready"],
                90,
                "the first draft ready",
            )

            redis.stop()
            outage_ends = time.monotonic() + 10
            text = "And how do I change my email address?"
            await customer.send({"type": "message", "client_id": "m-2", "text": text})
            outcome: dict[str, Any]
            try:
                frame = await customer.wait_for(
                    lambda f: f.get("client_id") == "m-2" and f["type"] in ("ack", "error"), 60
                )
                outcome = {"acked_seq": frame["seq"]} if frame["type"] == "ack" else {"error": frame["code"]}
            except websockets.ConnectionClosed as closed:
                outcome = {"closed": closed.rcvd.code if closed.rcvd else None}
            if "acked_seq" in outcome:  # acknowledged while Redis is down: it must be stored, now
                rows = await in_db(lambda: stored(public_id))
                assert (outcome["acked_seq"], "customer", "m-2", text) in rows
            await asyncio.sleep(max(0.0, outage_ends - time.monotonic()))  # the outage itself lasts ~10 s
            redis.start()

            # The customer's app resends what it has no ack for, with the same client_id.
            again = ResyncingCustomer(stack.ws_url, stack.base_url, token=token)
            again.start()
            await again.send_message("m-2", text)
            await again.wait_until(lambda c: "m-2" in c.acks, 60)
            rows = await in_db(lambda: stored(public_id))
            assert [(seq, cid) for seq, sender, cid, _ in rows if sender == "customer"] == [
                (1, "m-1"),
                (again.acks["m-2"][0], "m-2"),
            ]
            if "acked_seq" in outcome:
                assert again.acks["m-2"] == [outcome["acked_seq"]]

            def drafts() -> list[tuple[str, int]]:
                return list(
                    Draft.objects.filter(conversation__public_id=public_id)
                    .order_by("created_at")
                    .values_list("status", "reply_to__seq")
                )

            # Drafting resumes on its own: the draft for m-2 (queued again by the sweep) becomes ready.
            await until_db(drafts, lambda d: d[-1] == ("ready", again.acks["m-2"][0]), 90, "the draft for m-2")
            await again.stop()
            with contextlib.suppress(websockets.ConnectionClosed):
                await customer.close()

        asyncio.run(scenario())
    finally:
        stack.stop()
        redis.stop()


def test_events_the_channel_layer_drops_silently_are_recovered_by_the_seq_gap_resync(
    transactional_db: Any, agent: User
) -> None:
    stack = start_live_stack({**NO_RATE_LIMIT, "CHANNEL_CAPACITY": "1"})
    try:
        session = login_session(stack.base_url, agent.username, PASSWORD)

        async def scenario() -> None:
            customer, public_id, agent_ws = await resyncing_customer_and_agent(stack, session, "Is anybody there?")

            # 50 events at once: the agent's replies and the customer's own messages, sent without waiting.
            # The customer's consumer is busy storing its messages while the replies are broadcast, so
            # events pile up behind it, beyond the capacity of 1.
            async def customer_writes() -> None:
                for n in range(25):
                    await customer.send_message(f"c-{n}", f"customer line {n}")

            await asyncio.gather(customer_writes(), agent_replies(agent_ws, [f"burst {n}" for n in range(25)], "b"))
            # Whatever the layer dropped at the end of the burst shows as a gap below the seq of the customer's
            # next message (its ack comes straight back on the socket, never through the layer).
            await customer.send_message("m-2", "Thanks!")
            await customer.wait_until(lambda c: not c.outbox and c.contiguous_seq() == 52, 60)
            rows = await in_db(lambda: stored(public_id))
            assert shown(customer) == as_shown(rows)
            assert [seq for seq, *_ in rows] == list(range(1, 53))
            assert all(len(customer.acks[f"c-{n}"]) >= 1 for n in range(25))
            # The layer did drop events (else this test would show nothing), and the customer noticed and
            # got them from the replay.
            assert customer.gap_resyncs >= 1 and customer.replayed >= 1
            await customer.stop()
            await agent_ws.close()

        asyncio.run(scenario())
    finally:
        stack.stop()
