"""Managers' pages for what the desk knows."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from chatdesk.conversations import selectors
from chatdesk.knowledge.models import OutOfScopeExample
from chatdesk.knowledge.services import out_of_scope_import

RECENT = 50
MAX_IMPORT_CHARS = 200_000


@login_required
def out_of_scope_examples(request: HttpRequest) -> HttpResponse:
    """ "We don't answer this": the latest examples, and a form to import a list (one question per line)."""
    if not selectors.user_is_manager(request.user):
        raise PermissionDenied("Only managers can import questions the desk does not answer.")
    if request.method == "POST":
        text = request.POST.get("questions", "")
        if len(text) > MAX_IMPORT_CHARS:
            messages.error(request, f"Import at most {MAX_IMPORT_CHARS:,} characters at a time.")
        else:
            assert isinstance(request.user, User)
            lines = text.splitlines()
            added = out_of_scope_import(lines, by=request.user)
            given = sum(1 for line in lines if line.strip())
            messages.success(request, f"Imported {added} of {given} questions; the others were stored already.")
        return redirect("knowledge:out-of-scope")
    recent = OutOfScopeExample.objects.select_related("marked_by").order_by("-created_at")[:RECENT]
    return render(
        request,
        "knowledge/out_of_scope.html",
        {"examples": recent, "total": OutOfScopeExample.objects.count(), "limit": MAX_IMPORT_CHARS},
    )
