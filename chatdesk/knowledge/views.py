"""Managers' pages for what the desk knows."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext, gettext_lazy
from django.views.decorators.http import require_POST

from chatdesk.conversations import selectors
from chatdesk.knowledge import selectors as knowledge_selectors
from chatdesk.knowledge.models import ApprovedReply, OutOfScopeExample
from chatdesk.knowledge.services import memory_review, out_of_scope_import

# What the 403 page says to an agent who is not a manager.
REFUSED = gettext_lazy("Only managers can change what the desk knows.")

RECENT = 50
MAX_IMPORT_CHARS = 200_000


@login_required
def out_of_scope_examples(request: HttpRequest) -> HttpResponse:
    """ "We don't answer this": the latest examples, and a form to import a list (one question per line)."""
    manager = selectors.manager_or_refuse(request.user, reason=REFUSED)
    if request.method == "POST":
        text = request.POST.get("questions", "")
        if len(text) > MAX_IMPORT_CHARS:
            messages.error(
                request, gettext("Import at most %(limit)s characters at a time.") % {"limit": f"{MAX_IMPORT_CHARS:,}"}
            )
        else:
            lines = text.splitlines()
            added = out_of_scope_import(lines, by=manager)
            given = sum(1 for line in lines if line.strip())
            messages.success(
                request,
                gettext("Imported %(added)s of %(given)s questions; the others were stored already.")
                % {"added": added, "given": given},
            )
        return redirect("knowledge:out-of-scope")
    recent = OutOfScopeExample.objects.select_related("marked_by").order_by("-created_at")[:RECENT]
    return render(
        request,
        "knowledge/out_of_scope.html",
        {"examples": recent, "total": OutOfScopeExample.objects.count(), "limit": MAX_IMPORT_CHARS},
    )


@login_required
def reply_memory(request: HttpRequest) -> HttpResponse:
    """What the reply memory learned recently, newest first, per topic and status, with who taught it."""
    selectors.manager_or_refuse(request.user, reason=REFUSED)
    topic, status = request.GET.get("topic", ""), request.GET.get("status", "")
    page = Paginator(knowledge_selectors.reply_memory(topic=topic, status=status), RECENT).get_page(
        request.GET.get("page")
    )
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "page": page,
        "topic": topic,
        "status": status,
        "statuses": ApprovedReply.Status.choices,
        "topics": selectors.topic_names(),
        "pending": knowledge_selectors.reply_memory_pending(),
        "query": query.urlencode(),
    }
    return render(request, "knowledge/reply_memory.html", context)


@login_required
@require_POST
def reply_memory_review(request: HttpRequest, reply_id: int) -> HttpResponse:
    """Approve, edit or remove one remembered reply; back to the list the manager was on."""
    manager = selectors.manager_or_refuse(request.user, reason=REFUSED)
    try:
        memory_review(
            reply_id=reply_id,
            manager=manager,
            action=request.POST.get("action", ""),
            reply_text=request.POST.get("reply_text", ""),
        )
    except ApprovedReply.DoesNotExist:
        raise Http404("That entry is gone.") from None
    except ValueError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, gettext("Saved. Drafts use the memory as it is now."))
    back = request.POST.get("next", "")
    return redirect(back if back.startswith("/knowledge/memory/") and "//" not in back else "knowledge:memory")
