"""Users' preferences: read and change a user's time zone and language."""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from functools import cache

from django.conf import settings
from django.contrib.auth.models import User
from django.utils.translation import gettext as _

from chatdesk.accounts.models import Profile


class TimeZoneError(ValueError):
    """Not a time zone this machine knows; the message says so."""


class LanguageError(ValueError):
    """Not a language the desk speaks; the message says so."""


@dataclass(frozen=True)
class Preferences:
    """A user's stored choices: time_zone an IANA name, language a code of settings.LANGUAGES; "" for
    either: not chosen (the site's time zone, the browser's language)."""

    time_zone: str = ""
    language: str = ""


@cache
def time_zone_names() -> tuple[str, ...]:
    """Every IANA time zone name this machine knows, sorted."""
    return tuple(sorted(zoneinfo.available_timezones()))


def user_preferences(user: User) -> Preferences:
    """The user's stored time zone and language (blank ones where they chose none or have no profile)."""
    found = Profile.objects.filter(user=user).values_list("time_zone", "language").first()
    return Preferences(*found) if found else Preferences()


def user_time_zone(user: User) -> zoneinfo.ZoneInfo:
    """The user's time zone for reports: their profile's, else settings.TIME_ZONE."""
    return zoneinfo.ZoneInfo(user_preferences(user).time_zone or settings.TIME_ZONE)


def _check_time_zone(name: object) -> str:
    if not isinstance(name, str) or (name and name not in time_zone_names()):
        raise TimeZoneError(
            _("Unknown time zone %(name)r; choose one from the list, e.g. Europe/Paris.") % {"name": str(name)[:64]}
        )
    return name


def user_time_zone_set(*, user: User, name: object) -> zoneinfo.ZoneInfo:
    """Store `name` (an IANA name, or blank for the site's) as the user's time zone. Raises TimeZoneError."""
    name = _check_time_zone(name)
    Profile.objects.update_or_create(user=user, defaults={"time_zone": name})
    return zoneinfo.ZoneInfo(name or settings.TIME_ZONE)


def user_preferences_set(*, user: User, time_zone: object, language: object) -> Preferences:
    """Store the user's time zone (an IANA name or blank) and language (a code of settings.LANGUAGES or
    blank). Raises TimeZoneError or LanguageError and then stores nothing."""
    time_zone = _check_time_zone(time_zone)
    spoken = {code for code, _name in settings.LANGUAGES}
    if not isinstance(language, str) or (language and language not in spoken):
        raise LanguageError(_("Choose one of the languages in the list."))
    Profile.objects.update_or_create(user=user, defaults={"time_zone": time_zone, "language": language})
    return Preferences(time_zone=time_zone, language=language)
