"""Managers' writes on widget sites: add one, set the origins it embeds the widget on, replace its secret,
delete it."""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext

from chatdesk.conversations.errors import ServiceError
from chatdesk.widget_sites.models import WidgetSite, new_secret

MAX_NAME_CHARS = 100
MAX_ORIGINS = 20
MAX_ORIGIN_CHARS = 200
DEFAULT_PORTS = {"http": 80, "https": 443}
# A host name as browsers send it in Origin: ASCII labels (an IDN arrives as punycode, which this admits).
HOST_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$")


def origin_normalise(text: str) -> str | None:
    """`text` as the Origin header a browser sends for it ("https://shop.example.com", "http://[::1]:8001"):
    lower-case scheme and host, no trailing slash, no default port. None when it is not an http(s) origin:
    another scheme, no host, a path, query, fragment or user name, or a bad port."""
    try:
        parts = urlsplit(text.strip())
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), (parts.hostname or "")
    if scheme not in DEFAULT_PORTS or not host or parts.username is not None or parts.password is not None:
        return None
    if parts.path not in ("", "/") or parts.query or parts.fragment or "?" in text or "#" in text:
        return None
    if ":" in host:
        try:
            host = f"[{ipaddress.IPv6Address(host).compressed}]"
        except ValueError:
            return None
    elif not HOST_NAME.match(host):
        return None
    suffix = f":{port}" if port is not None and port != DEFAULT_PORTS[scheme] else ""
    return f"{scheme}://{host}{suffix}"


def origins_clean(text: object) -> list[str]:
    """The origins in `text`, one a line (blank lines skipped), normalised by origin_normalise and without
    repeats, in their order. ServiceError `invalid_request` (field "origins") naming the first line that is
    not an http(s) origin, or when there are more than MAX_ORIGINS."""
    if not isinstance(text, str):
        raise ServiceError("invalid_request", gettext("List the origins one a line."), field="origins")
    origins: list[str] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        origin = origin_normalise(line) if len(line) <= MAX_ORIGIN_CHARS else None
        if origin is None:
            raise ServiceError(
                "invalid_request",
                gettext(
                    "%(line)s is not a web origin. Write the scheme, host and port only, like https://shop.example.com."
                )
                % {"line": line.strip()[:MAX_ORIGIN_CHARS]},
                field="origins",
            )
        if origin not in origins:
            origins.append(origin)
    if len(origins) > MAX_ORIGINS:
        raise ServiceError(
            "invalid_request",
            gettext("A site can list at most %(limit)s origins.") % {"limit": MAX_ORIGINS},
            field="origins",
        )
    return origins


def site_create(*, name: object, origins: object = "", by: User) -> WidgetSite:
    """A new site with a fresh public key and secret, embedded on `origins` (text, one a line: origins_clean).
    ServiceError `invalid_request` for an empty or too long name or a bad origin, `name_taken` for a name
    another site has."""
    if not isinstance(name, str) or not name.strip():
        raise ServiceError("invalid_request", gettext("Give the site a name."), field="name")
    name = name.strip()
    if len(name) > MAX_NAME_CHARS:
        raise ServiceError(
            "invalid_request",
            gettext("A site's name can be at most %(limit)s characters.") % {"limit": MAX_NAME_CHARS},
            field="name",
        )
    cleaned = origins_clean(origins)
    with transaction.atomic():
        if WidgetSite.objects.filter(name__iexact=name).exists():
            raise ServiceError("name_taken", gettext("Another site has this name."), field="name")
        return WidgetSite.objects.create(name=name, origins=cleaned, created_by=by)


def site_set_origins(*, site_id: int, origins: object) -> WidgetSite:
    """Replace the origins the site embeds the widget on (text, one a line: origins_clean). Every Daphne
    process admits the new list within SITE_ORIGINS_CACHE_S (chatdesk.widget_sites.websocket).
    Raises WidgetSite.DoesNotExist, or ServiceError `invalid_request` for a bad origin."""
    cleaned = origins_clean(origins)
    with transaction.atomic():
        site = WidgetSite.objects.select_for_update().get(pk=site_id)
        site.origins = cleaned
        site.save(update_fields=["origins"])
    return site


def site_rotate_secret(*, site_id: int) -> WidgetSite:
    """Replace the site's secret: identities signed with the old one are unverified from now on.
    Raises WidgetSite.DoesNotExist."""
    with transaction.atomic():
        site = WidgetSite.objects.select_for_update().get(pk=site_id)
        site.secret = new_secret()
        site.secret_rotated_at = timezone.now()
        site.save(update_fields=["secret", "secret_rotated_at"])
    return site


def site_delete(*, site_id: int) -> WidgetSite:
    """Delete the site: a hello naming its key is refused (`unknown_site`) from now on. Its conversations stay,
    without a site, so they no longer count as any verified customer's earlier conversations.
    Raises WidgetSite.DoesNotExist."""
    site = WidgetSite.objects.get(pk=site_id)
    site.delete()
    return site
