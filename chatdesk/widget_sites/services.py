"""Managers' writes on widget sites: add one, replace its secret, delete it."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext

from chatdesk.conversations.errors import ServiceError
from chatdesk.widget_sites.models import WidgetSite, new_secret

MAX_NAME_CHARS = 100


def site_create(*, name: object, by: User) -> WidgetSite:
    """A new site with a fresh public key and secret. ServiceError `invalid_request` for an empty or too long
    name, `name_taken` for one another site has."""
    if not isinstance(name, str) or not name.strip():
        raise ServiceError("invalid_request", gettext("Give the site a name."), field="name")
    name = name.strip()
    if len(name) > MAX_NAME_CHARS:
        raise ServiceError(
            "invalid_request",
            gettext("A site's name can be at most %(limit)s characters.") % {"limit": MAX_NAME_CHARS},
            field="name",
        )
    with transaction.atomic():
        if WidgetSite.objects.filter(name__iexact=name).exists():
            raise ServiceError("name_taken", gettext("Another site has this name."), field="name")
        return WidgetSite.objects.create(name=name, created_by=by)


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
