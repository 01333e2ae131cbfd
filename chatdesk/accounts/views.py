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
    Preferences,
    TimeZoneError,
    time_zone_names,
    user_preferences,
    user_preferences_set,
)


@login_required
def preferences(request: HttpRequest) -> HttpResponse:
    """GET: the form; POST: store the language and time zone, then show the form again in the new language.
    A value that is refused is shown again at its field with the reason (400), and nothing is stored."""
    user = request.user
    assert isinstance(user, User)
    chosen = user_preferences(user)
    errors: dict[str, str] = {}
    if request.method == "POST":
        time_zone, language = request.POST.get("time_zone", ""), request.POST.get("language", "")
        try:
            chosen = user_preferences_set(user=user, time_zone=time_zone, language=language)
        except TimeZoneError as error:
            # Shown at the field, with what was typed kept so it can be corrected.
            errors["time_zone"] = str(error)
            chosen = Preferences(time_zone=time_zone[:64], language=language)
        except LanguageError as error:
            errors["language"] = str(error)
            chosen = Preferences(time_zone=time_zone[:64], language=chosen.language)
        else:
            # The confirmation is worded in the language just chosen (or the browser's, for "automatic").
            translation.activate(chosen.language or translation.get_language_from_request(request))
            messages.success(request, _("Your preferences are saved."))
            return redirect("accounts:preferences")
    context = {
        "chosen": chosen,
        "errors": errors,
        "languages": settings.LANGUAGES,
        "time_zones": time_zone_names(),
        "site_time_zone": settings.TIME_ZONE,
    }
    return render(request, "accounts/preferences.html", context, status=400 if errors else 200)
