"""Celery interface to drafting: tasks take ids, and call the service of the same name."""

from __future__ import annotations

from typing import Any

from celery import shared_task
from django.utils import timezone

from chatdesk.conversations import assignment, external_drafts, services


@shared_task(name="chatdesk.conversations.tasks.draft_reply", bind=True, acks_late=True, reject_on_worker_lost=True)
def draft_reply(self: Any, draft_id: int) -> None:
    """Write draft `draft_id` if it is still wanted (routed to the `drafts` queue).

    Acknowledged after it ran, so a worker lost mid-draft hands it to another: the redelivery keeps
    the task's id, which lets it claim the draft its first delivery had started (services.draft_generate
    counts each start and gives up after DRAFT_MAX_ATTEMPTS); a duplicate finds nothing to claim.
    """
    services.draft_generate(draft_id=draft_id, task_id=self.request.id or "")


@shared_task(name="chatdesk.conversations.tasks.handoff_summary_generate")
def handoff_summary_generate(conversation_id: int, seq: int) -> bool:
    """Have the engine's model write the handoff summary (routed to the `drafts` queue, where the model is)."""
    return services.handoff_summary_generate(conversation_id=conversation_id, seq=seq)


@shared_task(name="chatdesk.conversations.tasks.requeue_stale_drafts")
def requeue_stale_drafts() -> int:
    """Periodic (celery beat): queue lost drafts again, fail the ones stuck too long."""
    return services.drafts_requeue_stale()


@shared_task(name="chatdesk.conversations.tasks.sla_sweep")
def sla_sweep() -> int:
    """Periodic (celery beat): flag and announce conversations waiting longer than the service levels."""
    return services.sla_sweep(timezone.now())


@shared_task(name="chatdesk.conversations.tasks.assign_waiting")
def assign_waiting() -> int:
    """Periodic (celery beat): hand out escalated conversations whose agent went offline, or that waited
    for someone to come online."""
    return assignment.assign_waiting()


@shared_task(name="chatdesk.conversations.tasks.external_drafts_time_out")
def external_drafts_time_out() -> int:
    """Periodic (celery beat, DRAFTS_SOURCE=external): escalate conversations whose draft never arrived."""
    return external_drafts.external_drafts_time_out(timezone.now())
