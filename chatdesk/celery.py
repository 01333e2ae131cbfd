"""The Celery app. Workers run drafting; see docs/operations.md for how to start them."""

import os
from typing import Any

from celery import Celery, platforms
from celery.concurrency import get_implementation
from celery.concurrency.prefork import TaskPool as PreforkPool
from celery.signals import beat_embedded_init, worker_init, worker_process_init

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


@beat_embedded_init.connect
def _embedded_beat_dies_with_its_worker(**_kwargs: object) -> None:
    """`worker --beat` runs beat in a child process that a SIGKILL of the worker would leave running
    (pool children already die with it); it would keep scheduling sweeps for a worker that is gone."""
    platforms.set_pdeathsig("SIGKILL")
