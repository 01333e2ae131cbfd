"""Who the customer is: the host site's signature, hello's identity fields, and resuming a verified
customer's conversation on another device (docs/identity.md)."""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta
from typing import Any

import pytest
from channels.testing import WebsocketCommunicator

from chatdesk.conversations import identity, services
from chatdesk.conversations.errors import ServiceError
from chatdesk.conversations.models import Conversation
from chatdesk.widget_sites.models import WidgetSite
from tests.conversations.test_consumers import connect, receive_until, run

pytestmark = pytest.mark.django_db(transaction=True)

ANN = {"id": "cust-1001", "name": "Ann Lee", "email": "ann.lee@example.com"}
PAGE = "https://shop.example.com/orders/1182"


@pytest.fixture
def site() -> WidgetSite:
    return WidgetSite.objects.create(name="Shop")


@pytest.fixture
def other_site() -> WidgetSite:
    return WidgetSite.objects.create(name="Blog")


def signed(site: WidgetSite, who: dict[str, str] = ANN) -> dict[str, str]:
    """`who` with the signature the host site's backend makes, computed here as docs/identity.md says."""
    message = f"{who['id']}\n{who.get('email', '')}\n{who.get('name', '')}".encode()
    return {**who, "signature": hmac.new(site.secret.encode(), message, hashlib.sha256).hexdigest()}


def check(
    site: WidgetSite | None, customer: dict[str, Any] | None, page: str | None = None
) -> identity.CustomerIdentity:
    return identity.customer_identity(site=site.public_key if site else None, customer=customer, page=page)


# -- the signature -------------------------------------------------------------------------------


def test_the_documented_signature_verifies(site: WidgetSite) -> None:
    found = check(site, signed(site), PAGE)
    assert found == identity.CustomerIdentity(
        site_id=site.pk, account_id="cust-1001", name="Ann Lee", email="ann.lee@example.com", verified=True,
        page_url=PAGE,
    )  # fmt: skip
    assert (
        identity.sign(site.secret, account_id="cust-1001", email=ANN["email"], name=ANN["name"])
        == signed(site)["signature"]
    )
    assert check(site, {**signed(site), "signature": signed(site)["signature"].upper()}).verified


@pytest.mark.parametrize(
    "change",
    [
        {"signature": "0" * 64},  # wrong
        {"signature": None},  # missing
        {"email": "boss@example.com"},  # another address under Ann's signature
        {"name": "Boss"},
        {"id": "cust-1"},  # another account under Ann's signature
    ],
    ids=["wrong", "missing", "tampered-email", "tampered-name", "tampered-id"],
)
def test_a_wrong_missing_or_tampered_signature_keeps_the_data_unverified(
    site: WidgetSite, change: dict[str, Any]
) -> None:
    customer = {**signed(site), **change}
    found = check(site, customer)
    assert not found.verified
    assert (found.account_id, found.email, found.name) == (customer["id"], customer["email"], customer["name"])


def test_another_sites_secret_does_not_verify(site: WidgetSite, other_site: WidgetSite) -> None:
    assert check(other_site, signed(other_site)).verified
    assert not check(site, signed(other_site)).verified


def test_a_signature_without_an_account_id_or_without_a_site_verifies_nothing(site: WidgetSite) -> None:
    no_id = {"name": "Ann Lee", "email": ANN["email"]}
    assert not check(site, {**no_id, "signature": identity.sign(site.secret, account_id="", **no_id)}).verified
    anonymous_site = check(None, signed(site))
    assert not anonymous_site.verified and anonymous_site.site_id is None and anonymous_site.name == "Ann Lee"


def test_rotating_the_secret_unverifies_old_signatures(site: WidgetSite, client: Any, manager: Any) -> None:
    old = signed(site)
    client.force_login(manager)
    assert client.post(f"/sites/{site.pk}/rotate/").status_code == 302
    site.refresh_from_db()
    assert not check(site, old).verified and check(site, signed(site)).verified


