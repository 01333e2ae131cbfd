"""What the desk keeps per user beyond Django's own fields."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Profile(models.Model):
    """One user's preferences. time_zone: the IANA name pages and reports use for days and hours (blank: the
    site's TIME_ZONE). language: a code of settings.LANGUAGES the desk's pages are shown in (blank: the
    browser's, from Accept-Language)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile")
    time_zone = models.CharField(
        _("time zone"),
        max_length=64,
        blank=True,
        help_text=_("IANA time zone for reports, e.g. Europe/Paris; blank: the site's."),
    )
    language = models.CharField(
        _("language"),
        max_length=16,
        blank=True,
        choices=settings.LANGUAGES,
        help_text=_("The language of the desk's pages; blank: the browser's."),
    )

    def __str__(self) -> str:
        return f"Profile of {self.user}"
