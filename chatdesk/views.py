from dataclasses import asdict

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from chatdesk import health


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
