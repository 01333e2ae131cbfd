"""Users' preferences: read and change a user's time zone."""

from __future__ import annotations

import zoneinfo
from functools import cache

from django.conf import settings
from django.contrib.auth.models import User

from chatdesk.accounts.models import Profile


class TimeZoneError(ValueError):
    """Not a time zone this machine knows; the message says so."""


@cache
def time_zone_names() -> tuple[str, ...]:
    """Every IANA time zone name this machine knows, sorted."""
    return tuple(sorted(zoneinfo.available_timezones()))


def user_time_zone(user: User) -> zoneinfo.ZoneInfo:
    """The user's time zone for reports: their profile's, else settings.TIME_ZONE."""
    name = Profile.objects.filter(user=user).values_list("time_zone", flat=True).first()
    return zoneinfo.ZoneInfo(name or settings.TIME_ZONE)


def user_time_zone_set(*, user: User, name: object) -> zoneinfo.ZoneInfo:
    """Store `name` (an IANA name, or blank for the site's) as the user's time zone. Raises TimeZoneError."""
    if not isinstance(name, str) or (name and name not in time_zone_names()):
        raise TimeZoneError(f"Unknown time zone {str(name)[:64]!r}; choose one from the list, e.g. Europe/Paris.")
    Profile.objects.update_or_create(user=user, defaults={"time_zone": name})
    return zoneinfo.ZoneInfo(name or settings.TIME_ZONE)
