"""Work queued for Celery workers, sent by task name: the services that queue it never import the task
module (chatdesk.conversations.tasks calls the services). CELERY_TASK_ROUTES still routes each name
to its queue (drafts and handoff summaries to `drafts`, where the model is)."""

from __future__ import annotations

import logging

from kombu.exceptions import OperationalError

from chatdesk.celery import app

log = logging.getLogger(__name__)

DRAFT_REPLY = "chatdesk.conversations.tasks.draft_reply"
HANDOFF_SUMMARY_GENERATE = "chatdesk.conversations.tasks.handoff_summary_generate"


def enqueue(task: str, *args: int) -> bool:
    """Send `task` with `args` to the broker. False (logged) when the broker cannot be reached: what was
    stored stays, and the caller's sweep or fallback covers it (drafts: drafts_requeue_stale)."""
    try:
        app.send_task(task, args=list(args))
    except OperationalError as exc:
        log.warning("broker unavailable, %s%s not queued: %s", task.rsplit(".", 1)[-1], args, exc)
        return False
    return True
