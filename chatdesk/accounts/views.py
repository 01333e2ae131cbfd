"""A signed-in person's preferences page: the language of the desk's pages and their time zone."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import translation
from django.utils.translation import gettext as _

from chatdesk.accounts.services import (
    LanguageError,
    TimeZoneError,
    time_zone_names,
    user_preferences,
    user_preferences_set,
)


@login_required
def preferences(request: HttpRequest) -> HttpResponse:
    """GET: the form; POST: store the language and time zone, then show the form again in the new language."""
    user = request.user
    assert isinstance(user, User)
    chosen = user_preferences(user)
    if request.method == "POST":
        try:
            chosen = user_preferences_set(
                user=user, time_zone=request.POST.get("time_zone", ""), language=request.POST.get("language", "")
            )
        except (TimeZoneError, LanguageError) as error:
            messages.error(request, str(error))
        else:
            # The confirmation is worded in the language just chosen (or the browser's, for "automatic").
            translation.activate(chosen.language or translation.get_language_from_request(request))
            messages.success(request, _("Your preferences are saved."))
            return redirect("accounts:preferences")
    context = {
        "chosen": chosen,
        "languages": settings.LANGUAGES,
        "time_zones": time_zone_names(),
        "site_time_zone": settings.TIME_ZONE,
    }
    return render(request, "accounts/preferences.html", context)
