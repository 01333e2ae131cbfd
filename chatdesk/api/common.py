"""What every API router shares: the documented error responses, paging, the token's user."""

from __future__ import annotations

from typing import Any, TypeVar

from django.contrib.auth.models import User
from django.db.models import Model, QuerySet
from django.http import HttpRequest

from chatdesk.api.models import ApiToken
from chatdesk.api.schemas import Error, Paging

M = TypeVar("M", bound=Model)

# Every operation may answer these (400 a body that is not JSON, 401 without a valid token, 403 scope,
# 422 bad input, 429 rate limit).
ERRORS: dict[int, Any] = {400: Error, 401: Error, 403: Error, 422: Error, 429: Error}
NOT_FOUND: dict[int, Any] = {**ERRORS, 404: Error}
CONFLICT: dict[int, Any] = {**NOT_FOUND, 409: Error}


def token_user(request: HttpRequest) -> User:
    """The user the request's token acts as (its owner)."""
    token = request.auth  # type: ignore[attr-defined]
    assert isinstance(token, ApiToken)
    return token.owner


def page(found: QuerySet[M], paging: Paging) -> tuple[int, list[M]]:
    """(total count, the page's rows)."""
    return found.count(), list(found[paging.offset : paging.offset + paging.limit])
