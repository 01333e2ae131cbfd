"""Celery interface to drafting: tasks take ids, and call the service of the same name."""

from __future__ import annotations

from celery import shared_task

from chatdesk.conversations import services


@shared_task(name="chatdesk.conversations.tasks.draft_reply")
def draft_reply(draft_id: int) -> None:
    """Write draft `draft_id` if it is still wanted (routed to the `drafts` queue)."""
    services.draft_generate(draft_id=draft_id)


@shared_task(name="chatdesk.conversations.tasks.requeue_stale_drafts")
def requeue_stale_drafts() -> int:
    """Periodic (celery beat): queue lost drafts again, fail the ones stuck too long."""
    return services.drafts_requeue_stale()
