"""The host sites that embed the widget, each with the secret its backend signs customers' identities with."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models


def new_public_key() -> str:
    """A site's public key, put in the widget's `data-site` attribute: "site_" and 16 URL-safe characters."""
    return "site_" + secrets.token_urlsafe(12)


def new_secret() -> str:
    """A site's identity secret: "idsec_" and 43 URL-safe characters (256 random bits). Known only to the desk
    and the host site's backend, which signs its customers' identities with it (docs/identity.md)."""
    return "idsec_" + secrets.token_urlsafe(32)


class WidgetSite(models.Model):
    """A website that embeds the widget and may tell the desk who its signed-in customer is.

    `public_key` names the site in the widget's `hello` (it is public, in the page's HTML). `secret` is
    the HMAC key of the identity signature (chatdesk.conversations.identity); rotating it makes every
    signature made with the old one unverified. It is kept as is, not hashed: the desk needs it to check
    signatures.

    `origins` lists where the site's pages are served from, normalised ("https://shop.example.com",
    "http://127.0.0.2:8001"): the customer websocket only admits a page whose Origin is one of them, the
    desk's own hosts or WIDGET_ALLOWED_ORIGINS (chatdesk.widget_sites.websocket).
    """

    name = models.CharField(max_length=100, unique=True)
    public_key = models.CharField(max_length=40, unique=True, default=new_public_key, editable=False)
    secret = models.CharField(max_length=80, default=new_secret, help_text="Signs customers' identities (HMAC-SHA256).")
    secret_rotated_at = models.DateTimeField(null=True, blank=True, help_text="When the secret was last replaced.")
    origins = models.JSONField(
        default=list,
        blank=True,
        help_text="The web origins (scheme://host[:port]) whose pages embed the widget; the customer websocket "
        "admits them. Normalised by services.origins_clean.",
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