# -- hello's fields ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("customer", "page", "field"),
    [
        ({"id": "x" * 201}, None, "customer.id"),
        ({"name": "n" * 201}, None, "customer.name"),
        ({"email": "not an address"}, None, "customer.email"),
        ({"email": "a" * 250 + "@example.com"}, None, "customer.email"),
        ({"id": "a\nb"}, None, "customer.id"),  # would make the signed message ambiguous
        ({"id": 1001}, None, "customer.id"),
        ({"signature": ["ab"]}, None, "customer.signature"),
        (None, "javascript:alert(1)", "page"),
        (None, "ftp://shop.example.com/", "page"),
        (None, "https://shop.example.com/" + "p" * 2000, "page"),
    ],
)
def test_bad_identity_fields_are_refused_naming_the_field(
    site: WidgetSite, customer: dict[str, Any] | None, page: str | None, field: str
) -> None:
    with pytest.raises(ServiceError) as refused:
        check(site, customer, page)
    assert refused.value.code == "invalid_request" and refused.value.details["field"] == field


def test_an_unknown_site_key_is_refused() -> None:
    with pytest.raises(ServiceError) as refused:
        identity.customer_identity(site="site_nope", customer=None, page=None)
    assert refused.value.code == "unknown_site"


# -- over the websocket ---------------------------------------------------------------------------


async def hello(socket: WebsocketCommunicator, **fields: Any) -> dict[str, Any]:
    """The answer to a hello (a welcome or an error), skipping frames about the conversation before it."""
    await socket.send_json_to({"type": "hello", **fields})
    while True:
        frame = await socket.receive_json_from(timeout=5)
        if frame["type"] in ("welcome", "error"):
            return frame


async def say_on(socket: WebsocketCommunicator, text: str) -> None:
    await socket.send_json_to({"type": "message", "client_id": f"m-{abs(hash(text))}", "text": text})
    await receive_until(socket, "ack")


def test_a_verified_customer_finds_their_conversation_on_another_device(site: WidgetSite) -> None:
    identity_fields = {"site": site.public_key, "customer": signed(site)}

    async def scenario() -> None:
        laptop = await connect()
        first = await hello(laptop, **identity_fields, page=PAGE)
        assert first["type"] == "welcome" and first["verified"] is True and first["messages"] == []
        await say_on(laptop, "Where is my order 1182?")
        await laptop.disconnect()

        phone = await connect()  # no token: another device
        second = await hello(phone, **identity_fields, page="https://shop.example.com/m/help")
        assert second["conversation_id"] == first["conversation_id"] and second["token"]
        assert [m["text"] for m in second["messages"]] == ["Where is my order 1182?"]
        await phone.disconnect()

    run(scenario)
    conversation = Conversation.objects.get()
    assert (conversation.site, conversation.customer_account_id, conversation.customer_verified) == (
        site,
        "cust-1001",
        True,
    )
    assert (conversation.customer_name, conversation.customer_email) == ("Ann Lee", "ann.lee@example.com")
    assert conversation.page_url == "https://shop.example.com/m/help"  # the latest hello's page
    assert conversation.customer_label == "Ann Lee"


def test_unverified_data_never_resumes_a_conversation(site: WidgetSite) -> None:
    forged = {"site": site.public_key, "customer": {**ANN, "signature": "0" * 64}}

    async def scenario() -> None:
        for device in ("laptop", "phone"):
            socket = await connect()
            welcome = await hello(socket, **forged)
            assert welcome["verified"] is False and welcome["messages"] == []
            await say_on(socket, f"Hello from my {device}")
            await socket.disconnect()

    run(scenario)
    conversations = Conversation.objects.all()
    assert len(conversations) == 2
    assert all(c.customer_name == "Ann Lee" and not c.customer_verified for c in conversations)


def test_a_forged_identity_cannot_open_a_verified_customers_conversation(site: WidgetSite) -> None:
    """Someone who knows Ann's account id, name and email but not the site's secret starts their own chat."""

    async def scenario() -> None:
        ann = await connect()
        await hello(ann, site=site.public_key, customer=signed(site))
        await say_on(ann, "My card number is private")
        await ann.disconnect()
        intruder = await connect()
        welcome = await hello(intruder, site=site.public_key, customer={**ANN, "signature": "f" * 64})
        assert welcome["messages"] == [] and welcome["verified"] is False
        await intruder.disconnect()

    run(scenario)
    assert Conversation.objects.count() == 1


