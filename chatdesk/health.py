"""Is this desk able to serve? `/healthz` says the process answers (nothing else is touched); `/readyz`
checks what serving needs: the database, the channel layer's Redis, the Celery broker, and a worker
seen lately (each worker's main process stamps WORKER_SEEN_KEY every WORKER_HEARTBEAT_S). Reads only;
each check is bounded by READY_CHECK_TIMEOUT_S. docs/operations.md ("Health checks")."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import psycopg
import redis
from django.conf import settings
from django.core.cache import cache
from django.db import connection

from chatdesk.celery import app

WORKER_SEEN_KEY = "health:worker-seen"


@dataclass(frozen=True)
class Check:
    """One dependency: whether it answered, what it said, how long it took (milliseconds)."""

    ok: bool
    detail: str
    ms: float


def worker_seen_now() -> None:
    """A worker is alive now (called by each worker's main process every WORKER_HEARTBEAT_S)."""
    cache.set(WORKER_SEEN_KEY, time.time(), timeout=max(settings.READY_WORKER_SEEN_S * 2, 60))


def _database() -> str:
    if connection.vendor != "postgresql":  # SQLite: a local file, nothing to wait for
        connection.ensure_connection()
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return "answers"
    # A connection of its own with a connect timeout (Django's has none): a server that accepts connections
    # but never answers would otherwise hold the probe for minutes. libpq counts whole seconds, at least 2.
    timeout = settings.READY_CHECK_TIMEOUT_S
    params = connection.get_connection_params()
    params.update(connect_timeout=max(2, math.ceil(timeout)), options=f"-c statement_timeout={int(timeout * 1000)}")
    with psycopg.connect(**params, autocommit=True) as probe:
        probe.execute("SELECT 1")
    return "answers"


def _channel_layer() -> str:
    timeout = settings.READY_CHECK_TIMEOUT_S
    # The channel layer's one host is REDIS_URL (settings.CHANNEL_LAYERS).
    client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        client.ping()
    finally:
        client.close()
    return "answers"


def _broker() -> str:
    timeout = settings.READY_CHECK_TIMEOUT_S
    # socket_timeout too: the broker's own (5 s) would hold the probe on a server that accepts but never answers.
    bounded = {"socket_connect_timeout": timeout, "socket_timeout": timeout}
    with app.connection_for_write(
        settings.CELERY_BROKER_URL, connect_timeout=timeout, transport_options=bounded
    ) as broker:
        broker.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=timeout)
    return "answers"


def _worker() -> str:
    seen = cache.get(WORKER_SEEN_KEY)
    if seen is None:
        raise LookupError(f"no drafting worker seen in the last {settings.READY_WORKER_SEEN_S} s")
    age = time.time() - float(seen)
    if age > settings.READY_WORKER_SEEN_S:
        raise LookupError(f"the last drafting worker was seen {age:.0f} s ago")
    return f"seen {age:.0f} s ago"


CHECKS: dict[str, Callable[[], str]] = {
    "database": _database,
    "channel_layer": _channel_layer,
    "broker": _broker,
    "worker": _worker,
}


def readiness() -> dict[str, Check]:
    """Every check, in order; a check that raises is not ok, with the error as its detail."""
    results = {}
    for name, check in CHECKS.items():
        started = time.perf_counter()
        try:
            ok, detail = True, check()
        except Exception as exc:  # any failure of a dependency means "not ready", said in words
            ok, detail = False, f"{type(exc).__name__}: {exc}"[:300]
        results[name] = Check(ok=ok, detail=detail, ms=round(1000 * (time.perf_counter() - started), 1))
    return results
