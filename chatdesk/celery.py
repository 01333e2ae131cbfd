"""The Celery app. Workers run drafting; see docs/operations.md for how to start them."""

import contextlib
import os
import threading
import time
from typing import Any

from celery import Celery, platforms
from celery.concurrency import get_implementation
from celery.concurrency.prefork import TaskPool as PreforkPool
from celery.signals import beat_embedded_init, worker_init, worker_process_init, worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatdesk.settings")

app = Celery("chatdesk")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_process_init.connect
def _warm_up_drafting_engine(**_kwargs: object) -> None:
    """Load the drafting engine in each prefork child, after the fork.

    Loading torch in the parent before prefork makes the children hang, and a
    lazily loaded model would make the first customer wait for it.
    """
    from chatdesk.drafting.registry import warm_up

    warm_up()


@worker_init.connect
def _warm_up_unforked_worker(sender: Any = None, **_kwargs: object) -> None:
    """Thread-pool (GPU batching) and solo workers never fork: load the engine once in the worker itself."""
    pool = get_implementation(getattr(sender, "pool_cls", "prefork"))  # still a name ("threads") at this point
    if not issubclass(pool, PreforkPool):
        from chatdesk.drafting.registry import warm_up

        warm_up()


@worker_ready.connect
def _say_alive_while_drafting(sender: Any = None, **_kwargs: object) -> None:
    """A worker that consumes the `drafts` queue stamps health.WORKER_SEEN_KEY every WORKER_HEARTBEAT_S
    from its main process (what /readyz's worker check reads), until it exits."""
    consumed = getattr(getattr(getattr(app, "amqp", None), "queues", None), "consume_from", None) or {}
    if consumed and "drafts" not in consumed:
        return

    def stamp() -> None:
        from django.conf import settings

        from chatdesk import health

        while True:
            # Redis away for a moment: /readyz reports the worker unseen meanwhile.
            with contextlib.suppress(Exception):
                health.worker_seen_now()
            time.sleep(settings.WORKER_HEARTBEAT_S)

    threading.Thread(target=stamp, name="chatdesk-worker-heartbeat", daemon=True).start()


@beat_embedded_init.connect
def _embedded_beat_dies_with_its_worker(**_kwargs: object) -> None:
    """`worker --beat` runs beat in a child process that a SIGKILL of the worker would leave running
    (pool children already die with it); it would keep scheduling sweeps for a worker that is gone."""
    platforms.set_pdeathsig("SIGKILL")
