"""The notice managers see on every page while the desk has disabled a failing webhook endpoint."""

from __future__ import annotations

from django.http import HttpRequest

from chatdesk.conversations import selectors
from chatdesk.webhooks.selectors import endpoints_disabled_by_desk


def webhook_notices(request: HttpRequest) -> dict[str, object]:
    """`webhooks_disabled`: the endpoints disabled after failures, for managers only (empty otherwise)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not selectors.user_is_manager(user):
        return {"webhooks_disabled": []}
    return {"webhooks_disabled": list(endpoints_disabled_by_desk()[:5])}
