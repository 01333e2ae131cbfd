"""The origins a widget site lists: what counts as one, how it is written down, and the limits."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from chatdesk.conversations.errors import ServiceError
from chatdesk.widget_sites import selectors, services
from chatdesk.widget_sites.models import WidgetSite

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("https://shop.example.com", "https://shop.example.com"),
        ("  HTTPS://Shop.Example.COM/  ", "https://shop.example.com"),
        ("http://127.0.0.2:8001", "http://127.0.0.2:8001"),
        ("https://shop.example.com:443", "https://shop.example.com"),  # the default port is what browsers omit
        ("http://shop.example.com:443", "http://shop.example.com:443"),
        ("http://[::1]:8001/", "http://[::1]:8001"),
        ("http://localhost", "http://localhost"),
        ("https://xn--bcher-kva.example", "https://xn--bcher-kva.example"),
    ],
)
def test_an_origin_is_stored_as_browsers_send_it(typed: str, stored: str) -> None:
    assert services.origins_clean(typed) == [stored]


@pytest.mark.parametrize(
    "typed",
    [
        "shop.example.com",  # no scheme
        "ftp://shop.example.com",
        "javascript:alert(1)",
        "https://",
        "https://shop.example.com/chat",
        "https://shop.example.com/?x=1",
        "https://shop.example.com#top",
        "https://ann@shop.example.com",
        "https://shop.example.com:99999",
        "https://shop.example.com:port",
        "https://.example.com",  # channels' every-subdomain pattern: not an origin
        "https://*.example.com",
        "https://shop_example.com",
        "https://[::zz]",
        "https://" + "a" * 250 + ".com",
    ],
)
def test_anything_but_an_http_origin_is_refused_with_the_line_named(typed: str) -> None:
    with pytest.raises(ServiceError) as refused:
        services.origins_clean(f"https://fine.example.com\n{typed}")
    assert refused.value.code == "invalid_request" and refused.value.details == {"field": "origins"}
    assert typed.strip()[:40] in refused.value.message and "https://shop.example.com" in refused.value.message


def test_one_a_line_blank_lines_skipped_repeats_kept_once_in_order() -> None:
    text = "https://b.example.com\r\n\n  \nhttps://a.example.com\nHTTPS://B.example.com/\n"
    assert services.origins_clean(text) == ["https://b.example.com", "https://a.example.com"]
    assert services.origins_clean("") == []


def test_at_most_twenty_origins() -> None:
    twenty = "\n".join(f"https://s{n}.example.com" for n in range(services.MAX_ORIGINS))
    assert len(services.origins_clean(twenty)) == services.MAX_ORIGINS
    with pytest.raises(ServiceError) as refused:
        services.origins_clean(twenty + "\nhttps://one-more.example.com")
    assert "at most 20 origins" in refused.value.message
    with pytest.raises(ServiceError):
        services.origins_clean(["https://shop.example.com"])


def test_a_site_is_created_with_origins_and_they_can_be_replaced(manager: User) -> None:
    site = services.site_create(name="Shop", origins="https://shop.example.com/\nhttp://127.0.0.2:8001", by=manager)
    assert WidgetSite.objects.get().origins == ["https://shop.example.com", "http://127.0.0.2:8001"]
    services.site_create(name="Blog", origins="https://blog.example.com\nhttps://shop.example.com", by=manager)
    assert selectors.site_origins() == ["http://127.0.0.2:8001", "https://blog.example.com", "https://shop.example.com"]

    services.site_set_origins(site_id=site.pk, origins="https://www.example.com")
    site.refresh_from_db()
    assert site.origins == ["https://www.example.com"]
    with pytest.raises(ServiceError):
        services.site_set_origins(site_id=site.pk, origins="www.example.com")
    site.refresh_from_db()
    assert site.origins == ["https://www.example.com"]  # a refused list changes nothing
    with pytest.raises(ServiceError):
        services.site_create(name="Bad", origins="https://x.example.com/path", by=manager)
    assert not WidgetSite.objects.filter(name="Bad").exists()
    with pytest.raises(WidgetSite.DoesNotExist):
        services.site_set_origins(site_id=site.pk + 100, origins="")
