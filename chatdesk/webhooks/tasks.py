"""Celery interface to webhooks: tasks take ids and call the services. Deliveries go to the `webhooks`
queue (never `drafts`), the periodic sweep to the default `celery` queue (CELERY_TASK_ROUTES)."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from chatdesk.webhooks import services


@shared_task(
    name="chatdesk.webhooks.tasks.webhook_deliver",
    soft_time_limit=settings.WEBHOOK_TASK_SOFT_TIME_LIMIT,
    time_limit=settings.WEBHOOK_TASK_TIME_LIMIT,
)
def webhook_deliver(delivery_id: int) -> None:
    """Send delivery `delivery_id` once if it is pending and due (duplicates find nothing to claim)."""
    services.delivery_attempt(delivery_id=delivery_id)


@shared_task(name="chatdesk.webhooks.tasks.webhooks_requeue_due")
def webhooks_requeue_due() -> int:
    """Periodic (celery beat): queue the deliveries whose next attempt is due."""
    return services.deliveries_requeue_due(timezone.now())
