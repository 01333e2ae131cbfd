"""Managers' page for API tokens: create (the secret is shown once), list (prefix only), revoke."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from chatdesk.api import tokens
from chatdesk.api.models import ApiToken
from chatdesk.conversations import selectors
from chatdesk.conversations.errors import ServiceError

# What the 403 page says to an agent who is not a manager.
REFUSED = gettext_lazy("Only managers can manage API tokens.")


@login_required
def token_list(request: HttpRequest) -> HttpResponse:
    """Every token; a POST creates one and shows its secret on this response only (never stored)."""
    manager = selectors.manager_or_refuse(request.user, reason=REFUSED)
    secret, created, status = "", None, 200
    if request.method == "POST":
        try:
            created, secret = tokens.token_create(
                manager=manager, name=request.POST.get("name", ""), scope=request.POST.get("scope", "")
            )
        except ServiceError as error:
            messages.error(request, error.message)
            status = 422
    response = render(
        request,
        "api/tokens.html",
        {
            "tokens": tokens.tokens_for_managers(),
            "scopes": ApiToken.Scope.choices,
            "secret": secret,
            "created": created,
        },
        status=status,
    )
    add_never_cache_headers(response)  # the secret must not stay in a cache
    return response


@login_required
@require_POST
def token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    manager = selectors.manager_or_refuse(request.user, reason=REFUSED)
    try:
        token = tokens.token_revoke(token_id=token_id, manager=manager)
    except ServiceError as error:
        raise Http404(error.message) from None
    messages.success(request, _("Revoked %(token)s. Requests with it are refused from now on.") % {"token": token})
    return redirect("api:tokens")
