"""The conversation page's Customer panel: who the customer is, verified or not, their page and earlier
conversations (docs/identity.md)."""

from __future__ import annotations

import uuid

import pytest
from django.contrib.auth.models import User
from django.test import Client

from chatdesk.conversations import services
from chatdesk.conversations.identity import CustomerIdentity
from chatdesk.conversations.models import Conversation
from chatdesk.widget_sites.models import WidgetSite

pytestmark = pytest.mark.django_db

PAGE = "https://shop.example.com/orders/1182?ref=mail"


def started(who: CustomerIdentity, text: str = "Where is my order?") -> Conversation:
    public_id = uuid.uuid4()
    services.customer_message_post(public_id=public_id, text=text, client_id="m-1", identity=who)
    return Conversation.objects.get(public_id=public_id)


def panel(agent: User, conversation: Conversation) -> str:
    client = Client()
    client.force_login(agent)
    page = client.get(f"/agents/c/{conversation.public_id}/")
    assert page.status_code == 200
    return page.content.decode()


def test_a_verified_customer_shows_name_email_page_and_earlier_conversations(agent: User) -> None:
    site, other = WidgetSite.objects.create(name="Shop"), WidgetSite.objects.create(name="Blog")
    ann = CustomerIdentity(
        site_id=site.pk, account_id="cust-1", name="Ann Lee", email="ann@example.com", verified=True, page_url=PAGE
    )
    earlier = started(ann, "An earlier question")
    not_hers = [
        started(CustomerIdentity(site_id=other.pk, account_id="cust-1", name="Ann Lee", verified=True)),
        started(CustomerIdentity(site_id=site.pk, account_id="cust-1", name="Ann Lee", verified=False)),
        started(CustomerIdentity(site_id=site.pk, account_id="cust-2", name="Bob", verified=True)),
    ]
    current = started(ann)

    html = panel(agent, current)
    assert 'data-field="identity-name">Ann Lee<' in html
    assert 'data-field="identity-email">ann@example.com<' in html
    assert 'data-field="identity-verified" data-verified="true"' in html
    assert f'href="{PAGE.replace("&", "&amp;")}" target="_blank" rel="noopener noreferrer">' in html
    assert f"/agents/c/{earlier.public_id}/" in html
    assert all(f"/agents/c/{c.public_id}/" not in html for c in not_hers)
    assert f"/agents/c/{current.public_id}/" not in html
    assert '<h1 data-field="customer">Ann Lee</h1>' in html


def test_an_unverified_customer_is_marked_and_gets_no_earlier_conversations(agent: User) -> None:
    site = WidgetSite.objects.create(name="Shop")
    claim = CustomerIdentity(site_id=site.pk, account_id="cust-1", name="Ann Lee", email="ann@example.com")
    started(claim, "An earlier question")
    html = panel(agent, started(claim))
    assert 'data-field="identity-verified" data-verified="false"' in html
    assert 'data-testid="earlier-conversations-unverified"' in html
    assert 'data-testid="earlier-conversations"' not in html


def test_an_anonymous_customer_says_so(agent: User) -> None:
    html = panel(agent, started(CustomerIdentity()))
    assert '<dl class="conv-facts" data-field="identity" hidden>' in html
    assert 'data-field="identity-none">' in html  # shown
