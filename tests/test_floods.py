"""A flooding client is throttled and another customer does not notice it: through the real server."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
import websockets

from tests.live import Client, LiveStack

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


def test_a_socket_flooding_frames_and_hellos_is_throttled_while_another_customer_is_answered_promptly(
    live_stack: LiveStack,
) -> None:
    url, origin = f"{live_stack.ws_url}/ws/chat/", live_stack.base_url

    async def flood(stop: asyncio.Event) -> tuple[list[dict[str, object]], int | None]:
        """Sends hellos and messages as fast as it can, ignoring every answer, until stopped or closed."""
        answers: list[dict[str, object]] = []
        async with websockets.connect(url, origin=origin) as ws:  # type: ignore[arg-type]

            async def read() -> None:
                while True:
                    answers.append(json.loads(await ws.recv()))

            reader = asyncio.create_task(read())
            try:
                while not stop.is_set():
                    for _ in range(50):
                        await ws.send('{"type": "hello"}')
                        await ws.send('{"type": "message", "client_id": "x", "text": "spam"}')
                    await asyncio.sleep(0)
                await asyncio.wait_for(reader, 5)
            except websockets.ConnectionClosed as closed:
                return answers, closed.rcvd.code if closed.rcvd else None
            finally:
                reader.cancel()
        return answers, None

    async def scenario() -> None:
        stop = asyncio.Event()
        flooding = asyncio.create_task(flood(stop))
        await asyncio.sleep(0.5)  # the flood is under way
        customer = await Client.connect(url, origin=origin)
        started = time.monotonic()
        await customer.send({"type": "hello"})
        await customer.wait_for(lambda f: f["type"] == "welcome", timeout=10)
        await customer.send({"type": "message", "client_id": "m-1", "text": "Where is my order?"})
        await customer.wait_for(lambda f: f["type"] == "ack", timeout=10)
        answered_in = time.monotonic() - started
        stop.set()
        answers, closed_with = await flooding
        await customer.close()
        # What a person would notice: an answer within a couple of seconds, flood or not.
        assert answered_in < 3, answered_in
        assert closed_with == 4429  # it ignored the rate_limited errors it was sent first
        assert any(a.get("code") == "rate_limited" for a in answers)
        assert sum(a.get("type") == "welcome" for a in answers) <= 10  # hellos per socket per minute

    asyncio.run(scenario())
