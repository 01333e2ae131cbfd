"""The README's first command: the whole desk on the embedded default (SQLite, embedded Redis, a worker, Daphne)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from chatdesk.conversations.demo import DEMO_LOGINS
from tests.live import ROOT, Client, free_port, login_session

pytestmark = pytest.mark.live


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


class Desk:
    def __init__(self, data_dir: Path) -> None:
        self.port, self.redis_port = free_port(), free_port()
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY")}
        env.update(DATA_DIR=str(data_dir), EMBEDDED_REDIS_PORT=str(self.redis_port))
        self.log = data_dir / "rundesk.log"
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "rundesk", "--port", str(self.port)],
            cwd=ROOT, env=env, stdout=open(self.log, "wb"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 90
        while "ChatDesk is running" not in self.log.read_text():
            assert self.process.poll() is None, self.log.read_text()
            assert time.monotonic() < deadline, self.log.read_text()
            time.sleep(0.2)
        self.base_url = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[Desk]:
    running = Desk(tmp_path)
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

    desk.process.send_signal(signal.SIGTERM)
    assert desk.process.wait(timeout=30) == 0
    assert not listening(desk.port)
    assert not listening(desk.redis_port)


def test_killing_the_desk_leaves_no_server_behind(desk: Desk) -> None:
    desk.process.kill()
    desk.process.wait()
    deadline = time.monotonic() + 15
    while (listening(desk.port) or listening(desk.redis_port)) and time.monotonic() < deadline:
        time.sleep(0.2)
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
