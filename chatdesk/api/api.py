"""The REST API, /api/v1/ (docs/api.md): the NinjaAPI, its routers, and one error convention.

Every error is JSON `{"code": ..., "message": ...}`; codes are the websocket protocol's where they mean
the same (docs/protocol.md), and the HTTP status says the kind (ERROR_STATUS).
"""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.urls import URLPattern, URLResolver, path
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError

from chatdesk.api import conversations, directory, knowledge, reports
from chatdesk.conversations.errors import ServiceError

# The HTTP status of each error code; any other code is a request the desk refused as invalid (422).
ERROR_STATUS = {
    "not_authenticated": 401,
    "invalid_token": 401,
    "forbidden": 403,
    "insufficient_scope": 403,
    "not_found": 404,
    "closed": 409,
    "taken_over_by_other": 409,
    "already_handled": 409,
    "draft_not_ready": 409,
    "superseded": 409,
    "no_customer_message": 409,
    "client_id_conflict": 409,
    "conflict": 409,
    "in_use": 409,
    "rate_limited": 429,
}

api = NinjaAPI(
    title="ChatDesk API",
    version="1",
    description="Conversations, replies, external drafts, the knowledge base, teams and reports. See docs/api.md.",
    urls_namespace="api-v1",
    openapi_url="/openapi.json",
    docs_url="/docs",
)
api.add_router("/conversations", conversations.router)
api.add_router("/articles", knowledge.router)
api.add_router("/", directory.router)
api.add_router("/reports", reports.router)


def error_response(request: HttpRequest, status: int, code: str, message: str, **details: object) -> HttpResponse:
    response = api.create_response(request, {"code": code, "message": message, **details}, status=status)
    if "retry_after" in details:
        response["Retry-After"] = str(details["retry_after"])
    return response


@api.exception_handler(ServiceError)
def service_error(request: HttpRequest, exc: ServiceError) -> HttpResponse:
    return error_response(request, ERROR_STATUS.get(exc.code, 422), exc.code, exc.message, **exc.details)


@api.exception_handler(AuthenticationError)
def not_authenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    response = error_response(
        request, 401, "not_authenticated", _("Send an API token: Authorization: Bearer <token> (docs/api.md).")
    )
    response["WWW-Authenticate"] = "Bearer"
    return response


@api.exception_handler(NinjaValidationError)
def invalid_request(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
    errors = [
        {"field": ".".join(str(part) for part in e.get("loc", ())[1:]) or None, "message": e.get("msg", "")}
        for e in exc.errors
    ]
    first = errors[0] if errors else {"field": None, "message": "invalid"}
    message = f"{first['field']}: {first['message']}" if first["field"] else str(first["message"])
    # A string that cannot be stored has the websockets' code; anything else is invalid_request.
    code = "invalid_text" if any(e.get("type") == "invalid_text" for e in exc.errors) else "invalid_request"
    return error_response(request, 422, code, message, field=first["field"], errors=errors)


@api.exception_handler(Http404)
def not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return error_response(request, 404, "not_found", _("Not found."))


@api.exception_handler(HttpError)
def http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    if exc.status_code == 400:  # ninja could not parse the body
        return error_response(request, 400, "invalid_json", _("The request body is not valid JSON."))
    return error_response(request, exc.status_code, "invalid_request", str(exc))


def urls() -> tuple[list[URLPattern | URLResolver], str, str]:
    """api.urls with one pattern per path: ninja adds the same view once per operation (for reverse()
    names), and each path's view dispatches on the method itself."""
    patterns, app_name, namespace = api.urls
    seen: set[str] = set()
    unique = []
    for pattern in patterns:
        if str(pattern.pattern) not in seen:
            seen.add(str(pattern.pattern))
            unique.append(pattern)
    # Any other path under /api/v1/ (a malformed id included) answers in the API's own error format.
    unique.append(path("<path:rest>", unknown_path, name="unknown"))
    return unique, app_name, namespace


@csrf_exempt  # like every API view: tokens, not cookies, authenticate here
def unknown_path(request: HttpRequest, rest: str) -> HttpResponse:
    return error_response(request, 404, "not_found", _("There is no such API path; see /api/v1/docs."))
