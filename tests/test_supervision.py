"""`manage.py rundesk` supervises its children: a crashed one is restarted, a failing one stops the desk, and no
process outlives its parent. Real processes, killed with real signals."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatdesk.embedded import answers_ping
from tests.live import Client, Desk, a_draft_reaches_an_agent, alive, descendants, listening, poll_until

pytestmark = pytest.mark.live


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desk]:
    """One desk for the tests below: each kills a child and leaves the desk serving again, but the last."""
    running = Desk(tmp_path_factory.mktemp("desk")).wait_until_running()
    yield running
    running.stop()


def kill_child(desk: Desk, name: str) -> tuple[int, dict[int, str]]:
    """SIGKILL the desk's child `name`; returns its pid and the processes that descended from it."""
    pid = desk.child(name)
    tree = descendants(pid)
    os.kill(pid, signal.SIGKILL)
    desk.wait_for_output(f"{name} (pid {pid}) was killed by SIGKILL: crash 1 of 5 allowed within 60 s; restarting")
    return pid, tree


def site_answers(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url}/", timeout=2) as response:
            return int(response.status) == 200
    except OSError:
        return False


def test_a_taken_redis_port_moves_the_desk_to_the_next_free_one(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        desk = Desk(tmp_path, redis_port=port)
        try:
            desk.wait_until_running()
            found = re.search(r"Embedded Redis server at redis://127\.0\.0\.1:(\d+)", desk.output)
            assert found, desk.output
            used = int(found[1])
            assert used > port and f"Port {port} is taken; using {used}" in desk.output
            assert answers_ping(used)()
            item = asyncio.run(a_draft_reaches_an_agent(desk.base_url, "Can I pay with PayPal?"))
            assert item["draft_status"] == "ready"
        finally:
            desk.stop()


def test_a_killed_worker_is_restarted_leaves_no_orphan_and_drafts_again(desk: Desk) -> None:
    poll_until(lambda: descendants(desk.child("celery worker")), 60, "the worker's pool child started")
    pid, pool = kill_child(desk, "celery worker")
    assert pool, "the worker had no pool child"
    poll_until(lambda: not [p for p in [pid, *pool] if alive(p)], 5, f"the killed worker's processes {pool} ended")
    desk.wait_for_output("restarted celery worker")
    assert desk.child("celery worker") != pid
    item = asyncio.run(a_draft_reaches_an_agent(desk.base_url, "Do you ship to Canada?"))
    assert item["draft_status"] == "ready"


def test_a_killed_web_server_is_restarted_and_the_site_answers_again(desk: Desk) -> None:
    pid, _ = kill_child(desk, "daphne")
    poll_until(lambda: site_answers(desk.base_url), 60, "the site answers again")
    assert desk.child("daphne") != pid

    async def customer_is_welcomed() -> None:
        ws = desk.base_url.replace("http://", "ws://")
        customer = await Client.connect(f"{ws}/ws/chat/", origin=desk.base_url)
        await customer.send({"type": "hello"})
        await customer.wait_for(lambda f: f["type"] == "welcome")
        await customer.close()

    asyncio.run(customer_is_welcomed())


def test_a_killed_embedded_redis_comes_back_on_its_port_and_the_desk_drafts_again(desk: Desk) -> None:
    pid, _ = kill_child(desk, "embedded redis")
    poll_until(answers_ping(desk.redis_port), 10, f"the embedded Redis answers on port {desk.redis_port} again")
    assert desk.child("embedded redis") != pid
    item = asyncio.run(a_draft_reaches_an_agent(desk.base_url, "How long does delivery take?"))
    assert item["draft_status"] == "ready"


def test_a_child_that_keeps_crashing_stops_the_desk_and_leaves_nothing_running(desk: Desk) -> None:
    """Last on the shared desk, which it ends: Daphne is killed each time it is started, until rundesk gives up."""
    killed: set[int] = set()
    seen: dict[int, str] = {}

    def kill_each_new_daphne() -> bool:
        seen.update(descendants(desk.process.pid))
        if desk.process.poll() is not None:
            return True
        for pid in set(desk.children("daphne")) - killed:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            killed.add(pid)
        return False

    poll_until(kill_each_new_daphne, 60, f"rundesk gave up:\n{desk.output}")
    assert desk.process.returncode == 1
    assert "was killed by SIGKILL: 6 crashes within 60 s; giving up; stopped everything" in desk.output
    assert not [pid for pid in seen if alive(pid)], seen
    assert not listening(desk.port)
    assert not listening(desk.redis_port)


def test_a_taken_web_port_stops_the_desk_before_it_starts_anything(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        desk = Desk(tmp_path, port=taken.getsockname()[1])
        try:
            assert desk.process.wait(timeout=60) == 1
        finally:
            desk.stop()
    assert f"127.0.0.1:{desk.port} is taken by another program" in desk.output
    assert not listening(desk.redis_port)
