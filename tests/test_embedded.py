"""The README's first command: the whole desk on the embedded default (SQLite, embedded Redis, worker, beat, Daphne)."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from chatdesk.conversations.demo import DEMO_LOGINS
from tests.live import CHILDREN, Client, Desk, alive, descendants, listening, login_session, poll_until

pytestmark = pytest.mark.live


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[Desk]:
    running = Desk(tmp_path).wait_until_running()
    yield running
    running.stop()


def test_the_embedded_desk_answers_a_customer_and_stops_cleanly(desk: Desk) -> None:
    username, password = DEMO_LOGINS["agent"]
    session = login_session(desk.base_url, username, password)
    ws = desk.base_url.replace("http://", "ws://")

    async def scenario() -> None:
        customer = await Client.connect(f"{ws}/ws/chat/", origin=desk.base_url)
        await customer.send({"type": "hello"})
        await customer.wait_for(lambda f: f["type"] == "welcome")
        queue = await Client.connect(f"{ws}/ws/agents/queue/", origin=desk.base_url, session=session)
        await customer.send({"type": "message", "client_id": "m-1", "text": "Can I pay with PayPal?"})
        ready = await queue.wait_for(
            lambda f: f["type"] == "queue.update" and f["in_queue"] and f["item"]["draft_status"] == "ready", 60
        )
        agent = await Client.connect(
            f"{ws}/ws/agents/conversations/{ready['id']}/", origin=desk.base_url, session=session
        )
        draft = (await agent.wait_for(lambda f: f["type"] == "draft" and f["draft"]["status"] == "ready"))["draft"]
        assert draft["sources"][0]["title"] == "Accepted payment methods"
        await agent.send({"type": "approve", "draft_id": draft["id"]})
        reply = await customer.wait_for(lambda f: f["type"] == "message" and f["sender"] == "agent")
        assert reply["text"] == draft["text"]
        for client in (customer, queue, agent):
            await client.close()

    asyncio.run(scenario())

    children = descendants(desk.process.pid)
    desk.process.send_signal(signal.SIGTERM)
    assert desk.process.wait(timeout=30) == 0
    assert not listening(desk.port)
    assert not listening(desk.redis_port)
    assert not [pid for pid in children if alive(pid)], children


def test_killing_the_desk_leaves_no_process_behind(desk: Desk) -> None:
    """SIGKILL of rundesk: Daphne, the worker, its pool children, beat and the embedded Redis all end."""
    worker = desk.child("celery worker")
    for name in CHILDREN:
        desk.child(name)
    poll_until(lambda: descendants(worker), 60, "the worker's pool child started")
    children = descendants(desk.process.pid)
    desk.process.kill()
    desk.process.wait()
    poll_until(lambda: not [pid for pid in children if alive(pid)], 5, f"all of {children} ended")
    assert not listening(desk.port)
    assert not listening(desk.redis_port)


def pool_child_with_engine_loaded(desk: Desk) -> psutil.Process | None:
    """The worker's prefork child once it has loaded torch for the engine (the embedded beat never does)."""
    for process in psutil.Process(desk.process.pid).children(recursive=True):
        try:
            if any("libtorch" in m.path for m in process.memory_maps()) and "worker" in process.cmdline():
                return process
        except psutil.NoSuchProcess:
            continue
    return None


def test_a_killed_pool_child_comes_back_and_the_next_message_is_drafted(desk: Desk) -> None:
    """The replacement child loads torch and the encoder for longer than Celery's default 4 s wait for it."""
    deadline = time.monotonic() + 60
    while (child := pool_child_with_engine_loaded(desk)) is None:
        assert time.monotonic() < deadline, desk.log.read_text()
        time.sleep(0.2)
    child.kill()
    username, password = DEMO_LOGINS["agent"]
    session = login_session(desk.base_url, username, password)
    ws = desk.base_url.replace("http://", "ws://")

    async def scenario() -> None:
        queue = await Client.connect(f"{ws}/ws/agents/queue/", origin=desk.base_url, session=session)
        customer = await Client.connect(f"{ws}/ws/chat/", origin=desk.base_url)
        await customer.send({"type": "hello"})
        await customer.wait_for(lambda f: f["type"] == "welcome")
        await customer.send({"type": "message", "client_id": "m-1", "text": "Can I pay with PayPal?"})
        await queue.wait_for(
            lambda f: f["type"] == "queue.update" and f["in_queue"] and f["item"]["draft_status"] == "ready", 60
        )
        for client in (customer, queue):
            await client.close()

    asyncio.run(scenario())
    assert pool_child_with_engine_loaded(desk) is not None
    assert "Timed out waiting for UP message" not in desk.log.read_text()
