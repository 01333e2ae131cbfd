"""What every template may ask about the signed-in user's role; the answers come from selectors only."""

from __future__ import annotations

from django.http import HttpRequest

from chatdesk.conversations import selectors


def roles(request: HttpRequest) -> dict[str, bool]:
    """`is_agent` (may work conversations) and `is_manager` (may also read reports)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"is_agent": False, "is_manager": False}
    return {"is_agent": selectors.user_is_agent(user), "is_manager": selectors.user_is_manager(user)}
