"""Celery interface to learning: periodic training of the topic classifier, calibration of escalation, and
pruning the reply memory's change log."""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings

from chatdesk.knowledge.classification import TrainingError
from chatdesk.knowledge.memory import reply_memory_changes_prune
from chatdesk.knowledge.services import classifier_train_on_history, escalation_calibrate

log = logging.getLogger(__name__)


# Training may fine-tune the encoder for CLASSIFIER_TUNE_BUDGET_S, then encode and fit: far past the
# drafts' time limits, which are the workers' defaults.
TRAINING_LIMIT_S = settings.CLASSIFIER_TUNE_BUDGET_S + 900


@shared_task(
    name="chatdesk.knowledge.tasks.train_classifier", soft_time_limit=TRAINING_LIMIT_S, time_limit=TRAINING_LIMIT_S + 60
)
def train_classifier() -> int | None:
    """Periodic (celery beat, CLASSIFIER_TRAIN_EVERY_S): train a classifier version; returns its id."""
    try:
        return classifier_train_on_history().pk
    except TrainingError as error:
        log.info("classifier not trained: %s", error)
        return None


@shared_task(name="chatdesk.knowledge.tasks.calibrate_escalation")
def calibrate_escalation() -> int:
    """Periodic (celery beat, CALIBRATE_EVERY_S): choose the escalation thresholds from the labelled
    history; returns how many were stored (0: too little history, the setting applies)."""
    return len(escalation_calibrate())


@shared_task(name="chatdesk.knowledge.tasks.prune_reply_memory_changes")
def prune_reply_memory_changes() -> int:
    """Periodic (celery beat, daily): forget reply memory changes older than MEMORY_CHANGES_KEEP_S; returns
    how many rows went."""
    return reply_memory_changes_prune(older_than=timedelta(seconds=settings.MEMORY_CHANGES_KEEP_S))
