"""The agents' dashboard pages. They render a shell; live data comes over the websockets."""

import uuid

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from chatdesk.conversations import selectors
from chatdesk.conversations.models import Conversation


@login_required
def queue(request: HttpRequest) -> HttpResponse:
    if not selectors.user_is_agent(request.user):
        raise PermissionDenied("Only agents and managers can use the dashboard.")
    context = {"reasons": Conversation.EscalationReason.choices, "topics": selectors.topic_names()}
    return render(request, "agents/queue.html", context)


@login_required
def conversation(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    if not selectors.user_is_agent(request.user):
        raise PermissionDenied("Only agents and managers can use the dashboard.")
    found = selectors.conversation_for_agent(user=request.user, public_id=public_id)
    if found is None:
        raise Http404("No such conversation.")
    return render(request, "agents/conversation.html", {"conversation": found})
