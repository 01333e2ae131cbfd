"""The customer websocket admits the origins the widget sites list, read through a short per-process cache."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.db import DatabaseError

from chatdesk.conversations.routing import websocket_urlpatterns
from chatdesk.widget_sites import services, websocket
from chatdesk.widget_sites.models import WidgetSite
from chatdesk.widget_sites.websocket import SiteOriginValidator

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def fresh_cache() -> None:
    websocket.site_origins_cache.clear()


class Accepting(AsyncWebsocketConsumer):
    """Stands for the customer consumer behind the check: these tests are about the Origin header alone (the
    live tests open real customer sockets through it)."""

    async def connect(self) -> None:
        await self.accept()


ROUTED = websocket_urlpatterns[0].callback
# The customer socket's Origin check with the list routing.py gives it.
CHECKED_CUSTOMER_SOCKET = SiteOriginValidator(Accepting.as_asgi(), ROUTED.allowed_origins)


def test_the_customer_socket_is_routed_through_the_sites_origin_check() -> None:
    assert isinstance(ROUTED, SiteOriginValidator)
    hosts = [host for host in settings.ALLOWED_HOSTS if host != "testserver"]  # pytest-django adds it later
    assert ROUTED.allowed_origins == [*hosts, *settings.WIDGET_ALLOWED_ORIGINS]


async def admitted(origin: str) -> bool:
    """Whether a socket to /ws/chat/ from a page of `origin` is accepted (a refused one gets the 403)."""
    socket = WebsocketCommunicator(CHECKED_CUSTOMER_SOCKET, "/ws/chat/", headers=[(b"origin", origin.encode())])
    connected, _ = await socket.connect()
    # Refused ones too: channels' denier is a consumer on the channel layer until it hears the disconnect,
    # and one left running keeps the test's event loop from closing.
    await socket.disconnect()
    return bool(connected)


def test_a_sites_origin_is_admitted_and_another_refused() -> None:
    WidgetSite.objects.create(name="Shop", origins=["https://shop.example.com", "http://127.0.0.2:8001"])

    async def scenario() -> None:
        assert await admitted("https://shop.example.com")
        assert await admitted("http://127.0.0.2:8001")
        assert await admitted("http://127.0.0.1:8000")  # the desk's own host (ALLOWED_HOSTS)
        assert not await admitted("https://evil.example.com")
        assert not await admitted("http://shop.example.com")  # another scheme is another origin
        assert not await admitted("http://127.0.0.2:8002")

    async_to_sync(scenario)()


def test_the_configured_origins_are_admitted_beside_the_sites() -> None:
    # routing.py passes ALLOWED_HOSTS + WIDGET_ALLOWED_ORIGINS as the fixed list.
    WidgetSite.objects.create(name="Shop", origins=["https://shop.example.com"])
    validator = SiteOriginValidator(Accepting.as_asgi(), ["https://configured.example.com"])

    async def scenario() -> None:
        for origin, expected in [
            ("https://configured.example.com", True),
            ("https://shop.example.com", True),
            ("https://evil.example.com", False),
        ]:
            socket = WebsocketCommunicator(validator, "/ws/chat/", headers=[(b"origin", origin.encode())])
            connected, _ = await socket.connect()
            await socket.disconnect()
            assert connected is expected, origin

    async_to_sync(scenario)()


def test_an_edited_site_is_admitted_or_refused_once_the_cache_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(websocket.site_origins_cache, "clock", lambda: now[0])
    monkeypatch.setattr(websocket, "SITE_ORIGINS_CACHE_S", 2.0)
    site = WidgetSite.objects.create(name="Shop", origins=["https://old.example.com"])

    async def scenario() -> None:
        assert await admitted("https://old.example.com")
        await database_sync_to_async(services.site_set_origins)(site_id=site.pk, origins="https://new.example.com")
        now[0] += 1.9  # still cached
        assert await admitted("https://old.example.com")
        assert not await admitted("https://new.example.com")
        now[0] += 0.2  # expired: read again
        assert await admitted("https://new.example.com")
        assert not await admitted("https://old.example.com")

    async_to_sync(scenario)()


def test_the_database_is_read_once_per_expiry(monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[int] = []
    real = websocket.selectors.site_origins

    def counted() -> list[str]:
        reads.append(1)
        return real()

    monkeypatch.setattr(websocket.selectors, "site_origins", counted)
    monkeypatch.setattr(websocket.site_origins_cache, "clock", lambda: 1000.0)  # within one expiry throughout
    WidgetSite.objects.create(name="Shop", origins=["https://shop.example.com"])

    async def scenario() -> None:
        for _ in range(5):
            assert await admitted("https://shop.example.com")
        assert not await admitted("https://evil.example.com")

    async_to_sync(scenario)()
    assert len(reads) == 1


def test_while_the_database_cannot_be_read_the_last_origins_are_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(websocket.site_origins_cache, "clock", lambda: now[0])
    WidgetSite.objects.create(name="Shop", origins=["https://shop.example.com"])

    def down() -> list[str]:
        raise DatabaseError("connection refused")

    async def scenario() -> None:
        assert await admitted("https://shop.example.com")
        monkeypatch.setattr(websocket.selectors, "site_origins", down)
        now[0] += websocket.SITE_ORIGINS_CACHE_S + 1
        assert await admitted("https://shop.example.com")
        assert await admitted("http://127.0.0.1:8000")

    async_to_sync(scenario)()
