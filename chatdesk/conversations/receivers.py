"""Django auth's events that end agents' access, turned into realtime.access_changed.

Logging out, deactivating or deleting a user, changing their password and taking them out of the
agents' groups happen in Django's own views and admin, so its signals are the place to hear them;
each receiver only announces the change, and the sockets decide (agents/consumers.py).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.contrib.auth.signals import user_logged_out
from django.db.models.signals import m2m_changed, post_delete, post_save

from chatdesk.conversations import realtime


def _logged_out(request: Any = None, **_: Any) -> None:
    session = getattr(request, "session", None)
    if session is not None and session.session_key:
        # Django flushes the session only after this signal: end it in the store first, so the
        # sockets that check it on hearing the announcement find it gone.
        session_key = session.session_key
        session.delete(session_key)
        realtime.access_changed(session_key=session_key)


def _user_changed(instance: User, **_: Any) -> None:
    realtime.access_changed(user_id=instance.pk)


def _groups_changed(instance: Any, action: str, reverse: bool, pk_set: set[int] | None, **_: Any) -> None:
    if not reverse:  # user.groups.remove(...) or .clear(): instance is the user
        if action in ("post_remove", "post_clear"):
            realtime.access_changed(user_id=instance.pk)
    elif action == "pre_clear":  # group.user_set.clear(): remember who was in it
        instance._chatdesk_members_cleared = set(instance.user_set.values_list("pk", flat=True))
    elif action in ("post_remove", "post_clear"):  # group.user_set.remove(...): pk_set holds the users
        removed = pk_set if action == "post_remove" else instance.__dict__.pop("_chatdesk_members_cleared", set())
        for user_id in removed or ():
            realtime.access_changed(user_id=user_id)


def connect() -> None:
    user_logged_out.connect(_logged_out, dispatch_uid="chatdesk.access.logged_out")
    post_save.connect(_user_changed, sender=User, dispatch_uid="chatdesk.access.user_saved")
    post_delete.connect(_user_changed, sender=User, dispatch_uid="chatdesk.access.user_deleted")
    m2m_changed.connect(_groups_changed, sender=User.groups.through, dispatch_uid="chatdesk.access.groups")
