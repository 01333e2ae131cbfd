"""Managers' widget sites page: add a site, read its embed snippet and signing examples, rotate, delete."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from chatdesk.conversations import identity
from chatdesk.widget_sites.models import WidgetSite

pytestmark = pytest.mark.django_db


def signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def code_block(page: str, testid: str) -> str:
    found = re.search(rf'<pre data-testid="{testid}"><code>(.*?)</code></pre>', page, re.S)
    assert found, testid
    return html.unescape(found.group(1))


def test_a_manager_adds_a_site_and_gets_a_snippet_and_signing_examples(manager: User) -> None:
    client = signed_in(manager)
    added = client.post("/sites/", {"name": "Shop"})
    site = WidgetSite.objects.get()
    assert added.status_code == 302 and added["Location"] == f"/sites/{site.pk}/"
    assert site.public_key.startswith("site_") and site.secret.startswith("idsec_") and site.created_by == manager

    page = client.get(f"/sites/{site.pk}/")
    assert page.status_code == 200 and "no-store" in page["Cache-Control"]
    text = page.content.decode()
    snippet = code_block(text, "embed-snippet")
    assert f'data-site="{site.public_key}"' in snippet and "/static/js/widget.js" in snippet
    for attribute in ("data-customer-id", "data-customer-name", "data-customer-email", "data-customer-signature"):
        assert attribute in snippet
    # The Python example, run as a host site would, signs as the desk verifies.
    example: dict[str, object] = {}
    exec(code_block(text, "example-python"), example)  # our own page's example
    made = example["chatdesk_signature"]("cust-7", "ann@example.com", "Ann Lee")  # type: ignore[operator]
    assert made == identity.sign(site.secret, account_id="cust-7", email="ann@example.com", name="Ann Lee")
    node = code_block(text, "example-node")
    assert 'createHmac("sha256"' in node and "${accountId}\\n${email}\\n${name}" in node and site.secret in node

    assert site.name in client.get("/sites/").content.decode()


def test_a_name_is_required_and_unique(manager: User) -> None:
    client = signed_in(manager)
    assert client.post("/sites/", {"name": "  "}).status_code == 422
    client.post("/sites/", {"name": "Shop"})
    refused = client.post("/sites/", {"name": "shop"})
    assert refused.status_code == 422 and "Another site has this name." in refused.content.decode()
    assert WidgetSite.objects.count() == 1


def test_rotating_replaces_the_secret_and_deleting_refuses_the_key(manager: User) -> None:
    client = signed_in(manager)
    site = WidgetSite.objects.create(name="Shop")
    old_secret = site.secret
    assert client.post(f"/sites/{site.pk}/rotate/").status_code == 302
    site.refresh_from_db()
    assert site.secret != old_secret and site.secret_rotated_at is not None
    assert client.post(f"/sites/{site.pk}/delete/").status_code == 302
    assert not WidgetSite.objects.exists()
    assert client.post(f"/sites/{site.pk}/rotate/").status_code == 404


def test_agents_cannot_see_or_change_sites(agent: User) -> None:
    site = WidgetSite.objects.create(name="Shop")
    client = signed_in(agent)
    assert client.get("/sites/").status_code == 403
    assert client.get(f"/sites/{site.pk}/").status_code == 403
    assert client.post(f"/sites/{site.pk}/rotate/").status_code == 403
    assert client.post("/sites/", {"name": "Mine"}).status_code == 403
    assert WidgetSite.objects.get().secret == site.secret


def test_a_site_is_added_with_its_origins_and_its_page_says_where_the_widget_connects(
    manager: User, settings: Any
) -> None:
    settings.WIDGET_ALLOWED_ORIGINS = ["https://legacy.example.com"]
    client = signed_in(manager)
    form = client.get("/sites/").content.decode()
    assert 'name="origins"' in form and "The widget connects only from" in form

    added = client.post(
        "/sites/", {"name": "Shop", "origins": "HTTPS://Shop.Example.com/\r\nhttp://127.0.0.2:8001\r\n"}
    )
    site = WidgetSite.objects.get()
    assert added.status_code == 302 and site.origins == ["https://shop.example.com", "http://127.0.0.2:8001"]
    page = client.get(f"/sites/{site.pk}/").content.decode()
    assert ">https://shop.example.com\nhttp://127.0.0.2:8001</textarea>" in page
    assert "The widget connects only from" in page and "https://legacy.example.com" in page


def test_a_bad_origin_refuses_the_new_site_and_keeps_what_was_typed(manager: User) -> None:
    client = signed_in(manager)
    refused = client.post("/sites/", {"name": "Shop", "origins": "https://shop.example.com/chat"})
    text = html.unescape(refused.content.decode())
    assert refused.status_code == 422 and "https://shop.example.com/chat is not a web origin" in text
    assert 'value="Shop"' in text and ">https://shop.example.com/chat</textarea>" in text
    assert not WidgetSite.objects.exists()


def test_a_manager_edits_the_origins_and_a_bad_one_changes_nothing(manager: User) -> None:
    client = signed_in(manager)
    site = WidgetSite.objects.create(name="Shop", origins=["https://shop.example.com"])
    saved = client.post(f"/sites/{site.pk}/origins/", {"origins": "https://www.example.com\nhttps://shop.example.com"})
    assert saved.status_code == 302 and saved["Location"] == f"/sites/{site.pk}/"
    site.refresh_from_db()
    assert site.origins == ["https://www.example.com", "https://shop.example.com"]
    assert "Origins saved." in client.get(f"/sites/{site.pk}/").content.decode()

    typed = "https://www.example.com\nwww.shop.example.com"
    refused = client.post(f"/sites/{site.pk}/origins/", {"origins": typed})
    text = html.unescape(refused.content.decode())
    assert refused.status_code == 422 and "www.shop.example.com is not a web origin" in text
    assert f">{typed}</textarea>" in text and "no-store" in refused["Cache-Control"]
    site.refresh_from_db()
    assert site.origins == ["https://www.example.com", "https://shop.example.com"]

    assert client.post(f"/sites/{site.pk}/origins/", {"origins": ""}).status_code == 302
    site.refresh_from_db()
    assert site.origins == []
    assert client.post(f"/sites/{site.pk + 1}/origins/", {"origins": ""}).status_code == 404
    assert client.get(f"/sites/{site.pk}/origins/").status_code == 405


def test_agents_cannot_set_origins(agent: User) -> None:
    site = WidgetSite.objects.create(name="Shop", origins=["https://shop.example.com"])
    assert (
        signed_in(agent).post(f"/sites/{site.pk}/origins/", {"origins": "https://evil.example.com"}).status_code == 403
    )
    assert WidgetSite.objects.get().origins == ["https://shop.example.com"]
