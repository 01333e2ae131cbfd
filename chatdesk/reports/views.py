from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from chatdesk.conversations import selectors
from chatdesk.reports.selectors import conversation_outcomes as outcomes


@login_required
def conversation_outcomes(request: HttpRequest) -> HttpResponse:
    """Managers' first report: every conversation and how it went."""
    if not selectors.user_is_manager(request.user):
        raise PermissionDenied("Only managers can see reports.")
    page = Paginator(outcomes(), 50).get_page(request.GET.get("page"))
    return render(request, "reports/conversations.html", {"page": page})
