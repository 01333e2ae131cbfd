"""The agents' dashboard pages. The queue and conversation pages render a shell whose live data comes
over the websockets; the inbox is a plain searchable list."""

import uuid
from datetime import date

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext
from django.views.decorators.http import require_POST

from chatdesk.canned import selectors as canned_selectors
from chatdesk.conversations import notes, selectors, services
from chatdesk.conversations.errors import ServiceError
from chatdesk.conversations.models import Conversation, Team


@login_required
def queue(request: HttpRequest) -> HttpResponse:
    selectors.agent_or_refuse(request.user)
    context = {"reasons": Conversation.EscalationReason.choices, "topics": selectors.topic_names()}
    return render(request, "agents/queue.html", context)


@login_required
def conversation(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    agent = selectors.agent_or_refuse(request.user)
    found = selectors.conversation_for_agent(user=agent, public_id=public_id)
    if found is None:
        raise Http404("No such conversation.")
    context = {
        "conversation": found,
        "canned_replies": canned_selectors.canned_replies_data(user=agent),  # the reply box's `/` search
        "max_message_chars": settings.CHAT_MAX_MESSAGE_CHARS,
        "earlier_conversations": selectors.customer_earlier_conversations(found),
        "transfer_agents": selectors.agents_to_transfer_to(exclude=agent.pk),
        "transfer_teams": Team.objects.all(),
    }
    return render(request, "agents/conversation.html", context)


def _date(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


@login_required
def inbox(request: HttpRequest) -> HttpResponse:
    """All / Mine / Unassigned / Closed conversations, searchable by words, agent, topic and dates, so
    an answered or closed conversation can be found again; each can be assigned to a named agent."""
    agent = selectors.agent_or_refuse(request.user)
    view = request.GET.get("view", "all")
    view = view if view in selectors.INBOX_VIEWS else "all"
    search = {
        "text": request.GET.get("q", "").strip()[:200],
        "agent": request.GET.get("agent", "").strip()[:150],
        "topic": request.GET.get("topic", "").strip()[:80],
        "tag": request.GET.get("tag", "").strip()[:80],
        "since": _date(request.GET.get("since")),
        "until": _date(request.GET.get("until")),
    }
    found = selectors.inbox(user=agent, view=view, **search)  # type: ignore[arg-type]
    page = Paginator(found, 50).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "page": page,
        "view": view,
        "views": selectors.INBOX_VIEWS,
        "search": search,
        "query": query.urlencode(),
        "agents": selectors.agents_to_transfer_to(exclude=None),
        "topics": selectors.topic_names(),
        "tag_suggestions": notes.tag_names(),
    }
    return render(request, "agents/inbox.html", context)


@login_required
@require_POST
def inbox_assign(request: HttpRequest) -> HttpResponse:
    """Assign a conversation to a named agent from the inbox (a transfer, recorded as such)."""
    agent = selectors.agent_or_refuse(request.user)
    try:
        public_id = uuid.UUID(request.POST.get("conversation", ""))
    except ValueError:
        raise Http404("No such conversation.") from None
    if selectors.conversation_for_agent(user=agent, public_id=public_id) is None:
        raise Http404("No such conversation.")
    to_agent = request.POST.get("to_agent", "")
    try:
        services.conversation_transfer(public_id=public_id, agent=agent, to_agent=to_agent)
    except ServiceError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, gettext("Assigned."))
    back = request.POST.get("next", "")
    # Back to the list the agent was on; never anywhere else.
    return redirect(back if back.startswith("/agents/inbox/") and "//" not in back else "agents:inbox")


@login_required
def next_conversation(request: HttpRequest) -> HttpResponse:
    """The "next conversation" shortcut: on to the top of the agent's queue after `from` (the
    conversation they are on), or back to the queue when nothing else waits."""
    agent = selectors.agent_or_refuse(request.user)
    try:
        after = uuid.UUID(request.GET.get("from", ""))
    except ValueError:
        after = None
    found = selectors.agent_next_conversation(agent=agent, after=after)
    if found is None:
        messages.info(request, gettext("Nothing else is waiting for you."))
        return redirect("agents:home")
    return redirect("agents:conversation", public_id=found.public_id)
