"""The customer's websocket (docs/protocol.md, /ws/chat/). Frames pass the inbound gate, then one service each."""

from __future__ import annotations

import logging
import time
import uuid
from collections import deque
from typing import Any, ClassVar

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext

from chatdesk.conversations import frames, inbound, notices, realtime, services, throttle
from chatdesk.conversations.errors import ServiceError
from chatdesk.conversations.identity import ANONYMOUS, CustomerIdentity
from chatdesk.conversations.inbound import Field, FrameSpec
from chatdesk.conversations.tokens import conversation_token, public_id_from_token
from chatdesk.i18n import language_from_headers
from chatdesk.monitoring.metrics import WEBSOCKET_CONNECTIONS

log = logging.getLogger(__name__)

# Too many frames: the client ignored rate_limited errors (a server may send only 1000 and 3000-4999).
CLOSE_FLOODING = 4429
CLOSE_NOT_FOUND = 4404
# A socket's `typing` frames are relayed at most this often; clients send one each 2.5 s while typing.
TYPING_EVERY_S = 2.0


class FrameConsumer(AsyncJsonWebsocketConsumer):
    """JSON frames in and out: every inbound frame is checked by `inbound.parse` against FRAMES before
    `handle` sees it; a refusal is an error frame and the socket stays open. Whatever goes wrong while
    handling a frame is answered with an error frame too: a socket never closes with 1011 because of
    what a client sent."""

    FRAMES: ClassVar[dict[str, FrameSpec]]
    # Which chatdesk_websocket_connections{kind} an open socket counts toward (None: not counted).
    SOCKET_KIND: ClassVar[str | None] = None
    groups_joined: list[str]
    recent_frames: deque[float]
    closing: bool
    counted: bool = False

    async def websocket_connect(self, message: dict[str, Any]) -> None:
        self.groups_joined = []
        self.recent_frames = deque()
        self.closing = False
        await super().websocket_connect(message)

    async def accept(self, subprotocol: str | None = None, headers: Any = None) -> None:
        # Counted once accepted, before the first frame: a client that reads a frame sees itself counted.
        await super().accept(subprotocol, headers)
        if self.SOCKET_KIND is not None and not self.counted:
            WEBSOCKET_CONNECTIONS.labels(kind=self.SOCKET_KIND).inc()
            self.counted = True

    async def websocket_disconnect(self, message: dict[str, Any]) -> None:
        if self.counted:
            self.counted = False
            WEBSOCKET_CONNECTIONS.labels(kind=self.SOCKET_KIND).dec()
        await super().websocket_disconnect(message)

    def answer_language(self) -> str:
        """The language of this socket's error messages: its handshake's Accept-Language (a subclass
        may know better)."""
        return language_from_headers(self.scope.get("headers", ()))

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.closing:
            return
        # Error messages are worded when raised (gettext), in the language active here.
        with translation.override(self.answer_language()):
            try:
                self.count_frame()
                kind, fields = inbound.parse(text_data, self.FRAMES)
                if kind == "ping":
                    await self.send_json({"type": "pong"})
                    return
                await self.handle(kind, fields)
            except ServiceError as error:
                await self.send_error(error, echo=inbound.echo_fields(text_data))
            except Exception:
                # Logged without the frame: it may hold a customer's words.
                log.exception("handling a frame on %s failed", self.scope.get("path"))
                message = gettext("Something went wrong on our side. Please try again.")
                await self.send_error(ServiceError("internal_error", message), echo=inbound.echo_fields(text_data))

    async def handle(self, kind: str, fields: dict[str, Any]) -> None:
        raise NotImplementedError

    def count_frame(self) -> None:
        """At most WS_FRAMES_PER_SOCKET frames per WS_FRAMES_WINDOW_S on one socket, whatever they are.

        Beyond that each frame is refused with `rate_limited`; a client that goes on to send as many
        again within the window ignores those errors, and is disconnected (4429) so that answering it
        cannot slow down everyone else this process serves.
        """
        now = time.monotonic()
        window = settings.WS_FRAMES_WINDOW_S
        while self.recent_frames and self.recent_frames[0] <= now - window:
            self.recent_frames.popleft()
        self.recent_frames.append(now)
        if len(self.recent_frames) > 2 * settings.WS_FRAMES_PER_SOCKET:
            self.closing = True
            raise ServiceError("rate_limited", gettext("Too many frames on this connection; disconnecting."))
        if len(self.recent_frames) > settings.WS_FRAMES_PER_SOCKET:
            retry_after = max(1, round(self.recent_frames[0] + window - now))
            raise ServiceError(
                "rate_limited",
                gettext("Too many frames on this connection. Please slow down."),
                retry_after=retry_after,
            )

    async def send_error(self, error: ServiceError, echo: dict[str, Any] | None = None) -> None:
        await self.send_json({**error.as_frame(), **(echo or {})})
        if self.closing:
            await self.close(code=CLOSE_FLOODING)

    async def join(self, group: str) -> None:
        await self.channel_layer.group_add(group, self.channel_name)
        self.groups_joined.append(group)

    async def leave_all(self) -> None:
        for group in self.groups_joined:
            await self.channel_layer.group_discard(group, self.channel_name)
        self.groups_joined = []

    async def disconnect(self, code: int) -> None:
        await self.leave_all()

    async def deliver(self, event: dict[str, Any]) -> None:
        """Channel-layer event from realtime: forward its frames unchanged."""
        for frame in event["frames"]:
            await self.send_json(frame)

    def client_address(self) -> str:
        client = self.scope.get("client") or ("unknown", 0)
        return str(client[0])

    typing_relayed_at: float | None = None

    async def relay_typing(self, group: str, who: str) -> None:
        """Tell `group` that `who` ("customer" or "agent") is typing: at most once per TYPING_EVERY_S per
        socket, extras dropped silently (no answer, no error). Nothing is stored."""
        now = time.monotonic()
        if self.typing_relayed_at is not None and now - self.typing_relayed_at < TYPING_EVERY_S:
            return
        self.typing_relayed_at = now
        await self.channel_layer.group_send(group, realtime.deliver_event([frames.typing_frame(who)]))


