"""Where the metrics hear what happened: Django's post_save of the conversation models and Celery's task
signals, so the services stay free of metrics code. Each Django receiver counts once the transaction
commits: a rolled-back change is not counted.

One change sends no signal (an UPDATE): services.draft_fail calls `draft_failed` itself.
"""

from __future__ import annotations

from typing import Any

from celery.signals import task_failure, task_retry
from django.db import transaction
from django.db.models.signals import post_save

from chatdesk.conversations.models import AgentAction, Draft, EscalationFlag
from chatdesk.monitoring import metrics

# What drafting can end in when the worker stores its result (services.draft_complete, a full save).
FINISHED = (Draft.Status.READY, Draft.Status.AUTO_SENT, Draft.Status.SUPERSEDED, Draft.Status.DISCARDED)
REVIEWS = {
    AgentAction.Kind.APPROVE: "approved",
    AgentAction.Kind.EDIT: "edited",
    AgentAction.Kind.REJECT: "rejected",
}


def _draft_saved(instance: Draft, created: bool, update_fields: Any = None, **_: Any) -> None:
    if created or update_fields is not None or instance.ready_at is None or instance.status not in FINISHED:
        return
    total_s = instance.timings.get("total_s") if isinstance(instance.timings, dict) else None
    engine, outcome, waited = instance.engine, str(instance.status), instance.draft_seconds
    transaction.on_commit(
        lambda: metrics.draft_finished(engine=engine, outcome=outcome, time_to_draft_s=waited, engine_s=total_s)
    )


def draft_failed(*, draft_id: int, error_code: str) -> None:
    """Count draft `draft_id` as failed once the caller's transaction commits (one query for its engine)."""
    engine = Draft.objects.filter(pk=draft_id).values_list("engine", flat=True).first() or ""
    transaction.on_commit(lambda: metrics.draft_failed(engine=engine, error_code=error_code))


def _action_saved(instance: AgentAction, created: bool, **_: Any) -> None:
    decision = REVIEWS.get(AgentAction.Kind(instance.kind)) if created else None
    if decision is not None:
        transaction.on_commit(lambda: metrics.DRAFT_REVIEWS.labels(decision=decision).inc())


def _flag_saved(instance: EscalationFlag, created: bool, **_: Any) -> None:
    if created:
        reason = str(instance.reason)
        transaction.on_commit(lambda: metrics.ESCALATIONS.labels(reason=reason).inc())


def _task_failed(sender: Any = None, **_: Any) -> None:
    metrics.CELERY_TASK_FAILURES.labels(task=getattr(sender, "name", "unknown")).inc()


def _task_retried(sender: Any = None, **_: Any) -> None:
    metrics.CELERY_TASK_RETRIES.labels(task=getattr(sender, "name", "unknown")).inc()


def connect() -> None:
    post_save.connect(_draft_saved, sender=Draft, dispatch_uid="chatdesk.metrics.draft")
    post_save.connect(_action_saved, sender=AgentAction, dispatch_uid="chatdesk.metrics.action")
    post_save.connect(_flag_saved, sender=EscalationFlag, dispatch_uid="chatdesk.metrics.flag")
    task_failure.connect(_task_failed, dispatch_uid="chatdesk.metrics.task_failure", weak=False)
    task_retry.connect(_task_retried, dispatch_uid="chatdesk.metrics.task_retry", weak=False)
