from dataclasses import asdict

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.shortcuts import render
from django.utils import translation
from django.utils.translation import gettext
from django.views.i18n import JSONCatalog

from chatdesk import health
from chatdesk.conversations.notices import language_code


def demo_shop(request: HttpRequest) -> HttpResponse:
    """A fictional shop's page with the customer widget embedded by its one script tag."""
    return render(request, "shop/index.html", {"company_name": settings.COMPANY_NAME})


def healthz(request: HttpRequest) -> JsonResponse:
    """The process answers (for a liveness probe: touches nothing else)."""
    return JsonResponse({"ok": True})


def readyz(request: HttpRequest) -> JsonResponse:
    """200 when the database, the channel layer, the broker and a recent worker all answer, else 503;
    each check with its detail and time (chatdesk.health)."""
    checks = health.readiness()
    ready = all(check.ok for check in checks.values())
    body = {"ok": ready, "checks": {name: asdict(check) for name, check in checks.items()}}
    return JsonResponse(body, status=200 if ready else 503)


def widget_catalog(request: HttpRequest, language: str) -> HttpResponseBase:
    """The JavaScript catalogue (Django's JSONCatalog: {"catalog", "formats", "plural"}) in `language`, a
    browser language tag such as zh-CN (a language the desk does not speak: the first of LANGUAGES). The
    widget runs on other sites' pages, so any origin may read it; it holds only the desk's public wording."""
    with translation.override(language_code(language) or settings.LANGUAGES[0][0]):
        response = JSONCatalog.as_view()(request)
    response["Access-Control-Allow-Origin"] = "*"
    response["Cache-Control"] = "public, max-age=300"
    return response


def forbidden(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """handler403: the desk's styled page, saying why when the refusal says it (PermissionDenied raised
    with a sentence for people, such as selectors.manager_or_refuse's reason)."""
    reason = str(exception) if isinstance(exception, PermissionDenied) and str(exception) else ""
    context = {"reason": reason or gettext("Your account is not allowed to open this page.")}
    return render(request, "403.html", context, status=403)
