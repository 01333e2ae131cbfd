"""Creating, changing and deleting canned replies. Agents keep personal ones; managers also keep the
shared ones every agent sees. Every refusal is a ServiceError whose message says why."""

from __future__ import annotations

import re

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils.translation import gettext

from chatdesk.canned.models import CannedReply
from chatdesk.canned.selectors import canned_reply_may_change
from chatdesk.conversations.errors import ServiceError
from chatdesk.conversations.inbound import refuse_too_long
from chatdesk.conversations.selectors import user_is_manager

SHORTCUT_PATTERN = re.compile(r"^[\w-]{1,40}$")


def _checked(shortcut: str, text: str) -> tuple[str, str]:
    shortcut = shortcut.strip().lstrip("/")
    text = text.strip()
    if not SHORTCUT_PATTERN.match(shortcut):
        raise ServiceError(
            "invalid_shortcut",
            gettext("A shortcut is 1 to 40 letters, digits, - or _ (no spaces)."),
            field="shortcut",
        )
    if not text:
        raise ServiceError("invalid_request", gettext("Write the reply's text."), field="text")
    refuse_too_long(
        text, gettext("A reply can be at most %(limit)s characters; this one has %(length)s."), field="text"
    )
    return shortcut, text


def _refuse_unless_may_change(*, by: User, reply: CannedReply) -> None:
    if not canned_reply_may_change(user=by, reply=reply):
        if reply.owner_id is None:
            raise ServiceError("forbidden", gettext("Only managers can change shared canned replies."))
        raise ServiceError("forbidden", gettext("Only its owner can change a personal canned reply."))


def _saved(reply: CannedReply) -> CannedReply:
    try:
        with transaction.atomic():
            reply.save()
    except IntegrityError:
        raise ServiceError(
            "duplicate_shortcut",
            gettext("/%(shortcut)s is already taken; pick another shortcut.") % {"shortcut": reply.shortcut},
            field="shortcut",
        ) from None
    return reply


def canned_reply_create(*, by: User, shortcut: str, text: str, shared: bool) -> CannedReply:
    """A new personal reply of `by`, or a shared one (managers only)."""
    shortcut, text = _checked(shortcut, text)
    if shared and not user_is_manager(by):
        raise ServiceError("forbidden", gettext("Only managers can create shared canned replies."))
    return _saved(CannedReply(owner=None if shared else by, shortcut=shortcut, text=text, created_by=by))


def canned_reply_update(*, by: User, reply: CannedReply, shortcut: str, text: str) -> CannedReply:
    """Change a reply's shortcut and text (its owner, or a manager for a shared one)."""
    _refuse_unless_may_change(by=by, reply=reply)
    before = reply.shortcut, reply.text
    reply.shortcut, reply.text = _checked(shortcut, text)
    try:
        return _saved(reply)
    except ServiceError:
        reply.shortcut, reply.text = before  # the caller's object still says what is stored
        raise


def canned_reply_delete(*, by: User, reply: CannedReply) -> None:
    """Delete a reply (its owner, or a manager for a shared one)."""
    _refuse_unless_may_change(by=by, reply=reply)
    reply.delete()
