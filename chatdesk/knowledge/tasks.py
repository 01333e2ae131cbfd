"""Celery interface to learning: periodic training of the topic selector and calibration of escalation."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings

from chatdesk.knowledge.selection import TrainingError
from chatdesk.knowledge.services import escalation_calibrate, selector_train_on_history

log = logging.getLogger(__name__)


# Training may fine-tune the encoder for SELECTOR_TUNE_BUDGET_S, then encode and fit: far past the
# drafts' time limits, which are the workers' defaults.
TRAINING_LIMIT_S = settings.SELECTOR_TUNE_BUDGET_S + 900


@shared_task(
    name="chatdesk.knowledge.tasks.train_selector", soft_time_limit=TRAINING_LIMIT_S, time_limit=TRAINING_LIMIT_S + 60
)
def train_selector() -> int | None:
    """Periodic (celery beat, SELECTOR_TRAIN_EVERY_S): train a selector version; returns its id."""
    try:
        return selector_train_on_history().pk
    except TrainingError as error:
        log.info("selector not trained: %s", error)
        return None


@shared_task(name="chatdesk.knowledge.tasks.calibrate_escalation")
def calibrate_escalation() -> int:
    """Periodic (celery beat, CALIBRATE_EVERY_S): choose the escalation thresholds from the labelled
    history; returns how many were stored (0: too little history, the setting applies)."""
    return len(escalation_calibrate())
