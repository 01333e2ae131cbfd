"""Which canned replies an agent sees, and the one access check for changing one."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import Http404
from django.utils.translation import gettext

from chatdesk.canned.models import CannedReply
from chatdesk.conversations.selectors import user_is_manager


def canned_replies_for(*, user: User) -> QuerySet[CannedReply]:
    """The agent's personal replies and the shared ones, by shortcut (personal first on a tie)."""
    return CannedReply.objects.filter(Q(owner=user) | Q(owner__isnull=True)).order_by("shortcut", "owner_id", "pk")


def canned_reply_may_change(*, user: User, reply: CannedReply) -> bool:
    """Personal replies: their owner only. Shared replies: managers only."""
    return user_is_manager(user) if reply.owner_id is None else reply.owner_id == user.pk


def canned_reply_access(*, user: User, reply_id: int) -> CannedReply:
    """The reply `user` may change. Another agent's personal reply does not exist for them (404); a
    shared one is refused to an agent who is not a manager (403, saying why)."""
    reply = canned_replies_for(user=user).filter(pk=reply_id).first()
    if reply is None:
        raise Http404("No such canned reply.")
    if not canned_reply_may_change(user=user, reply=reply):
        raise PermissionDenied(gettext("Only managers can change shared canned replies."))
    return reply


def canned_replies_data(*, user: User) -> list[dict[str, Any]]:
    """What the reply box's `/` search needs, for json_script: shortcut, text, shared."""
    return [
        {"id": reply.pk, "shortcut": reply.shortcut, "text": reply.text, "shared": reply.owner_id is None}
        for reply in canned_replies_for(user=user)
    ]
