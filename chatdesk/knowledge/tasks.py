"""Celery interface to learning: periodic training of the topic selector."""

from __future__ import annotations

import logging

from celery import shared_task

from chatdesk.knowledge.selection import TrainingError
from chatdesk.knowledge.services import selector_train_on_history

log = logging.getLogger(__name__)


@shared_task(name="chatdesk.knowledge.tasks.train_selector")
def train_selector() -> int | None:
    """Periodic (celery beat, SELECTOR_TRAIN_EVERY_S): train a selector version; returns its id."""
    try:
        return selector_train_on_history().pk
    except TrainingError as error:
        log.info("selector not trained: %s", error)
        return None
