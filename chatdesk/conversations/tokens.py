"""Conversation tokens: what a customer's browser holds instead of a raw id."""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.conf import settings
from django.core import signing

_SALT = "chatdesk.conversation-token"


def conversation_token(public_id: uuid.UUID) -> str:
    """A signed, unguessable token naming one conversation (its random public id, signed and timestamped)."""
    return signing.TimestampSigner(salt=_SALT).sign(public_id.hex)


def public_id_from_token(token: str) -> uuid.UUID | None:
    """The conversation a token names, or None if it is forged, malformed or older than CHAT_TOKEN_MAX_AGE_DAYS."""
    try:
        value = signing.TimestampSigner(salt=_SALT).unsign(
            token, max_age=timedelta(days=settings.CHAT_TOKEN_MAX_AGE_DAYS)
        )
        return uuid.UUID(hex=value)
    except (signing.BadSignature, ValueError, TypeError):
        return None
