"""Who the customer is, as the host site tells it: `hello`'s `site`, `customer` and `page` (docs/identity.md).

A host site that knows its signed-in customer passes their account id, name and email to the widget with a
signature its backend made with the site's secret (WidgetSite.secret), so that nobody can pose as another
customer by editing the page:

    signature = hex(HMAC-SHA256(key=secret, message="{id}\\n{email}\\n{name}"))

the key and the message as UTF-8 bytes, each field as sent in `hello` (an absent field is the empty
string). The message covers the email and the name too, so a verified customer cannot claim another's
address. The desk compares in constant time (`hmac.compare_digest`). Identity fields may hold no control
characters (line feeds included), so the message names one (id, email, name) only.

A wrong or missing signature does not refuse the chat: what the customer said is kept, marked unverified.
Only a verified identity resumes that customer's conversation on another device.
"""

from __future__ import annotations

import hashlib
import hmac
import unicodedata
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils.translation import gettext

from chatdesk.conversations.errors import ServiceError
from chatdesk.widget_sites.models import WidgetSite

MAX_ACCOUNT_ID_CHARS = 200
MAX_NAME_CHARS = 200
MAX_EMAIL_CHARS = 254
MAX_PAGE_CHARS = 2000
MAX_SIGNATURE_CHARS = 128
MAX_SITE_KEY_CHARS = 100


@dataclass(frozen=True)
class CustomerIdentity:
    """What a `hello` said about its customer, checked. `verified`: the site's signature matched.

    Empty strings stand for what was not said; `site_id` is None when no site was named.
    """

    site_id: int | None = None
    account_id: str = ""
    name: str = ""
    email: str = ""
    verified: bool = False
    page_url: str = ""

    @property
    def claimed(self) -> bool:
        """Whether the customer said anything about who they are (verified or not)."""
        return bool(self.account_id or self.name or self.email)


ANONYMOUS = CustomerIdentity()


def canonical_message(*, account_id: str, email: str, name: str) -> bytes:
    """The bytes a host site signs: "{id}\\n{email}\\n{name}" in UTF-8."""
    return f"{account_id}\n{email}\n{name}".encode()


def sign(secret: str, *, account_id: str, email: str = "", name: str = "") -> str:
    """The hex HMAC-SHA256 of the canonical message keyed with `secret`: what a host site's backend computes."""
    return hmac.new(
        secret.encode(), canonical_message(account_id=account_id, email=email, name=name), hashlib.sha256
    ).hexdigest()


def signature_valid(secret: str, signature: str, *, account_id: str, email: str = "", name: str = "") -> bool:
    """Whether `signature` (hex, either case) is the site's signature of this identity. An identity
    without an account id is never verified: resuming and earlier conversations go by that id."""
    if not account_id or not signature:
        return False
    expected = sign(secret, account_id=account_id, email=email, name=name)
    return hmac.compare_digest(expected.encode(), signature.strip().lower().encode("utf-8", "replace"))


def customer_identity(*, site: str | None, customer: dict[str, Any] | None, page: str | None) -> CustomerIdentity:
    """Check `hello`'s identity fields (already strings or None, NFC, storable: inbound.parse) and verify
    the signature against the named site's secret.

    Raises ServiceError `invalid_request` (with `field`, e.g. "customer.email") for a field of the wrong
    length or form, and `unknown_site` for a site key no site has. A wrong, missing or other site's
    signature is no error: the identity is returned with verified=False.
    """
    fields = customer or {}
    account_id = _text(fields.get("id"), "customer.id", MAX_ACCOUNT_ID_CHARS)
    name = _text(fields.get("name"), "customer.name", MAX_NAME_CHARS)
    email = _email(fields.get("email"))
    signature = _text(fields.get("signature"), "customer.signature", MAX_SIGNATURE_CHARS)
    page_url = _page(page)
    site_key = _text(site, "site", MAX_SITE_KEY_CHARS)
    found = None
    if site_key:
        found = WidgetSite.objects.filter(public_key=site_key).only("pk", "secret").first()
        if found is None:
            raise ServiceError(
                "unknown_site",
                gettext("This site key is not known to the desk. Check the widget's data-site attribute."),
                field="site",
            )
    verified = found is not None and signature_valid(
        found.secret, signature, account_id=account_id, email=email, name=name
    )
    return CustomerIdentity(
        site_id=found.pk if found else None,
        account_id=account_id,
        name=name,
        email=email,
        verified=verified,
        page_url=page_url,
    )


def _invalid(field: str, message: str) -> ServiceError:
    return ServiceError("invalid_request", message, field=field)


def _text(value: Any, field: str, limit: int) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _invalid(field, gettext("%(field)s must be a string.") % {"field": field})
    if len(value) > limit:
        raise _invalid(
            field, gettext("%(field)s must be at most %(limit)s characters.") % {"field": field, "limit": limit}
        )
    if any(unicodedata.category(char) == "Cc" for char in value):
        raise _invalid(field, gettext("%(field)s must not contain control characters.") % {"field": field})
    return value


def _email(value: Any) -> str:
    email = _text(value, "customer.email", MAX_EMAIL_CHARS)
    if email:
        try:
            validate_email(email)
        except ValidationError:
            raise _invalid("customer.email", gettext("customer.email must be one email address.")) from None
    return email


def _page(value: Any) -> str:
    # Any address a browser shows (hosts with "_", long paths) is fine; only the scheme matters, since agents
    # open it as a link.
    page = _text(value, "page", MAX_PAGE_CHARS)
    if page:
        parts = urlsplit(page)
        if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
            raise _invalid("page", gettext("page must be an http or https URL."))
    return page
