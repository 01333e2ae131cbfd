"""A signed-in person's own language and time zone, applied to each of their requests."""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponseBase
from django.utils import timezone, translation

from chatdesk.accounts.services import user_preferences


class UserPreferencesMiddleware:
    """Runs after AuthenticationMiddleware and LocaleMiddleware: for a signed-in user with a Profile
    language, that language replaces the browser's; their time zone (else the site's) is activated so
    templates show dates and times in it. Customers and anonymous visitors keep LocaleMiddleware's choice."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        user = getattr(request, "user", None)
        if isinstance(user, User) and user.is_authenticated:
            chosen = user_preferences(user)
            if chosen.language:
                translation.activate(chosen.language)
                request.LANGUAGE_CODE = chosen.language
            timezone.activate(zoneinfo.ZoneInfo(chosen.time_zone or settings.TIME_ZONE))
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
