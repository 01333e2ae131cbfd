"""API tokens: create (the secret is returned once), revoke, and authenticate a request's bearer token."""

from __future__ import annotations

import hashlib
import secrets

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from chatdesk.api.models import ApiToken
from chatdesk.conversations import selectors
from chatdesk.conversations.errors import ServiceError

PREFIX = "cdk_"  # says what the secret is when it turns up in a log or a repository


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def token_create(*, manager: User, name: object, scope: object) -> tuple[ApiToken, str]:
    """A new token owned by `manager`, and its secret (shown once: only its hash is stored).

    Raises ServiceError `invalid_request` (`field` names it) for an empty or over-long name or an
    unknown scope, `forbidden` when `manager` is not a manager."""
    if not selectors.user_is_manager(manager):
        raise ServiceError("forbidden", _("Only managers can create API tokens."))
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > 80:
        raise ServiceError("invalid_request", _("Give the token a name of 1 to 80 characters."), field="name")
    if scope not in ApiToken.Scope.values:
        raise ServiceError("invalid_request", _("The scope must be read, write or admin."), field="scope")
    body = secrets.token_urlsafe(32)
    secret = f"{PREFIX}{body}"
    token = ApiToken.objects.create(
        name=name.strip(), owner=manager, scope=scope, prefix=secret[: len(PREFIX) + 8], key_hash=_hash(secret)
    )
    return token, secret


def token_revoke(*, token_id: int, manager: User) -> ApiToken:
    """Revoke a token (any manager may revoke any token); revoking twice keeps the first time."""
    if not selectors.user_is_manager(manager):
        raise ServiceError("forbidden", _("Only managers can revoke API tokens."))
    with transaction.atomic():
        token = ApiToken.objects.select_for_update().filter(pk=token_id).first()
        if token is None:
            raise ServiceError("not_found", _("That token does not exist."))
        if token.revoked_at is None:
            token.revoked_at, token.revoked_by = timezone.now(), manager
            token.save(update_fields=["revoked_at", "revoked_by"])
    return token


def token_authenticate(secret: str) -> ApiToken | None:
    """The live token with this secret, its use recorded (last_used_at); None when the secret is unknown,
    the token revoked, or its owner deactivated or no longer an agent or manager."""
    if not secret.startswith(PREFIX) or len(secret) > 200:
        return None
    token = ApiToken.objects.select_related("owner").filter(key_hash=_hash(secret), revoked_at__isnull=True).first()
    if token is None or not selectors.user_is_agent(token.owner):
        return None
    token.last_used_at = timezone.now()
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=token.last_used_at)
    return token


def tokens_for_managers() -> list[ApiToken]:
    """Every token, newest first, with its owner and who revoked it."""
    return list(ApiToken.objects.select_related("owner", "revoked_by"))
