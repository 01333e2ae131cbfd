"""The one owner of group names and broadcasting.

Services call `conversation_changed` inside their transaction; the frames are
built from the committed rows and sent only after commit, so a client never
sees state that was rolled back. Sends go through one long-lived event loop
per process (a new loop per send would open a new Redis connection each time),
in the order they were asked for, without making the caller wait.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import hashlib
import logging
import os
import threading
import uuid
from collections.abc import Coroutine
from typing import Any

from channels.layers import get_channel_layer
from django.db import transaction

from chatdesk.conversations import frames, selectors
from chatdesk.conversations.models import Conversation, Message

log = logging.getLogger(__name__)

QUEUE_GROUP = "agents.queue"
SEND_TIMEOUT_S = 5.0


def customer_group(public_id: uuid.UUID) -> str:
    return f"chat.{public_id.hex}"


def agent_conversation_group(public_id: uuid.UUID) -> str:
    return f"agentconv.{public_id.hex}"


def user_group(user_id: int) -> str:
    """Every agent socket of one user."""
    return f"user.{user_id}"


def session_group(session_key: str) -> str:
    """Every agent socket opened with one session (named by a hash: session keys are credentials)."""
    return f"session.{hashlib.sha256(session_key.encode()).hexdigest()[:40]}"


def access_changed(*, user_id: int | None = None, session_key: str | None = None) -> None:
    """After commit, tell the agent sockets of this user or session to check their session again
    (they close with 4401 when it no longer names an active agent)."""
    groups = [user_group(user_id)] if user_id is not None else []
    groups += [session_group(session_key)] if session_key else []

    def publish() -> None:
        # Should a send fail (logged), the socket still checks its session before every action it takes.
        for group in groups:
            _send(group, [], event_type="access.changed")

    transaction.on_commit(publish)


def deliver_event(frame_list: list[frames.Frame]) -> dict[str, object]:
    """The channel-layer event every consumer understands: send these frames, in order."""
    return {"type": "deliver", "frames": frame_list}


def conversation_changed(conversation_id: int, *, message_id: int | None = None) -> None:
    """After commit, send the customer and the agents the conversation's new state (and the new message, if any)."""
    transaction.on_commit(lambda: _publish(conversation_id, message_id))


def _publish(conversation_id: int, message_id: int | None) -> None:
    conversation = selectors.with_queue_details(Conversation.objects.filter(pk=conversation_id)).first()
    if conversation is None:
        return
    new_message = (
        [frames.message_frame(Message.objects.select_related("author").get(pk=message_id))] if message_id else []
    )
    in_queue = selectors.conversation_in_queue(conversation)
    try:
        _send(customer_group(conversation.public_id), [*new_message, frames.status_frame(conversation)])
        _send(
            agent_conversation_group(conversation.public_id),
            [
                *new_message,
                frames.conversation_frame(conversation),
                frames.draft_frame(selectors.conversation_latest_draft(conversation)),
            ],
        )
        _send(QUEUE_GROUP, [frames.queue_update_frame(conversation, in_queue=in_queue)])
    except Exception:
        # Building the frames failed (sends log their own failures). The change is committed; clients
        # catch up from their snapshot when they reconnect.
        log.exception("broadcast for conversation %s failed", conversation.public_id)


def agents_alerted(frame: frames.Frame) -> None:
    """After commit, send an `alert` frame (frames.alert_frame) to every agent's queue socket."""

    # Should the send fail (logged), the new priority still reaches agents with its queue.update.
    transaction.on_commit(lambda: _send(QUEUE_GROUP, [frame]))


def draft_text_streamed(
    public_id: uuid.UUID, *, draft_id: int, offset: int, text: str
) -> concurrent.futures.Future[None]:
    """Start sending the agents a piece of a draft being written (not stored); returns the send's future."""
    frame = {"type": "draft.delta", "draft_id": draft_id, "offset": offset, "text": text}
    return _send(agent_conversation_group(public_id), [frame])


def agents_watching_told(public_id: uuid.UUID, frame_list: list[frames.Frame]) -> None:
    """After commit, send these frames to the agents watching the conversation (notes, tags: never to
    the customer's group)."""
    transaction.on_commit(lambda: _send(agent_conversation_group(public_id), frame_list))


_loops: dict[int, asyncio.AbstractEventLoop] = {}
_loops_lock = threading.Lock()
_tails: dict[asyncio.AbstractEventLoop, asyncio.Task[None]] = {}  # each loop's latest send, touched in its thread


def _event_loop() -> asyncio.AbstractEventLoop:
    pid = os.getpid()  # a forked worker child needs a loop (and thread) of its own
    with _loops_lock:
        if pid not in _loops:
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="chatdesk-broadcast", daemon=True).start()
            _loops[pid] = loop
        return _loops[pid]


def _send(
    group: str, frame_list: list[frames.Frame], *, wait: bool = False, event_type: str = "deliver"
) -> concurrent.futures.Future[None]:
    """Send an event to `group` after every send this process asked for before (one order per process,
    so a client never gets a conversation's frames out of order), on the broadcast loop. The caller
    does not wait for Redis unless `wait` (a database thread must not: every socket's database work
    waits behind it); the returned future says how it went."""
    layer = get_channel_layer()
    assert layer is not None, "CHANNEL_LAYERS is not configured"
    event = deliver_event(frame_list) if event_type == "deliver" else {"type": event_type}
    done: concurrent.futures.Future[None] = concurrent.futures.Future()
    loop = _event_loop()
    loop.call_soon_threadsafe(_chain, loop, layer.group_send(group, event), group, done)
    if wait:
        done.result(timeout=SEND_TIMEOUT_S)
    return done


def _chain(
    loop: asyncio.AbstractEventLoop, send: Coroutine[Any, Any, None], group: str, done: concurrent.futures.Future[None]
) -> None:
    """In the loop's thread, in the order _send was called: start `send` once the previous one ended."""
    _tails[loop] = loop.create_task(_send_after(_tails.get(loop), send, group, done))


async def _send_after(
    previous: asyncio.Task[None] | None,
    send: Coroutine[Any, Any, None],
    group: str,
    done: concurrent.futures.Future[None],
) -> None:
    if previous is not None:
        await asyncio.wait([previous])  # its outcome is its own
    try:
        await asyncio.wait_for(send, SEND_TIMEOUT_S)
    except Exception as exc:
        # What was stored stays; clients catch up from their snapshot or the next frame's seq.
        log.warning("broadcast to %s failed: %r", group, exc)
        done.set_exception(exc)
    else:
        done.set_result(None)


def flush(timeout_s: float = SEND_TIMEOUT_S) -> None:
    """Wait until this process's sends so far are done (a short-lived command calls it before exiting)."""
    loop = _loops.get(os.getpid())
    if loop is None:
        return

    async def latest() -> None:
        tail = _tails.get(loop)
        if tail is not None:
            await asyncio.wait([tail])

    with contextlib.suppress(concurrent.futures.TimeoutError):
        asyncio.run_coroutine_threadsafe(latest(), loop).result(timeout=timeout_s)


atexit.register(flush)
