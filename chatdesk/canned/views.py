"""The canned replies page (/agents/canned/): list, create, edit and delete. Thin: each view calls one
selector or service; a refusal is shown as the form's error."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext
from django.views.decorators.http import require_POST

from chatdesk.canned import selectors, services
from chatdesk.conversations.errors import ServiceError
from chatdesk.conversations.selectors import agent_or_refuse, user_is_manager


@login_required
def canned_list(request: HttpRequest) -> HttpResponse:
    """Every reply the agent can use, marked personal or shared; POST creates one."""
    agent = agent_or_refuse(request.user)
    values = {"shortcut": "", "text": "", "shared": False}
    error = None
    if request.method == "POST":
        values = {
            "shortcut": request.POST.get("shortcut", ""),
            "text": request.POST.get("text", ""),
            "shared": request.POST.get("shared") == "1",
        }
        try:
            reply = services.canned_reply_create(
                by=agent, shortcut=str(values["shortcut"]), text=str(values["text"]), shared=bool(values["shared"])
            )
        except ServiceError as refused:
            error = refused
        else:
            messages.success(request, gettext("Saved /%(shortcut)s.") % {"shortcut": reply.shortcut})
            return redirect("agents:canned:list")
    replies = [
        (reply, selectors.canned_reply_may_change(user=agent, reply=reply))
        for reply in selectors.canned_replies_for(user=agent)
    ]
    context = {
        "replies": replies,
        "values": values,
        "error": error,
        "can_share": user_is_manager(agent),
        "max_chars": settings.CHAT_MAX_MESSAGE_CHARS,
    }
    return render(request, "agents/canned.html", context, status=400 if error else 200)


@login_required
def canned_edit(request: HttpRequest, canned_id: int) -> HttpResponse:
    """Change one reply's shortcut and text (its owner; managers for shared ones)."""
    agent = agent_or_refuse(request.user)
    reply = selectors.canned_reply_access(user=agent, reply_id=canned_id)
    values = {"shortcut": reply.shortcut, "text": reply.text}
    error = None
    if request.method == "POST":
        values = {"shortcut": request.POST.get("shortcut", ""), "text": request.POST.get("text", "")}
        try:
            services.canned_reply_update(by=agent, reply=reply, shortcut=values["shortcut"], text=values["text"])
        except ServiceError as refused:
            error = refused
        else:
            messages.success(request, gettext("Saved /%(shortcut)s.") % {"shortcut": reply.shortcut})
            return redirect("agents:canned:list")
    context = {"reply": reply, "values": values, "error": error, "max_chars": settings.CHAT_MAX_MESSAGE_CHARS}
    return render(request, "agents/canned_edit.html", context, status=400 if error else 200)


@login_required
@require_POST
def canned_delete(request: HttpRequest, canned_id: int) -> HttpResponse:
    """Delete one reply (its owner; managers for shared ones), then back to the list."""
    agent = agent_or_refuse(request.user)
    reply = selectors.canned_reply_access(user=agent, reply_id=canned_id)
    shortcut = reply.shortcut
    services.canned_reply_delete(by=agent, reply=reply)
    messages.success(request, gettext("Deleted /%(shortcut)s.") % {"shortcut": shortcut})
    return redirect("agents:canned:list")
