"""What the desk keeps per user beyond Django's own fields."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Profile(models.Model):
    """One user's preferences. time_zone: the IANA name reports use for days and hours (blank: the
    site's TIME_ZONE)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile")
    time_zone = models.CharField(
        max_length=64, blank=True, help_text="IANA time zone for reports, e.g. Europe/Paris; blank: the site's."
    )

    def __str__(self) -> str:
        return f"Profile of {self.user}"
