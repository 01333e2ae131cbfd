"""Reads for the webhooks pages."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet

from chatdesk.webhooks.models import Delivery, Endpoint


def endpoints_with_counts() -> QuerySet[Endpoint]:
    """Every endpoint, oldest first, with `delivered`, `failed` and `pending` delivery counts."""
    return Endpoint.objects.annotate(
        delivered=Count("deliveries", filter=Q(deliveries__status=Delivery.Status.SUCCEEDED)),
        failed=Count("deliveries", filter=Q(deliveries__status=Delivery.Status.FAILED)),
        pending=Count("deliveries", filter=Q(deliveries__status=Delivery.Status.PENDING)),
    )


def endpoints_disabled_by_desk() -> QuerySet[Endpoint]:
    """Endpoints the desk turned off after repeated failures that no manager has dealt with yet."""
    return Endpoint.objects.filter(active=False).exclude(disabled_reason="")


def endpoint_deliveries(endpoint: Endpoint) -> QuerySet[Delivery]:
    """The endpoint's delivery log, newest first, each with its attempts."""
    return endpoint.deliveries.select_related("replay_of", "replayed_by").prefetch_related("attempt_log")
