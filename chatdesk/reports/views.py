from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from chatdesk.conversations import selectors
from chatdesk.reports.selectors import conversation_outcomes as outcomes
from chatdesk.reports.selectors import escalation_reasons


@login_required
def conversation_outcomes(request: HttpRequest) -> HttpResponse:
    """Managers' first report: every conversation and how it went."""
    selectors.manager_or_refuse(request.user)
    page = Paginator(outcomes(), 50).get_page(request.GET.get("page"))
    reasons = escalation_reasons([c.pk for c in page.object_list])
    for conversation in page.object_list:
        conversation.reason_labels = reasons.get(conversation.pk, [])  # type: ignore[attr-defined]
    return render(request, "reports/conversations.html", {"page": page})