class CustomerChatConsumer(FrameConsumer):
    """One customer's chat. The first frame must be `hello`, which starts or resumes a conversation.

    A new conversation is stored only with its first message (or request for a person): `hello`
    alone hands out a token for a conversation id that nothing stores yet, so sockets that only
    say hello leave nothing behind.
    """

    FRAMES: ClassVar[dict[str, FrameSpec]] = {
        "hello": {
            "token": Field("string"),
            "after_seq": Field("number"),
            "language": Field("string"),
            "site": Field("string"),
            "customer": Field(
                "object",
                fields={
                    "id": Field("string"),
                    "name": Field("string"),
                    "email": Field("string"),
                    "signature": Field("string"),
                },
            ),
            "page": Field("string"),
        },
        "message": {"client_id": Field("string", required=True), "text": Field("string", required=True)},
        "request_human": {},
        "leave_email": {"email": Field("string", required=True)},
        "history": {"before_seq": Field("number", required=True, minimum=1)},
        "end": {},
        "rate": {"score": Field("number", required=True, minimum=1, maximum=5), "comment": Field("string")},
        "typing": {},
        "ping": {},
    }

    SOCKET_KIND = "customer"
    public_id: uuid.UUID | None = None
    language: str = ""  # hello's language, as the desk names it ("" when it does not speak it)
    identity: CustomerIdentity = ANONYMOUS  # what the latest hello said about the customer, checked

    def answer_language(self) -> str:
        """hello's language, else the handshake's Accept-Language."""
        return self.language or super().answer_language()

    hellos: deque[float]

    async def websocket_connect(self, message: dict[str, Any]) -> None:
        self.hellos = deque()
        await super().websocket_connect(message)

    async def handle(self, kind: str, fields: dict[str, Any]) -> None:
        if kind == "hello":
            self.language = notices.language_code(fields["language"]) or ""
            translation.activate(self.answer_language())  # for this hello's own errors (receive restores)
            await self.hello(fields)
        elif self.public_id is None:
            raise ServiceError("hello_required", gettext('Send a "hello" frame first.'))
        elif kind == "message":
            await self.post_message(fields)
        elif kind == "typing":
            await self.relay_typing(realtime.agent_conversation_group(self.public_id), "customer")
        elif kind == "request_human":
            await database_sync_to_async(services.conversation_request_human)(
                public_id=self.public_id,
                client_address=self.client_address(),
                language=self.language,
                identity=self.identity,
            )
        elif kind == "leave_email":
            await database_sync_to_async(services.conversation_leave_email)(
                public_id=self.public_id,
                email=fields["email"],
                client_address=self.client_address(),
                identity=self.identity,
            )
        elif kind == "end":
            await database_sync_to_async(services.conversation_end)(public_id=self.public_id)
            await self.send_json({"type": "ack", "action": "end", "request_id": fields["request_id"]})
        elif kind == "rate":
            rating = await database_sync_to_async(services.conversation_rate)(
                public_id=self.public_id, score=fields["score"], comment=fields["comment"]
            )
            rated = frames.rating_fields(rating)
            await self.send_json({"type": "ack", "action": "rate", "request_id": fields["request_id"], "rating": rated})
        elif kind == "history":
            await self.send_json(
                await database_sync_to_async(frames.history_frame)(self.public_id, before_seq=fields["before_seq"])
            )

    async def hello(self, fields: dict[str, Any]) -> None:
        self.count_hello()
        await database_sync_to_async(throttle.check)(
            "hello", self.client_address(), limit=settings.CHAT_HELLOS_PER_MINUTE_PER_ADDRESS, window_s=60
        )
        token_public_id = None
        if fields["token"] is not None:
            token_public_id = public_id_from_token(fields["token"])
            if token_public_id is None:
                raise ServiceError(
                    "invalid_token",
                    gettext("This conversation link is not valid any more. Send hello without a token to start anew."),
                )
        public_id, identity = await database_sync_to_async(services.customer_hello)(
            token_public_id=token_public_id, site=fields["site"], customer=fields["customer"], page=fields["page"]
        )
        await self.leave_all()
        self.public_id, self.identity = public_id, identity
        # Subscribe before the snapshot: nothing is missed, and clients drop frames by seq they already have.
        await self.join(realtime.customer_group(public_id))
        welcome = await database_sync_to_async(frames.welcome_frame)(public_id, after_seq=fields["after_seq"] or 0)
        await self.send_json({**welcome, "token": conversation_token(public_id), "verified": identity.verified})

    def count_hello(self) -> None:
        now = time.monotonic()
        while self.hellos and self.hellos[0] <= now - 60:
            self.hellos.popleft()
        if len(self.hellos) >= settings.CHAT_HELLOS_PER_MINUTE_PER_SOCKET:
            raise ServiceError(
                "rate_limited",
                gettext("Too many hello frames on this connection."),
                retry_after=max(1, round(self.hellos[0] + 60 - now)),
            )
        self.hellos.append(now)

    async def post_message(self, fields: dict[str, Any]) -> None:
        assert self.public_id is not None
        message, created = await database_sync_to_async(services.customer_message_post)(
            public_id=self.public_id,
            text=fields["text"],
            client_id=fields["client_id"],
            client_address=self.client_address(),
            language=self.language,
            identity=self.identity,
        )
        ack: dict[str, Any] = {"type": "ack", "client_id": message.client_id, "seq": message.seq}
        if not created:
            ack["duplicate"] = True
        await self.send_json(ack)


class NotFoundConsumer(FrameConsumer):
    """Any websocket path the desk does not serve (or a malformed conversation id): say so and close 4404."""

    FRAMES: ClassVar[dict[str, FrameSpec]] = {}

    async def connect(self) -> None:
        await self.accept()
        with translation.override(self.answer_language()):
            message = gettext("There is no websocket endpoint at this address.")
        await self.send_error(ServiceError("not_found", message))
        await self.close(code=CLOSE_NOT_FOUND)
