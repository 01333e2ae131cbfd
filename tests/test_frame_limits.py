"""The websocket's own limits through the real server (python -m chatdesk.serve): a frame that is not
UTF-8 closes with 1007, one over WS_MAX_FRAME_BYTES with 1009 (never a dropped connection), and the
server's memory stays flat however many oversized frames arrive."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path

import pytest
import websockets
from django.conf import settings

from tests.live import LiveStack

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


def rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1]) / 1024


async def closed_with(url: str, origin: str, payload: str | bytes, *, text: bool = True) -> int | None:
    async with websockets.connect(url, origin=origin, max_size=None) as ws:  # type: ignore[arg-type]
        await ws.send(json.dumps({"type": "hello"}))
        await ws.recv()
        await ws.send(payload, text=text)
        try:
            while True:
                await asyncio.wait_for(ws.recv(), 10)
        except websockets.ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else None


def test_invalid_utf8_closes_with_1007_and_an_oversized_frame_with_1009(live_stack: LiveStack) -> None:
    url, origin = f"{live_stack.ws_url}/ws/chat/", live_stack.base_url
    limit = settings.WS_MAX_FRAME_BYTES

    async def scenario() -> None:
        assert await closed_with(url, origin, b'{"type": "ping", "x": "\xff\xfe"}') == 1007
        assert await closed_with(url, origin, "x" * (limit + 1)) == 1009
        assert await closed_with(url, origin, "x" * (3 * 1024 * 1024)) == 1009

    asyncio.run(scenario())


def test_the_servers_memory_stays_flat_under_oversized_frames(live_stack: LiveStack) -> None:
    url, origin = f"{live_stack.ws_url}/ws/chat/", live_stack.base_url
    assert live_stack.daphne is not None
    daphne = live_stack.daphne.pid
    big = "x" * (4 * 1024 * 1024)

    async def refused(payload: str) -> None:
        # Sending in parallel, the server's 1009 can reach a client still writing its 4 MiB: then the
        # client sees its connection reset. Either way the frame was refused (the test above checks 1009).
        with contextlib.suppress(ConnectionResetError, websockets.ConnectionClosed):
            await closed_with(url, origin, payload)

    async def scenario() -> None:
        await refused(big)  # first use warms up buffers
        before = rss_mb(daphne)
        for _ in range(3):
            await asyncio.gather(*(refused(big) for _ in range(10)))
        # 30 frames of 4 MiB were refused: 120 MiB that must not have been buffered.
        assert rss_mb(daphne) - before < 24

    asyncio.run(scenario())
