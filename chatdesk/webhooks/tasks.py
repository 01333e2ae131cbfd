"""Celery interface to webhooks (the light `celery` queue, never `drafts`): tasks take ids, call services."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from chatdesk.webhooks import services


@shared_task(name="chatdesk.webhooks.tasks.webhook_deliver")
def webhook_deliver(delivery_id: int) -> None:
    """Send delivery `delivery_id` once if it is pending and due (duplicates find nothing to claim)."""
    services.delivery_attempt(delivery_id=delivery_id)


@shared_task(name="chatdesk.webhooks.tasks.webhooks_requeue_due")
def webhooks_requeue_due() -> int:
    """Periodic (celery beat): queue the deliveries whose next attempt is due."""
    return services.deliveries_requeue_due(timezone.now())
