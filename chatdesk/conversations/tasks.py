"""Celery interface to drafting: tasks take ids, and call the service of the same name."""

from __future__ import annotations

from celery import shared_task

from chatdesk.conversations import services


@shared_task(name="chatdesk.conversations.tasks.draft_reply", acks_late=True, reject_on_worker_lost=True)
def draft_reply(draft_id: int) -> None:
    """Write draft `draft_id` if it is still wanted (routed to the `drafts` queue).

    Acknowledged after it ran, so a worker lost mid-draft hands it to another; the service's
    conditional claim makes a redelivery harmless.
    """
    services.draft_generate(draft_id=draft_id)


@shared_task(name="chatdesk.conversations.tasks.requeue_stale_drafts")
def requeue_stale_drafts() -> int:
    """Periodic (celery beat): queue lost drafts again, fail the ones stuck too long."""
    return services.drafts_requeue_stale()
