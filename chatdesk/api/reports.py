"""/api/v1/reports: the handoff report's metrics and its CSV exports, computed by chatdesk.reports
(the same functions and filters as the managers' pages), in the token owner's time zone."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from django.http import HttpRequest, StreamingHttpResponse
from ninja import Query as QueryParams
from ninja import Router, Schema
from pydantic import Field

from chatdesk.accounts.services import user_time_zone
from chatdesk.api.auth import ADMIN
from chatdesk.api.common import ERRORS, token_user
from chatdesk.api.schemas import Text
from chatdesk.conversations.errors import ServiceError
from chatdesk.reports import export, metrics, params

router = Router(tags=["reports"])


class ReportQuery(Schema):
    """The report pages' filters (docs/reports.md); read again by chatdesk.reports.params."""

    date_from: dt.date | None = Field(None, alias="from", description="First day, in the token owner's time zone.")
    to: dt.date | None = Field(None, description="Last day (default today); at most 732 days in all.")
    topic: Text | None = Field(None, max_length=12, description="A topic id, or none.")
    agent: Text | None = Field(None, max_length=12, description="An agent's user id, or none.")
    engine: Text | None = Field(None, max_length=32, description="e.g. retrieval or external:my-bot.")


class ExportQuery(ReportQuery):
    metric: Text | None = Field(None, max_length=40, description="A drill-down metric, as the report's links use.")


def _filters(request: HttpRequest) -> tuple[metrics.ReportFilters, metrics.Drill]:
    try:
        f = params.filters_from(request.GET, user_time_zone(token_user(request)))
        return f, params.drill_from(request.GET)
    except metrics.ReportInputError as error:
        raise ServiceError("invalid_request", str(error)) from None


def jsonable(value: Any) -> Any:
    """The report's values as JSON: dates and times in ISO 8601, durations in seconds, keys as strings."""
    if isinstance(value, dict):
        return {str(jsonable(k)): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal):
        return float(value)
    return value


@router.get(
    "/metrics",
    auth=ADMIN,
    response={200: dict[str, Any], **ERRORS},
    summary="Report metrics",
    description="Every number of the handoff report (docs/reports.md) for the filters, as the report page "
    "shows them, with the previous period's headline (`previous`).",
)
def report_metrics(request: HttpRequest, query: QueryParams[ReportQuery]) -> dict[str, Any]:
    f, _drill = _filters(request)
    result: dict[str, Any] = jsonable(metrics.report(f))
    return result


CSV_RESPONSE = {"responses": {"200": {"description": "CSV, one row per item.", "content": {"text/csv": {}}}}}


def _csv(
    request: HttpRequest, kind: str, rows: Callable[[metrics.ReportFilters, metrics.Drill], export.CsvRows]
) -> StreamingHttpResponse:
    f, drill = _filters(request)
    response = StreamingHttpResponse(iter(rows(f, drill)), content_type="text/csv; charset=utf-8")
    name = f"{kind}-{f.first_day.isoformat()}-{f.last_day.isoformat()}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@router.get(
    "/conversations.csv",
    auth=ADMIN,
    response=ERRORS,
    summary="Conversations as CSV",
    description="The reports' conversations export: one row per conversation behind the filters.",
    openapi_extra=CSV_RESPONSE,
)
def export_conversations(request: HttpRequest, query: QueryParams[ExportQuery]) -> StreamingHttpResponse:
    return _csv(request, "conversations", lambda f, d: export.conversations_csv(metrics.conversations_behind(f, d)))


@router.get(
    "/drafts.csv",
    auth=ADMIN,
    response=ERRORS,
    summary="Drafts as CSV",
    description="The reports' drafts export: one row per draft in the range under the filters.",
    openapi_extra=CSV_RESPONSE,
)
def export_drafts(request: HttpRequest, query: QueryParams[ExportQuery]) -> StreamingHttpResponse:
    return _csv(request, "drafts", lambda f, d: export.drafts_csv(metrics.drafts_behind(f, d)))
