"""Bearer-token authentication for /api/v1/: the token, its scope, and its rate limit."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja.security import HttpBearer

from chatdesk.api import tokens
from chatdesk.api.models import ApiToken
from chatdesk.conversations import selectors, throttle
from chatdesk.conversations.errors import ServiceError


class TokenAuth(HttpBearer):
    """`Authorization: Bearer <token>` with at least `scope`. A missing header is 401 `not_authenticated`
    (raised by ninja, answered in api.py); an unknown, revoked or orphaned token 401 `invalid_token`; a
    token without the scope 403 `insufficient_scope`; beyond API_RATE_LIMIT_PER_MINUTE requests a
    minute, 429 `rate_limited` with Retry-After."""

    def __init__(self, scope: str) -> None:
        super().__init__()
        self.scope = scope

    def authenticate(self, request: HttpRequest, token: str) -> ApiToken:
        api_token = tokens.token_authenticate(token)
        if api_token is None:
            raise ServiceError("invalid_token", _("This API token is unknown or was revoked."))
        throttle.check("api", f"token:{api_token.pk}", limit=settings.API_RATE_LIMIT_PER_MINUTE, window_s=60)
        if not api_token.allows(self.scope):
            raise ServiceError(
                "insufficient_scope",
                _("This token's scope is %(scope)s; this needs %(needed)s.")
                % {"scope": api_token.scope, "needed": self.scope},
                scope=self.scope,
            )
        if self.scope == ApiToken.Scope.ADMIN and not selectors.user_is_manager(api_token.owner):
            raise ServiceError("insufficient_scope", _("The token's owner is no longer a manager."), scope=self.scope)
        return api_token


READ = TokenAuth(ApiToken.Scope.READ)
WRITE = TokenAuth(ApiToken.Scope.WRITE)
ADMIN = TokenAuth(ApiToken.Scope.ADMIN)
