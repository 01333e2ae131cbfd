"""/healthz says the process answers; /readyz says whether the desk can serve: database, channel layer,
broker, and a drafting worker seen lately."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client

from chatdesk import health
from tests.live import LiveStack

pytestmark = pytest.mark.django_db


def test_healthz_answers_without_touching_anything(django_assert_num_queries: Any) -> None:
    with django_assert_num_queries(0):
        response = Client().get("/healthz")
    assert (response.status_code, response.json()) == (200, {"ok": True})


def test_readyz_is_ready_when_everything_answers_and_a_worker_was_seen() -> None:
    health.worker_seen_now()
    response = Client().get("/readyz")
    body = response.json()
    assert response.status_code == 200 and body["ok"] is True
    assert list(body["checks"]) == ["database", "channel_layer", "broker", "worker"]
    assert all(check["ok"] and check["ms"] >= 0 for check in body["checks"].values())
    assert body["checks"]["worker"]["detail"].startswith("seen ")


def test_without_a_recent_worker_the_desk_is_not_ready(settings: Any) -> None:
    cache.delete(health.WORKER_SEEN_KEY)
    response = Client().get("/readyz")
    assert response.status_code == 503
    worker = response.json()["checks"]["worker"]
    assert worker["ok"] is False and "no drafting worker seen in the last 60 s" in worker["detail"]
    settings.READY_WORKER_SEEN_S = 5
    cache.set(health.WORKER_SEEN_KEY, time.time() - 30)
    assert "was seen 30 s ago" in Client().get("/readyz").json()["checks"]["worker"]["detail"]


def test_a_broker_or_channel_layer_that_does_not_answer_makes_it_not_ready(settings: Any) -> None:
    health.worker_seen_now()
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    started = time.monotonic()
    response = Client().get("/readyz")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert (checks["broker"]["ok"], checks["database"]["ok"], checks["worker"]["ok"]) == (False, True, True)
    settings.CELERY_BROKER_URL, settings.REDIS_URL = settings.REDIS_URL, "redis://127.0.0.1:1/0"
    assert Client().get("/readyz").json()["checks"]["channel_layer"]["ok"] is False
    assert time.monotonic() - started < 10  # bounded by READY_CHECK_TIMEOUT_S per check


@pytest.mark.django_db(transaction=True)
def test_a_database_that_does_not_answer_makes_it_not_ready() -> None:
    health.worker_seen_now()
    port = connection.settings_dict["PORT"]
    connection.close()
    connection.settings_dict["PORT"] = "1"  # nothing listens there
    try:
        response = Client().get("/readyz")
    finally:
        connection.close()
        connection.settings_dict["PORT"] = port
    assert response.status_code == 503
    database = response.json()["checks"]["database"]
    assert database["ok"] is False and "OperationalError" in database["detail"]


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts TCP connections and never says a word (a hung server, a stalled proxy)."""
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                held.append(server.accept()[0])

    threading.Thread(target=accept, daemon=True).start()
    yield server.getsockname()[1]
    server.close()
    for connection_ in held:
        connection_.close()


def test_a_broker_that_never_answers_is_not_ready_within_the_time_limit(settings: Any, silent_server: int) -> None:
    health.worker_seen_now()
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{silent_server}/0"
    started = time.monotonic()
    response = Client().get("/readyz")
    took = time.monotonic() - started
    broker = response.json()["checks"]["broker"]
    assert response.status_code == 503 and broker["ok"] is False and "Timeout" in broker["detail"]
    assert took < 3, took  # READY_CHECK_TIMEOUT_S is 1 s, not the broker's own 5 s socket timeout


@pytest.mark.django_db(transaction=True)
def test_a_database_that_never_answers_is_not_ready_within_the_time_limit(silent_server: int) -> None:
    health.worker_seen_now()
    port = connection.settings_dict["PORT"]
    connection.close()
    connection.settings_dict["PORT"] = str(silent_server)
    started = time.monotonic()
    try:
        response = Client().get("/readyz")
    finally:
        connection.close()
        connection.settings_dict["PORT"] = port
    took = time.monotonic() - started
    database = response.json()["checks"]["database"]
    assert response.status_code == 503 and database["ok"] is False and "timeout" in database["detail"]
    assert took < 5, took  # libpq's shortest connect timeout (2 s), not minutes


def _get(url: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:  # 503 and the like: the body still says why
        return error.code, json.loads(error.read())


# Transactional like every live test: pytest-django runs those after the others, so the live stack's
# worker never drafts for a test that expects its task to wait in the broker.
@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_a_running_worker_makes_the_live_desk_ready(live_stack: LiveStack) -> None:
    deadline = time.monotonic() + 60
    while True:
        status, body = _get(f"{live_stack.base_url}/readyz")
        if status == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.5)  # poll interval
    assert status == 200, body
    assert body["checks"]["worker"]["ok"] is True
