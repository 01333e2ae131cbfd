"""Managers' reports: the handoff report, the conversations behind each number, a read-only transcript,
CSV exports and the manager's time zone. Every view is for managers only (selectors.manager_or_refuse)."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.handlers.asgi import ASGIRequest
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseBase, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext, gettext_lazy
from django.views.decorators.http import require_POST

from chatdesk.accounts.services import TimeZoneError, time_zone_names, user_time_zone, user_time_zone_set
from chatdesk.conversations import notes, selectors
from chatdesk.conversations.models import Conversation
from chatdesk.reports import export, pages, params
from chatdesk.reports.metrics import (
    Drill,
    ReportFilters,
    ReportInputError,
    conversations_behind,
    drafts_behind,
    report_queries,
)
from chatdesk.reports.selectors import conversation_outcomes, escalation_reasons, filter_choices, transcript

# What the 403 page says to an agent who is not a manager.
REFUSED = gettext_lazy("Only managers can see reports.")


def _bad_request(request: HttpRequest, error: ReportInputError) -> HttpResponse:
    return render(request, "reports/bad_request.html", {"error": str(error)}, status=400)


@login_required
def report(request: HttpRequest) -> HttpResponse:
    """The handoff report for a date range in the manager's time zone, with filters."""
    manager = selectors.manager_or_refuse(request.user, reason=REFUSED)
    tz = user_time_zone(manager)
    try:
        f = params.filters_from(request.GET, tz)
    except ReportInputError as error:
        return _bad_request(request, error)
    content = pages.page(f)
    charts = content.pop("charts")
    return render(
        request,
        "reports/report.html",
        {
            "f": f,
            "period": pages.period_label(f),
            "previous_period": pages.previous_label(f),
            "charts": charts,
            "charts_json": {key: {k: v for k, v in chart.items() if k != "rows"} for key, chart in charts.items()},
            "choices": filter_choices(content["tables"]["outcomes_by_engine"].rows),
            "time_zone": str(tz),
            "time_zones": time_zone_names(),
            "here": request.get_full_path(),
            "query": params.query_string(request.GET),
            **content,
        },
    )


@login_required
def conversations(request: HttpRequest) -> HttpResponse:
    """The conversations behind one number of the report (all conversations in the range by default)."""
    manager = selectors.manager_or_refuse(request.user, reason=REFUSED)
    try:
        f = params.filters_from(request.GET, user_time_zone(manager))
        drill = params.drill_from(request.GET)
        tag, text = params.search_from(request.GET)
    except ReportInputError as error:
        return _bad_request(request, error)
    with report_queries():
        # Count and page the bare rows, then read the details of this page's 50 only.
        behind = selectors.conversations_matching(conversations_behind(f, drill), tag=tag, text=text)
        found = behind.order_by("-first_customer_at", "-pk").values_list("pk", flat=True)
        page = Paginator(found, 50).get_page(request.GET.get("page"))
        ids = list(page.object_list)
        details = {c.pk: c for c in conversation_outcomes(Conversation.objects.filter(pk__in=ids))}
        reasons = escalation_reasons(ids)
    rows = [details[pk] for pk in ids]
    for conversation in rows:
        conversation.reason_labels = reasons.get(conversation.pk, [])  # type: ignore[attr-defined]
    return render(
        request,
        "reports/conversations.html",
        {
            "page": page,
            "rows": rows,
            "f": f,
            "drill": drill,
            "description": pages.drill_description(f, drill),
            "period": pages.period_label(f),
            "query": params.query_string(request.GET),
            "report_query": params.query_string(request.GET, drop=("page", *params.DRILL_KEYS, *params.SEARCH_KEYS)),
            "search_tag": tag,
            "search_text": text,
            "kept_params": [
                (key, value)
                for key, value in request.GET.items()
                if key in (*params.FILTER_KEYS, *params.DRILL_KEYS) and value
            ],
            "tag_suggestions": notes.tag_names(),
        },
    )


@login_required
def conversation(request: HttpRequest, public_id: str) -> HttpResponse:
    """One conversation's transcript with its draft history, read-only."""
    selectors.manager_or_refuse(request.user, reason=REFUSED)
    found = get_object_or_404(Conversation, public_id=public_id)
    back = request.GET.get("back", "")
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        back = ""
    return render(request, "reports/transcript.html", {**transcript(found), "back": back})


def _csv_response(request: HttpRequest, rows: export.CsvRows, name: str) -> StreamingHttpResponse:
    # Under ASGI a sync iterator would be read whole before sending; give each server its own kind.
    content = rows.chunks() if isinstance(request, ASGIRequest) else iter(rows)
    response = StreamingHttpResponse(content, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@login_required
def export_conversations(request: HttpRequest) -> HttpResponseBase:
    """One CSV row per conversation behind the same filters (and drill-down) as the page."""
    selectors.manager_or_refuse(request.user)
    try:
        tag, text = params.search_from(request.GET)
    except ReportInputError as error:
        return _bad_request(request, error)
    return _export(
        request,
        "conversations",
        lambda f, drill: export.conversations_csv(
            selectors.conversations_matching(conversations_behind(f, drill), tag=tag, text=text)
        ),
    )


@login_required
def export_drafts(request: HttpRequest) -> HttpResponseBase:
    """One CSV row per draft in the range under the same filters (narrowed like the drafts drill-down)."""
    return _export(request, "drafts", lambda f, drill: export.drafts_csv(drafts_behind(f, drill)))


def _export(
    request: HttpRequest, kind: str, rows: Callable[[ReportFilters, Drill], export.CsvRows]
) -> HttpResponseBase:
    manager = selectors.manager_or_refuse(request.user, reason=REFUSED)
    try:
        f = params.filters_from(request.GET, user_time_zone(manager))
        drill = params.drill_from(request.GET)
    except ReportInputError as error:
        return _bad_request(request, error)
    name = f"{kind}-{f.first_day.isoformat()}-{f.last_day.isoformat()}.csv"
    return _csv_response(request, rows(f, drill), name)


@login_required
@require_POST
def time_zone(request: HttpRequest) -> HttpResponse:
    """Set the manager's time zone for reports, then go back to the report."""
    manager = selectors.manager_or_refuse(request.user, reason=REFUSED)
    try:
        zone = user_time_zone_set(user=manager, name=request.POST.get("time_zone", ""))
    except TimeZoneError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, gettext("Reports now use the time zone %(zone)s.") % {"zone": zone})
    back = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        back = reverse("reports:report")
    return redirect(back)