def test_another_verified_customer_on_the_same_browser_does_not_get_the_previous_ones_conversation(
    site: WidgetSite,
) -> None:
    bob = {"id": "cust-2002", "name": "Bob Ray", "email": "bob@example.com"}

    async def scenario() -> None:
        socket = await connect()
        ann = await hello(socket, site=site.public_key, customer=signed(site))
        await say_on(socket, "Ann's question")
        # Ann signs out, Bob signs in; the widget still holds Ann's token.
        welcome = await hello(socket, token=ann["token"], site=site.public_key, customer=signed(site, bob))
        assert welcome["conversation_id"] != ann["conversation_id"] and welcome["messages"] == []
        # Anonymous on the same browser later: the token is the credential, as without identities.
        again = await hello(socket, token=ann["token"])
        assert again["conversation_id"] == ann["conversation_id"]
        await socket.disconnect()

    run(scenario)


def test_a_conversation_older_than_the_token_age_is_not_resumed(site: WidgetSite, settings: Any) -> None:
    services.customer_message_post(
        public_id=services.customer_hello(token_public_id=None, site=site.public_key, customer=signed(site), page=None)[
            0
        ],
        text="An old question",
        client_id="m-1",
        identity=check(site, signed(site)),
    )
    Conversation.objects.update(updated_at=Conversation.objects.get().updated_at - timedelta(days=31))
    public_id, found = services.customer_hello(
        token_public_id=None, site=site.public_key, customer=signed(site), page=None
    )
    assert found.verified and not Conversation.objects.filter(public_id=public_id).exists()


def test_a_token_holder_who_signs_in_makes_the_conversation_verified_and_a_claim_cannot_undo_it(
    site: WidgetSite,
) -> None:
    async def scenario() -> None:
        socket = await connect()
        anonymous = await hello(socket)
        await say_on(socket, "A question before signing in")
        await hello(socket, token=anonymous["token"], site=site.public_key, customer=signed(site), page=PAGE)
        await hello(socket, token=anonymous["token"], customer={"name": "Not Ann", "email": "x@example.com"})
        await socket.disconnect()

    run(scenario)
    conversation = Conversation.objects.get()
    assert conversation.customer_verified and conversation.customer_name == "Ann Lee" and conversation.page_url == PAGE


@pytest.mark.parametrize(
    ("fields", "code", "field"),
    [
        ({"site": "site_unknown"}, "unknown_site", "site"),
        ({"customer": "Ann"}, "invalid_request", "customer"),
        ({"customer": {"email": "nope"}}, "invalid_request", "customer.email"),
        ({"customer": {"name": "\ud83d"}}, "invalid_text", "customer.name"),
        ({"page": "javascript:alert(1)"}, "invalid_request", "page"),
        ({"page": 5}, "invalid_request", "page"),
    ],
)
def test_a_hello_with_bad_identity_fields_gets_an_error_and_the_socket_stays_open(
    fields: dict[str, Any], code: str, field: str
) -> None:
    async def scenario() -> None:
        socket = await connect()
        error = await hello(socket, **fields)
        assert (error["type"], error["code"], error.get("field")) == ("error", code, field) and error["message"]
        assert (await hello(socket))["type"] == "welcome"
        await socket.disconnect()

    run(scenario)


def test_the_page_is_recorded_with_the_first_message_and_updated_by_each_hello(site: WidgetSite) -> None:
    async def scenario() -> None:
        socket = await connect()
        welcome = await hello(socket, site=site.public_key, page=PAGE)
        assert not await Conversation.objects.aexists()  # hello alone stores nothing
        await say_on(socket, "Is this in stock?")
        await hello(socket, token=welcome["token"], page="https://shop.example.com/cart")
        await socket.disconnect()

    run(scenario)
    conversation = Conversation.objects.get()
    assert conversation.site == site and not conversation.customer_verified and conversation.customer_name == ""
    assert conversation.page_url == "https://shop.example.com/cart" and conversation.page_seen_at is not None
