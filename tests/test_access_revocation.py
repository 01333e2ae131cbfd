"""Every agent socket is tied to a live session: logging out, deactivation and removal from the agents'
group close the user's sockets within seconds, and an action on a socket whose session ended never
reaches a customer. Against real Daphne, PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

import pytest
import websockets
from django.contrib.auth.models import Group, User
from django.contrib.sessions.models import Session
from django.db import connections

from chatdesk.conversations import services
from chatdesk.conversations.models import Conversation, Draft, Message
from tests.conftest import PASSWORD, say
from tests.live import Client, LiveStack, close_code, login_session, logout_session

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


def is_type(kind: str, **fields: object) -> Callable[[dict[str, object]], bool]:
    return lambda frame: frame["type"] == kind and all(frame.get(k) == v for k, v in fields.items())


async def in_thread(function: Callable[..., object], *args: object) -> None:
    """Run blocking ORM work off the event loop, closing the worker thread's database connection after
    (an open one would keep the test database from being dropped)."""

    def call() -> None:
        try:
            function(*args)
        finally:
            connections.close_all()

    await asyncio.to_thread(call)


def _deactivate(stack: LiveStack, session: str, agent: User) -> None:
    agent.is_active = False
    agent.save()


def _remove_from_agents(stack: LiveStack, session: str, agent: User) -> None:
    Group.objects.get(name="agents").user_set.remove(agent)


def _log_out(stack: LiveStack, session: str, agent: User) -> None:
    logout_session(stack.base_url, session)


REVOCATIONS = {"logout": _log_out, "deactivation": _deactivate, "removed from agents": _remove_from_agents}


@pytest.fixture
def ready(live_stack: LiveStack, knowledge: None) -> tuple[Conversation, Draft]:
    """A conversation whose draft the live worker has written."""
    conversation = services.conversation_start()
    say(conversation, "How long does a refund take?")
    deadline = time.monotonic() + 60
    while not Draft.objects.filter(conversation=conversation, status=Draft.Status.READY).exists():
        assert time.monotonic() < deadline, "the worker wrote no draft"
        time.sleep(0.1)
    return conversation, Draft.objects.get(conversation=conversation)


@pytest.mark.parametrize("revocation", REVOCATIONS)
def test_revoked_access_closes_every_socket_of_that_agent_within_seconds(
    live_stack: LiveStack, agent: User, ready: tuple[Conversation, Draft], revocation: str
) -> None:
    conversation, draft = ready
    base, ws = live_stack.base_url, live_stack.ws_url
    session = login_session(base, agent.username, PASSWORD)

    async def scenario() -> None:
        queue = await Client.connect(f"{ws}/ws/agents/queue/", origin=base, session=session)
        await queue.wait_for(is_type("queue"))
        view = await Client.connect(
            f"{ws}/ws/agents/conversations/{conversation.public_id}/", origin=base, session=session
        )
        await view.wait_for(is_type("draft"))
        started = time.monotonic()
        await in_thread(REVOCATIONS[revocation], live_stack, session, agent)
        for client in (queue, view):
            assert await close_code(client) == 4401
            assert any(f.get("code") == "session_ended" for f in client.frames)
        assert time.monotonic() - started < 5
        # Whatever the old socket still tries, it reaches nobody.
        with contextlib.suppress(websockets.ConnectionClosed):
            await view.send({"type": "approve", "draft_id": draft.pk})

    asyncio.run(scenario())
    assert not Message.objects.filter(sender=Message.Sender.AGENT).exists()
    assert Draft.objects.get(pk=draft.pk).status == Draft.Status.READY


def test_an_action_on_a_socket_whose_session_is_gone_is_refused_even_unannounced(
    live_stack: LiveStack, agent: User, ready: tuple[Conversation, Draft]
) -> None:
    """The session ends without any signal (expired, deleted by `clearsessions` or by hand): the check
    made before every action still refuses it."""
    conversation, draft = ready
    base, ws = live_stack.base_url, live_stack.ws_url
    session = login_session(base, agent.username, PASSWORD)

    async def scenario() -> None:
        view = await Client.connect(
            f"{ws}/ws/agents/conversations/{conversation.public_id}/", origin=base, session=session
        )
        await view.wait_for(is_type("draft"))
        await in_thread(lambda: Session.objects.filter(session_key=session).delete())
        await view.send({"type": "approve", "draft_id": draft.pk, "request_id": "r-1"})
        assert await close_code(view) == 4401

    asyncio.run(scenario())
    assert not Message.objects.filter(sender=Message.Sender.AGENT).exists()


def test_signing_out_of_one_browser_leaves_the_agents_other_sessions_open(live_stack: LiveStack, agent: User) -> None:
    base, ws = live_stack.base_url, live_stack.ws_url
    laptop, phone = (login_session(base, agent.username, PASSWORD) for _ in range(2))

    async def scenario() -> None:
        on_laptop = await Client.connect(f"{ws}/ws/agents/queue/", origin=base, session=laptop)
        on_phone = await Client.connect(f"{ws}/ws/agents/queue/", origin=base, session=phone)
        for client in (on_laptop, on_phone):
            await client.wait_for(is_type("queue"))
        await in_thread(logout_session, base, laptop)
        assert await close_code(on_laptop) == 4401
        await on_phone.send({"type": "ping"})
        await on_phone.wait_for(is_type("pong"))
        await on_phone.close()

    asyncio.run(scenario())
