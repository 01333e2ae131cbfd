from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render


def demo_shop(request: HttpRequest) -> HttpResponse:
    """A fictional shop's page with the customer widget embedded by its one script tag."""
    return render(request, "shop/index.html", {"company_name": settings.COMPANY_NAME})


def healthz(request: HttpRequest) -> JsonResponse:
    connection.ensure_connection()
    return JsonResponse({"ok": True})
